/* Unit tests: the structural JSON differ and its path patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "compare/jsondiff.h"

/* --- helpers ------------------------------------------------------------ */

static int run(const char *a, const char *b, const kg_jsondiff_opts *o,
               kg_diffs *d) {
  memset(d, 0, sizeof(*d));
  return kg_jsondiff(a, strlen(a), b, strlen(b), o, d);
}

/* Diffs a and b, expecting both to parse, and returns how many differences
 * were found (the list stays in *d for inspection). */
static size_t ndiff(const char *a, const char *b, const kg_jsondiff_opts *o,
                    kg_diffs *d) {
  assert_int_equal(run(a, b, o, d), 0);
  assert_int_equal(d->n, d->total); /* no test here reaches the cap */
  return d->n;
}

/* True when a and b compare equal with no patterns. */
static bool same(const char *a, const char *b) {
  kg_diffs d;
  size_t n = ndiff(a, b, NULL, &d);
  kg_diffs_free(&d);
  return n == 0;
}

static void check_str(const char *want, const char *got) {
  if (want == NULL)
    assert_null(got);
  else {
    assert_non_null(got);
    assert_string_equal(want, got);
  }
}

static void check_diff(const kg_diffs *d, size_t i, const char *where,
                       const char *pattern, const char *master,
                       const char *shadow) {
  assert_true(i < d->n);
  check_str(where, d->v[i].where);
  check_str(pattern, d->v[i].pattern);
  check_str(master, d->v[i].master);
  check_str(shadow, d->v[i].shadow);
}

/* Runs one diff with ignore patterns and checks the reported count and the
 * suppressed list (NULL-terminated). */
static void check_ignore(const char *a, const char *b, const char *const *ign,
                         size_t nign, size_t want_n,
                         const char *const *want_suppressed) {
  kg_jsondiff_opts o = {ign, nign, NULL, 0, NULL};
  kg_diffs d;
  assert_int_equal(ndiff(a, b, &o, &d), want_n);
  size_t ns = 0;
  while (want_suppressed[ns]) ns++;
  assert_int_equal(d.nsuppressed, ns);
  for (size_t i = 0; i < ns; i++)
    assert_string_equal(d.suppressed[i], want_suppressed[i]);
  kg_diffs_free(&d);
}

/* --- equality rules ---------------------------------------------------- */

static void test_key_order_and_whitespace(void **state) {
  (void)state;
  assert_true(same("{\"a\":1,\"b\":[1,2,{\"c\":\"x\",\"d\":null}]}",
                   " {\n \"b\" : [ 1 , 2 , {\"d\":null, \"c\":\"x\"} ] ,"
                   " \"a\" : 1 }\n"));
  assert_true(same("{}", "{ }"));
  assert_true(same("[]", "[ ]"));
  /* Array order does matter by default. */
  assert_false(same("[1,2]", "[2,1]"));
}

static void test_scalar_change_reports_leaf(void **state) {
  (void)state;
  kg_diffs d;
  assert_int_equal(
      ndiff("{\"a\":{\"b\":1,\"c\":[true]}}", "{\"a\":{\"b\":2,\"c\":[true]}}",
            NULL, &d),
      1);
  check_diff(&d, 0, "$.a.b", "$.a.b", "1", "2");
  kg_diffs_free(&d);
}

static void test_type_changes(void **state) {
  (void)state;
  kg_diffs d;
  assert_int_equal(
      ndiff("{\"a\":\"1\",\"b\":null,\"c\":true,\"d\":{},\"e\":[1],\"f\":0}",
            "{\"a\":1,\"b\":false,\"c\":false,\"d\":[],\"e\":{\"0\":1},"
            "\"f\":null}",
            NULL, &d),
      6);
  check_diff(&d, 0, "$.a", "$.a", "\"1\"", "1");
  check_diff(&d, 1, "$.b", "$.b", "null", "false");
  check_diff(&d, 2, "$.c", "$.c", "true", "false");
  check_diff(&d, 3, "$.d", "$.d", "{}", "[]");
  check_diff(&d, 4, "$.e", "$.e", "[1]", "{\"0\":1}");
  check_diff(&d, 5, "$.f", "$.f", "0", "null");
  kg_diffs_free(&d);
  /* Top-level scalars and a top-level type change. */
  assert_int_equal(ndiff("1", "\"1\"", NULL, &d), 1);
  check_diff(&d, 0, "$", "$", "1", "\"1\"");
  kg_diffs_free(&d);
  assert_true(same("null", "null"));
  assert_true(same("\"x\"", " \"x\" "));
}

static void test_nested_added_removed(void **state) {
  (void)state;
  kg_diffs d;
  assert_int_equal(
      ndiff("{\"a\":{\"x\":1,\"y\":{\"z\":[1,2]}}}",
            "{\"a\":{\"y\":{\"z\":[1,2],\"w\":null},\"v\":{\"q\":[1]}}}",
            NULL, &d),
      3);
  /* Master's keys first (x removed, then inside y), then shadow-only keys. */
  check_diff(&d, 0, "$.a.x", "$.a.x", "1", NULL);
  check_diff(&d, 1, "$.a.y.w", "$.a.y.w", NULL, "null");
  check_diff(&d, 2, "$.a.v", "$.a.v", NULL, "{\"q\":[1]}");
  kg_diffs_free(&d);
}

static void test_arrays_by_index(void **state) {
  (void)state;
  kg_diffs d;
  assert_int_equal(ndiff("[1,2,3]", "[1,5]", NULL, &d), 2);
  check_diff(&d, 0, "$[1]", "$[1]", "2", "5");
  check_diff(&d, 1, "$[2]", "$[2]", "3", NULL);
  kg_diffs_free(&d);

  assert_int_equal(ndiff("[1]", "[1,[2,{}]]", NULL, &d), 1);
  check_diff(&d, 0, "$[1]", "$[1]", NULL, "[2,{}]");
  kg_diffs_free(&d);

  assert_int_equal(ndiff("{\"items\":[{\"p\":1},{\"p\":2,\"q\":[[0,1]]}]}",
                         "{\"items\":[{\"p\":1},{\"p\":3,\"q\":[[0,2]]}]}",
                         NULL, &d),
                   2);
  check_diff(&d, 0, "$.items[1].p", "$.items[1].p", "2", "3");
  check_diff(&d, 1, "$.items[1].q[0][1]", "$.items[1].q[0][1]", "1", "2");
  kg_diffs_free(&d);
}

/* Numbers compare by exact mathematical value, whatever the spelling or
 * jansson's integer/real type. */
