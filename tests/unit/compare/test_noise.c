/* Unit tests: learned noise statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "compare/noise.h"

static void test_threshold_and_min_pairs(void **state) {
  (void)state;
  kg_noise *n = kg_noise_new(0.2, 10);
  const char *ts[] = {"$.meta.ts"};
  const char *both[] = {"$.meta.ts", "$.price"};
  kg_noise_view v;
  /* 9 pairs, all noisy at $.meta.ts: still under min_pairs. */
  for (int i = 0; i < 9; i++) kg_noise_observe(n, "GET /a", ts, 1);
  kg_noise_view_get(n, "GET /a", &v);
  assert_int_equal(v.n, 0);
  kg_noise_view_free(&v);
  kg_noise_observe(n, "GET /a", both, 2); /* 10th pair */
  kg_noise_view_get(n, "GET /a", &v);
  assert_true(kg_noise_view_has(&v, "$.meta.ts"));
  assert_false(kg_noise_view_has(&v, "$.price")); /* 1 of 10 < 20% */
  kg_noise_view_free(&v);
  /* 2 of 11 pairs is 18%: not noisy; 3 of 12 is 25%: noisy. */
  kg_noise_observe(n, "GET /a", both, 2);
  kg_noise_view_get(n, "GET /a", &v);
  assert_false(kg_noise_view_has(&v, "$.price"));
  kg_noise_view_free(&v);
  kg_noise_observe(n, "GET /a", both, 2);
  kg_noise_view_get(n, "GET /a", &v);
  assert_true(kg_noise_view_has(&v, "$.price"));
  kg_noise_view_free(&v);
  /* Other endpoints learn separately. */
  kg_noise_view_get(n, "GET /b", &v);
  assert_int_equal(v.n, 0);
  kg_noise_view_free(&v);
  kg_noise_free(n);
}

static void test_agreeing_pairs_dilute(void **state) {
  (void)state;
  kg_noise *n = kg_noise_new(0.5, 2);
  const char *p[] = {"$.x", "$.x"}; /* duplicates count once */
  kg_noise_observe(n, "e", p, 2);
  for (int i = 0; i < 3; i++) kg_noise_observe(n, "e", NULL, 0);
  uint64_t pairs, differed;
  kg_noise_stats(n, "e", "$.x", &pairs, &differed);
  assert_int_equal(pairs, 4);
  assert_int_equal(differed, 1);
  kg_noise_view v;
  kg_noise_view_get(n, "e", &v);
  assert_int_equal(v.n, 0);
  kg_noise_view_free(&v);
  kg_noise_free(n);
}

static void test_bounded(void **state) {
  (void)state;
  kg_noise *n = kg_noise_new(0.1, 1);
  char buf[64];
  for (int i = 0; i < KG_NOISE_MAX_PATTERNS + 100; i++) {
    snprintf(buf, sizeof(buf), "$.k%d", i);
    const char *one[] = {buf};
    kg_noise_observe(n, "e", one, 1);
  }
  uint64_t pairs, differed;
  snprintf(buf, sizeof(buf), "$.k%d", KG_NOISE_MAX_PATTERNS + 50);
  kg_noise_stats(n, "e", buf, &pairs, &differed);
  assert_int_equal(differed, 0); /* past the cap: not tracked */
  kg_noise_stats(n, "e", "$.k0", &pairs, &differed);
  assert_int_equal(differed, 1);
  for (int i = 0; i < KG_NOISE_MAX_ENDPOINTS + 10; i++) {
    snprintf(buf, sizeof(buf), "GET /e%d", i);
    kg_noise_observe(n, buf, NULL, 0);
  }
  kg_noise_stats(n, "GET /e4100", "$.x", &pairs, &differed);
  assert_int_equal(pairs, 0);
  kg_noise_free(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_threshold_and_min_pairs),
      cmocka_unit_test(test_agreeing_pairs_dilute),
      cmocka_unit_test(test_bounded),
  };
  return cmocka_run_group_tests_name("noise", tests, NULL, NULL);
}
