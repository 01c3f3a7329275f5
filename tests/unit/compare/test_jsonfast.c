/* Unit tests: the lockstep JSON fast path, always against the tree
 * differ it stands in for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "compare/jsondiff.h"
#include "compare/jsonfast.h"
#include "compare/noise.h"

/* --- helpers ------------------------------------------------------------ */

static bool same_str(const char *x, const char *y) {
  return (x == NULL && y == NULL) || (x && y && strcmp(x, y) == 0);
}

static void assert_same_diffs(const kg_diffs *x, const kg_diffs *y) {
  assert_int_equal(x->n, y->n);
  assert_int_equal(x->total, y->total);
  for (size_t i = 0; i < x->n; i++) {
    assert_true(same_str(x->v[i].where, y->v[i].where));
    assert_true(same_str(x->v[i].pattern, y->v[i].pattern));
    assert_true(same_str(x->v[i].master, y->v[i].master));
    assert_true(same_str(x->v[i].shadow, y->v[i].shadow));
  }
  assert_int_equal(x->nsuppressed, y->nsuppressed);
  for (size_t i = 0; i < x->nsuppressed; i++)
    assert_string_equal(x->suppressed[i], y->suppressed[i]);
}

/* Runs the fast path, the tree differ and kg_jsondiff on (a, b); checks
 * that a decision of the fast path is the tree's and that kg_jsondiff
 * always is. Returns the fast path's answer; *d gets kg_jsondiff's output
 * (free with kg_diffs_free) and *rc its return. */
static int check(const char *a, const char *b, const kg_jsondiff_opts *o, kg_diffs *d,
                 int *rc) {
  kg_diffs tree = {0}, fast = {0};
  int rc_tree = kg_jsondiff_tree(a, strlen(a), b, strlen(b), o, &tree);
  int rc_fast = kg_jsonfast(a, strlen(a), b, strlen(b), o, &fast);
  if (rc_fast == 0) {
    assert_int_equal(rc_tree, 0);
    assert_same_diffs(&fast, &tree);
  } else {
    assert_int_equal(rc_fast, KG_JSONFAST_FALLBACK);
    assert_int_equal(fast.n + fast.total + fast.nsuppressed, 0);
  }
  memset(d, 0, sizeof(*d));
  *rc = kg_jsondiff(a, strlen(a), b, strlen(b), o, d);
  assert_int_equal(*rc, rc_tree);
  assert_same_diffs(d, &tree);
  kg_diffs_free(&tree);
  kg_diffs_free(&fast);
  return rc_fast;
}

/* check() for a case where only counts matter: the fast path's answer,
 * kg_jsondiff's return, its total and its number of suppressed patterns. */
static void expect(const char *a, const char *b, const kg_jsondiff_opts *o, int want_fast,
                   int want_rc, size_t want_total, size_t want_suppressed) {
  kg_diffs d;
  int rc;
  assert_int_equal(check(a, b, o, &d, &rc), want_fast);
  assert_int_equal(rc, want_rc);
  assert_int_equal(d.total, want_total);
  assert_int_equal(d.nsuppressed, want_suppressed);
  kg_diffs_free(&d);
}

/* check() for a case where one difference matters: the fast path's answer,
 * how many differences kg_jsondiff stored, and difference i's location and
 * values (a NULL value is not checked). */
static void expect_diff(const char *a, const char *b, const kg_jsondiff_opts *o, int want_fast,
                        size_t want_n, size_t i, const char *where, const char *master,
                        const char *shadow) {
  kg_diffs d;
  int rc;
  assert_int_equal(check(a, b, o, &d, &rc), want_fast);
  assert_int_equal(rc, 0);
  assert_int_equal(d.n, want_n);
  assert_string_equal(d.v[i].where, where);
  if (master) assert_string_equal(d.v[i].master, master);
  if (shadow) assert_string_equal(d.v[i].shadow, shadow);
  kg_diffs_free(&d);
}

/* --- noise only: decided without trees ---------------------------------- */