static void test_numbers(void **state) {
  (void)state;
  assert_true(same("[1,1,1,1,100,0.5]", "[1.0,1e0,10e-1,1E+0,1e2,5e-1]"));
  assert_true(same("0.1", "0.10"));
  /* -0 and 0 are the same value (JSON.stringify(-0) is "0"). */
  assert_true(same("[0,0,0]", "[-0,-0.0,0.0]"));
  assert_false(same("1", "1.5"));
  assert_false(same("1", "1.0000000000000002"));
  /* 64-bit integers beyond 2^53 compare exactly... */
  assert_false(same("9007199254740993", "9007199254740992"));
  assert_false(same("9223372036854775807", "9223372036854775806"));
  assert_false(same("-9223372036854775808", "-9223372036854775807"));
  assert_true(same("9223372036854775807", "9223372036854775807"));
  /* ...and so does an integer against a real: 2^53+1 is not the double
   * 2^53, though a double comparison would say so. */
  assert_false(same("9007199254740993", "9007199254740992.0"));
  assert_true(same("9007199254740992", "9007199254740992.0"));
  assert_true(same("9007199254740992", "9.007199254740992e15"));
  /* Beyond int64, jansson needs every integer of that body read as a
   * double: valid JSON, compared as doubles (documented limit). */
  assert_true(same("18446744073709551616", "18446744073709551616"));
  assert_true(same("18446744073709551616", "18446744073709551617"));
  assert_false(same("[18446744073709551616]", "[1]"));
  /* Huge reals are still reals. */
  assert_false(same("1e300", "1e299"));

  /* Reported values: shortest text that reads back exactly. */
  kg_diffs d;
  assert_int_equal(ndiff("[0.1,1,2.0,-0.0,1e300,9007199254740993]",
                         "[0.2,1.5,3,1e-7,-1e300,9007199254740992]", NULL, &d),
                   6);
  check_diff(&d, 0, "$[0]", "$[0]", "0.1", "0.2");
  check_diff(&d, 1, "$[1]", "$[1]", "1", "1.5");
  check_diff(&d, 2, "$[2]", "$[2]", "2.0", "3");
  check_diff(&d, 3, "$[3]", "$[3]", "-0.0", "1e-07");
  check_diff(&d, 4, "$[4]", "$[4]", "1e+300", "-1e+300");
  check_diff(&d, 5, "$[5]", "$[5]", "9007199254740993", "9007199254740992");
  kg_diffs_free(&d);
}

static void test_strings_unicode_and_escapes(void **state) {
  (void)state;
  /* Strings compare by bytes after unescaping. */
  assert_true(same("\"caf\\u00e9\"", "\"caf\xc3\xa9\""));
  assert_true(same("\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\""));
  assert_true(same("\"a\\/b\"", "\"a/b\""));
  assert_true(same("\"\\t\\n\"", "\"\\u0009\\u000A\""));
  /* No Unicode normalisation: precomposed vs combining é differ. */
  assert_false(same("\"\\u00e9\"", "\"e\\u0301\""));
  assert_false(same("\"abc\"", "\"abC\""));
  assert_false(same("\"abc\"", "\"abc \""));
  /* An embedded NUL is a byte like any other. */
  assert_false(same("\"a\\u0000b\"", "\"a\\u0000c\""));
  assert_false(same("\"a\\u0000b\"", "\"a\""));
  assert_true(same("\"a\\u0000b\"", "\"a\\u0000b\""));

  kg_diffs d;
  assert_int_equal(
      ndiff("{\"s\":\"caf\\u00e9 \\\"q\\\" \\\\ \\n\\u0001\\u0000\"}",
            "{\"s\":\"cafe\"}", NULL, &d),
      1);
  /* Re-escaped minimally: UTF-8 kept, quotes/backslashes/controls escaped. */
  check_diff(&d, 0, "$.s", "$.s",
             "\"caf\xc3\xa9 \\\"q\\\" \\\\ \\n\\u0001\\u0000\"", "\"cafe\"");
  kg_diffs_free(&d);
}

/* Duplicate keys: the last one wins, as in JSON.parse and most clients, so
 * we compare what a client of either backend would see. */
static void test_duplicate_keys(void **state) {
  (void)state;
  assert_true(same("{\"a\":1,\"a\":2}", "{\"a\":2}"));
  kg_diffs d;
  assert_int_equal(ndiff("{\"a\":1,\"a\":2}", "{\"a\":1}", NULL, &d), 1);
  check_diff(&d, 0, "$.a", "$.a", "2", "1");
  kg_diffs_free(&d);
}

static void test_invalid_json(void **state) {
  (void)state;
  const char *bad[] = {
      "",         "   ",           "{",           "{\"a\":1} x", "[1,]",
      "{'a':1}",  "nul",           "01",          "1e400",       "\"\\x\"",
      "[1] [2]",  "\"unterminated", "\xef\xbb\xbf{}" /* BOM */,
      "{\"a\\u0000\":1}" /* NUL in a key: jansson refuses */,
      "\"\xff\"" /* not UTF-8 */,
  };
  for (size_t i = 0; i < KG_ARRAY_SIZE(bad); i++) {
    kg_diffs d;
    assert_int_equal(run(bad[i], "{}", NULL, &d), -1);
    assert_int_equal(run("{}", bad[i], NULL, &d), -2);
    assert_int_equal(run(bad[i], bad[i], NULL, &d), -1);
    /* Nothing is appended on failure. */
    assert_int_equal(d.total, 0);
    assert_null(d.v);
  }
  /* Lengths are honoured: no NUL terminator needed, none read past. */
  kg_diffs d;
  memset(&d, 0, sizeof(d));
  assert_int_equal(kg_jsondiff("[1]garbage", 3, "[1]", 3, NULL, &d), 0);
  assert_int_equal(d.total, 0);
  assert_int_equal(kg_jsondiff(NULL, 0, "[1]", 3, NULL, &d), -1);
  assert_int_equal(kg_jsondiff("[1]", 3, "[1]", 0, NULL, &d), -2);
  char *heap = kg_malloc(3);
  memcpy(heap, "[2]", 3); /* ASan would flag a read past the 3 bytes */
  assert_int_equal(kg_jsondiff("[1]", 3, heap, 3, NULL, &d), 0);
  assert_int_equal(d.total, 1);
  free(heap);
  kg_diffs_free(&d);
}

static void test_path_quoting(void **state) {
  (void)state;
  kg_diffs d;
  assert_int_equal(
      ndiff("{\"a b\":1,\"a\\\"b\":1,\"\xc3\xa9\":1,\"\":1,\"2fa\":1,\"*\":1,"
            "\"a.b\":1,\"_ok9\":1,\"\\n\":1,\"x\":{\"\":[{\"]\":1}]}}",
            "{\"a b\":2,\"a\\\"b\":2,\"\xc3\xa9\":2,\"\":2,\"2fa\":2,\"*\":2,"
            "\"a.b\":2,\"_ok9\":2,\"\\n\":2,\"x\":{\"\":[{\"]\":2}]}}",
            NULL, &d),
      10);
  const char *want[] = {
      "$[\"a b\"]", "$[\"a\\\"b\"]", "$[\"\xc3\xa9\"]", "$[\"\"]",
      "$[\"2fa\"]", "$[\"*\"]",      "$[\"a.b\"]",      "$._ok9",
      "$[\"\\n\"]", "$.x[\"\"][0][\"]\"]",
  };
  for (size_t i = 0; i < KG_ARRAY_SIZE(want); i++) {
    assert_string_equal(d.v[i].where, want[i]);
    /* Every path reads back as a pattern matching itself. */
    assert_int_equal(kg_jsonpath_check(d.v[i].where, NULL, 0), 0);
    assert_true(kg_jsonpath_match(d.v[i].where, d.v[i].where));
    assert_true(kg_jsonpath_match(d.v[i].pattern, d.v[i].where));
  }
  assert_string_equal(d.v[9].pattern, d.v[9].where); /* never generalised */
  kg_diffs_free(&d);

  /* An odd key can be ignored by its quoted form, with any escaping. */
  const char *ign[] = {"$[\"caf\\u00e9 \\\"x\\\"\"]"};
  const char *sup[] = {ign[0], NULL};
  check_ignore("{\"caf\xc3\xa9 \\\"x\\\"\":1,\"k\":1}",
               "{\"caf\xc3\xa9 \\\"x\\\"\":2,\"k\":1}", ign, 1, 0, sup);
}

