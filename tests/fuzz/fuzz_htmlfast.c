/* fuzz_htmlfast: the lockstep HTML fast path (src/compare/htmlfast.c)
 * against the tree differ (kg_htmldiff_tree) on the same pages: a
 * differential target.
 *
 * Input: option lines ("x //p[@class='t']/text()" an ignore expression,
 * "c utf-8" the Content-Type charset), then either two bodies, or a
 * template and two lists of values: "@0".."@9" in the template are
 * replaced by line 0..9 of the master's list in a and of the shadow's in
 * b, so that most inputs are two renders of one page, the case the fast
 * path is for. Parts are split at FZ_SEP.
 *
 * What must hold: when the fast path decides, the tree differ also
 * accepts both pages, finds no difference, writes no diff text, and lists
 * the same suppressed expressions in the same order; when it gives up, its
 * output is untouched; kg_htmldiff (fast path, then tree) always gives the
 * tree's answer. */
#include "compare/htmlfast.h"
#include "common/buf.h"
#include "fuzz_util.h"

#define FZ_MAX_XPATHS 6
#define FZ_MAX_VALUES 10

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  kg_htmldiff_global_init();
  return 0;
}

typedef struct fz_opts {
  char *ignore[FZ_MAX_XPATHS];
  size_t nignore;
  char *charset;
} fz_opts;

static void fz_read_opts(fz_in part, fz_opts *fo) {
  char *text = fz_strdup(part);
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (strncmp(line, "x ", 2) == 0 && fo->nignore < FZ_MAX_XPATHS)
      fo->ignore[fo->nignore++] = strdup(line + 2);
    else if (strncmp(line, "c ", 2) == 0 && fo->charset == NULL)
      fo->charset = strdup(line + 2);
  }
  free(text);
}

/* The template with "@k" replaced by line k of values. */
static void fz_render(fz_in tpl, fz_in values, kg_buf *out) {
  fz_in line[FZ_MAX_VALUES] = {{0}};
  for (size_t k = 0; k < FZ_MAX_VALUES && values.n > 0; k++) {
    const uint8_t *nl = memchr(values.p, '\n', values.n);
    size_t len = nl ? (size_t)(nl - values.p) : values.n;
    line[k] = (fz_in){values.p, len};
    values.p += len + (nl != NULL);
    values.n -= len + (nl != NULL);
  }
  for (size_t i = 0; i < tpl.n; i++) {
    if (tpl.p[i] == '@' && i + 1 < tpl.n && tpl.p[i + 1] >= '0' && tpl.p[i + 1] <= '9') {
      fz_in v = line[tpl.p[i + 1] - '0'];
      kg_buf_append(out, (const char *)v.p, v.n);
      i++;
    } else {
      kg_buf_append(out, (const char *)tpl.p + i, 1);
    }
  }
}

static void fz_check_same(const kg_diffs *x, const kg_diffs *y) {
  FZ_CHECK(x->n == y->n && x->total == y->total);
  for (size_t i = 0; i < x->n; i++) {
    FZ_CHECK(strcmp(x->v[i].where, y->v[i].where) == 0);
    FZ_CHECK(strcmp(x->v[i].pattern, y->v[i].pattern) == 0);
  }
  FZ_CHECK(x->nsuppressed == y->nsuppressed);
  for (size_t i = 0; i < x->nsuppressed; i++)
    FZ_CHECK(strcmp(x->suppressed[i], y->suppressed[i]) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  fz_opts fo = {0};
  fz_read_opts(fz_part(&in), &fo);
  size_t seps = 0; /* parts left: 2 bodies, or 3 (template, values) */
  for (fz_in c = in; c.n > 0; seps++) (void)fz_part(&c);
  fz_in p1 = fz_part(&in), p2 = fz_part(&in), p3 = in;
  kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT;
  if (seps >= 3) {
    fz_render(p1, p2, &a);
    fz_render(p1, p3, &b);
  } else {
    kg_buf_append(&a, (const char *)p1.p, p1.n);
    kg_buf_append(&b, (const char *)p2.p, p2.n);
  }
  kg_buf_reserve(&a, 1);
  kg_buf_reserve(&b, 1);
  kg_htmldiff_opts o = {.ignore = (const char *const *)fo.ignore, .nignore = fo.nignore,
                        .a_label = "a", .b_label = "b", .encoding = fo.charset};

  kg_diffs tree = {0};
  kg_buf tree_unified = KG_BUF_INIT;
  int rc_tree = kg_htmldiff_tree(a.data, a.len, b.data, b.len, &o, &tree, &tree_unified);

  kg_diffs fast = {0};
  int rc = kg_htmlfast(a.data, a.len, b.data, b.len, &o, &fast);
  FZ_CHECK(rc == 0 || rc == KG_HTMLFAST_FALLBACK);
  if (rc == 0) {
    if (rc_tree != 0 || tree.total != 0 || tree_unified.len != 0) {
      fprintf(stderr, "fast path decided, tree rc %d, %zu differences:\n", rc_tree, tree.total);
      for (size_t i = 0; i < tree.n; i++)
        fprintf(stderr, "  %s: %s -> %s\n", tree.v[i].where,
                tree.v[i].master ? tree.v[i].master : "(none)",
                tree.v[i].shadow ? tree.v[i].shadow : "(none)");
    }
    FZ_CHECK(rc_tree == 0);
    FZ_CHECK(tree.total == 0);
    FZ_CHECK(tree_unified.len == 0);
    fz_check_same(&fast, &tree);
  } else {
    FZ_CHECK(fast.n == 0 && fast.total == 0 && fast.nsuppressed == 0);
  }
  kg_diffs_free(&fast);

  kg_diffs both = {0};
  kg_buf both_unified = KG_BUF_INIT;
  FZ_CHECK(kg_htmldiff(a.data, a.len, b.data, b.len, &o, &both, &both_unified) == rc_tree);
  fz_check_same(&both, &tree);
  FZ_CHECK(both_unified.len == tree_unified.len);
  kg_diffs_free(&both);
  kg_buf_free(&both_unified);

  kg_diffs_free(&tree);
  kg_buf_free(&tree_unified);
  kg_buf_free(&a);
  kg_buf_free(&b);
  for (size_t i = 0; i < fo.nignore; i++) free(fo.ignore[i]);
  free(fo.charset);
  return 0;
}
