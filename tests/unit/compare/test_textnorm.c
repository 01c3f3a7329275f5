/* Unit tests: regex normalisation of text bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "compare/textnorm.h"

static kg_textnorm *build(const char *const *pats, const char *const *repls, size_t n) {
  char err[256] = "";
  kg_textnorm *t = kg_textnorm_new(pats, repls, n, err, sizeof(err));
  if (t == NULL) {
    print_error("unexpected compile error: %s\n", err);
    fail();
  }
  return t;
}

/* Applies t to in and checks the output, the count and the result. */
static void expect_apply(const kg_textnorm *t, const char *in, size_t n, const char *want,
                         size_t want_len, size_t want_replaced, int want_rc) {
  kg_buf out = KG_BUF_INIT;
  kg_buf_appends(&out, "pre:"); /* apply appends */
  size_t replaced = 12345;
  int rc = kg_textnorm_apply(t, in, n, &out, &replaced);
  assert_int_equal(rc, want_rc);
  assert_int_equal(replaced, want_replaced);
  assert_int_equal(out.len, 4 + want_len);
  assert_memory_equal(out.data, "pre:", 4);
  if (memcmp(out.data + 4, want, want_len) != 0) {
    print_error("got \"%s\", want \"%s\"\n", out.data + 4, want);
    fail();
  }
  assert_int_equal(out.data[out.len], '\0');
  kg_buf_free(&out);
}

static void expect_str(const kg_textnorm *t, const char *in, const char *want, size_t want_replaced) {
  expect_apply(t, in, strlen(in), want, strlen(want), want_replaced, 0);
}

static void test_csrf_token(void **state) {
  (void)state;
  const char *pats[] = {"csrf_token\" value=\"[^\"]+\""};
  const char *repls[] = {"csrf_token\" value=\"X\""};
  kg_textnorm *t = build(pats, repls, 1);
  expect_str(t,
             "<form>\n<input name=\"csrf_token\" value=\"a8f3kQ_9zz\">\n"
             "<input name=\"csrf_token\" value=\"other\"></form>\n",
             "<form>\n<input name=\"csrf_token\" value=\"X\">\n"
             "<input name=\"csrf_token\" value=\"X\"></form>\n",
             2);
  kg_textnorm_free(t);
}

static void test_timestamps(void **state) {
  (void)state;
  const char *pats[] = {"\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(?:\\.\\d+)?(?:Z|[+-]\\d\\d:\\d\\d)",
                        "(?m)^Date: .*$"};
  const char *repls[] = {"<TS>", "Date: <DATE>"};
  kg_textnorm *t = build(pats, repls, 2);
  expect_str(t,
             "created 2026-11-26T10:11:12Z\nupdated 2026-11-26T10:11:12.123+09:00\n"
             "Date: Thu, 26 Nov 2026 10:11:12 GMT\nbody\n",
             "created <TS>\nupdated <TS>\nDate: <DATE>\nbody\n", 3);
  kg_textnorm_free(t);
}

static void test_rules_apply_in_order(void **state) {
  (void)state;
  const char *pats[] = {"foo", "bar"};
  const char *repls[] = {"bar", "baz"};
  kg_textnorm *t = build(pats, repls, 2);
  /* The second rule sees the first one's output. */
  expect_str(t, "foo bar", "baz baz", 3);
  kg_textnorm_free(t);

  const char *pats2[] = {"bar", "foo"};
  const char *repls2[] = {"baz", "bar"};
  t = build(pats2, repls2, 2);
  expect_str(t, "foo bar", "bar baz", 2);
  kg_textnorm_free(t);
}

static void test_groups_in_replacement(void **state) {
  (void)state;
  const char *pats[] = {"(\\w+)@(\\w+)\\.com", "(?<n>\\d+) items", "(A)|B", "cost"};
  const char *repls[] = {"$2 at ${1}x", "${n}:$n:${0}", "[$1]", "$$5"};
  kg_textnorm *t = build(pats, repls, 4);
  expect_str(t, "mail alice@example.com, 3 items, AB, cost",
             "mail example at alicex, 3:3:3 items, [A][], $5", 5);
  kg_textnorm_free(t);
}