/* --- unordered arrays -------------------------------------------------- */

static void test_unordered_basic(void **state) {
  (void)state;
  const char *uno[] = {"$.tags"};
  kg_jsondiff_opts o = {NULL, 0, uno, 1, NULL};
  kg_diffs d;
  assert_int_equal(ndiff("{\"tags\":[\"a\",\"b\",\"c\"]}",
                         "{\"tags\":[\"c\",\"a\",\"b\"]}", &o, &d),
                   0);
  /* The reordering the rule declared equal is listed, as for ignored values. */
  assert_int_equal(d.nsuppressed, 1);
  assert_string_equal(d.suppressed[0], "unordered $.tags");
  kg_diffs_free(&d);
  /* Same order, or only an element added: nothing was moved, nothing hidden. */
  assert_int_equal(ndiff("{\"tags\":[\"a\",\"b\"]}", "{\"tags\":[\"a\",\"b\"]}", &o, &d), 0);
  assert_int_equal(d.nsuppressed, 0);
  kg_diffs_free(&d);
  assert_int_equal(ndiff("{\"tags\":[\"a\",\"b\"]}", "{\"tags\":[\"x\",\"a\",\"b\"]}", &o, &d), 1);
  assert_int_equal(d.nsuppressed, 0);
  kg_diffs_free(&d);
  /* Without the pattern the same documents differ at every index. */
  assert_int_equal(ndiff("{\"tags\":[\"a\",\"b\",\"c\"]}",
                         "{\"tags\":[\"c\",\"a\",\"b\"]}", NULL, &d),
                   3);
  kg_diffs_free(&d);

  /* Multisets: unpaired master elements are removed at their master index,
   * then unpaired shadow elements are added at their shadow index. */
  assert_int_equal(ndiff("{\"tags\":[\"a\",\"b\",\"b\",\"x\",\"a\"]}",
                         "{\"tags\":[\"b\",\"a\",\"y\",\"b\"]}", &o, &d),
                   3);
  check_diff(&d, 0, "$.tags[3]", "$.tags[3]", "\"x\"", NULL);
  check_diff(&d, 1, "$.tags[4]", "$.tags[4]", "\"a\"", NULL);
  check_diff(&d, 2, "$.tags[2]", "$.tags[2]", NULL, "\"y\"");
  kg_diffs_free(&d);

  /* Elements pair by canonical value: key order and number spelling. */
  assert_int_equal(
      ndiff("{\"tags\":[{\"id\":1,\"v\":[1,2]},{\"id\":2},null,[]]}",
            "{\"tags\":[[],{\"id\":2.0},null,{\"v\":[1.0,2],\"id\":1e0}]}",
            &o, &d),
      0);
  kg_diffs_free(&d);
  /* ...but element order inside an element still matters. */
  assert_int_equal(ndiff("{\"tags\":[[1,2]]}", "{\"tags\":[[2,1]]}", &o, &d),
                   2);
  check_diff(&d, 0, "$.tags[0]", "$.tags[0]", "[1,2]", NULL);
  check_diff(&d, 1, "$.tags[0]", "$.tags[0]", NULL, "[2,1]");
  kg_diffs_free(&d);
  /* The pattern names that array, not what lies under it. */
  assert_int_equal(
      ndiff("{\"tags\":[{\"x\":[1,2]}]}", "{\"tags\":[{\"x\":[2,1]}]}", &o, &d),
      2);
  kg_diffs_free(&d);
  /* Not an array there: ordinary comparison. */
  assert_int_equal(ndiff("{\"tags\":{\"a\":1}}", "{\"tags\":{\"a\":2}}", &o, &d),
                   1);
  check_diff(&d, 0, "$.tags.a", "$.tags.a", "1", "2");
  kg_diffs_free(&d);
}

static void test_unordered_nested_and_deep_patterns(void **state) {
  (void)state;
  const char *uno[] = {"$..ids", "$.rows[*].cells", "$"};
  kg_jsondiff_opts o = {NULL, 0, uno, 3, NULL};
  kg_diffs d;
  /* Root unordered; each row's cells unordered; ids unordered anywhere. */
  assert_int_equal(
      ndiff("[{\"rows\":1},{\"a\":{\"ids\":[1,2,3]}}]",
            "[{\"a\":{\"ids\":[3,1,2]}},{\"rows\":1}]", &o, &d),
      0);
  kg_diffs_free(&d);
  assert_int_equal(
      ndiff("{\"rows\":[{\"cells\":[1,2]},{\"cells\":[3,4]}]}",
            "{\"rows\":[{\"cells\":[2,1]},{\"cells\":[4,5]}]}", &o, &d),
      2);
  check_diff(&d, 0, "$.rows[1].cells[0]", "$.rows[1].cells[0]", "3", NULL);
  check_diff(&d, 1, "$.rows[1].cells[1]", "$.rows[1].cells[1]", NULL, "5");
  kg_diffs_free(&d);
  /* Unordered inside unordered: the inner multiset decides pairing. */
  const char *uno2[] = {"$.g", "$.g[*].ids"};
  kg_jsondiff_opts o2 = {NULL, 0, uno2, 2, NULL};
  assert_int_equal(ndiff("{\"g\":[{\"ids\":[1,2]},{\"ids\":[3,4]}]}",
                         "{\"g\":[{\"ids\":[4,3]},{\"ids\":[2,1]}]}", &o2, &d),
                   0);
  /* Both levels moved: each rule that hid a reordering is named once. */
  assert_int_equal(d.nsuppressed, 2);
  assert_string_equal(d.suppressed[0], "unordered $.g");
  assert_string_equal(d.suppressed[1], "unordered $.g[*].ids");
  kg_diffs_free(&d);
  assert_int_equal(ndiff("{\"g\":[{\"ids\":[1,2]},{\"ids\":[3,4]}]}",
                         "{\"g\":[{\"ids\":[4,3]},{\"ids\":[2,2]}]}", &o2, &d),
                   2);
  check_diff(&d, 0, "$.g[0]", "$.g[0]", "{\"ids\":[1,2]}", NULL);
  check_diff(&d, 1, "$.g[1]", "$.g[1]", NULL, "{\"ids\":[2,2]}");
  kg_diffs_free(&d);
}

/* An unordered array of records whose only differences are noise: the
 * records still pair, and the noise is listed as suppressed. */
