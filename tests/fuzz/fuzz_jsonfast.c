/* fuzz_jsonfast: the lockstep JSON fast path (src/compare/jsonfast.c)
 * against the tree differ (kg_jsondiff_tree) on the same inputs: a
 * differential target.
 *
 * Input: three parts split at FZ_SEP: pattern lines ("i $.meta.ts" an
 * ignore pattern, "u $.tags" an unordered one, "n $.rows[0].ts" a
 * location of learned noise, anything else ignored), then body a, then
 * body b.
 *
 * What must hold, for the patterns as given and again with every location
 * the tree differ reported taken as learned noise (which is how a noisy
 * endpoint looks, and lets the fast path go on where it otherwise gives
 * up): when the fast path decides, the tree differ accepts both bodies and
 * produces exactly the same differences (where, pattern, values, in
 * order), the same total and the same suppressed list; when it gives up,
 * its output is untouched; kg_jsondiff (fast path, then tree) always gives
 * the tree's answer; a body compared with itself has no difference. */
#include "compare/jsonfast.h"
#include "compare/jsondiff.h"
#include "compare/noise.h"
#include "fuzz_util.h"

#define FZ_MAX_PATTERNS 8

typedef struct fz_patterns {
  char *ignore[FZ_MAX_PATTERNS];
  size_t nignore;
  char *unordered[FZ_MAX_PATTERNS];
  size_t nunordered;
  char *noisy[FZ_MAX_PATTERNS];
  size_t nnoisy;
} fz_patterns;

/* One pattern line: "i ", "u " or "n " and the pattern. */
static void fz_take(const uint8_t *line, size_t len, fz_patterns *ps) {
  if (len < 3 || line[1] != ' ') return;
  char **list = line[0] == 'i' ? ps->ignore : line[0] == 'u' ? ps->unordered
              : line[0] == 'n' ? ps->noisy : NULL;
  size_t *n = line[0] == 'i' ? &ps->nignore : line[0] == 'u' ? &ps->nunordered
            : &ps->nnoisy;
  if (list == NULL || *n == FZ_MAX_PATTERNS) return;
  list[(*n)++] = strndup((const char *)line + 2, len - 2);
}

static int fz_strp_cmp(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

static void fz_read_patterns(fz_in part, fz_patterns *ps) {
  while (part.n > 0) {
    const uint8_t *nl = memchr(part.p, '\n', part.n);
    size_t len = nl ? (size_t)(nl - part.p) : part.n;
    fz_take(part.p, len, ps);
    part.p += len + (nl != NULL);
    part.n -= len + (nl != NULL);
  }
  qsort(ps->noisy, ps->nnoisy, sizeof(char *), fz_strp_cmp); /* as a view is */
}

static bool fz_same_str(const char *x, const char *y) {
  return (x == NULL && y == NULL) || (x && y && strcmp(x, y) == 0);
}

static void fz_check_same(const kg_diffs *x, const kg_diffs *y) {
  FZ_CHECK(x->n == y->n);
  FZ_CHECK(x->total == y->total);
  for (size_t i = 0; i < x->n; i++) {
    FZ_CHECK(fz_same_str(x->v[i].where, y->v[i].where));
    FZ_CHECK(fz_same_str(x->v[i].pattern, y->v[i].pattern));
    FZ_CHECK(fz_same_str(x->v[i].master, y->v[i].master));
    FZ_CHECK(fz_same_str(x->v[i].shadow, y->v[i].shadow));
  }
  FZ_CHECK(x->nsuppressed == y->nsuppressed);
  for (size_t i = 0; i < x->nsuppressed; i++)
    FZ_CHECK(strcmp(x->suppressed[i], y->suppressed[i]) == 0);
}

/* Runs the three entry points on one pair and checks they agree. Returns
 * whether the fast path decided; *tree gets the tree differ's output. */
static bool fz_compare(const char *a, size_t alen, const char *b, size_t blen,
                       const kg_jsondiff_opts *o, int *rc_tree, kg_diffs *tree) {
  memset(tree, 0, sizeof(*tree));
  *rc_tree = kg_jsondiff_tree(a, alen, b, blen, o, tree);
  FZ_CHECK(*rc_tree == 0 || *rc_tree == -1 || *rc_tree == -2);

  kg_diffs fast = {0};
  int rc = kg_jsonfast(a, alen, b, blen, o, &fast);
  FZ_CHECK(rc == 0 || rc == KG_JSONFAST_FALLBACK);
  if (rc == 0) {
    FZ_CHECK(*rc_tree == 0);
    fz_check_same(&fast, tree);
  } else {
    FZ_CHECK(fast.n == 0 && fast.total == 0 && fast.nsuppressed == 0);
  }
  kg_diffs_free(&fast);

  kg_diffs both = {0};
  FZ_CHECK(kg_jsondiff(a, alen, b, blen, o, &both) == *rc_tree);
  fz_check_same(&both, tree);
  kg_diffs_free(&both);
  return rc == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in rest = {data, size}, pats = fz_part(&rest), pa = fz_part(&rest);
  fz_patterns ps = {0};
  fz_read_patterns(pats, &ps);
  char *a = fz_dup(pa), *b = fz_dup(rest);

  kg_noise_view noisy = {ps.noisy, ps.nnoisy};
  kg_jsondiff_opts o = {(const char *const *)ps.ignore, ps.nignore,
                        (const char *const *)ps.unordered, ps.nunordered, &noisy};
  kg_diffs tree;
  int rc_tree;
  fz_compare(a, pa.n, b, rest.n, &o, &rc_tree, &tree);

  /* Every location the tree reported, as learned noise. */
  if (rc_tree == 0 && tree.n > 0) {
    kg_noise_view all = {calloc(tree.n, sizeof(char *)), tree.n};
    FZ_CHECK(all.patterns != NULL);
    for (size_t i = 0; i < tree.n; i++) all.patterns[i] = tree.v[i].pattern;
    qsort(all.patterns, all.n, sizeof(char *), fz_strp_cmp);
    kg_jsondiff_opts o2 = o;
    o2.noisy = &all;
    kg_diffs again;
    int rc2;
    fz_compare(a, pa.n, b, rest.n, &o2, &rc2, &again);
    FZ_CHECK(rc2 == 0);
    kg_diffs_free(&again);
    free(all.patterns);
  }
  kg_diffs_free(&tree);

  /* A body against itself. */
  kg_diffs self;
  int rc_self;
  fz_compare(a, pa.n, a, pa.n, &o, &rc_self, &self);
  FZ_CHECK(rc_self != -2);
  FZ_CHECK(self.total == 0);
  kg_diffs_free(&self);

  for (size_t i = 0; i < ps.nignore; i++) free(ps.ignore[i]);
  for (size_t i = 0; i < ps.nunordered; i++) free(ps.unordered[i]);
  for (size_t i = 0; i < ps.nnoisy; i++) free(ps.noisy[i]);
  free(a);
  free(b);
  return 0;
}
