/* fuzz_textnorm: regex replacements applied to response text
 * (src/compare/textnorm.c).
 *
 * Input: byte 0 picks a normaliser: bits 0-1 one of the fixed rule sets
 * built at start-up (the kind of rules configs hold, one that matches the
 * empty string everywhere, one that backtracks catastrophically, and no
 * rule at all); with bit 2 set, the first two lines of the rest are
 * compiled as one more rule (pattern, replacement), as the config loader
 * would, and applied after the fixed set. The rest is the text.
 *
 * What must hold: output is appended after what the buffer held and stays
 * terminated; a rule that hits a match limit fails the call (-1) but never
 * stalls it (libFuzzer's -timeout) or loses the other rules' work; with no
 * rule the text comes back unchanged; a rule that does not compile names
 * itself in the message. */
#include "compare/textnorm.h"
#include "fuzz_util.h"

static kg_textnorm *fz_sets[4];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  static const char *const typical_p[] = {
      "csrf_token\" value=\"[^\"]+\"",
      "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z?",
      "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
      "Generated in (?<ms>\\d+) ms",
      "(?i)session=[a-z0-9]+",
      "\\$(\\d+)",
      "(?m)^[ \\t]+|[ \\t]+$",
  };
  static const char *const typical_r[] = {
      "csrf_token\" value=\"X\"", "<ts>", "<uuid>", "Generated in ${ms}ms",
      "session=S", "$$N", "",
  };
  static const char *const empty_p[] = {"x*", "(?=a)"};
  static const char *const empty_r[] = {"<$0>", "^"};
  static const char *const slow_p[] = {"(a+)+$", "(\\w+\\s?)+!", "(?:a|ab|abc)*d"};
  static const char *const slow_r[] = {"!", "?", "."};
  char err[256];
  fz_sets[0] = kg_textnorm_new(typical_p, typical_r, 7, err, sizeof(err));
  fz_sets[1] = kg_textnorm_new(empty_p, empty_r, 2, err, sizeof(err));
  fz_sets[2] = kg_textnorm_new(slow_p, slow_r, 3, err, sizeof(err));
  fz_sets[3] = kg_textnorm_new(NULL, NULL, 0, err, sizeof(err));
  for (int i = 0; i < 4; i++)
    if (fz_sets[i] == NULL) {
      fprintf(stderr, "rule set %d: %s\n", i, err);
      abort();
    }
  return 0;
}

/* Applies t to text, checking what holds for every call. */
static void fz_apply(const kg_textnorm *t, const char *text, size_t n, kg_buf *out,
                     size_t *replaced) {
  kg_buf_reset(out);
  kg_buf_append(out, "PRE", 3);
  int rc = kg_textnorm_apply(t, text, n, out, replaced);
  FZ_CHECK(rc == 0 || rc == -1);
  FZ_CHECK(out->len >= 3 && memcmp(out->data, "PRE", 3) == 0);
  FZ_CHECK(out->data[out->len] == '\0');
}

/* Takes one line off the front of in. */
static char *fz_line(fz_in *in) {
  const uint8_t *nl = memchr(in->p, '\n', in->n);
  size_t len = nl ? (size_t)(nl - in->p) : in->n;
  char *s = fz_strdup((fz_in){in->p, len});
  in->p += nl ? len + 1 : len;
  in->n -= nl ? len + 1 : len;
  return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  uint8_t sel = fz_byte(&in);
  kg_textnorm *extra = NULL;
  if (sel & 4) {
    char *pat = fz_line(&in), *rep = fz_line(&in);
    const char *p[] = {pat}, *r[] = {rep};
    char err[128];
    memset(err, 'x', sizeof(err));
    extra = kg_textnorm_new(p, r, 1, err, sizeof(err));
    if (extra == NULL) {
      FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
      FZ_CHECK(strncmp(err, "pattern 1:", 10) == 0 || strncmp(err, "replacement 1:", 14) == 0);
    }
    free(pat);
    free(rep);
  }
  char *text = fz_dup(in);
  kg_buf out = KG_BUF_INIT;
  size_t replaced = 0;
  const kg_textnorm *t = fz_sets[sel & 3];
  fz_apply(t, text, in.n, &out, &replaced);
  if (t == fz_sets[3]) {
    FZ_CHECK(replaced == 0);
    FZ_CHECK(out.len - 3 == in.n && memcmp(out.data + 3, text, in.n) == 0);
  }
  if (extra != NULL) {
    /* The extra rule runs on the fixed set's output, as rules chain. */
    kg_buf second = KG_BUF_INIT;
    fz_apply(extra, out.data + 3, out.len - 3, &second, &replaced);
    kg_buf_free(&second);
    kg_textnorm_free(extra);
  }
  kg_buf_free(&out);
  free(text);
  return 0;
}
