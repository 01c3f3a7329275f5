/* Unit tests: the per-pair comparison's text path (src/compare/compare.c),
 * where a body's bytes must never be read as a C string and a change the
 * kept diff does not show must still count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "compare/compare.h"
#include "http/hdrs.h"

/* Compares two text/plain bodies with no rules and no noise. */
static void compare_text(const char *a, size_t alen, const char *b, size_t blen,
                         kg_pair_result *out) {
  kg_hdrs h = KG_HDRS_INIT;
  kg_hdrs_add(&h, "Content-Type", 12, "text/plain", 10);
  kg_compare_settings set = {.compare_headers = true};
  kg_compare_opts o = {.settings = &set, .max_body_bytes = 8u << 20};
  kg_resp_view va = {.backend = "production", .status = 200, .hdrs = &h, .body = a,
                     .body_len = alen, .bytes = alen};
  kg_resp_view vb = {.backend = "shadow", .status = 200, .hdrs = &h, .body = b,
                     .body_len = blen, .bytes = blen};
  kg_compare_pair(&va, &vb, &o, out);
  kg_hdrs_free(&h);
}

/* A NUL byte on a line before the change: the change is still found, and
 * a value with a NUL shows it as U+2400 rather than ending there. */
static void test_nul_bytes(void **state) {
  (void)state;
  static const char a[] = "one\nx=\"5\0\"\nprice 120\n";
  static const char b[] = "one\nx=\"5\0\"\nprice 125\n";
  kg_pair_result r;
  compare_text(a, sizeof a - 1, b, sizeof b - 1, &r);
  assert_false(r.equal);
  assert_int_equal(r.body.total, 1);
  assert_string_equal(r.body.v[0].where, "line 3");
  assert_string_equal(r.body.v[0].master, "price 120");
  assert_string_equal(r.body.v[0].shadow, "price 125");
  kg_pair_result_free(&r);

  static const char c[] = "one\nab\0X\n";
  static const char d[] = "one\nab\0Y\n";
  compare_text(c, sizeof c - 1, d, sizeof d - 1, &r);
  assert_int_equal(r.body.total, 1);
  assert_string_equal(r.body.v[0].master, "ab\xe2\x90\x80X");
  assert_string_equal(r.body.v[0].shadow, "ab\xe2\x90\x80Y");
  /* the noise key tells the two apart too */
  assert_non_null(strstr(r.body.v[0].pattern, "ab\xe2\x90\x80X -> ab\xe2\x90\x80Y"));
  kg_pair_result_free(&r);
}

/* A changed line after 300 KB of one unchanged line: past the 256 KiB the
 * kept diff shows, but still a difference. */
static void test_change_beyond_the_kept_diff(void **state) {
  (void)state;
  size_t n = 300 * 1024;
  kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT;
  for (int side = 0; side < 2; side++) {
    kg_buf *x = side ? &b : &a;
    kg_buf_reserve(x, n + 32);
    memset(x->data, 'x', n);
    x->len = n;
    kg_buf_appendf(x, "\nprice %d\n", side ? 125 : 120);
  }
  kg_pair_result r;
  compare_text(a.data, a.len, b.data, b.len, &r);
  assert_false(r.equal);
  assert_int_equal(r.body.total, 1);
  assert_string_equal(r.body.v[0].where, "line 2");
  assert_string_equal(r.body.v[0].master, "price 120");
  assert_true(r.diff.len < 256 * 1024 + 64); /* what is kept stays capped */
  assert_non_null(strstr(r.diff.data, "diff truncated"));
  kg_pair_result_free(&r);
  kg_buf_free(&a);
  kg_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nul_bytes),
      cmocka_unit_test(test_change_beyond_the_kept_diff),
  };
  return cmocka_run_group_tests_name("compare", tests, NULL, NULL);
}