static void test_noise_only_equal(void **state) {
  (void)state;
  const char *a = "{\"page\":1,\"items\":[{\"id\":1,\"request_id\":\"r-1\",\"ts\":1712345678},"
                  "{\"id\":2,\"request_id\":\"r-2\",\"ts\":1712345679}],\"next\":null}";
  const char *b = "{\"page\":1,\"items\":[{\"id\":1,\"request_id\":\"q-7\",\"ts\":1712345690},"
                  "{\"id\":2,\"request_id\":\"q-8\",\"ts\":1712345691}],\"next\":null}";
  const char *ign[] = {"$.items[*].request_id", "$..ts"};
  kg_jsondiff_opts o = {ign, 2, NULL, 0, NULL};
  kg_diffs d;
  int rc;
  assert_int_equal(check(a, b, &o, &d, &rc), 0);
  assert_int_equal(rc, 0);
  assert_int_equal(d.total, 0);
  assert_int_equal(d.nsuppressed, 2);
  assert_string_equal(d.suppressed[0], "$.items[*].request_id");
  assert_string_equal(d.suppressed[1], "$..ts");
  kg_diffs_free(&d);
  /* Byte-identical documents: decided too, nothing suppressed. */
  assert_int_equal(check(a, a, &o, &d, &rc), 0);
  assert_int_equal(d.total + d.nsuppressed, 0);
  kg_diffs_free(&d);
}

static void test_ignored_subtree_and_extras(void **state) {
  (void)state;
  const char *ign[] = {"$.meta", "$.a[2]", "$.o.t"};
  kg_jsondiff_opts o = {ign, 3, NULL, 0, NULL};
  /* Differences deep in an ignored node, of type and of length: one
   * suppression, and the rest of the node is not looked at. */
  expect("{\"meta\":{\"a\":[1,2,{\"b\":3}],\"c\":\"d\"},\"x\":1}",
         "{\"meta\":{\"a\":[1,{},{\"b\":4}],\"c\":5,\"f\":1},\"x\":1}", &o, 0, 0, 0, 1);
  /* An element and a member only one side has, both ignored. */
  expect("{\"a\":[1,2,3],\"o\":{\"k\":1,\"t\":2}}", "{\"a\":[1,2],\"o\":{\"k\":1}}", &o, 0, 0, 0,
         2);
  /* One more element is not ignored: the tree differ reports it. */
  expect_diff("{\"a\":[1,2,3,4]}", "{\"a\":[1,2]}", &o, KG_JSONFAST_FALLBACK, 1, 0, "$.a[3]",
              "4", NULL);
}

static void test_learned_noise(void **state) {
  (void)state;
  char *noisy_paths[] = {"$.rows[0].ts", "$.rows[1].ts"};
  kg_noise_view noisy = {noisy_paths, 2};
  kg_jsondiff_opts o = {NULL, 0, NULL, 0, &noisy};
  /* Noisy locations are reported as the tree differ reports them (compare.c
   * takes them out afterwards), without trees. */
  const char *a = "{\"rows\":[{\"ts\":\"a\",\"v\":1},{\"ts\":2,\"v\":2}]}";
  const char *b = "{\"rows\":[{\"ts\":\"x\",\"v\":1},{\"ts\":-0,\"v\":2}]}";
  expect_diff(a, b, &o, 0, 2, 0, "$.rows[0].ts", "\"a\"", "\"x\"");
  expect_diff(a, b, &o, 0, 2, 1, "$.rows[1].ts", "2", "0");
  /* Noise at rows[0] never hides a change at rows[2]. */
  expect_diff("{\"rows\":[{\"ts\":\"a\"},{\"ts\":1},{\"ts\":\"c\"}]}",
              "{\"rows\":[{\"ts\":\"x\"},{\"ts\":1},{\"ts\":\"z\"}]}", &o, KG_JSONFAST_FALLBACK,
              2, 1, "$.rows[2].ts", "\"c\"", "\"z\"");
}

