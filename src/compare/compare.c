/* compare.c: the comparison pipeline for one pair of responses (see
 * compare.h). */
#include "compare/compare.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "common/common.h"
#include "compare/decode.h"
#include "compare/differ.h"
#include "compare/htmldiff.h"
#include "compare/jsondiff.h"
#include "compare/textnorm.h"
#include "compare/linediff.h"

#define KG_MAX_DIFF_BYTES (256 * 1024) /* unified diff kept per pair */
#define KG_MAX_VALUE_BYTES 1024        /* a value shown in a difference */

const char *kg_kind_name(kg_kind k) { return k ? k->name : kg_differ_text.name; }

/* --- headers ------------------------------------------------------------------ */

static bool kg_header_ignored(const kg_compare_opts *o, const char *name) {
  const kg_compare_settings *set = o->settings;
  for (size_t i = 0; i < set->nignore_headers; i++)
    if (strcasecmp(set->ignore_headers[i], name) == 0) return true;
  for (size_t r = 0; r < o->nrules; r++)
    for (size_t i = 0; i < o->rules[r]->nignore_headers; i++)
      if (strcasecmp(o->rules[r]->ignore_headers[i], name) == 0) return true;
  return false;
}

/* How many fields named `name` h has. */
static size_t kg_header_count(const kg_hdrs *h, const char *name) {
  size_t n = 0;
  for (size_t i = 0; h && i < h->n; i++)
    if (strcasecmp(kg_hdrs_name(h, i), name) == 0) n++;
  return n;
}

/* Values of the fields named `name`, from the `from`-th such field on (at
 * most `count` of them), joined by ", " (the list form HTTP allows), or
 * NULL when there is none. Set-Cookie is reduced to its cookie names:
 * values are per session, names are what the application decides. */
static char *kg_header_values(const kg_hdrs *h, const char *name, size_t from,
                              size_t count) {
  if (h == NULL) return NULL;
  bool cookie = strcasecmp(name, "set-cookie") == 0;
  kg_buf b = KG_BUF_INIT;
  size_t seen = 0, taken = 0;
  for (size_t i = 0; i < h->n && taken < count; i++) {
    if (strcasecmp(kg_hdrs_name(h, i), name) != 0 || seen++ < from) continue;
    if (taken++) kg_buf_appends(&b, ", ");
    const char *v = kg_hdrs_value(h, i);
    kg_buf_append(&b, v, cookie ? strcspn(v, "=;") : h->v[i].value_len);
  }
  if (taken == 0) return NULL;
  return kg_buf_steal(&b, NULL);
}

static bool kg_header_seen(const kg_hdrs *h, size_t upto, const char *name) {
  for (size_t i = 0; i < upto; i++)
    if (strcasecmp(kg_hdrs_name(h, i), name) == 0) return true;
  return false;
}

/* One difference when the values from the from-th field on differ. `at`
 * is 0 for the whole field, else the 1-based position of a repeated one. */
static void kg_compare_header_values(const kg_resp_view *a, const kg_resp_view *b,
                                     const char *name, size_t at, kg_pair_result *out) {
  size_t from = at ? at - 1 : 0, count = at ? 1 : SIZE_MAX;
  char *va = kg_header_values(a->hdrs, name, from, count);
  char *vb = kg_header_values(b->hdrs, name, from, count);
  if (!(va && vb && strcmp(va, vb) == 0) && (va || vb)) {
    char where[300];
    if (at)
      snprintf(where, sizeof(where), "header:%s[%zu]", name, at);
    else
      snprintf(where, sizeof(where), "header:%s", name);
    /* Names are matched case-insensitively, so the location is lower case
     * to count "ETag" and "Etag" as one. */
    for (char *p = where; *p; p++) *p = (char)tolower((unsigned char)*p);
    kg_diffs_add(&out->headers, where, where, va, vb);
  }
  free(va);
  free(vb);
}

/* A field that either side repeats is compared position by position, each
 * its own location: noise in one Set-Cookie or X-Item must not hide a
 * change in the next. */
