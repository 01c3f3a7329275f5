/* Unit tests: the JSON string writer always produces valid JSON that reads
 * back (with jansson) as the input, invalid UTF-8 replaced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/jsonw.h"

/* Writes s, parses it back, returns the decoded string (owned by *keep). */
static const char *round_trip(const char *s, size_t n, json_t **keep, size_t *outlen) {
  kg_buf b = KG_BUF_INIT;
  kg_jsonw_str(&b, s, n);
  json_error_t err;
  *keep = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
  if (*keep == NULL) fail_msg("not JSON: %s (%s)", b.data, err.text);
  kg_buf_free(&b);
  *outlen = json_string_length(*keep);
  return json_string_value(*keep);
}

static void test_escapes(void **state) {
  (void)state;
  kg_buf b = KG_BUF_INIT;
  kg_jsonw_str(&b, "a\"b\\c\nd\re\tf\x01g/", 14);
  assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g/\"");
  kg_buf_free(&b);
  kg_jsonw_cstr(&b, NULL);
  assert_string_equal(b.data, "null");
  kg_buf_free(&b);
}

static void test_utf8_kept_and_nul(void **state) {
  (void)state;
  const char s[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 a\0b";
  json_t *j;
  size_t n;
  const char *got = round_trip(s, sizeof(s) - 1, &j, &n);
  assert_int_equal(n, sizeof(s) - 1);
  assert_memory_equal(got, s, n);
  json_decref(j);
}

static void test_invalid_utf8_replaced(void **state) {
  (void)state;
  static const char *bad[] = {
      "\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
      "\xc3", "\xe2\x82", "ok\x80ok",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    json_t *j;
    size_t n;
    const char *got = round_trip(bad[i], strlen(bad[i]), &j, &n);
    assert_non_null(strstr(got, "\xEF\xBF\xBD"));
    json_decref(j);
  }
}

static void test_all_bytes(void **state) {
  (void)state;
  char all[256];
  for (int i = 0; i < 256; i++) all[i] = (char)i;
  json_t *j;
  size_t n;
  round_trip(all, sizeof(all), &j, &n);
  assert_true(n >= 128);
  json_decref(j);
}

/* The hand-written number writers agree with printf over edge cases and a
 * sweep of values. */
static void test_numbers_match_printf(void **state) {
  (void)state;
  const uint64_t ints[] = {0, 1, 9, 10, 99, 100, 1499, 4294967296ULL, UINT64_MAX};
  for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
    kg_buf b = KG_BUF_INIT;
    char want[32];
    snprintf(want, sizeof(want), "%llu", (unsigned long long)ints[i]);
    kg_jsonw_u64(&b, ints[i]);
    assert_string_equal(b.data, want);
    kg_buf_free(&b);
  }
  const double reals[] = {0.0, 0.0004, 0.0005, 0.438, 1.5, 2.25, 999.9999, 1000.0,
                          -0.25, -12.3456, 123456789.125, 1e15};
  for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
    kg_buf b = KG_BUF_INIT;
    char want[64];
    snprintf(want, sizeof(want), "%.3f", reals[i]);
    kg_jsonw_fixed3(&b, reals[i]);
    assert_string_equal(b.data, want);
    kg_buf_free(&b);
  }
  for (long us = 0; us < 200000; us += 7) { /* elapsed times as measured */
    double ms = (double)us / 1000.0;
    kg_buf b = KG_BUF_INIT;
    char want[64];
    snprintf(want, sizeof(want), "%.3f", ms);
    kg_jsonw_fixed3(&b, ms);
    assert_string_equal(b.data, want);
    kg_buf_free(&b);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_escapes),
      cmocka_unit_test(test_utf8_kept_and_nul),
      cmocka_unit_test(test_invalid_utf8_replaced),
      cmocka_unit_test(test_all_bytes),
      cmocka_unit_test(test_numbers_match_printf),
  };
  return cmocka_run_group_tests_name("jsonw", tests, NULL, NULL);
}