static void test_unordered_with_ignored_fields(void **state) {
  (void)state;
  const char *uno[] = {"$.items"};
  const char *ign[] = {"$.items[*].ts", "$..nonce"};
  kg_jsondiff_opts o = {ign, 2, uno, 1, NULL};
  kg_diffs d;
  assert_int_equal(
      ndiff("{\"items\":[{\"id\":1,\"ts\":5},{\"id\":2,\"ts\":6,\"x\":[1]}]}",
            "{\"items\":[{\"id\":2,\"ts\":7,\"x\":[1]},{\"id\":1}]}", &o, &d),
      0);
  assert_int_equal(d.nsuppressed, 2); /* the moved records, then their ts */
  assert_string_equal(d.suppressed[0], "unordered $.items");
  assert_string_equal(d.suppressed[1], "$.items[*].ts");
  kg_diffs_free(&d);
  /* A real difference in one record: it stays unpaired. */
  assert_int_equal(
      ndiff("{\"items\":[{\"id\":1,\"ts\":5,\"nonce\":1},{\"id\":2}]}",
            "{\"items\":[{\"id\":3,\"ts\":5,\"nonce\":2},{\"id\":2,\"ts\":9}]}",
            &o, &d),
      2);
  check_diff(&d, 0, "$.items[0]", "$.items[0]",
             "{\"id\":1,\"ts\":5,\"nonce\":1}", NULL);
  check_diff(&d, 1, "$.items[0]", "$.items[0]", NULL,
             "{\"id\":3,\"ts\":5,\"nonce\":2}");
  assert_int_equal(d.nsuppressed, 1); /* $.items[1] vs shadow [1]: ts */
  kg_diffs_free(&d);
  /* Ignoring the elements themselves ignores the whole content. */
  const char *ign2[] = {"$.items[*]"};
  kg_jsondiff_opts o2 = {ign2, 1, uno, 1, NULL};
  assert_int_equal(ndiff("{\"items\":[1,2,3]}", "{\"items\":[4]}", &o2, &d), 0);
  assert_int_equal(d.nsuppressed, 1);
  kg_diffs_free(&d);
  /* ...and hides nothing when there is nothing to hide. */
  assert_int_equal(ndiff("{\"items\":[1,2]}", "{\"items\":[1,2]}", &o2, &d), 0);
  assert_int_equal(d.nsuppressed, 0);
  kg_diffs_free(&d);
}

static unsigned lcg(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return *s >> 8;
}

/* 10k-element arrays: pairing is by hash, so this is fast even under ASan,
 * including many equal elements (no quadratic scan of a hash group). */