static void kg_compare_one_header(const kg_resp_view *a, const kg_resp_view *b,
                                  const kg_compare_opts *o, const char *name,
                                  kg_pair_result *out) {
  if (kg_header_ignored(o, name)) return;
  size_t n = KG_MAX(kg_header_count(a->hdrs, name), kg_header_count(b->hdrs, name));
  if (n <= 1) {
    kg_compare_header_values(a, b, name, 0, out);
    return;
  }
  for (size_t at = 1; at <= n; at++) kg_compare_header_values(a, b, name, at, out);
}

/* same_body: the decoded bodies are equal, so how each side encoded it
 * (Content-Encoding, like Content-Length) is not a difference worth a
 * person's time. */
static void kg_compare_headers(const kg_resp_view *a, const kg_resp_view *b,
                               const kg_compare_opts *o, bool same_body,
                               kg_pair_result *out) {
  if (!o->settings->compare_headers || a->hdrs == NULL || b->hdrs == NULL) return;
  /* Two deployments of one application usually send the same fields in
   * the same order: when every field is identical, nothing differs, and
   * the name-by-name walk below (quadratic, with the ignore list) is not
   * needed. It is the common case on the hot path. */
  if (a->hdrs->n == b->hdrs->n) {
    size_t i = 0;
    for (; i < a->hdrs->n; i++) {
      const kg_hdr *x = &a->hdrs->v[i], *y = &b->hdrs->v[i];
      if (x->name_len != y->name_len || x->value_len != y->value_len ||
          memcmp(kg_hdrs_value(a->hdrs, i), kg_hdrs_value(b->hdrs, i), x->value_len) != 0 ||
          strncasecmp(kg_hdrs_name(a->hdrs, i), kg_hdrs_name(b->hdrs, i), x->name_len) != 0)
        break;
    }
    if (i == a->hdrs->n) return;
  }
  for (size_t i = 0; i < a->hdrs->n; i++) {
    const char *name = kg_hdrs_name(a->hdrs, i);
    if (same_body && strcasecmp(name, "content-encoding") == 0) continue;
    if (!kg_header_seen(a->hdrs, i, name)) kg_compare_one_header(a, b, o, name, out);
  }
  for (size_t i = 0; i < b->hdrs->n; i++) {
    const char *name = kg_hdrs_name(b->hdrs, i);
    if (same_body && strcasecmp(name, "content-encoding") == 0) continue;
    if (!kg_header_seen(b->hdrs, i, name) && kg_hdrs_find(a->hdrs, name) < 0)
      kg_compare_one_header(a, b, o, name, out);
  }
}

/* --- bodies -------------------------------------------------------------------- */

static const char *kg_header_value(const kg_hdrs *h, const char *name) {
  if (h == NULL) return NULL;
  long i = kg_hdrs_find(h, name);
  return i < 0 ? NULL : kg_hdrs_value(h, (size_t)i);
}

/* The differs, asked in this order; the first that takes the master's
 * media type compares the bodies, and binary takes what none took. A new
 * differ: one file, its declaration in differ.h, one line here. */
static const kg_differ *const kg_differs[] = {
    &kg_differ_json,
    &kg_differ_html,
    &kg_differ_text,
};

const kg_differ *kg_differ_for(const char *ctype) {
  if (ctype == NULL) return &kg_differ_text; /* sniffed by the caller */
  size_t n = strcspn(ctype, ";");
  while (n && (ctype[n - 1] == ' ' || ctype[n - 1] == '\t')) n--;
  char t[128];
  if (n >= sizeof(t)) n = sizeof(t) - 1;
  for (size_t i = 0; i < n; i++) t[i] = (char)tolower((unsigned char)ctype[i]);
  t[n] = '\0';
  for (size_t i = 0; i < KG_ARRAY_SIZE(kg_differs); i++)
    if (kg_differs[i]->handles(t)) return kg_differs[i];
  return &kg_differ_binary;
}

