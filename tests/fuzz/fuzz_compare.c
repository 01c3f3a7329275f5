/* fuzz_compare: a master and a shadow response -> kg_compare_pair, the
 * whole comparison pipeline (src/compare/compare.c): header fields, Content-Encoding,
 * media type, then the JSON, HTML, text or binary differ, then noise.
 *
 * The config is a real one, loaded once from the text below, so the
 * default header ignore list and the compiled rules are the loader's own.
 *
 * Input: byte 0: bit 0/1 the master's/shadow's body was truncated at the
 * capture limit, bit 2 the rule applies, bit 3 learned noise applies,
 * bit 4 the master failed, bit 5 the statuses differ, bits 6-7 the capture
 * limit (which also caps decoding). Then four parts split at FZ_SEP: the
 * master's header fields ("Name: value" lines), the shadow's, the master's
 * body, the shadow's body.
 *
 * What must hold: the counts and kinds are consistent; header differences
 * are named "header:" in lower case; nothing the defaults ignore (Date) is
 * ever a header difference; a response compared with itself is equal
 * unless it cannot be decoded. */
#include <ctype.h>
#include <sys/mman.h>
#include <unistd.h>

#include "compare/compare.h"
#include "compare/htmldiff.h"
#include "config/config.h"
#include "fuzz_util.h"

static const char fz_config_text[] =
    "return {\n"
    "  backends = { master = { url = 'http://127.0.0.1:9', master = true },\n"
    "               shadow = { url = 'http://127.0.0.1:10' } },\n"
    "  compare_headers = true,\n"
    "  rules = { {\n"
    "    ignore = { '$.meta.ts', '$..request_id' },\n"
    "    unordered = { '$.tags' },\n"
    "    ignore_xpath = { \"//div[@id='ads']\", '//input/@value' },\n"
    "    replace = { { '\\\\d+ ms', 'N ms' }, { 'x*', '' } },\n"
    "    ignore_headers = { 'X-Frame-Options' },\n"
    "  } },\n"
    "}\n";

static kg_config *fz_cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  kg_htmldiff_global_init();
  int fd = memfd_create("kagami-fuzz-compare.lua", 0);
  if (fd < 0 || write(fd, fz_config_text, sizeof(fz_config_text) - 1) < 0) abort();
  char path[64], err[512];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  if (kg_config_load(path, &fz_cfg, err, sizeof(err)) != 0) {
    fprintf(stderr, "fuzz_compare config: %s\n", err);
    abort();
  }
  close(fd);
  return 0;
}

/* "Name: value" lines into h; lines without a colon are skipped. */
static void fz_headers(fz_in part, kg_hdrs *h) {
  char *text = fz_strdup(part);
  char *save = NULL;
  for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    char *colon = strchr(l, ':');
    if (colon == NULL || colon == l) continue;
    const char *v = colon + 1;
    while (*v == ' ') v++;
    kg_hdrs_add(h, l, (size_t)(colon - l), v, strlen(v));
  }
  free(text);
}

static void fz_check_result(const kg_pair_result *r) {
  FZ_CHECK(r->kind == KG_KIND_TEXT || r->kind == KG_KIND_JSON || r->kind == KG_KIND_HTML ||
           r->kind == KG_KIND_BINARY);
  FZ_CHECK(r->body.n <= r->body.total && r->headers.n <= r->headers.total);
  FZ_CHECK(r->equal == (!r->error && !r->status_differs && r->body.total == 0 &&
                        r->headers.total == 0));
  for (size_t i = 0; i < r->headers.n; i++) {
    const char *w = r->headers.v[i].where;
    FZ_CHECK(strncmp(w, "header:", 7) == 0);
    for (const char *p = w; *p; p++)
      FZ_CHECK(tolower((unsigned char)*p) == (unsigned char)*p);
    FZ_CHECK(strcmp(w, "header:date") != 0);
  }
  for (size_t i = 0; i < r->body.n; i++)
    FZ_CHECK(r->body.v[i].where && r->body.v[i].pattern);
  if (r->kind != KG_KIND_JSON && r->body.n == 0) FZ_CHECK(r->diff.len == 0);
  const char **pats;
  size_t n = kg_pair_result_patterns(r, &pats);
  FZ_CHECK(n == r->body.n + r->headers.n);
  for (size_t i = 0; i < n; i++) FZ_CHECK(pats[i] != NULL);
  free(pats);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const size_t caps[] = {64, 4096, 1u << 20, 8u << 20};
  /* Sorted, as a kg_noise_view is. */
  static char *noisy_patterns[] = {"$.items[0].id", "/html/body/p[1]/text()",
                                   "header:x-noisy",
                                   "line 1: Generated in # ms -> Generated in # ms"};
  fz_in in = {data, size};
  uint8_t flags = fz_byte(&in);
  fz_cfg->max_capture_bytes = caps[flags >> 6];

  kg_hdrs ha = KG_HDRS_INIT, hb = KG_HDRS_INIT;
  fz_headers(fz_part(&in), &ha);
  fz_headers(fz_part(&in), &hb);
  fz_in pa = fz_part(&in);
  char *ba = fz_dup(pa), *bb = fz_dup(in);

  kg_resp_view a = {.backend = "master", .status = 200, .hdrs = &ha, .body = ba,
                    .body_len = pa.n, .bytes = pa.n, .truncated = flags & 1};
  kg_resp_view b = {.backend = "shadow", .status = flags & 32 ? 500 : 200, .hdrs = &hb,
                    .body = bb, .body_len = in.n, .bytes = in.n,
                    .truncated = (flags >> 1) & 1};
  if (flags & 16) {
    a.error = "timeout";
    a.hdrs = NULL;
    a.status = 0;
  }
  const kg_rule *rules[] = {&fz_cfg->rules[0]};
  kg_noise_view noisy = {noisy_patterns, sizeof(noisy_patterns) / sizeof(noisy_patterns[0])};
  kg_compare_opts o = {.settings = &fz_cfg->compare,
                       .max_body_bytes = fz_cfg->max_capture_bytes,
                       .rules = rules,
                       .nrules = flags & 4 ? 1 : 0,
                       .noisy = flags & 8 ? &noisy : NULL};

  kg_pair_result r;
  kg_compare_pair(&a, &b, &o, &r);
  fz_check_result(&r);
  if (flags & 16) FZ_CHECK(r.error != NULL && !r.equal);
  /* Compared as text without rules or noise, bodies that differ in a byte
   * are never "no difference" (a NUL byte once cut the diff's reading
   * short, and libxml2 once stopped reading a page early). */
  if (r.kind == KG_KIND_TEXT && !r.error && !(flags & 12) && !a.truncated && !b.truncated &&
      kg_hdrs_find(&ha, "content-encoding") < 0 && kg_hdrs_find(&hb, "content-encoding") < 0 &&
      (pa.n != in.n || memcmp(ba, bb, pa.n) != 0))
    FZ_CHECK(r.body.total > 0);
  kg_pair_result_free(&r);

  kg_compare_pair(&b, &b, &o, &r);
  fz_check_result(&r);
  FZ_CHECK(r.equal || r.error != NULL);
  kg_pair_result_free(&r);

  kg_hdrs_free(&ha);
  kg_hdrs_free(&hb);
  free(ba);
  free(bb);
  return 0;
}
