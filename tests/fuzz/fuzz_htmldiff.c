/* fuzz_htmldiff: two HTML bodies and ignore XPaths -> kg_htmldiff
 * (src/compare/htmldiff.c).
 *
 * Input: three parts split at FZ_SEP: option lines ("x //div[@id='ads']"
 * an ignore expression, "c iso-8859-1" the Content-Type charset, "m" a cap
 * on the unified diff; anything else is only validated as an XPath), then
 * body a, then body b.
 *
 * What must hold: a body that is not HTML leaves the outputs untouched;
 * every reported location is an XPath a user can paste into ignore_xpath
 * (the doctype, which XPath cannot select, aside), and so is its pattern;
 * a page compared with itself has no difference and no diff text. */
#include "compare/htmldiff.h"
#include "fuzz_util.h"

#define FZ_MAX_XPATHS 6

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  kg_htmldiff_global_init();
  return 0;
}

typedef struct fz_opts {
  char *ignore[FZ_MAX_XPATHS];
  size_t nignore;
  char *charset;
  bool capped;
} fz_opts;

static void fz_read_opts(fz_in part, fz_opts *fo) {
  char *text = fz_strdup(part);
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char err[128];
    const char *arg = strlen(line) > 2 ? line + 2 : line;
    memset(err, 'x', sizeof(err));
    if (kg_htmldiff_check_xpath(arg, err, sizeof(err)) != 0)
      FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    if (strncmp(line, "x ", 2) == 0 && fo->nignore < FZ_MAX_XPATHS)
      fo->ignore[fo->nignore++] = strdup(arg);
    else if (strncmp(line, "c ", 2) == 0 && fo->charset == NULL)
      fo->charset = strdup(arg);
    else if (strcmp(line, "m") == 0)
      fo->capped = true;
  }
  free(text);
}

static bool fz_valid_xpath(const char *x) {
  char err[128];
  return kg_htmldiff_check_xpath(x, err, sizeof(err)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  fz_opts fo = {0};
  fz_read_opts(fz_part(&in), &fo);
  fz_in pa = fz_part(&in);
  char *a = fz_dup(pa), *b = fz_dup(in);

  kg_htmldiff_opts o = {.ignore = (const char *const *)fo.ignore,
                        .nignore = fo.nignore,
                        .a_label = "a",
                        .b_label = "b",
                        .max_output = fo.capped ? 1000 : 0,
                        .encoding = fo.charset};
  kg_diffs d = {0};
  kg_buf unified = KG_BUF_INIT;
  int rc = kg_htmldiff(a, pa.n, b, in.n, &o, &d, &unified);
  FZ_CHECK(rc == 0 || rc == -1 || rc == -2);
  if (rc != 0) {
    FZ_CHECK(d.n == 0 && d.total == 0 && d.nsuppressed == 0 && unified.len == 0);
  } else {
    FZ_CHECK(d.n <= d.total);
    for (size_t k = 0; k < d.n; k++) {
      const kg_difference *x = &d.v[k];
      FZ_CHECK(x->where && x->pattern);
      FZ_CHECK(x->master || x->shadow);
      if (strcmp(x->where, "/!DOCTYPE") == 0) continue;
      if (!fz_valid_xpath(x->where) || !fz_valid_xpath(x->pattern)) {
        fprintf(stderr, "unusable location: %s / %s\n", x->where, x->pattern);
        FZ_CHECK(!"locations are valid XPath");
      }
    }
    if (pa.n == in.n && memcmp(a, b, pa.n) == 0) FZ_CHECK(d.total == 0 && unified.len == 0);

    kg_diffs self = {0};
    kg_buf self_unified = KG_BUF_INIT;
    FZ_CHECK(kg_htmldiff(a, pa.n, a, pa.n, &o, &self, &self_unified) == 0);
    FZ_CHECK(self.total == 0 && self_unified.len == 0);
    kg_diffs_free(&self);
    kg_buf_free(&self_unified);
  }
  kg_diffs_free(&d);
  kg_buf_free(&unified);
  for (size_t i = 0; i < fo.nignore; i++) free(fo.ignore[i]);
  free(fo.charset);
  free(a);
  free(b);
  return 0;
}