/* A body with no Content-Type is text unless it holds control bytes. */
static bool kg_looks_binary(const char *p, size_t n) {
  for (size_t i = 0; i < KG_MIN(n, (size_t)4096); i++) {
    unsigned char c = (unsigned char)p[i];
    if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != 0x1b)
      return true;
  }
  return false;
}

static char *kg_charset(const char *ctype) {
  if (ctype == NULL) return NULL;
  const char *p = strcasestr(ctype, "charset=");
  if (p == NULL) return NULL;
  p += 8;
  if (*p == '"') p++;
  size_t n = strcspn(p, "\"; \t");
  return n ? kg_strndup(p, n) : NULL;
}

/* U+2400 SYMBOL FOR NULL: how a NUL byte of a text line is shown. */
#define KG_NUL_SHOWN "\xe2\x90\x80"

/* Appends p[0..n) with each NUL byte shown as KG_NUL_SHOWN: from here on a
 * value or a noise key is a C string (the differences list, the store), and
 * a NUL would cut it short where the two sides may still differ. */
static void kg_append_shown(kg_buf *b, const char *p, size_t n) {
  const char *nul;
  while (n > 0 && (nul = memchr(p, '\0', n)) != NULL) {
    kg_buf_append(b, p, (size_t)(nul - p));
    kg_buf_appends(b, KG_NUL_SHOWN);
    n -= (size_t)(nul - p) + 1;
    p = nul + 1;
  }
  kg_buf_append(b, p, n);
}

/* Shortened copy of a value for the differences list. */
static char *kg_shorten(const char *p, size_t n) {
  kg_buf b = KG_BUF_INIT;
  kg_append_shown(&b, p, KG_MIN(n, (size_t)KG_MAX_VALUE_BYTES));
  if (n > KG_MAX_VALUE_BYTES) kg_buf_appendf(&b, "... (%zu bytes)", n);
  return kg_buf_steal(&b, NULL);
}

typedef struct kg_line {
  const char *p;
  size_t len;
  long no;        /* master line number (removed lines) */
} kg_line;

/* Appends the shape of a text line: runs of digits generalised to '#', so
 * "Generated in 12 ms" has one shape across requests. At most ~100 bytes;
 * "(none)" for a side that has no line. */
static void kg_text_shape(const char *line, size_t len, kg_buf *out) {
  if (line == NULL) {
    kg_buf_appends(out, "(none)");
    return;
  }
  size_t start = out->len;
  for (size_t i = 0; i < len && out->len - start < 100; i++) {
    bool digit = isdigit((unsigned char)line[i]);
    if (digit && out->len > start && out->data[out->len - 1] == '#') continue;
    if (digit)
      kg_buf_append(out, "#", 1);
    else
      kg_append_shown(out, line + i, 1);
  }
}

/* The noise key of a changed text line: its master line number and the
 * shapes of both sides, "line 12: Generated in # ms -> Generated in # ms".
 * The line number keeps noise on one line from hiding a change of the same
 * shape on another (rows of a table); the shadow's shape keeps a noisy
 * line from hiding a line that turned into something else. */
static void kg_text_key(long no, const kg_line *m, const kg_line *s, kg_buf *out) {
  kg_buf_reset(out);
  kg_buf_appendf(out, "line %ld: ", no);
  kg_text_shape(m ? m->p : NULL, m ? m->len : 0, out);
  kg_buf_appends(out, " -> ");
  kg_text_shape(s ? s->p : NULL, s ? s->len : 0, out);
}

/* One run of removed and added lines: paired in order, each pair (or lone
 * line) one difference, so that learned noise on one line never hides a
 * real change on the next. */