static void test_unordered_large(void **state) {
  (void)state;
  enum { N = 10000 };
  size_t *perm = kg_malloc(N * sizeof(*perm));
  for (size_t i = 0; i < N; i++) perm[i] = i;
  unsigned seed = 7;
  for (size_t i = N - 1; i > 0; i--) {
    size_t j = lcg(&seed) % (i + 1), t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT;
  kg_buf_appends(&a, "{\"rows\":[");
  kg_buf_appends(&b, "{\"rows\":[");
  for (size_t i = 0; i < N; i++) {
    kg_buf_appendf(&a, "%s{\"id\":%zu,\"name\":\"n%zu\",\"t\":[1,2]}",
                   i ? "," : "", i, i);
    size_t k = perm[i];
    kg_buf_appendf(&b, "%s{\"t\":[1,2],\"name\":\"n%zu\",\"id\":%zu}",
                   i ? "," : "", k, k == 1234 ? (size_t)99999 : k);
  }
  kg_buf_appends(&a, "],\"same\":[");
  kg_buf_appends(&b, "],\"same\":[");
  for (size_t i = 0; i < N; i++) {
    kg_buf_appends(&a, i ? ",\"x\"" : "\"x\"");
    kg_buf_appends(&b, i == N / 2 ? ",\"y\"" : i ? ",\"x\"" : "\"x\"");
  }
  kg_buf_appends(&a, "]}");
  kg_buf_appends(&b, "]}");

  const char *uno[] = {"$.rows", "$.same"};
  kg_jsondiff_opts o = {NULL, 0, uno, 2, NULL};
  kg_diffs d;
  memset(&d, 0, sizeof(d));
  uint64_t t0 = kg_now_ns();
  assert_int_equal(kg_jsondiff(a.data, a.len, b.data, b.len, &o, &d), 0);
  uint64_t ms = (kg_now_ns() - t0) / 1000000;
  assert_true(ms < 3000); /* quadratic would be ~10^8 comparisons */
  assert_int_equal(d.n, 4);
  check_diff(&d, 0, "$.rows[1234]", "$.rows[1234]",
             "{\"id\":1234,\"name\":\"n1234\",\"t\":[1,2]}", NULL);
  assert_string_equal(d.v[1].pattern, d.v[1].where);
  assert_null(d.v[1].master);
  check_diff(&d, 2, "$.same[9999]", "$.same[9999]", "\"x\"", NULL);
  check_diff(&d, 3, "$.same[5000]", "$.same[5000]", NULL, "\"y\"");
  kg_diffs_free(&d);
  kg_buf_free(&a);
  kg_buf_free(&b);
  free(perm);
}

/* --- ignore patterns --------------------------------------------------- */

static void test_ignore_exact_path(void **state) {
  (void)state;
  const char *ign[] = {"$.meta.ts"};
  const char *sup[] = {"$.meta.ts", NULL};
  kg_jsondiff_opts o = {ign, 1, NULL, 0, NULL};
  kg_diffs d;
  assert_int_equal(ndiff("{\"meta\":{\"ts\":1,\"v\":1}}",
                         "{\"meta\":{\"ts\":2,\"v\":2}}", &o, &d),
                   1);
  check_diff(&d, 0, "$.meta.v", "$.meta.v", "1", "2");
  assert_int_equal(d.total, 1); /* suppressed ones are not counted */
  assert_int_equal(d.nsuppressed, 1);
  assert_string_equal(d.suppressed[0], "$.meta.ts");
  kg_diffs_free(&d);
  /* Added, removed and type-changed values are ignored alike. */
  check_ignore("{\"meta\":{}}", "{\"meta\":{\"ts\":1}}", ign, 1, 0, sup);
  check_ignore("{\"meta\":{\"ts\":1}}", "{\"meta\":{}}", ign, 1, 0, sup);
  check_ignore("{\"meta\":{\"ts\":1}}", "{\"meta\":{\"ts\":\"1\"}}", ign, 1, 0,
               sup);
  /* Only what the pattern names: $.meta.tsx, $.meta itself are not it. */
  const char *none[] = {NULL};
  check_ignore("{\"meta\":{\"tsx\":1}}", "{\"meta\":{\"tsx\":2}}", ign, 1, 1,
               none);
  check_ignore("{\"meta\":{\"ts\":1}}", "{\"meta\":null}", ign, 1, 1, none);
  /* No difference, nothing suppressed. */
  check_ignore("{\"meta\":{\"ts\":1}}", "{\"meta\":{\"ts\":1.0}}", ign, 1, 0,
               none);
}

static void test_ignore_subtree(void **state) {
  (void)state;
  const char *ign[] = {"$.meta"};
  const char *sup[] = {"$.meta", NULL};
  check_ignore("{\"meta\":{\"ts\":1,\"a\":[1,2,{\"b\":3}]},\"k\":1}",
               "{\"meta\":{\"ts\":2,\"a\":[1,5,{\"b\":4}],\"new\":1},\"k\":1}",
               ign, 1, 0, sup);
  /* "$" ignores everything. */
  const char *all[] = {"$"};
  const char *supall[] = {"$", NULL};
  check_ignore("[1,{\"a\":2}]", "{\"b\":3}", all, 1, 0, supall);
  check_ignore("1", "2", all, 1, 0, supall);
}

static void test_ignore_any_index(void **state) {
  (void)state;
  const char *ign[] = {"$.items[*].updated_at"};
  const char *sup[] = {"$.items[*].updated_at", NULL};
  kg_jsondiff_opts o = {ign, 1, NULL, 0, NULL};
  kg_diffs d;
  assert_int_equal(
      ndiff("{\"items\":[{\"p\":1,\"updated_at\":1},{\"p\":2,\"updated_at\":1}],"
            "\"updated_at\":1}",
            "{\"items\":[{\"p\":1,\"updated_at\":2},{\"p\":3,\"updated_at\":3}],"
            "\"updated_at\":2}",
            &o, &d),
      2);
  check_diff(&d, 0, "$.items[1].p", "$.items[1].p", "2", "3");
  check_diff(&d, 1, "$.updated_at", "$.updated_at", "1", "2");
  assert_int_equal(d.nsuppressed, 1);
  assert_string_equal(d.suppressed[0], sup[0]);
  kg_diffs_free(&d);
  /* A concrete index names that element only. */
  const char *one[] = {"$.items[1].x"};
  const char *supone[] = {"$.items[1].x", NULL};
  check_ignore("{\"items\":[{\"x\":1},{\"x\":1}]}",
               "{\"items\":[{\"x\":2},{\"x\":2}]}", one, 1, 1, supone);
  /* [*] is for indices only. */
  const char *none[] = {NULL};
  const char *idx[] = {"$[*]"};
  check_ignore("{\"a\":1}", "{\"a\":2}", idx, 1, 1, none);
}

static void test_ignore_any_key(void **state) {
  (void)state;
  const char *ign[] = {"$.*.ts"};
  const char *sup[] = {"$.*.ts", NULL};
  check_ignore("{\"a\":{\"ts\":1},\"b c\":{\"ts\":1},\"c\":{\"ts\":1,\"v\":1}}",
               "{\"a\":{\"ts\":2},\"b c\":{\"ts\":2},\"c\":{\"ts\":2,\"v\":1}}",
               ign, 1, 0, sup);
  /* .* is for keys only, and ["*"] is the literal key "*". */
  const char *none[] = {NULL};
  check_ignore("[{\"ts\":1}]", "[{\"ts\":2}]", ign, 1, 1, none);
  const char *lit[] = {"$[\"*\"]"};
  const char *suplit[] = {"$[\"*\"]", NULL};
  check_ignore("{\"a\":1}", "{\"a\":2}", lit, 1, 1, none);
  check_ignore("{\"*\":1,\"a\":1}", "{\"*\":2,\"a\":1}", lit, 1, 0, suplit);
}

static void test_ignore_recursive_descent(void **state) {
  (void)state;
  const char *ign[] = {"$..request_id"};
  const char *sup[] = {"$..request_id", NULL};
  /* At the top, deep in objects, inside arrays, and as a whole subtree. */
  check_ignore("{\"request_id\":1,\"a\":{\"b\":[{\"request_id\":2},"
               "{\"c\":{\"request_id\":{\"x\":1}}}]}}",
               "{\"request_id\":9,\"a\":{\"b\":[{\"request_id\":8},"
               "{\"c\":{\"request_id\":{\"x\":2,\"y\":3}}}]}}",
               ign, 1, 0, sup);
  const char *none[] = {NULL};
  check_ignore("{\"request_ids\":1,\"xrequest_id\":1}",
               "{\"request_ids\":2,\"xrequest_id\":2}", ign, 1, 2, none);
  /* Descent to a bracketed key, to any index, and a two-level chain. */
  const char *br[] = {"$..[\"req id\"]"};
  const char *supbr[] = {"$..[\"req id\"]", NULL};
  check_ignore("[{\"req id\":1}]", "[{\"req id\":2}]", br, 1, 0, supbr);
  const char *chain[] = {"$..meta..ts"};
  const char *supchain[] = {"$..meta..ts", NULL};
  check_ignore("{\"x\":[{\"meta\":{\"a\":{\"ts\":1}}}],\"ts\":1}",
               "{\"x\":[{\"meta\":{\"a\":{\"ts\":2}}}],\"ts\":1}", chain, 1, 0,
               supchain);
  check_ignore("{\"ts\":1}", "{\"ts\":2}", chain, 1, 1, none);
}

/* The suppressed list names each pattern that hid something, once, in the
 * order first hit; patterns that hid nothing are absent. When several
 * patterns cover a difference, the shallowest wins, then list order. */
static void test_suppressed_list(void **state) {
  (void)state;
  const char *ign[] = {"$.unused", "$..ts", "$.a.b", "$.a", "$.c[*]"};
  const char *sup[] = {"$..ts", "$.a", "$.c[*]", NULL};
  check_ignore(
      "{\"x\":{\"ts\":1},\"y\":[{\"ts\":1},{\"ts\":1}],\"a\":{\"b\":1,\"ts\":1},"
      "\"c\":[1,2,3]}",
      "{\"x\":{\"ts\":2},\"y\":[{\"ts\":2},{\"ts\":2}],\"a\":{\"b\":2,\"ts\":2},"
      "\"c\":[3,2]}",
      ign, KG_ARRAY_SIZE(ign), 0, sup);
  /* Invalid patterns are skipped, not fatal. */
  const char *bad[] = {"meta", "$.[", "$.meta"};
  const char *supm[] = {"$.meta", NULL};
  check_ignore("{\"meta\":1}", "{\"meta\":2}", bad, 3, 0, supm);
}

static void test_max_cap_counts_total(void **state) {
  (void)state;
  kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT;
  kg_buf_appends(&a, "[");
  kg_buf_appends(&b, "[");
  for (int i = 0; i < 300; i++) {
    kg_buf_appendf(&a, "%s{\"v\":%d}", i ? "," : "", i);
    kg_buf_appendf(&b, "%s{\"v\":%d}", i ? "," : "", i + 1);
  }
  kg_buf_appends(&a, ",1]");
  kg_buf_appends(&b, "]");
  kg_diffs d;
  memset(&d, 0, sizeof(d));
  d.max = 5;
  assert_int_equal(kg_jsondiff(a.data, a.len, b.data, b.len, NULL, &d), 0);
  assert_int_equal(d.n, 5);
  assert_int_equal(d.total, 301);
  check_diff(&d, 0, "$[0].v", "$[0].v", "0", "1");
  check_diff(&d, 4, "$[4].v", "$[4].v", "4", "5");
  kg_diffs_free(&d);
  /* max 0 means 100. */
  memset(&d, 0, sizeof(d));
  assert_int_equal(kg_jsondiff(a.data, a.len, b.data, b.len, NULL, &d), 0);
  assert_int_equal(d.n, 100);
  assert_int_equal(d.total, 301);
  kg_diffs_free(&d);
  kg_buf_free(&a);
  kg_buf_free(&b);
}

/* --- deep and large documents ------------------------------------------ */

static char *nested(size_t depth, const char *open, const char *leaf,
                    const char *close) {
  kg_buf b = KG_BUF_INIT;
  for (size_t i = 0; i < depth; i++) kg_buf_appends(&b, open);
  kg_buf_appends(&b, leaf);
  for (size_t i = 0; i < depth; i++) kg_buf_appends(&b, close);
  return kg_buf_steal(&b, NULL);
}

typedef struct deep_case {
  size_t ok;   /* tests passed (set by the thread) */
} deep_case;

/* jansson accepts 2047 nested containers; diff the deepest on a 2 MB stack
 * (libuv's pool threads get 8 MB; a release build needs under 400 KB, ASan
 * without its fake stack 1.5 MB), with patterns active so every level steps
 * the matchers, including an unordered array at the bottom. */
static void *deep_thread(void *arg) {
  deep_case *c = arg;
  const size_t D = 2047;
  /* D - 2 objects, the array, and the object inside it. */
  char *a = nested(D - 2, "{\"k\":", "[1,2,{\"n\":1}]", "}");
  char *b = nested(D - 2, "{\"k\":", "[{\"n\":2},2,1]", "}");
  const char *ign[] = {"$..zz", "$..k..n"};
  const char *uno[] = {"$..k"};
  kg_jsondiff_opts o = {ign, 2, uno, 1, NULL};
  kg_diffs d;
  memset(&d, 0, sizeof(d));
  if (kg_jsondiff(a, strlen(a), b, strlen(b), &o, &d) == 0 && d.n == 0 &&
      d.nsuppressed == 2) /* $..k..n, and the reordering $..k hid */
    c->ok++;
  kg_diffs_free(&d);
  memset(&d, 0, sizeof(d));
  if (kg_jsondiff(a, strlen(a), b, strlen(b), NULL, &d) == 0 && d.n == 2 &&
      strlen(d.v[0].where) == 1 + 2 * (D - 2) + 3 &&
      strcmp(d.v[0].pattern, d.v[0].where) == 0)
    c->ok++;
  kg_diffs_free(&d);
  free(a);
  free(b);
  /* Arrays, innermost value differing: one leaf-most difference. */
  a = nested(D, "[", "1", "]");
  b = nested(D, "[", "2", "]");
  memset(&d, 0, sizeof(d));
  if (kg_jsondiff(a, strlen(a), b, strlen(b), NULL, &d) == 0 && d.n == 1 &&
      strlen(d.v[0].where) == 1 + 3 * D && strcmp(d.v[0].master, "1") == 0)
    c->ok++;
  kg_diffs_free(&d);
  free(a);
  free(b);
  /* One level more is not JSON (jansson's limit). */
  a = nested(D + 1, "[", "1", "]");
  memset(&d, 0, sizeof(d));
  if (kg_jsondiff(a, strlen(a), "1", 1, NULL, &d) == -1) c->ok++;
  if (kg_jsondiff("1", 1, a, strlen(a), NULL, &d) == -2) c->ok++;
  free(a);
  return NULL;
}

static void test_deep_nesting(void **state) {
  (void)state;
  deep_case c = {0};
  pthread_attr_t attr;
  pthread_t t;
  assert_int_equal(pthread_attr_init(&attr), 0);
  assert_int_equal(pthread_attr_setstacksize(&attr, 2 << 20), 0);
  assert_int_equal(pthread_create(&t, &attr, deep_thread, &c), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  pthread_attr_destroy(&attr);
  assert_int_equal(c.ok, 5);
}

/* A ~1 MB document of records, with a few planted differences. */
static void big_doc(kg_buf *b, bool shadow) {
  kg_buf_appends(b, "{\"meta\":{\"ts\":");
  kg_buf_appendf(b, "%d", shadow ? 2 : 1);
  kg_buf_appends(b, "},\"items\":[");
  for (int i = 0; i < 8000; i++) {
    int price = i * 3;
    if (shadow && (i == 10 || i == 7777)) price++;
    kg_buf_appendf(b,
                   "%s{\"id\":%d,\"name\":\"item \\u00e9 %d\",\"price\":%d,"
                   "\"ratio\":%d.25,\"tags\":[\"a\",\"b\",\"c%d\"],"
                   "\"ok\":%s,\"none\":null,\"updated_at\":\"2024-01-%02d\"}",
                   i ? "," : "", i, i, price, i % 100, i % 7,
                   i % 2 ? "true" : "false", shadow ? 2 : 1);
  }
  kg_buf_appends(b, "]}");
}

static void test_large_documents(void **state) {
  (void)state;
  kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT;
  big_doc(&a, false);
  big_doc(&b, true);
  assert_true(a.len > 1000000);
  const char *ign[] = {"$.meta.ts", "$.items[*].updated_at"};
  kg_jsondiff_opts o = {ign, 2, NULL, 0, NULL};
  kg_diffs d;
  memset(&d, 0, sizeof(d));
  assert_int_equal(kg_jsondiff(a.data, a.len, b.data, b.len, &o, &d), 0);
  assert_int_equal(d.n, 2);
  check_diff(&d, 0, "$.items[10].price", "$.items[10].price", "30", "31");
  check_diff(&d, 1, "$.items[7777].price", "$.items[7777].price", "23331",
             "23332");
  assert_int_equal(d.nsuppressed, 2);
  kg_diffs_free(&d);
  /* Identical documents. */
  memset(&d, 0, sizeof(d));
  assert_int_equal(kg_jsondiff(a.data, a.len, a.data, a.len, &o, &d), 0);
  assert_int_equal(d.total, 0);
  assert_int_equal(d.nsuppressed, 0);
  kg_diffs_free(&d);
  kg_buf_free(&a);
  kg_buf_free(&b);
}

/* --- property: same value, different spelling ---------------------------- */

/* Writes one random value twice: into a as plainly as possible, into b with
 * the same meaning but every freedom JSON allows taken (keys reversed,
 * numbers respelled, strings fully \u-escaped, arrays under key "u"
 * reversed). */
static void gen_value(kg_buf *a, kg_buf *b, unsigned *seed, int depth) {
  static const char *const keys[] = {"id", "u", "a b", "\xc3\xa9", "", "x"};
  /* Containers near the top, so that most values have some structure. */
  unsigned kind = depth >= 4 ? 3 + lcg(seed) % 3 : lcg(seed) % (depth > 0 ? 6 : 3);
  if (kind == 0) {
    int v = (int)(lcg(seed) % 2001) - 1000;
    static const char *const fmt[] = {"%d", "%d.0", "%de0", "%d0e-1"};
    kg_buf_appendf(a, "%d", v);
    kg_buf_appendf(b, fmt[lcg(seed) % 4], v);
  } else if (kind == 1) {
    static const char alphabet[] = "ab\"\\\n/\x01\xc3\xa9";
    size_t n = lcg(seed) % 6;
    kg_buf raw = KG_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
      size_t c = lcg(seed) % 8; /* index 7 is the 2-byte é */
      kg_buf_append(&raw, alphabet + c, c == 7 ? 2 : 1);
    }
    kg_buf_append(a, "\"", 1);
    kg_buf_append(b, "\"", 1);
    for (size_t i = 0; i < raw.len; i++) {
      unsigned char c = (unsigned char)raw.data[i];
      if (c == 0xc3) { /* é */
        kg_buf_append(a, raw.data + i, 2);
        kg_buf_appends(b, "\\u00E9");
        i++;
        continue;
      }
      if (c == '"' || c == '\\')
        kg_buf_appendf(a, "\\%c", c);
      else if (c < 0x20)
        kg_buf_appendf(a, "\\u%04x", c);
      else
        kg_buf_append(a, raw.data + i, 1);
      kg_buf_appendf(b, "\\u%04X", c);
    }
    kg_buf_append(a, "\"", 1);
    kg_buf_append(b, "\"", 1);
    kg_buf_free(&raw);
  } else if (kind == 2) {
    static const char *const lit[] = {"true", "false", "null"};
    const char *l = lit[lcg(seed) % 3];
    kg_buf_appends(a, l);
    kg_buf_appends(b, l);
  } else if (kind == 3) {
    size_t n = lcg(seed) % 5;
    kg_buf ka[6], kb[6];
    bool used[6] = {false};
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
      size_t k = lcg(seed) % 6;
      if (used[k]) continue;
      used[k] = true;
      ka[m] = (kg_buf)KG_BUF_INIT;
      kb[m] = (kg_buf)KG_BUF_INIT;
      kg_buf_appendf(&ka[m], "\"%s\":", keys[k]);
      kg_buf_appendf(&kb[m], "\"%s\" : ", keys[k]);
      if (k == 1) { /* "u": an array the pattern $..u makes unordered */
        size_t len = lcg(seed) % 4;
        kg_buf *ea = kg_calloc(len ? len : 1, sizeof(kg_buf));
        kg_buf *eb = kg_calloc(len ? len : 1, sizeof(kg_buf));
        for (size_t e = 0; e < len; e++) gen_value(&ea[e], &eb[e], seed, depth - 1);
        kg_buf_append(&ka[m], "[", 1);
        kg_buf_append(&kb[m], "[", 1);
        for (size_t e = 0; e < len; e++) {
          if (e) kg_buf_append(&ka[m], ",", 1);
          if (e) kg_buf_append(&kb[m], ",", 1);
          kg_buf_append(&ka[m], ea[e].data, ea[e].len);
          kg_buf_append(&kb[m], eb[len - 1 - e].data, eb[len - 1 - e].len);
        }
        for (size_t e = 0; e < len; e++) {
          kg_buf_free(&ea[e]);
          kg_buf_free(&eb[e]);
        }
        free(ea);
        free(eb);
        kg_buf_append(&ka[m], "]", 1);
        kg_buf_append(&kb[m], "]", 1);
      } else {
        gen_value(&ka[m], &kb[m], seed, depth - 1);
      }
      m++;
    }
    kg_buf_append(a, "{", 1);
    kg_buf_append(b, "{", 1);
    for (size_t i = 0; i < m; i++) {
      if (i) kg_buf_append(a, ",", 1);
      if (i) kg_buf_append(b, ",", 1);
      kg_buf_append(a, ka[i].data, ka[i].len);
      kg_buf_append(b, kb[m - 1 - i].data, kb[m - 1 - i].len);
    }
    for (size_t i = 0; i < m; i++) {
      kg_buf_free(&ka[i]);
      kg_buf_free(&kb[i]);
    }
    kg_buf_append(a, "}", 1);
    kg_buf_append(b, "}", 1);
  } else {
    size_t n = lcg(seed) % 4;
    kg_buf_append(a, "[", 1);
    kg_buf_append(b, "[ ", 2);
    for (size_t i = 0; i < n; i++) {
      if (i) kg_buf_append(a, ",", 1);
      if (i) kg_buf_append(b, " , ", 3);
      gen_value(a, b, seed, depth - 1);
    }
    kg_buf_append(a, "]", 1);
    kg_buf_append(b, " ]", 2);
  }
}

