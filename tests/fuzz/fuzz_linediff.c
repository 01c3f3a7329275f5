/* fuzz_linediff: two texts -> kg_linediff's unified diff (src/compare/linediff.c).
 *
 * Input: byte 0 picks the context (-1..4 lines), byte 1 the output cap;
 * then text a, the separator line FZ_SEP, text b.
 *
 * The oracle is patch(1): with no cap, the diff applied to a must give
 * back b exactly, every context and removed line must be a's line at the
 * position the hunk header says, and the change count must be the number of
 * '+' and '-' lines. With a cap the text must stay within it (plus the
 * truncation marker). Equal inputs give 0 and no output. */
#include "fuzz_util.h"
#include "compare/linediff.h"

#define FZ_NO_NEWLINE "\\ No newline at end of file\n"
#define FZ_TRUNCATED "... diff truncated\n"

/* One line of a text: [p, p+len), '\n' included when it has one. */
typedef struct fz_line {
  const char *p;
  size_t len;
} fz_line;

static size_t fz_split(const char *s, size_t n, fz_line **out) {
  size_t count = 0;
  for (size_t i = 0; i < n; i++) count += s[i] == '\n';
  fz_line *v = malloc((count + 2) * sizeof(*v));
  FZ_CHECK(v != NULL);
  size_t k = 0, start = 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '\n') {
      v[k++] = (fz_line){s + start, i + 1 - start};
      start = i + 1;
    }
  if (start < n) v[k++] = (fz_line){s + start, n - start};
  *out = v;
  return k;
}

/* Reads "l" or "l,s" at *p. */
static void fz_range(const char **p, size_t *l, size_t *s) {
  char *end;
  *l = strtoul(*p, &end, 10);
  *s = 1;
  if (*end == ',') *s = strtoul(end + 1, &end, 10);
  *p = end;
}

/* One diff line at *p: its prefix and content, with the "\ No newline"
 * marker folded back in (the content then lacks its '\n'). */
static char fz_diff_line(const char **p, const char *end, fz_line *content) {
  const char *s = *p;
  FZ_CHECK(s < end);
  char prefix = *s++;
  const char *nl = memchr(s, '\n', (size_t)(end - s));
  FZ_CHECK(nl != NULL);
  content->p = s;
  content->len = (size_t)(nl + 1 - s);
  s = nl + 1;
  size_t ml = sizeof(FZ_NO_NEWLINE) - 1;
  if ((size_t)(end - s) >= ml && memcmp(s, FZ_NO_NEWLINE, ml) == 0) {
    content->len--;
    s += ml;
  }
  *p = s;
  return prefix;
}

static bool fz_line_eq(fz_line x, fz_line y) {
  return x.len == y.len && memcmp(x.p, y.p, x.len) == 0;
}

/* Applies the unified diff d to a and checks the result is b. Returns the
 * number of '+' and '-' lines. */
static size_t fz_patch(const char *d, size_t dlen, const fz_line *a, size_t na,
                       const char *b, size_t blen) {
  const char *p = d, *end = d + dlen;
  const char *hdr = "--- a\n+++ b\n";
  FZ_CHECK(dlen >= strlen(hdr) && memcmp(p, hdr, strlen(hdr)) == 0);
  p += strlen(hdr);
  char *res = malloc(blen + 1);
  FZ_CHECK(res != NULL);
  size_t rlen = 0, ai = 0, changes = 0;
#define FZ_EMIT(l)                                  \
  do {                                              \
    FZ_CHECK(rlen + (l).len <= blen);               \
    memcpy(res + rlen, (l).p, (l).len);             \
    rlen += (l).len;                                \
  } while (0)
  while (p < end) {
    FZ_CHECK(end - p > 4 && memcmp(p, "@@ -", 4) == 0);
    p += 4;
    size_t al, as, bl, bs;
    fz_range(&p, &al, &as);
    FZ_CHECK(*p == ' ' && p[1] == '+');
    p += 2;
    fz_range(&p, &bl, &bs);
    FZ_CHECK(strncmp(p, " @@\n", 4) == 0);
    p += 4;
    size_t alo = as == 0 ? al : al - 1; /* an empty range names the line before */
    FZ_CHECK(alo >= ai && alo + as <= na);
    for (; ai < alo; ai++) FZ_EMIT(a[ai]);
    FZ_CHECK(as > 0 || bs > 0);
    size_t seen_a = 0, seen_b = 0;
    while (p < end && *p != '@') {
      fz_line l;
      char prefix = fz_diff_line(&p, end, &l);
      FZ_CHECK(prefix == ' ' || prefix == '-' || prefix == '+');
      if (prefix != '+') {
        FZ_CHECK(ai < na && fz_line_eq(l, a[ai]));
        ai++;
        seen_a++;
      }
      if (prefix != '-') {
        FZ_EMIT(l);
        seen_b++;
      }
      changes += prefix != ' ';
    }
    FZ_CHECK(seen_a == as && seen_b == bs);
  }
  for (; ai < na; ai++) FZ_EMIT(a[ai]);
#undef FZ_EMIT
  FZ_CHECK(rlen == blen && memcmp(res, b, blen) == 0);
  free(res);
  return changes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  int context = fz_byte(&in) % 6 - 1;
  static const size_t caps[] = {0, 0, 100, 1000};
  size_t cap = caps[fz_byte(&in) & 3];
  fz_in pa = fz_part(&in);
  char *a = fz_dup(pa), *b = fz_dup(in);
  size_t alen = pa.n, blen = in.n;

  kg_linediff_opts o = {.a_label = "a", .b_label = "b", .context = context,
                        .max_output = cap};
  kg_buf out = KG_BUF_INIT;
  kg_buf_append(&out, "x", 1); /* output is appended, never overwritten */
  size_t changed = kg_linediff(a, alen, b, blen, &o, &out);
  FZ_CHECK(out.data[0] == 'x');
  bool equal = alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
  FZ_CHECK((changed == 0) == equal);
  if (equal) FZ_CHECK(out.len == 1);

  if (!equal && cap == 0) {
    fz_line *la;
    size_t na = fz_split(a, alen, &la);
    FZ_CHECK(fz_patch(out.data + 1, out.len - 1, la, na, b, blen) == changed);
    free(la);
  } else if (!equal) {
    size_t body = out.len - 1;
    FZ_CHECK(body <= cap + 1 + sizeof(FZ_TRUNCATED) - 1);
    if (body > cap) {
      size_t tl = sizeof(FZ_TRUNCATED) - 1;
      FZ_CHECK(memcmp(out.data + out.len - tl, FZ_TRUNCATED, tl) == 0);
    }
  }
  kg_buf_free(&out);
  free(a);
  free(b);
  return 0;
}