static void kg_text_run(const kg_line *del, size_t nd, const kg_line *add,
                        size_t na, long at, kg_diffs *out) {
  kg_buf pat = KG_BUF_INIT;
  for (size_t k = 0; k < KG_MAX(nd, na); k++) {
    const kg_line *m = k < nd ? &del[k] : NULL, *s = k < na ? &add[k] : NULL;
    char where[48];
    snprintf(where, sizeof(where), "line %ld", m ? m->no : at);
    kg_text_key(m ? m->no : at, m, s, &pat);
    char *mv = m ? kg_shorten(m->p, m->len) : NULL;
    char *sv = s ? kg_shorten(s->p, s->len) : NULL;
    kg_diffs_add(out, where, pat.data, mv, sv);
    free(mv);
    free(sv);
  }
  kg_buf_free(&pat);
}

/* Text: the unified diff's changed lines become differences located by the
 * master's line numbers. The diff holds the lines' bytes as they are, NUL
 * bytes included: read by length, never as a C string. */
static void kg_text_differences(const char *unified, size_t ulen, kg_diffs *out) {
  size_t cap = 64, nd = 0, na = 0;
  kg_line *del = kg_malloc(cap * sizeof(kg_line)), *add = kg_malloc(cap * sizeof(kg_line));
  long a_line = 0;
  const char *uend = unified + ulen;
  for (const char *line = unified; line < uend;) {
    const char *end = memchr(line, '\n', (size_t)(uend - line));
    size_t len = end ? (size_t)(end - line) : (size_t)(uend - line);
    char c = line[0];
    bool header = (c == '-' && len >= 3 && strncmp(line, "---", 3) == 0 && a_line == 0) ||
                  (c == '+' && len >= 3 && strncmp(line, "+++", 3) == 0 && a_line == 0);
    if (!header && (c == '-' || c == '+')) {
      kg_line **v = c == '-' ? &del : &add;
      size_t *n = c == '-' ? &nd : &na;
      if (*n == cap) {
        cap *= 2;
        del = kg_realloc(del, cap * sizeof(kg_line));
        add = kg_realloc(add, cap * sizeof(kg_line));
        v = c == '-' ? &del : &add;
      }
      (*v)[(*n)++] = (kg_line){line + 1, len - 1, a_line};
      if (c == '-') a_line++;
    } else if (c != '\\') { /* "\ No newline" belongs to the line before */
      if (nd || na) kg_text_run(del, nd, add, na, a_line, out);
      nd = na = 0;
      if (c == '@' && len > 4) a_line = strtol(line + 4, NULL, 10);
      else if (c == ' ') a_line++;
      if (c == '@' && a_line == 0) a_line = 1; /* "@@ -0,0": empty master */
    }
    if (end == NULL) break;
    line = end + 1;
  }
  if (nd || na) kg_text_run(del, nd, add, na, a_line, out);
  free(del);
  free(add);
}

/* Applies every matching rule's replacements, in config order. Bit r of
 * *used is set when rule r replaced something. */
static void kg_normalise_text(const kg_compare_opts *o, const char *in,
                              size_t n, kg_buf *out, uint64_t *used) {
  kg_buf cur = KG_BUF_INIT;
  kg_buf_append(&cur, in, n);
  for (size_t r = 0; r < o->nrules; r++) {
    if (o->rules[r]->replace == NULL) continue;
    kg_buf next = KG_BUF_INIT;
    size_t count = 0;
    kg_textnorm_apply(o->rules[r]->replace, cur.data, cur.len, &next, &count);
    if (count && r < 64) *used |= 1ULL << r;
    kg_buf_free(&cur);
    cur = next;
  }
  *out = cur;
}

/* The raw texts differed and replacements were made: name each rule that
 * replaced something as suppressed, by its first pattern, so a person sees
 * that a rule was at work. */
static void kg_note_replacements(const kg_compare_opts *o, uint64_t used,
                                 kg_diffs *out) {
  for (size_t r = 0; r < o->nrules && r < 64; r++) {
    if (!((used >> r) & 1) || o->rules[r]->nreplace_patterns == 0) continue;
    kg_diffs_suppress(out, o->rules[r]->replace_patterns[0]);
  }
}

/* --- the differs ---------------------------------------------------------------- */