static void test_random_respellings(void **state) {
  (void)state;
  const char *uno[] = {"$..u"};
  kg_jsondiff_opts o = {NULL, 0, uno, 1, NULL};
  unsigned seed = 12345;
  for (int round = 0; round < 500; round++) {
    kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT, c = KG_BUF_INIT, junk = KG_BUF_INIT;
    gen_value(&a, &b, &seed, 5);
    gen_value(&c, &junk, &seed, 5); /* an unrelated value */
    kg_diffs d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(kg_jsondiff(a.data, a.len, b.data, b.len, &o, &d), 0);
    if (d.total != 0)
      fail_msg("round %d: %s\nvs %s\nfirst at %s", round, a.data, b.data,
               d.v[0].where);
    kg_diffs_free(&d);
    /* Against an unrelated value: every path reported reads back, and its
     * pattern covers it. */
    memset(&d, 0, sizeof(d));
    assert_int_equal(kg_jsondiff(a.data, a.len, c.data, c.len, &o, &d), 0);
    for (size_t i = 0; i < d.n; i++) {
      assert_int_equal(kg_jsonpath_check(d.v[i].where, NULL, 0), 0);
      assert_true(kg_jsonpath_match(d.v[i].pattern, d.v[i].where));
      assert_true(d.v[i].master != NULL || d.v[i].shadow != NULL);
    }
    kg_diffs_free(&d);
    kg_buf_free(&a);
    kg_buf_free(&b);
    kg_buf_free(&c);
    kg_buf_free(&junk);
  }
}

