/* bench_diff.c: throughput of kagami's comparison paths, for `make bench-diff`.
 *
 * Linked with kagami's own objects, so what is measured is the code the
 * proxy runs on its thread pool:
 *   - kg_linediff  (Myers line diff, unified output) on a ~1 MB HTML page
 *     against a copy with ~1% of its lines changed;
 *   - kg_htmldiff  (libxml2 parse, canonical text, line diff, XPaths) on the
 *     same pair;
 *   - kg_jsondiff  (jansson parse and structural walk) on ~1 MB of JSON
 *     against a copy with a few values changed;
 *   - kg_decode_body("gzip") inflating the ~1 MB HTML page;
 *   - noise only (issue 13): ~1 MB of JSON records, each with a request id
 *     and a timestamp that differ between the two sides and are ignored by
 *     rules, compared by kg_jsondiff (lockstep fast path, jsonfast.c) and by
 *     kg_jsondiff_tree (jansson trees, what every pair cost before), so the
 *     ratio shows; and an HTML page whose only differences are a timestamp
 *     and a CSRF token, ignored by ignore_xpath, through kg_htmldiff; and
 *     the JSON pair again with its noise learned (a kg_noise_view of every
 *     differing location) instead of ruled out.
 * Every input is generated here, deterministically (no files, no network).
 *
 * Each case runs once to warm up, then repeatedly (at least 5 times, until
 * ~0.4 s have passed or 50 runs); the median run time is reported. MB/s is
 * the size of ONE input body (the master's, or the decoded output for gzip)
 * divided by the median time, MB = 10^6 bytes.
 *
 * Usage: bench_diff [--json]   (--json: one JSON object on stdout instead
 *                               of the table) */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "common/buf.h"
#include "compare/decode.h"
#include "compare/differences.h"
#include "compare/htmldiff.h"
#include "compare/jsondiff.h"
#include "compare/linediff.h"
#include "compare/noise.h"

#define TARGET_BYTES (1000 * 1000)
#define MIN_RUNS 5
#define MAX_RUNS 50
#define MIN_SECONDS 0.4
#define DIFF_CAP (256 * 1024) /* what compare.c keeps per pair */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A tiny deterministic generator, so every run diffs the same bytes. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint32_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 16);
}

static const char *const words[] = {
    "matcha", "sencha", "hojicha", "genmaicha", "gyokuro", "bancha", "kukicha",
    "oolong", "assam", "darjeeling", "ceylon", "earl", "grey", "jasmine",
    "rooibos", "chamomile", "mint", "ginger", "lemon", "yuzu"};
#define NWORDS (sizeof(words) / sizeof(words[0]))

/* A product listing page: a head with some style, then one table row per
 * line. When `changed` is non-NULL, about 1 in 100 rows is written with a
 * different price and stock text (the shadow's version); *changed counts
 * them. Both versions come from the same random sequence, so only the
 * chosen rows differ. */
static void gen_html(kg_buf *out, bool variant, size_t *changed) {
  rng_state = 0x9E3779B97F4A7C15ULL;
  kg_buf_appends(out,
                 "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
                 "<meta charset=\"utf-8\">\n<title>Tea shop: all products</title>\n"
                 "<style>\nbody { font-family: sans-serif; margin: 0 auto; max-width: 60em; }\n"
                 "table { border-collapse: collapse; } td { padding: 2px 6px; }\n"
                 "</style>\n</head>\n<body>\n<div class=\"container\">\n"
                 "<h1>All products</h1>\n<table id=\"products\">\n");
  size_t n = 0;
  for (unsigned i = 0; out->len < TARGET_BYTES - 200; i++) {
    uint32_t r = rng();
    const char *w1 = words[r % NWORDS], *w2 = words[(r >> 8) % NWORDS];
    unsigned price = 100 + (r >> 12) % 9000, stock = (r >> 4) % 500;
    bool change = (rng() % 100) == 0;
    if (variant && change) {
      price += 7;
      stock = stock ? stock - 1 : 3;
    }
    if (change) n++;
    kg_buf_appendf(out,
                   "<tr class=\"row\" data-id=\"%u\"><td><a href=\"/products/%u\">%s %s "
                   "no. %u</a></td><td class=\"price\">%u.%02u</td><td>%u in stock</td></tr>\n",
                   i, i, w1, w2, i, price / 100, price % 100, stock);
  }
  kg_buf_appends(out, "</table>\n</div>\n</body>\n</html>\n");
  if (changed) *changed = n;
}