/* Text: the rules' replacements, then a line diff. */
static void kg_compare_text(const kg_differ_input *in, kg_pair_result *out) {
  const kg_compare_opts *o = in->o;
  kg_buf na, nb;
  uint64_t used = 0;
  kg_normalise_text(o, in->a, in->alen, &na, &used);
  kg_normalise_text(o, in->b, in->blen, &nb, &used);
  kg_note_replacements(o, used, &out->body);
  /* The differences come from the whole diff: a diff cut at its cap may
   * end before its first changed line (a 300 KB line of context), and a
   * change it does not show must still count. */
  kg_linediff_opts lo = {.a_label = in->a_label, .b_label = in->b_label, .context = 3};
  const char *pa = na.data ? na.data : "", *pb = nb.data ? nb.data : "";
  kg_buf whole = KG_BUF_INIT;
  kg_linediff(pa, na.len, pb, nb.len, &lo, &whole);
  if (whole.len) kg_text_differences(whole.data, whole.len, &out->body);
  kg_linediff_keep(pa, na.len, pb, nb.len, &lo, &whole, KG_MAX_DIFF_BYTES, &out->diff);
  kg_buf_free(&whole);
  kg_buf_free(&na);
  kg_buf_free(&nb);
}

/* Collects the strings of one rule field from every matching rule. */
static const char **kg_gather(const kg_compare_opts *o, size_t field_off,
                              size_t count_off, size_t *n) {
  size_t total = 0;
  for (size_t r = 0; r < o->nrules; r++)
    total += *(const size_t *)((const char *)o->rules[r] + count_off);
  const char **v = kg_calloc(total + 1, sizeof(char *));
  *n = 0;
  for (size_t r = 0; r < o->nrules; r++) {
    char **list = *(char **const *)((const char *)o->rules[r] + field_off);
    size_t cnt = *(const size_t *)((const char *)o->rules[r] + count_off);
    for (size_t i = 0; i < cnt; i++) v[(*n)++] = list[i];
  }
  return v;
}

/* JSON differences as a readable listing in unified-diff dress. */
static void kg_json_listing(const kg_diffs *d, const char *la, const char *lb,
                            kg_buf *out) {
  if (d->n == 0) return;
  kg_buf_appendf(out, "--- %s\n+++ %s\n", la, lb);
  for (size_t i = 0; i < d->n && out->len < KG_MAX_DIFF_BYTES; i++) {
    kg_buf_appendf(out, "@@ %s @@\n", d->v[i].where);
    if (d->v[i].master) kg_buf_appendf(out, "-%s\n", d->v[i].master);
    if (d->v[i].shadow) kg_buf_appendf(out, "+%s\n", d->v[i].shadow);
  }
  if (d->total > d->n)
    kg_buf_appendf(out, "... %zu more differences\n", d->total - d->n);
}

static void kg_compare_json(const kg_differ_input *in, kg_pair_result *out) {
  const kg_compare_opts *o = in->o;
  size_t ni, nu;
  const char **ign = kg_gather(o, offsetof(kg_rule, ignore),
                               offsetof(kg_rule, nignore), &ni);
  const char **uno = kg_gather(o, offsetof(kg_rule, unordered),
                               offsetof(kg_rule, nunordered), &nu);
  kg_jsondiff_opts jo = {.ignore = ign, .nignore = ni, .unordered = uno,
                         .nunordered = nu, .noisy = o->noisy};
  if (kg_jsondiff(in->a, in->alen, in->b, in->blen, &jo, &out->body) == 0) {
    out->kind = &kg_differ_json;
  } else {
    out->kind = &kg_differ_text;
    kg_compare_text(in, out);
  }
  free(ign);
  free(uno);
}

/* The listing is made after noise so that it agrees with the differences. */
static void kg_finish_json(const kg_differ_input *in, kg_pair_result *out) {
  kg_json_listing(&out->body, in->a_label, in->b_label, &out->diff);
}