static int strp_cmp(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

/* More noisy locations than a differences list keeps: counted the same way
 * as the tree differ counts them. */
static void test_learned_noise_over_cap(void **state) {
  (void)state;
  enum { N = 150 };
  kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT;
  char *paths[N];
  kg_buf_appends(&a, "[");
  kg_buf_appends(&b, "[");
  for (int i = 0; i < N; i++) {
    kg_buf_appendf(&a, "%s{\"ts\":%d}", i ? "," : "", i);
    kg_buf_appendf(&b, "%s{\"ts\":%d}", i ? "," : "", i + 1000);
    char p[32];
    snprintf(p, sizeof(p), "$[%d].ts", i);
    paths[i] = kg_strdup(p);
  }
  kg_buf_appends(&a, "]");
  kg_buf_appends(&b, "]");
  qsort(paths, N, sizeof(char *), strp_cmp); /* as a view is */
  kg_noise_view noisy = {paths, N};
  kg_jsondiff_opts o = {NULL, 0, NULL, 0, &noisy};
  kg_diffs d;
  int rc;
  assert_int_equal(check(a.data, b.data, &o, &d, &rc), 0);
  assert_int_equal(d.n, 100);
  assert_int_equal(d.total, N);
  kg_diffs_free(&d);
  for (int i = 0; i < N; i++) free(paths[i]);
  kg_buf_free(&a);
  kg_buf_free(&b);
}

/* --- what the fast path leaves to the tree differ ------------------------ */

static void test_real_change_located_as_tree(void **state) {
  (void)state;
  const char *ign[] = {"$..ts"};
  kg_jsondiff_opts o = {ign, 1, NULL, 0, NULL};
  const char *a = "{\"items\":[{\"ts\":1,\"price\":1.5},{\"ts\":2,\"price\":2}]}";
  const char *b = "{\"items\":[{\"ts\":3,\"price\":1.5},{\"ts\":4,\"price\":2.25}]}";
  expect_diff(a, b, &o, KG_JSONFAST_FALLBACK, 1, 0, "$.items[1].price", "2", "2.25");
  expect(a, b, &o, KG_JSONFAST_FALLBACK, 0, 1, 1);
}

static void test_key_order_falls_back(void **state) {
  (void)state;
  expect("{\"a\":1,\"b\":{\"c\":2,\"d\":3}}", "{\"b\":{\"d\":3,\"c\":2},\"a\":1}", NULL,
         KG_JSONFAST_FALLBACK, 0, 0, 0);
}

static void test_numbers(void **state) {
  (void)state;
  /* Equal values in other spellings: decided, equal. */
  expect("[1,-0,0.5,1e2,100]", "[1.0,0,5e-1,100,1E2]", NULL, 0, 0, 0, 0);
  /* 2^53+1 as an integer and as a real differ (exact comparison). */
  expect("[9007199254740993]", "[9007199254740993.0]", NULL, KG_JSONFAST_FALLBACK, 0, 1, 0);
  /* Beyond 18 digits, or a real that overflows: the tree differ's call. */
  expect("[12345678901234567890]", "[12345678901234567890]", NULL, KG_JSONFAST_FALLBACK, 0,
         0, 0);
  expect("[1e999]", "[1]", NULL, KG_JSONFAST_FALLBACK, -1, 0, 0);
}

static void test_unicode_escapes(void **state) {
  (void)state;
  const char *ign[] = {"$.s"};
  kg_jsondiff_opts o = {ign, 1, NULL, 0, NULL};
  kg_diffs d;
  int rc;
  /* Equal after unescaping: equal, decided without trees. */
  expect("{\"s\":\"caf\\u00e9\",\"t\":\"\\/\\u0041\\u20ac\"}",
         "{\"s\":\"caf\xc3\xa9\",\"t\":\"/A\xe2\x82\xac\"}", &o, 0, 0, 0, 0);
  /* Different after unescaping, under an ignore pattern: suppressed. */
  expect("{\"s\":\"a\\tb\"}", "{\"s\":\"a\\nb\"}", &o, 0, 0, 0, 1);
  /* At a learned-noise location: rendered as the tree differ renders it. */
  char *noisy_paths[] = {"$.r", "$.s"}; /* sorted, as a view is */
  kg_noise_view noisy = {noisy_paths, 2};
  kg_jsondiff_opts on = {NULL, 0, NULL, 0, &noisy};
  assert_int_equal(check("{\"s\":\"\\u00e9\\/\\u0001\",\"r\":0.10}", "{\"s\":\"x\",\"r\":1.5e-7}",
                         &on, &d, &rc),
                   0);
  assert_int_equal(d.n, 2);
  assert_string_equal(d.v[0].master, "\"\xc3\xa9/\\u0001\"");
  assert_string_equal(d.v[1].master, "0.1");
  kg_diffs_free(&d);
  /* Escapes the same on both sides are read, not given up on. */
  expect("{\"s\":\"a\\n\\u00e9\\\"\",\"t\":1}", "{\"s\":\"a\\n\\u00e9\\\"\",\"t\":1}", &o, 0, 0,
         0, 0);
  /* Invalid UTF-8 and lone surrogates are not JSON for jansson. */
  expect("[\"\xed\xa0\x80\"]", "[1]", NULL, KG_JSONFAST_FALLBACK, -1, 0, 0);
  expect("[1]", "[\"\\udc00\"]", NULL, KG_JSONFAST_FALLBACK, -2, 0, 0);
}

static void test_duplicate_keys(void **state) {
  (void)state;
  const char *ign[] = {"$.a"};
  kg_jsondiff_opts o = {ign, 1, NULL, 0, NULL};
  /* jansson keeps the last "a": the first ones differing is no difference,
   * not even a suppressed one. */
  expect("{\"a\":1,\"b\":0,\"a\":2}", "{\"a\":3,\"b\":0,\"a\":2}", &o, KG_JSONFAST_FALLBACK, 0,
         0, 0);
  /* A duplicate in an object nothing differed under does not matter. */
  expect("{\"x\":{\"k\":1,\"k\":1},\"a\":1}", "{\"x\":{\"k\":1,\"k\":1},\"a\":2}", &o, 0, 0, 0,
         1);
  /* Many keys (sorted check) with a duplicate under a difference. */
  kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT;
  for (int i = 0; i < 40; i++) kg_buf_appendf(&a, "%s\"k%d\":%d", i ? "," : "{", i % 39, i);
  kg_buf_appends(&b, a.data);
  kg_buf_appends(&a, ",\"a\":1}");
  kg_buf_appends(&b, ",\"a\":2}");
  expect(a.data, b.data, &o, KG_JSONFAST_FALLBACK, 0, 0, 1);
  kg_buf_free(&a);
  kg_buf_free(&b);
}

static void test_unordered_falls_back(void **state) {
  (void)state;
  const char *ign[] = {"$..ts"};
  const char *uno[] = {"$.l"};
  kg_jsondiff_opts o = {ign, 1, uno, 1, NULL};
  expect("{\"l\":[{\"id\":1,\"ts\":1},{\"id\":2,\"ts\":2}]}",
         "{\"l\":[{\"id\":2,\"ts\":3},{\"id\":1,\"ts\":4}]}", &o, KG_JSONFAST_FALLBACK, 0, 0,
         2); /* $..ts, and the reordering $.l hid */
  /* Noise outside the unordered array is still decided. */
  expect("{\"l\":[1,2],\"ts\":1}", "{\"l\":[1,2],\"ts\":2}", &o, 0, 0, 0, 1);
}

static void test_invalid_json(void **state) {
  (void)state;
  static const char *const bad[] = {"", " ", "{", "[1,]", "{\"a\" 1}", "01", "[1] x",
                                    "\xef\xbb\xbf[1]", "[\"a\x01\"]", "[tru]", "{\"a\":1,}",
                                    "-", "1.", "[\"\\x\"]", "{\"\\u0000\":1}"};
  for (size_t i = 0; i < KG_ARRAY_SIZE(bad); i++) {
    expect(bad[i], "[1]", NULL, KG_JSONFAST_FALLBACK, -1, 0, 0);
    expect("[1]", bad[i], NULL, KG_JSONFAST_FALLBACK, -2, 0, 0);
  }
  /* A NUL byte ends nothing: the body is as long as it says. */
  kg_diffs fast = {0};
  assert_int_equal(kg_jsonfast("[1]\0[2]", 7, "[1]", 3, NULL, &fast), KG_JSONFAST_FALLBACK);
}

static char *nested(size_t depth, const char *open, const char *leaf, const char *close) {
  kg_buf b = KG_BUF_INIT;
  for (size_t i = 0; i < depth; i++) kg_buf_appends(&b, open);
  kg_buf_appends(&b, leaf);
  for (size_t i = 0; i < depth; i++) kg_buf_appends(&b, close);
  return kg_buf_steal(&b, NULL);
}

static void test_deep_nesting(void **state) {
  (void)state;
  const char *ign[] = {"$..ts"};
  kg_jsondiff_opts o = {ign, 1, NULL, 0, NULL};
  /* Deep noise is decided without recursion; deeper than 1024 levels
   * (here 2001) the tree differ decides, within jansson's limit. */
  static const struct {
    size_t depth;
    int fast;
  } cases[] = {{500, 0}, {1000, KG_JSONFAST_FALLBACK}};
  for (size_t i = 0; i < KG_ARRAY_SIZE(cases); i++) {
    char *a = nested(cases[i].depth, "{\"k\":[", "{\"ts\":1}", "]}");
    char *b = nested(cases[i].depth, "{\"k\":[", "{\"ts\":2}", "]}");
    expect(a, b, &o, cases[i].fast, 0, 0, 1);
    free(a);
    free(b);
  }
  /* Far beyond jansson's limit: not JSON, and no stack overflow. */
  char *a = nested(100000, "[", "1", "]");
  expect(a, a, NULL, KG_JSONFAST_FALLBACK, -1, 0, 0);
  free(a);
}

/* An object with more keys than the reader's stack room, differing in an
 * ignored key after them: decided; the same with one key twice (jansson
 * keeps the last, so the tree differ must decide). */
static void test_many_keys(void **state) {
  (void)state;
  const char *ign[] = {"$.obj.ts"};
  kg_jsondiff_opts o = {ign, 1, NULL, 0, NULL};
  for (int dup = 0; dup < 2; dup++) {
    kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT;
    kg_buf_appends(&a, "{\"obj\":{");
    kg_buf_appends(&b, "{\"obj\":{");
    for (int i = 0; i < 200; i++) {
      kg_buf_appendf(&a, "\"k%d\":%d,", dup && i == 150 ? 3 : i, i);
      kg_buf_appendf(&b, "\"k%d\":%d,", dup && i == 150 ? 3 : i, i);
    }
    kg_buf_appends(&a, "\"ts\":1}}");
    kg_buf_appends(&b, "\"ts\":2}}");
    expect(a.data, b.data, &o, dup ? KG_JSONFAST_FALLBACK : 0, 0, 0, 1);
    kg_buf_free(&a);
    kg_buf_free(&b);
  }
}

static void test_out_not_empty(void **state) {
  (void)state;
  kg_diffs d = {0};
  kg_diffs_suppress(&d, "earlier");
  assert_int_equal(kg_jsonfast("[1]", 3, "[1]", 3, NULL, &d), KG_JSONFAST_FALLBACK);
  assert_int_equal(d.nsuppressed, 1);
  kg_diffs_free(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_noise_only_equal),
      cmocka_unit_test(test_ignored_subtree_and_extras),
      cmocka_unit_test(test_learned_noise),
      cmocka_unit_test(test_learned_noise_over_cap),
      cmocka_unit_test(test_real_change_located_as_tree),
      cmocka_unit_test(test_key_order_falls_back),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_unicode_escapes),
      cmocka_unit_test(test_duplicate_keys),
      cmocka_unit_test(test_unordered_falls_back),
      cmocka_unit_test(test_invalid_json),
      cmocka_unit_test(test_deep_nesting),
      cmocka_unit_test(test_many_keys),
      cmocka_unit_test(test_out_not_empty),
  };
  return cmocka_run_group_tests_name("jsonfast", tests, NULL, NULL);
}