static void test_no_match_and_empty(void **state) {
  (void)state;
  const char *pats[] = {"nothing-like-this"};
  const char *repls[] = {"X"};
  kg_textnorm *t = build(pats, repls, 1);
  expect_str(t, "plain text\n", "plain text\n", 0);
  expect_apply(t, "", 0, "", 0, 0, 0);
  expect_apply(t, NULL, 0, "", 0, 0, 0);
  kg_textnorm_free(t);

  /* No rules: a copy. */
  t = build(NULL, NULL, 0);
  expect_str(t, "as is", "as is", 0);
  kg_textnorm_free(t);

  /* Empty matches are handled the way PCRE2 does globally. */
  const char *pe[] = {"x*"};
  const char *re[] = {"-"};
  t = build(pe, re, 1);
  expect_str(t, "abc", "-a-b-c-", 4);
  kg_textnorm_free(t);
}

static void test_binary_input(void **state) {
  (void)state;
  const char *pats[] = {"\\x00+", "\\xff", "v=\\d+"};
  const char *repls[] = {"<NUL>", "<FF>", "v=N"};
  kg_textnorm *t = build(pats, repls, 3);
  static const char in[] = "a\0\0b\xff\xfe v=12 \xc3(";
  static const char want[] = "a<NUL>b<FF>\xfe v=N \xc3(";
  expect_apply(t, in, sizeof(in) - 1, want, sizeof(want) - 1, 3, 0);

  /* Invalid UTF-8 does not stop a rule: "." is one byte. */
  const char *pd[] = {"x.y"};
  const char *rd[] = {"XY"};
  kg_textnorm *t2 = build(pd, rd, 1);
  expect_str(t2, "x\xffy x\xc3y", "XY XY", 2);
  kg_textnorm_free(t2);
  kg_textnorm_free(t);
}

static void test_output_growth(void **state) {
  (void)state;
  /* The output outgrows the first guess: the retry must size it. */
  const char *pats[] = {"a"};
  const char *repls[] = {"<long replacement>"};
  kg_textnorm *t = build(pats, repls, 1);
  char in[10000];
  memset(in, 'a', sizeof(in));
  kg_buf out = KG_BUF_INIT;
  size_t replaced = 0;
  assert_int_equal(kg_textnorm_apply(t, in, sizeof(in), &out, &replaced), 0);
  assert_int_equal(replaced, sizeof(in));
  assert_int_equal(out.len, sizeof(in) * strlen(repls[0]));
  assert_memory_equal(out.data + out.len - strlen(repls[0]), repls[0], strlen(repls[0]));
  kg_buf_free(&out);
  kg_textnorm_free(t);
}

static void test_pathological_pattern_hits_limit(void **state) {
  (void)state;
  /* Nested quantifiers on a subject that almost matches: exponential
   * backtracking without a limit. The later rule still applies. */
  const char *pats[] = {"x", "(a+)+$", "b"};
  const char *repls[] = {"y", "X", "B"};
  kg_textnorm *t = build(pats, repls, 3);
  kg_buf in = KG_BUF_INIT;
  kg_buf_appends(&in, "x ");
  for (int i = 0; i < 60; i++) kg_buf_appends(&in, "a");
  kg_buf_appends(&in, "!b");
  kg_buf want = KG_BUF_INIT;
  kg_buf_appends(&want, "y ");
  kg_buf_append(&want, in.data + 2, 60);
  kg_buf_appends(&want, "!B");

  uint64_t t0 = kg_now_ns();
  expect_apply(t, in.data, in.len, want.data, want.len, 2, -1);
  assert_true(kg_now_ns() - t0 < UINT64_C(5000000000)); /* bounded, not 2^60 */
  kg_buf_free(&in);
  kg_buf_free(&want);
  kg_textnorm_free(t);
}

static void expect_compile_error(const char *const *pats, const char *const *repls, size_t n,
                                 const char *want) {
  char err[256];
  memset(err, 'Z', sizeof(err));
  kg_textnorm *t = kg_textnorm_new(pats, repls, n, err, sizeof(err));
  assert_null(t);
  if (strcmp(err, want) != 0) {
    print_error("got \"%s\", want \"%s\"\n", err, want);
    fail();
  }
}