static void kg_compare_html(const kg_differ_input *in, kg_pair_result *out) {
  const kg_compare_opts *o = in->o;
  size_t nx;
  const char **xp = kg_gather(o, offsetof(kg_rule, ignore_xpath),
                              offsetof(kg_rule, nignore_xpath), &nx);
  kg_buf na, nb;
  uint64_t used = 0;
  kg_normalise_text(o, in->a, in->alen, &na, &used);
  kg_normalise_text(o, in->b, in->blen, &nb, &used);
  kg_note_replacements(o, used, &out->body);
  char *charset = kg_charset(in->ctype);
  kg_htmldiff_opts ho = {.ignore = xp, .nignore = nx, .a_label = in->a_label,
                         .b_label = in->b_label, .max_output = KG_MAX_DIFF_BYTES,
                         .encoding = charset};
  if (kg_htmldiff(na.data ? na.data : "", na.len, nb.data ? nb.data : "", nb.len,
                  &ho, &out->body, &out->diff) == 0) {
    out->kind = &kg_differ_html;
  } else {
    out->kind = &kg_differ_text;
    kg_compare_text(in, out);
  }
  free(charset);
  free(xp);
  kg_buf_free(&na);
  kg_buf_free(&nb);
}

static void kg_compare_binary(const kg_differ_input *in, kg_pair_result *out) {
  char ma[96], sb[96];
  snprintf(ma, sizeof(ma), "%zu bytes, crc32 %08lx", in->alen,
           crc32(0L, (const Bytef *)in->a, (uInt)in->alen));
  snprintf(sb, sizeof(sb), "%zu bytes, crc32 %08lx", in->blen,
           crc32(0L, (const Bytef *)in->b, (uInt)in->blen));
  kg_diffs_add(&out->body, "body", "body", ma, sb);
  kg_buf_appendf(&out->diff, "Binary bodies differ: %s vs %s\n", ma, sb);
}

static bool kg_handles_json(const char *t) {
  size_t n = strlen(t);
  return strcmp(t, "application/json") == 0 || (n > 5 && strcmp(t + n - 5, "+json") == 0);
}

static bool kg_handles_html(const char *t) {
  return strcmp(t, "text/html") == 0 || strcmp(t, "application/xhtml+xml") == 0;
}

static bool kg_handles_text(const char *t) {
  size_t n = strlen(t);
  return strncmp(t, "text/", 5) == 0 || strcmp(t, "application/javascript") == 0 ||
         strcmp(t, "application/xml") == 0 || (n > 4 && strcmp(t + n - 4, "+xml") == 0) ||
         strcmp(t, "application/x-www-form-urlencoded") == 0;
}

static bool kg_handles_any(const char *t) { return t != NULL; }

const kg_differ kg_differ_json = {"json", kg_handles_json, kg_compare_json, kg_finish_json};
const kg_differ kg_differ_html = {"html", kg_handles_html, kg_compare_html, NULL};
const kg_differ kg_differ_text = {"text", kg_handles_text, kg_compare_text, NULL};
const kg_differ kg_differ_binary = {"binary", kg_handles_any, kg_compare_binary, NULL};

/* Undoes Content-Encoding into out; on failure records why. A body cut at
 * the capture limit cannot be decoded and is compared as captured. */
static bool kg_decoded(const kg_resp_view *v, const kg_compare_opts *o,
                       kg_buf *out, const char **error) {
  const char *ce = kg_header_value(v->hdrs, "content-encoding");
  if (ce == NULL || v->truncated || v->body_len == 0) return false;
  const char *why = NULL;
  if (kg_decode_body(ce, v->body, v->body_len, o->max_body_bytes, out,
                     &why) != 0) {
    *error = why;
    return false;
  }
  return true;
}

size_t kg_compare_rules(const kg_rule *rules, size_t nrules, const char *endpoint,
                        const kg_rule **out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < nrules && n < max; i++)
    if (kg_rule_matches(&rules[i], endpoint)) out[n++] = &rules[i];
  return n;
}

