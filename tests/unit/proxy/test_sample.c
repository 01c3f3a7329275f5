/* Unit tests: the per-request sampler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "proxy/sample.h"

static void test_extremes_never_consult_rng(void **state) {
  (void)state;
  kg_rng r;
  kg_rng_seed(&r, 42);
  uint64_t before = r.state;
  for (int i = 0; i < 1000; i++) {
    assert_true(kg_sample(&r, 1.0));
    assert_true(kg_sample(&r, 7.0));
    assert_false(kg_sample(&r, 0.0));
    assert_false(kg_sample(&r, -1.0));
    assert_false(kg_sample(&r, NAN)); /* NaN shadows nothing */
  }
  assert_int_equal(before, r.state);
}

static void test_share_is_respected(void **state) {
  (void)state;
  const double shares[] = {0.01, 0.1, 0.25, 0.5, 0.9};
  for (size_t s = 0; s < sizeof(shares) / sizeof(shares[0]); s++) {
    kg_rng r;
    kg_rng_seed(&r, 1234 + s);
    int hits = 0, n = 200000;
    for (int i = 0; i < n; i++) hits += kg_sample(&r, shares[s]);
    double got = (double)hits / n;
    /* 200k Bernoulli trials: 5 standard deviations is < 0.6 points. */
    assert_true(got > shares[s] - 0.006 && got < shares[s] + 0.006);
  }
}

static void test_double_range_and_determinism(void **state) {
  (void)state;
  kg_rng a, b;
  kg_rng_seed(&a, 99);
  kg_rng_seed(&b, 99);
  for (int i = 0; i < 100000; i++) {
    double x = kg_rng_double(&a);
    assert_true(x >= 0.0 && x < 1.0);
    assert_true(x == kg_rng_double(&b));
  }
}

static void test_seeds_differ(void **state) {
  (void)state;
  kg_rng a, b;
  kg_rng_seed(&a, 1);
  kg_rng_seed(&b, 2);
  int same = 0;
  for (int i = 0; i < 64; i++) same += kg_rng_next(&a) == kg_rng_next(&b);
  assert_int_equal(same, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_extremes_never_consult_rng),
      cmocka_unit_test(test_share_is_respected),
      cmocka_unit_test(test_double_range_and_determinism),
      cmocka_unit_test(test_seeds_differ),
  };
  return cmocka_run_group_tests_name("sample", tests, NULL, NULL);
}