/* An API response: an object with an array of product objects, one per
 * line. In the variant, a handful (`nchanges`) of values differ. */
static void gen_json(kg_buf *out, bool variant, size_t nchanges) {
  rng_state = 0xD1B54A32D192ED03ULL;
  kg_buf_appends(out, "{\"page\":1,\"items\":[\n");
  size_t done = 0;
  for (unsigned i = 0; out->len < TARGET_BYTES - 300; i++) {
    uint32_t r = rng();
    unsigned price = 100 + (r >> 12) % 9000;
    /* the changes land on items spread over the first part of the document */
    if (variant && done < nchanges && i % 1000 == 500) {
      price += 1;
      done++;
    }
    kg_buf_appendf(out,
                   "%s{\"id\":%u,\"sku\":\"SKU-%06u\",\"name\":\"%s %s\",\"price\":%u.%02u,"
                   "\"tags\":[\"%s\",\"%s\"],\"stock\":{\"warehouse\":\"%s\",\"count\":%u},"
                   "\"active\":%s}\n",
                   i ? "," : "", i, i, words[r % NWORDS], words[(r >> 8) % NWORDS],
                   price / 100, price % 100, words[(r >> 3) % NWORDS],
                   words[(r >> 5) % NWORDS], (r & 1) ? "tokyo" : "osaka", (r >> 20) % 300,
                   (r & 2) ? "true" : "false");
  }
  kg_buf_appendf(out, "],\"next\":null}\n");
}

/* An API response of records where only noise differs: every record
 * carries its own request id and timestamp (different on each side, as two
 * backends answering the same request would write them), the rest is the
 * same. The rules of the case ignore $.records[*].request_id and $..ts. */
static size_t gen_noisy_json(kg_buf *out, bool variant) {
  rng_state = 0x2545F4914F6CDD1DULL;
  uint32_t salt = variant ? 0x5bd1e995u : 0;
  kg_buf_appendf(out,
                 "{\"request_id\":\"%08x\",\"ts\":\"2026-12-03T08:%02u:00.000Z\","
                 "\"records\":[\n",
                 0xabcdef01u ^ salt, variant ? 1u : 0u);
  unsigned i = 0;
  for (; out->len < TARGET_BYTES - 300; i++) {
    uint32_t r = rng();
    kg_buf_appendf(out,
                   "%s{\"id\":%u,\"request_id\":\"%08x-%04x\","
                   "\"ts\":\"2026-12-03T08:15:%02u.%03uZ\",\"name\":\"%s %s\","
                   "\"price\":%u.%02u,\"stock\":%u,\"active\":%s}\n",
                   i ? "," : "", i, r ^ salt, i & 0xffff, (i / 1000 + (variant ? 1 : 0)) % 60,
                   (r ^ salt) % 1000, words[r % NWORDS], words[(r >> 8) % NWORDS],
                   1 + (r >> 12) % 90, r % 100, (r >> 4) % 500, (r & 2) ? "true" : "false");
  }
  kg_buf_appends(out, "]}\n");
  return i;
}

/* A page where only noise differs: a "generated at" timestamp and a CSRF
 * token in a hidden form field, ignored by the case's ignore_xpath. */
static void gen_noisy_html(kg_buf *out, bool variant, size_t target) {
  rng_state = 0x9E3779B97F4A7C15ULL;
  kg_buf_appendf(out,
                 "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                 "<title>Tea shop</title>\n</head>\n<body>\n"
                 "<p id=\"generated\">Generated at 2026-12-03 08:15:%02u</p>\n"
                 "<form method=\"post\" action=\"/cart\"><input type=\"hidden\" name=\"csrf\" "
                 "value=\"%s\"></form>\n<table id=\"products\">\n",
                 variant ? 42 : 17, variant ? "c2hhZG93LXRva2Vu" : "bWFzdGVyLXRva2Vu");
  for (unsigned i = 0; out->len < target - 200; i++) {
    uint32_t r = rng();
    unsigned price = 100 + (r >> 12) % 9000, stock = (r >> 4) % 500;
    kg_buf_appendf(out,
                   "<tr class=\"row\" data-id=\"%u\"><td><a href=\"/products/%u\">%s %s "
                   "no. %u</a></td><td class=\"price\">%u.%02u</td><td>%u in stock</td></tr>\n",
                   i, i, words[r % NWORDS], words[(r >> 8) % NWORDS], i, price / 100,
                   price % 100, stock);
  }
  kg_buf_appends(out, "</table>\n</body>\n</html>\n");
}