void kg_compare_pair(const kg_resp_view *a, const kg_resp_view *b,
                     const kg_compare_opts *o, kg_pair_result *out) {
  memset(out, 0, sizeof(*out));
  out->body.max = out->headers.max = o->max_differences;
  /* The kind is the master's media type even when a side failed: a JSON
   * endpoint with a refused shadow is still a JSON endpoint. */
  const char *ctype = a->error ? NULL : kg_header_value(a->hdrs, "content-type");
  if (ctype == NULL && !b->error) ctype = kg_header_value(b->hdrs, "content-type");
  out->kind = kg_differ_for(ctype);
  if (a->error || b->error) {
    out->error = b->error ? b->error : "master failed";
    return;
  }
  out->status_differs = a->status != b->status;
  out->body.noisy = out->headers.noisy = o->noisy; /* cleared before returning */

  /* Bodies byte-identical as received, in the same Content-Encoding, are
   * equal whatever their decoding would give: no need to decode them, and
   * no "over the capture limit" error for two identical gzip bodies. */
  const char *cea = kg_header_value(a->hdrs, "content-encoding");
  const char *ceb = kg_header_value(b->hdrs, "content-encoding");
  bool same_raw = !a->truncated && !b->truncated && a->body_len == b->body_len &&
                  (a->body_len == 0 || memcmp(a->body, b->body, a->body_len) == 0) &&
                  ((cea == NULL && ceb == NULL) ||
                   (cea && ceb && strcasecmp(cea, ceb) == 0));

  kg_buf da = KG_BUF_INIT, db = KG_BUF_INIT;
  const char *ea = NULL, *eb = NULL;
  const char *pa = a->body, *pb = b->body;
  size_t la = a->body_len, lb = b->body_len;
  if (!same_raw && kg_decoded(a, o, &da, &ea)) pa = da.data ? da.data : "", la = da.len;
  if (!same_raw && kg_decoded(b, o, &db, &eb)) pb = db.data ? db.data : "", lb = db.len;
  if (ctype == NULL && (kg_looks_binary(pa, la) || kg_looks_binary(pb, lb)))
    out->kind = &kg_differ_binary;

  bool same = la == lb && (la == 0 || memcmp(pa, pb, la) == 0);
  const kg_differ_input in = {.a = pa, .alen = la, .b = pb, .blen = lb, .ctype = ctype,
                              .a_label = a->backend, .b_label = b->backend, .o = o};
  kg_compare_headers(a, b, o, !(ea || eb) && same, out);
  if (ea || eb) {
    out->error = ea ? ea : eb; /* cannot compare what cannot be decoded */
  } else if (!same) {
    out->kind->compare(&in, out);
  }
  kg_buf_free(&da);
  kg_buf_free(&db);

  /* JSON's readable listing is made after noise so that it agrees with
   * the differences; a diff whose every difference was noise is dropped. */
  if (out->kind->finish && !same && !(ea || eb)) out->kind->finish(&in, out);
  else if (out->body.n == 0) kg_buf_reset(&out->diff);
  out->equal = !out->error && !out->status_differs && out->body.total == 0 &&
               out->headers.total == 0;
  /* The view is the caller's and outlives only this call. */
  out->body.noisy = out->headers.noisy = NULL;
}

void kg_pair_result_free(kg_pair_result *r) {
  kg_diffs_free(&r->body);
  kg_diffs_free(&r->headers);
  kg_buf_free(&r->diff);
}

size_t kg_pair_result_patterns(const kg_pair_result *r, const char ***out) {
  size_t n = r->body.n + r->headers.n;
  const char **v = kg_calloc(n + 1, sizeof(char *));
  size_t k = 0;
  for (size_t i = 0; i < r->headers.n; i++) v[k++] = r->headers.v[i].pattern;
  for (size_t i = 0; i < r->body.n; i++) v[k++] = r->body.v[i].pattern;
  *out = v;
  return k;
}