/* --- threads ------------------------------------------------------------ */

typedef struct par_case {
  const char *a, *b;
  size_t n, nsup;
} par_case;

static void *par_thread(void *arg) {
  par_case *c = arg;
  const char *ign[] = {"$..ts"};
  const char *uno[] = {"$.s"};
  kg_jsondiff_opts o = {ign, 1, uno, 1, NULL};
  for (int i = 0; i < 200; i++) {
    kg_diffs d;
    memset(&d, 0, sizeof(d));
    if (kg_jsondiff(c->a, strlen(c->a), c->b, strlen(c->b), &o, &d) == 0) {
      c->n += d.n;
      c->nsup += d.nsuppressed;
    }
    kg_diffs_free(&d);
  }
  return NULL;
}

/* Concurrent diffs share nothing (the thread pool runs many at once). */
static void test_threads(void **state) {
  (void)state;
  enum { T = 4 };
  pthread_t t[T];
  par_case c[T];
  for (int i = 0; i < T; i++) {
    c[i] = (par_case){"{\"s\":[3,2,1],\"ts\":1,\"o\":{\"a\":1,\"b\":[1]}}",
                      "{\"o\":{\"b\":[2],\"a\":1},\"ts\":2,\"s\":[1,2,3]}", 0,
                      0};
    assert_int_equal(pthread_create(&t[i], NULL, par_thread, &c[i]), 0);
  }
  for (int i = 0; i < T; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(c[i].n, 200);
    assert_int_equal(c[i].nsup, 400); /* $..ts and the reordered $.s */
  }
}