static void gzip_buf(const kg_buf *in, kg_buf *out) {
  z_stream z;
  memset(&z, 0, sizeof(z));
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    fprintf(stderr, "bench_diff: deflateInit2 failed\n");
    exit(1);
  }
  size_t cap = deflateBound(&z, (uLong)in->len);
  kg_buf_reserve(out, cap);
  z.next_in = (Bytef *)in->data;
  z.avail_in = (uInt)in->len;
  z.next_out = (Bytef *)out->data;
  z.avail_out = (uInt)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
    fprintf(stderr, "bench_diff: deflate failed\n");
    exit(1);
  }
  out->len = z.total_out;
  out->data[out->len] = '\0';
  deflateEnd(&z);
}

/* --- the cases ----------------------------------------------------------- */

static kg_buf html_a = KG_BUF_INIT, html_b = KG_BUF_INIT;
static kg_buf json_a = KG_BUF_INIT, json_b = KG_BUF_INIT;
static kg_buf gz = KG_BUF_INIT;
static kg_buf noisy_json_a = KG_BUF_INIT, noisy_json_b = KG_BUF_INIT;
static kg_buf noisy_html_a = KG_BUF_INIT, noisy_html_b = KG_BUF_INIT;
static kg_buf small_html_a = KG_BUF_INIT, small_html_b = KG_BUF_INIT; /* ~20 KB */
static kg_noise_view noisy_json_learned; /* every differing location */
static const char *const noisy_json_ignore[] = {"$.records[*].request_id", "$..ts",
                                                "$.request_id"};
static const char *const noisy_html_ignore[] = {"//p[@id='generated']",
                                                "//input[@name='csrf']/@value"};

/* Each case returns a number that describes its result (changed lines,
 * differences found, bytes decoded) so the work cannot be optimised away
 * and the output shows the differ really found the changes. */
static size_t case_linediff(void) {
  kg_buf out = KG_BUF_INIT;
  kg_linediff_opts o = {.a_label = "master", .b_label = "shadow", .context = 3,
                        .max_output = DIFF_CAP};
  size_t n = kg_linediff(html_a.data, html_a.len, html_b.data, html_b.len, &o, &out);
  kg_buf_free(&out);
  return n;
}

static size_t case_htmldiff(void) {
  kg_diffs d;
  memset(&d, 0, sizeof(d));
  kg_buf uni = KG_BUF_INIT;
  kg_htmldiff_opts o = {.a_label = "master", .b_label = "shadow", .max_output = DIFF_CAP};
  int rc = kg_htmldiff(html_a.data, html_a.len, html_b.data, html_b.len, &o, &d, &uni);
  size_t n = rc == 0 ? d.total : (size_t)-1;
  kg_diffs_free(&d);
  kg_buf_free(&uni);
  return n;
}

static size_t case_jsondiff(void) {
  kg_diffs d;
  memset(&d, 0, sizeof(d));
  int rc = kg_jsondiff(json_a.data, json_a.len, json_b.data, json_b.len, NULL, &d);
  size_t n = rc == 0 ? d.total : (size_t)-1;
  kg_diffs_free(&d);
  return n;
}

/* Noise only: the result is the number of suppressed patterns (3) plus
 * 1000 times the differences (0). */
static size_t noisy_json_case(int (*differ)(const char *, size_t, const char *, size_t,
                                            const kg_jsondiff_opts *, kg_diffs *)) {
  kg_diffs d;
  memset(&d, 0, sizeof(d));
  kg_jsondiff_opts o = {.ignore = noisy_json_ignore, .nignore = 3};
  int rc = differ(noisy_json_a.data, noisy_json_a.len, noisy_json_b.data, noisy_json_b.len,
                  &o, &d);
  size_t n = rc == 0 ? d.total * 1000 + d.nsuppressed : (size_t)-1;
  kg_diffs_free(&d);
  return n;
}

static size_t case_json_noise_fast(void) { return noisy_json_case(kg_jsondiff); }

/* The same pair with no rules, its noise learned instead: every differing
 * location is noisy, so the differences are reported for compare.c to take
 * out. Result: the differences found. */