static void test_compile_errors(void **state) {
  (void)state;
  const char *p1[] = {"ok", "abc(def"};
  const char *r1[] = {"x", "y"};
  expect_compile_error(p1, r1, 2, "pattern 2: missing closing parenthesis at offset 7");

  const char *p2[] = {"[a-"};
  const char *r2[] = {""};
  expect_compile_error(p2, r2, 1, "pattern 1: missing terminating ] for character class at offset 3");

  const char *p3[] = {"(*UTF)x"};
  expect_compile_error(p3, r2, 1, "pattern 1: using UTF is disabled by the application at offset 6");

  const char *p4[] = {"(a)b"};
  const char *r4[] = {"$2"};
  expect_compile_error(p4, r4, 1, "replacement 1: group 2 does not exist (the pattern has 1)");
  const char *r5[] = {"${nope}"};
  expect_compile_error(p4, r5, 1, "replacement 1: no group named nope");
  const char *r6[] = {"ab$"};
  expect_compile_error(p4, r6, 1,
                       "replacement 1: '$' at offset 2 must be followed by $, a group number or "
                       "a group name");
  const char *r7[] = {"${1"};
  expect_compile_error(p4, r7, 1, "replacement 1: missing } after ${ at offset 0");
  const char *r8[] = {NULL};
  expect_compile_error(p4, r8, 1, "replacement 1: missing");
  const char *p9[] = {NULL};
  expect_compile_error(p9, r4, 1, "pattern 1: missing");

  /* Fine forms are accepted, and a missing err buffer is tolerated. */
  const char *pg[] = {"(?<year>\\d{4})(x)?(*MARK:m)"};
  const char *rg[] = {"$0 $1 ${2} $year ${year} $$ $*MARK ${*MARK}"};
  kg_textnorm *t = kg_textnorm_new(pg, rg, 1, NULL, 0);
  assert_non_null(t);
  expect_str(t, "in 2026.", "in 2026 2026  2026 2026 $ m m.", 1);
  kg_textnorm_free(t);
  assert_null(kg_textnorm_new(p1, r1, 2, NULL, 0));
  kg_textnorm_free(NULL);
}

/* Several threads share one normaliser: results must match a single
 * thread's (and TSan/ASan would flag shared scratch state). */
typedef struct {
  const kg_textnorm *t;
  const char *in;
  const char *want;
  int failures;
} thread_arg;

static void *worker(void *p) {
  thread_arg *a = p;
  for (int i = 0; i < 300; i++) {
    kg_buf out = KG_BUF_INIT;
    size_t replaced = 0;
    if (kg_textnorm_apply(a->t, a->in, strlen(a->in), &out, &replaced) != 0 ||
        strcmp(out.data, a->want) != 0 || replaced != 3)
      a->failures++;
    kg_buf_free(&out);
  }
  return NULL;
}

static void test_concurrent_use(void **state) {
  (void)state;
  const char *pats[] = {"token=(\\w+)", "\\d{4}-\\d\\d-\\d\\d"};
  const char *repls[] = {"token=<$1>", "DATE"};
  kg_textnorm *t = build(pats, repls, 2);
  pthread_t th[8];
  thread_arg args[8];
  for (int i = 0; i < 8; i++) {
    args[i] = (thread_arg){t, "token=abc 2026-01-01 token=zz", "token=<abc> DATE token=<zz>", 0};
    assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(args[i].failures, 0);
  }
  kg_textnorm_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_csrf_token),
      cmocka_unit_test(test_timestamps),
      cmocka_unit_test(test_rules_apply_in_order),
      cmocka_unit_test(test_groups_in_replacement),
      cmocka_unit_test(test_no_match_and_empty),
      cmocka_unit_test(test_binary_input),
      cmocka_unit_test(test_output_growth),
      cmocka_unit_test(test_pathological_pattern_hits_limit),
      cmocka_unit_test(test_compile_errors),
      cmocka_unit_test(test_concurrent_use),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