/* --- patterns ------------------------------------------------------------ */

static void test_jsonpath_check(void **state) {
  (void)state;
  const char *good[] = {
      "$",          "$.a",         "$.a.b[3]",        "$[*]",
      "$.*",        "$..x",        "$..[*]",          "$..*",
      "$[\"a b\"]", "$..[\"\\u00e9\"]", "$.items[*].updated_at", "$[0]",
      "$._A9",      "$[\"\"]",     "$..a..b[2].*",    "$[\"*\"]",
  };
  for (size_t i = 0; i < KG_ARRAY_SIZE(good); i++) {
    char err[128] = "junk";
    assert_int_equal(kg_jsonpath_check(good[i], err, sizeof(err)), 0);
    assert_string_equal(err, "");
  }
  struct {
    const char *p, *msg;
  } bad[] = {
      {"", "offset 0: a path starts with '$'"},
      {"meta.ts", "offset 0: a path starts with '$'"},
      {"$.", "offset 2: expected a name or '*'"},
      {"$..", "offset 3: expected a name, '*' or '['"},
      {"$...a", "offset 3: expected a name, '*' or '['"},
      {"$a", "offset 1: expected '.' or '['"},
      {"$.a b", "offset 3: expected '.' or '['"},
      {"$.2fa", "offset 2: expected a name or '*'"},
      {"$[", "offset 2: expected an index, '*' or a JSON string"},
      {"$[01]", "offset 2: array index with a leading zero"},
      {"$[-1]", "offset 2: expected an index"},
      {"$[x]", "offset 2: expected an index"},
      {"$[1", "offset 3: expected ']'"},
      {"$[*", "offset 3: expected ']'"},
      {"$[\"a", "offset 2: unterminated key string"},
      {"$[\"\\x\"]", "offset 2: key is not a valid JSON string"},
      {"$[\"a\"", "offset 5: expected ']'"},
      {"$[\"\\u0000\"]", "offset 2: key contains U+0000"},
      {"$[99999999999999999999999]", "offset 1: array index too large"},
      {"$.a.", "offset 4: expected a name or '*'"},
  };
  for (size_t i = 0; i < KG_ARRAY_SIZE(bad); i++) {
    char err[128];
    assert_int_equal(kg_jsonpath_check(bad[i].p, err, sizeof(err)), -1);
    if (strncmp(err, bad[i].msg, strlen(bad[i].msg)) != 0)
      fail_msg("%s: got \"%s\", want \"%s...\"", bad[i].p, err, bad[i].msg);
  }
  /* The segment limit (one bit per segment in the matcher). */
  kg_buf p = KG_BUF_INIT;
  kg_buf_appends(&p, "$");
  for (int i = 0; i < 63; i++) kg_buf_appends(&p, ".a");
  assert_int_equal(kg_jsonpath_check(p.data, NULL, 0), 0);
  kg_buf_appends(&p, ".a");
  char err[128];
  assert_int_equal(kg_jsonpath_check(p.data, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "more than 63 segments"));
  /* A tiny error buffer is still terminated. */
  char small[4];
  assert_int_equal(kg_jsonpath_check("x", small, sizeof(small)), -1);
  assert_int_equal(strlen(small), 3);
  kg_buf_free(&p);
}

static void test_jsonpath_match(void **state) {
  (void)state;
  struct {
    const char *pattern, *path;
    bool want;
  } cases[] = {
      {"$.meta", "$.meta", true},
      {"$.meta", "$.meta.ts", true},
      {"$.meta", "$.meta[3].x", true},
      {"$.meta", "$.metadata", false},
      {"$.meta.ts", "$.meta", false},
      {"$", "$", true},
      {"$", "$.a[1]", true},
      {"$.items[*].x", "$.items[3].x", true},
      {"$.items[*].x", "$.items[*].x", true},
      {"$.items[3].x", "$.items[3].x", true},
      {"$.items[3].x", "$.items[4].x", false},
      {"$.items[3].x", "$.items[*].x", false},
      {"$.items[*].x", "$.items.x", false},
      {"$..request_id", "$.request_id", true},
      {"$..request_id", "$.a[2].b.request_id", true},
      {"$..request_id", "$.a[2].b.request_id.x", true},
      {"$..request_id", "$.request_ids", false},
      {"$..request_id", "$", false},
      {"$..[*]", "$.a[1]", true},
      {"$..[*]", "$.a.b", false},
      {"$.*", "$.a", true},
      {"$.*", "$[\"odd key\"].x", true},
      {"$.*", "$[0]", false},
      {"$[*]", "$.a", false},
      {"$.*.ts", "$.a.ts", true},
      {"$.*.ts", "$.a.b.ts", false},
      {"$..a.b", "$.x.a.y.a.b", true},
      {"$..a.b", "$.x.a.y.b", false},
      {"$.a", "$[\"a\"]", true},
      {"$[\"\\u00e9\"]", "$[\"\xc3\xa9\"]", true},
      {"$[\"a b\"]", "$[\"a b\"].c", true},
      {"$[\"*\"]", "$.a", false},
      {"$[\"*\"]", "$[\"*\"]", true},
      /* Malformed pattern or path: no match. */
      {"meta", "$.meta", false},
      {"$.meta", "meta", false},
      {"$.meta", "$..meta", false},
      {"$.meta", "$.*", false},
      {NULL, "$", false},
      {"$", NULL, false},
  };
  for (size_t i = 0; i < KG_ARRAY_SIZE(cases); i++)
    if (kg_jsonpath_match(cases[i].pattern, cases[i].path) != cases[i].want)
      fail_msg("match(%s, %s) should be %d", cases[i].pattern, cases[i].path,
               cases[i].want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_key_order_and_whitespace),
      cmocka_unit_test(test_scalar_change_reports_leaf),
      cmocka_unit_test(test_type_changes),
      cmocka_unit_test(test_nested_added_removed),
      cmocka_unit_test(test_arrays_by_index),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_strings_unicode_and_escapes),
      cmocka_unit_test(test_duplicate_keys),
      cmocka_unit_test(test_invalid_json),
      cmocka_unit_test(test_path_quoting),
      cmocka_unit_test(test_unordered_basic),
      cmocka_unit_test(test_unordered_nested_and_deep_patterns),
      cmocka_unit_test(test_unordered_with_ignored_fields),
      cmocka_unit_test(test_unordered_large),
      cmocka_unit_test(test_ignore_exact_path),
      cmocka_unit_test(test_ignore_subtree),
      cmocka_unit_test(test_ignore_any_index),
      cmocka_unit_test(test_ignore_any_key),
      cmocka_unit_test(test_ignore_recursive_descent),
      cmocka_unit_test(test_suppressed_list),
      cmocka_unit_test(test_max_cap_counts_total),
      cmocka_unit_test(test_deep_nesting),
      cmocka_unit_test(test_large_documents),
      cmocka_unit_test(test_random_respellings),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_jsonpath_check),
      cmocka_unit_test(test_jsonpath_match),
  };
  return cmocka_run_group_tests_name("jsondiff", tests, NULL, NULL);
}