static size_t case_json_learned(void) {
  kg_diffs d;
  memset(&d, 0, sizeof(d));
  kg_jsondiff_opts o = {.noisy = &noisy_json_learned};
  int rc = kg_jsondiff(noisy_json_a.data, noisy_json_a.len, noisy_json_b.data,
                       noisy_json_b.len, &o, &d);
  size_t n = rc == 0 ? d.total : (size_t)-1;
  kg_diffs_free(&d);
  return n;
}

static int cmp_strp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The locations of noisy_json where the two sides differ, sorted as a
 * kg_noise_view is. */
static void learn_noisy_json(size_t records) {
  kg_noise_view *v = &noisy_json_learned;
  v->patterns = calloc(2 * records + 2, sizeof(char *));
  v->patterns[v->n++] = strdup("$.request_id");
  v->patterns[v->n++] = strdup("$.ts");
  for (size_t i = 0; i < records; i++) {
    char p[64];
    snprintf(p, sizeof(p), "$.records[%zu].request_id", i);
    v->patterns[v->n++] = strdup(p);
    snprintf(p, sizeof(p), "$.records[%zu].ts", i);
    v->patterns[v->n++] = strdup(p);
  }
  qsort(v->patterns, v->n, sizeof(char *), cmp_strp);
}
static size_t case_json_noise_tree(void) { return noisy_json_case(kg_jsondiff_tree); }

static size_t html_noise_case(const kg_buf *a, const kg_buf *b) {
  kg_diffs d;
  memset(&d, 0, sizeof(d));
  kg_buf uni = KG_BUF_INIT;
  kg_htmldiff_opts o = {.ignore = noisy_html_ignore, .nignore = 2, .a_label = "master",
                        .b_label = "shadow", .max_output = DIFF_CAP};
  int rc = kg_htmldiff(a->data, a->len, b->data, b->len, &o, &d, &uni);
  size_t n = rc == 0 ? d.total * 1000 + d.nsuppressed : (size_t)-1;
  kg_diffs_free(&d);
  kg_buf_free(&uni);
  return n;
}
static size_t case_html_noise(void) { return html_noise_case(&noisy_html_a, &noisy_html_b); }
/* The page size of bench/run.py's noisy HTML row: what one request costs. */
static size_t case_html_noise_small(void) {
  return html_noise_case(&small_html_a, &small_html_b);
}

static size_t case_gunzip(void) {
  kg_buf out = KG_BUF_INIT;
  const char *err = NULL;
  int rc = kg_decode_body("gzip", gz.data, gz.len, (size_t)64 << 20, &out, &err);
  size_t n = rc == 0 ? out.len : (size_t)-1;
  kg_buf_free(&out);
  return n;
}

