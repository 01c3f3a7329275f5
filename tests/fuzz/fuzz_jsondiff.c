/* fuzz_jsondiff: two JSON bodies and noise patterns -> kg_jsondiff
 * (src/compare/jsondiff.c).
 *
 * Input: three parts split at FZ_SEP: pattern lines ("i $.meta.ts" an
 * ignore pattern, "u $.tags" an unordered one, anything else is only
 * validated), then body a, then body b.
 *
 * What must hold: a failed parse leaves the output untouched; every
 * reported path is one a user can paste into the config (it passes
 * kg_jsonpath_check) and is matched by its own pattern; no reported
 * difference lies under an ignore pattern, not even after that pattern is
 * added to the ignores; a body compared with itself has no difference. */
#include "compare/jsondiff.h"
#include "fuzz_util.h"

#define FZ_MAX_PATTERNS 8

typedef struct fz_patterns {
  char *ignore[FZ_MAX_PATTERNS + 1]; /* one spare slot for the rerun */
  size_t nignore;
  char *unordered[FZ_MAX_PATTERNS];
  size_t nunordered;
} fz_patterns;

static void fz_read_patterns(fz_in part, fz_patterns *ps) {
  char *text = fz_strdup(part);
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char err[128];
    const char *pat = strlen(line) > 2 ? line + 2 : line;
    /* err is always terminated, whatever the verdict. */
    memset(err, 'x', sizeof(err));
    if (kg_jsonpath_check(pat, err, sizeof(err)) != 0)
      FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    if (strncmp(line, "i ", 2) == 0 && ps->nignore < FZ_MAX_PATTERNS)
      ps->ignore[ps->nignore++] = strdup(pat);
    else if (strncmp(line, "u ", 2) == 0 && ps->nunordered < FZ_MAX_PATTERNS)
      ps->unordered[ps->nunordered++] = strdup(pat);
  }
  free(text);
}

static bool fz_valid(const char *pattern) {
  char err[128];
  return kg_jsonpath_check(pattern, err, sizeof(err)) == 0;
}

/* No difference in d lies under a (valid) ignore pattern. */
static void fz_check_not_ignored(const kg_diffs *d, char *const *ignore, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (!fz_valid(ignore[i])) continue;
    for (size_t k = 0; k < d->n; k++) FZ_CHECK(!kg_jsonpath_match(ignore[i], d->v[k].where));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  fz_patterns ps = {0};
  fz_read_patterns(fz_part(&in), &ps);
  fz_in pa = fz_part(&in);
  char *a = fz_dup(pa), *b = fz_dup(in);

  kg_jsondiff_opts o = {(const char *const *)ps.ignore, ps.nignore,
                        (const char *const *)ps.unordered, ps.nunordered, NULL};
  kg_diffs d = {0};
  int rc = kg_jsondiff(a, pa.n, b, in.n, &o, &d);
  FZ_CHECK(rc == 0 || rc == -1 || rc == -2);
  if (rc != 0) {
    FZ_CHECK(d.n == 0 && d.total == 0 && d.nsuppressed == 0);
  } else {
    FZ_CHECK(d.n <= d.total && d.n <= 100);
    for (size_t k = 0; k < d.n; k++) {
      const kg_difference *x = &d.v[k];
      FZ_CHECK(x->where && x->pattern);
      FZ_CHECK(x->master || x->shadow);
      FZ_CHECK(fz_valid(x->where) && fz_valid(x->pattern));
      FZ_CHECK(kg_jsonpath_match(x->where, x->where));
      FZ_CHECK(kg_jsonpath_match(x->pattern, x->where));
    }
    fz_check_not_ignored(&d, ps.ignore, ps.nignore);

    /* Ignoring the first difference's pattern hides everything under it. */
    if (d.n > 0) {
      ps.ignore[ps.nignore] = strdup(d.v[0].pattern);
      kg_jsondiff_opts o2 = o;
      o2.nignore = ps.nignore + 1;
      kg_diffs d2 = {0};
      FZ_CHECK(kg_jsondiff(a, pa.n, b, in.n, &o2, &d2) == 0);
      fz_check_not_ignored(&d2, ps.ignore, ps.nignore + 1);
      FZ_CHECK(d2.nsuppressed > 0);
      kg_diffs_free(&d2);
      free(ps.ignore[ps.nignore]);
    }

    /* A document equals itself, whatever the patterns. */
    kg_diffs self = {0};
    FZ_CHECK(kg_jsondiff(a, pa.n, a, pa.n, &o, &self) == 0);
    FZ_CHECK(self.total == 0);
    kg_diffs_free(&self);
  }
  kg_diffs_free(&d);
  for (size_t i = 0; i < ps.nignore; i++) free(ps.ignore[i]);
  for (size_t i = 0; i < ps.nunordered; i++) free(ps.unordered[i]);
  free(a);
  free(b);
  return 0;
}