typedef struct bench_case {
  const char *name;
  const char *what;
  size_t (*fn)(void);
  const kg_buf *input; /* MB/s is computed on this many bytes */
  /* results */
  double median_s, min_s;
  int runs;
  size_t result;
  size_t bytes;
} bench_case;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void run_case(bench_case *c) {
  double t[MAX_RUNS];
  c->result = c->fn(); /* warm-up (and the result reported) */
  double start = now_s();
  int n = 0;
  while (n < MAX_RUNS && (n < MIN_RUNS || now_s() - start < MIN_SECONDS)) {
    double t0 = now_s();
    size_t r = c->fn();
    t[n++] = now_s() - t0;
    if (r != c->result) {
      fprintf(stderr, "bench_diff: %s gave %zu then %zu\n", c->name, c->result, r);
      exit(1);
    }
  }
  qsort(t, (size_t)n, sizeof(double), cmp_double);
  c->runs = n;
  c->min_s = t[0];
  c->median_s = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

int main(int argc, char **argv) {
  bool json = argc > 1 && strcmp(argv[1], "--json") == 0;
  if (argc > 1 && !json) {
    fprintf(stderr, "usage: %s [--json]\n", argv[0]);
    return 2;
  }
  kg_htmldiff_global_init();
  size_t html_changed = 0;
  gen_html(&html_a, false, NULL);
  gen_html(&html_b, true, &html_changed);
  gen_json(&json_a, false, 0);
  gen_json(&json_b, true, 5);
  gzip_buf(&html_a, &gz);
  learn_noisy_json(gen_noisy_json(&noisy_json_a, false));
  gen_noisy_json(&noisy_json_b, true);
  gen_noisy_html(&noisy_html_a, false, TARGET_BYTES);
  gen_noisy_html(&noisy_html_b, true, TARGET_BYTES);
  gen_noisy_html(&small_html_a, false, 20 * 1024);
  gen_noisy_html(&small_html_b, true, 20 * 1024);
  size_t html_lines = 0;
  for (size_t i = 0; i < html_a.len; i++) html_lines += html_a.data[i] == '\n';

  bench_case cases[] = {
      {"line", "kg_linediff, HTML page, ~1% of lines changed", case_linediff, &html_a,
       0, 0, 0, 0, 0},
      {"html", "kg_htmldiff, same pair", case_htmldiff, &html_a, 0, 0, 0, 0, 0},
      {"json", "kg_jsondiff, JSON document, 5 values changed", case_jsondiff, &json_a,
       0, 0, 0, 0, 0},
      {"gzip", "kg_decode_body gzip, HTML page (MB/s of decoded output)", case_gunzip,
       &html_a, 0, 0, 0, 0, 0},
      {"jnf", "kg_jsondiff, JSON records, only ignored noise differs", case_json_noise_fast,
       &noisy_json_a, 0, 0, 0, 0, 0},
      {"jnt", "kg_jsondiff_tree, same pair (no fast path)", case_json_noise_tree,
       &noisy_json_a, 0, 0, 0, 0, 0},
      {"jnl", "kg_jsondiff, same pair, its noise learned, not ruled", case_json_learned,
       &noisy_json_a, 0, 0, 0, 0, 0},
      {"hn", "kg_htmldiff, HTML page, only ignored noise differs", case_html_noise,
       &noisy_html_a, 0, 0, 0, 0, 0},
      {"hs", "kg_htmldiff, same kind of page, 20 KB", case_html_noise_small,
       &small_html_a, 0, 0, 0, 0, 0},
  };
  size_t ncases = sizeof(cases) / sizeof(cases[0]);
  for (size_t i = 0; i < ncases; i++) {
    cases[i].bytes = cases[i].input->len;
    run_case(&cases[i]);
  }

  if (json) {
    printf("{\"html_bytes\":%zu,\"html_lines\":%zu,\"html_lines_changed\":%zu,"
           "\"json_bytes\":%zu,\"gzip_bytes\":%zu,\"cases\":[",
           html_a.len, html_lines, html_changed, json_a.len, gz.len);
    for (size_t i = 0; i < ncases; i++) {
      bench_case *c = &cases[i];
      printf("%s{\"name\":\"%s\",\"what\":\"%s\",\"bytes\":%zu,\"runs\":%d,"
             "\"median_ms\":%.3f,\"min_ms\":%.3f,\"mb_per_s\":%.1f,\"result\":%zu}",
             i ? "," : "", c->name, c->what, c->bytes, c->runs, c->median_s * 1e3,
             c->min_s * 1e3, (double)c->bytes / 1e6 / c->median_s, c->result);
    }
    printf("]}\n");
  } else {
    printf("comparison paths (median of N runs; MB/s of one %.2f MB body):\n",
           (double)html_a.len / 1e6);
    printf("  HTML page: %zu bytes, %zu lines, %zu lines changed in the shadow's copy\n",
           html_a.len, html_lines, html_changed);
    printf("  JSON document: %zu bytes; gzip of the HTML page: %zu bytes\n", json_a.len,
           gz.len);
    printf("  %-5s %-58s %5s %10s %9s %8s\n", "case", "what", "runs", "median ms",
           "MB/s", "result");
    for (size_t i = 0; i < ncases; i++) {
      bench_case *c = &cases[i];
      printf("  %-5s %-58s %5d %10.2f %9.1f %8zu\n", c->name, c->what, c->runs,
             c->median_s * 1e3, (double)c->bytes / 1e6 / c->median_s, c->result);
    }
    printf("  (result: changed lines for line, differences for html/json/jnl, decoded "
           "bytes for gzip;\n   1000 x differences + suppressed patterns for the noise "
           "cases jnf, jnt, hn, hs)\n");
  }
  kg_buf_free(&html_a);
  kg_buf_free(&html_b);
  kg_buf_free(&json_a);
  kg_buf_free(&json_b);
  kg_buf_free(&gz);
  kg_buf_free(&noisy_json_a);
  kg_buf_free(&noisy_json_b);
  kg_buf_free(&noisy_html_a);
  kg_buf_free(&noisy_html_b);
  kg_noise_view_free(&noisy_json_learned);
  return 0;
}
