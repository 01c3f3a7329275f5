/* Unit tests: the log-linear latency histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/histogram.h"
#include "proxy/sample.h"

/* Nearest-rank percentile of a sorted array: the reference. */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double q) {
  if (q <= 0) return sorted[0];
  double r = ceil(q / 100.0 * (double)n - 1e-9);
  size_t rank = r < 1 ? 1 : (size_t)r;
  if (rank > n) rank = n;
  return sorted[rank - 1];
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The histogram may report high (never low) by its bucket width. */
static void assert_close(uint64_t got, uint64_t want) {
  if (got < want || (double)(got - want) > (double)want / 128.0 + 1e-9) {
    print_error("got %llu, want %llu (+1/128)\n", (unsigned long long)got,
                (unsigned long long)want);
    fail();
  }
}

static void check_against_reference(uint64_t *vals, size_t n) {
  kg_hist *h = malloc(sizeof(*h));
  assert_non_null(h);
  kg_hist_init(h);
  double sum = 0;
  for (size_t i = 0; i < n; i++) {
    kg_hist_add(h, vals[i]);
    sum += (double)vals[i];
  }
  qsort(vals, n, sizeof(*vals), cmp_u64);
  assert_int_equal(kg_hist_count(h), n);
  assert_int_equal(kg_hist_min(h), vals[0]);
  assert_int_equal(kg_hist_max(h), vals[n - 1]);
  assert_true(fabs(kg_hist_mean(h) - sum / (double)n) <= 1e-6 * (sum / (double)n));
  static const double qs[] = {0, 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100};
  for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
    assert_close(kg_hist_percentile(h, qs[i]), exact_percentile(vals, n, qs[i]));
  assert_int_equal(kg_hist_percentile(h, 100), vals[n - 1]);
  assert_int_equal(kg_hist_percentile(h, 0), vals[0]);
  free(h);
}

static void test_size_is_reasonable(void **state) {
  (void)state;
  assert_true(sizeof(kg_hist) <= 32 * 1024);
  /* At least 1000 s in microseconds must be tracked without clamping. */
  assert_true(KG_HIST_MAX_VALUE >= UINT64_C(1000000000));
}

static void test_empty(void **state) {
  (void)state;
  kg_hist h;
  kg_hist_init(&h);
  assert_int_equal(kg_hist_count(&h), 0);
  assert_int_equal(kg_hist_min(&h), 0);
  assert_int_equal(kg_hist_max(&h), 0);
  assert_true(kg_hist_mean(&h) == 0.0);
  assert_int_equal(kg_hist_percentile(&h, 50), 0);
  assert_int_equal(kg_hist_percentile(&h, 100), 0);
}

static void test_exact_small_values(void **state) {
  (void)state;
  kg_hist h;
  kg_hist_init(&h);
  for (uint64_t v = 1; v <= 100; v++) kg_hist_add(&h, v);
  /* Values below 256 have a bucket each, so everything is exact. */
  assert_int_equal(kg_hist_percentile(&h, 50), 50);
  assert_int_equal(kg_hist_percentile(&h, 90), 90);
  assert_int_equal(kg_hist_percentile(&h, 99), 99);
  assert_int_equal(kg_hist_percentile(&h, 99.5), 100);
  assert_int_equal(kg_hist_percentile(&h, 1), 1);
  assert_int_equal(kg_hist_percentile(&h, 0), 1);
  assert_int_equal(kg_hist_percentile(&h, 100), 100);
  assert_true(kg_hist_mean(&h) == 50.5);

  kg_hist_reset(&h);
  kg_hist_add(&h, 1);
  kg_hist_add(&h, 2);
  assert_int_equal(kg_hist_percentile(&h, 50), 1);
  assert_int_equal(kg_hist_percentile(&h, 50.1), 2);
}

static void test_single_large_value_is_exact_at_extremes(void **state) {
  (void)state;
  kg_hist h;
  kg_hist_init(&h);
  kg_hist_add(&h, 123456789);
  /* One value: every percentile is that value (clamped to min and max). */
  assert_int_equal(kg_hist_percentile(&h, 0), 123456789);
  assert_int_equal(kg_hist_percentile(&h, 50), 123456789);
  assert_int_equal(kg_hist_percentile(&h, 100), 123456789);
}

static void test_zero(void **state) {
  (void)state;
  kg_hist h;
  kg_hist_init(&h);
  kg_hist_add(&h, 0);
  kg_hist_add(&h, 0);
  kg_hist_add(&h, 5);
  assert_int_equal(kg_hist_min(&h), 0);
  assert_int_equal(kg_hist_percentile(&h, 50), 0);
  assert_int_equal(kg_hist_percentile(&h, 66.6), 0);
  assert_int_equal(kg_hist_percentile(&h, 67), 5);
}

static void test_huge_values_clamp(void **state) {
  (void)state;
  kg_hist h;
  kg_hist_init(&h);
  kg_hist_add(&h, UINT64_MAX);
  kg_hist_add(&h, UINT64_C(1) << 40);
  kg_hist_add(&h, KG_HIST_MAX_VALUE);
  kg_hist_add(&h, 1000);
  assert_int_equal(kg_hist_count(&h), 4);
  assert_int_equal(kg_hist_max(&h), KG_HIST_MAX_VALUE);
  assert_int_equal(kg_hist_percentile(&h, 100), KG_HIST_MAX_VALUE);
  assert_int_equal(kg_hist_percentile(&h, 50), KG_HIST_MAX_VALUE);
  assert_close(kg_hist_percentile(&h, 25), 1000); /* bucket 1000..1003 */
  /* The sum did not overflow: the mean is 3/4 of the cap plus a bit. */
  double want = (3.0 * (double)KG_HIST_MAX_VALUE + 1000.0) / 4.0;
  assert_true(fabs(kg_hist_mean(&h) - want) < 1.0);
}

static void test_q_out_of_range(void **state) {
  (void)state;
  kg_hist h;
  kg_hist_init(&h);
  for (uint64_t v = 10; v <= 1000; v += 10) kg_hist_add(&h, v);
  assert_int_equal(kg_hist_percentile(&h, -5), 10);
  assert_int_equal(kg_hist_percentile(&h, NAN), 10);
  assert_int_equal(kg_hist_percentile(&h, 250), 1000);
  assert_int_equal(kg_hist_percentile(&h, INFINITY), 1000);
}

static void test_every_bucket_boundary(void **state) {
  (void)state;
  /* Walk values around every power of two: percentiles of a single value
   * stay within precision, and the reported value never falls below it. */
  for (unsigned k = 0; k < KG_HIST_MAX_BITS; k++) {
    uint64_t base = UINT64_C(1) << k;
    const uint64_t probes[] = {base - 1, base, base + 1, base + base / 3};
    for (size_t i = 0; i < 4; i++) {
      kg_hist h;
      kg_hist_init(&h);
      kg_hist_add(&h, probes[i]);
      kg_hist_add(&h, KG_HIST_MAX_VALUE); /* so the max clamp does not help */
      assert_close(kg_hist_percentile(&h, 50), probes[i]);
    }
  }
}

static void test_uniform_distribution(void **state) {
  (void)state;
  kg_rng r;
  kg_rng_seed(&r, 7);
  size_t n = 200000;
  uint64_t *v = malloc(n * sizeof(*v));
  assert_non_null(v);
  for (size_t i = 0; i < n; i++) v[i] = 1 + kg_rng_next(&r) % 2000000; /* to 2 s */
  check_against_reference(v, n);
  free(v);
}

static void test_skewed_distribution(void **state) {
  (void)state;
  /* Mostly fast requests with a long tail, like real latencies: a
   * log-uniform spread from 1 us to ~1000 s plus a spike. */
  kg_rng r;
  kg_rng_seed(&r, 11);
  size_t n = 100000;
  uint64_t *v = malloc(n * sizeof(*v));
  assert_non_null(v);
  for (size_t i = 0; i < n; i++) {
    if (i % 10 == 0) {
      v[i] = 2500;
    } else {
      double e = kg_rng_double(&r) * 30.0; /* 2^0 .. 2^30 */
      v[i] = (uint64_t)pow(2.0, e);
    }
  }
  check_against_reference(v, n);
  free(v);
}

static void test_merge_equals_combined(void **state) {
  (void)state;
  kg_hist *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b)), *all = malloc(sizeof(*all));
  assert_true(a && b && all);
  kg_hist_init(a);
  kg_hist_init(b);
  kg_hist_init(all);
  kg_rng r;
  kg_rng_seed(&r, 3);
  for (int i = 0; i < 50000; i++) {
    uint64_t x = kg_rng_next(&r) % 100000000;
    kg_hist_add(i % 3 ? a : b, x);
    kg_hist_add(all, x);
  }
  kg_hist_merge(a, b);
  assert_int_equal(memcmp(a, all, sizeof(*a)), 0);

  /* Merging an empty one changes nothing, merging into an empty one copies. */
  kg_hist_init(b);
  kg_hist_merge(a, b);
  assert_int_equal(memcmp(a, all, sizeof(*a)), 0);
  kg_hist_merge(b, all);
  assert_int_equal(memcmp(b, all, sizeof(*b)), 0);
  free(a);
  free(b);
  free(all);
}

/* Exact number of vals (sorted) that are <= v. */
static uint64_t exact_le(const uint64_t *sorted, size_t n, uint64_t v) {
  size_t k = 0;
  while (k < n && sorted[k] <= v) k++;
  return k;
}

/* kg_hist_count_le backs Prometheus's cumulative `le` buckets: it must
 * never count a record above v, may miss only records in v's own bucket,
 * is exact at v < 256, below min and from max up, and never decreases. */
static void test_count_le(void **state) {
  (void)state;
  kg_hist *h = malloc(sizeof(*h));
  assert_non_null(h);
  kg_hist_init(h);
  assert_int_equal(kg_hist_count_le(h, 0), 0);
  assert_int_equal(kg_hist_count_le(h, UINT64_MAX), 0);

  enum { N = 5000 };
  uint64_t *vals = malloc(N * sizeof(*vals));
  assert_non_null(vals);
  kg_rng r;
  kg_rng_seed(&r, 23);
  for (size_t i = 0; i < N; i++) {
    /* Spread over six decades, like latencies in microseconds. */
    uint64_t mag = (uint64_t)pow(10.0, (double)(kg_rng_next(&r) % 6));
    vals[i] = 3 + kg_rng_next(&r) % (mag * 9 + 1);
    kg_hist_add(h, vals[i]);
  }
  qsort(vals, N, sizeof(*vals), cmp_u64);

  uint64_t prev = 0;
  for (uint64_t v = 0; v < 20000000; v = v < 300 ? v + 1 : v + v / 97 + 1) {
    uint64_t got = kg_hist_count_le(h, v);
    uint64_t upper = exact_le(vals, N, v);
    /* Records below v's bucket all count; that bucket starts above
     * v - v/128 - 1. */
    uint64_t floor_v = v - v / 128u - 1u;
    uint64_t lower = v < KG_HIST_LINEAR_MAX ? upper : exact_le(vals, N, floor_v);
    assert_true(got <= upper);
    assert_true(got >= lower);
    assert_true(got >= prev);
    prev = got;
  }
  assert_int_equal(kg_hist_count_le(h, vals[0] - 1), 0);
  assert_int_equal(kg_hist_count_le(h, vals[N - 1]), N);
  assert_int_equal(kg_hist_count_le(h, KG_HIST_MAX_VALUE + 5), N);

  /* Prometheus-style bounds in microseconds on a known set. */
  kg_hist_init(h);
  static const uint64_t known[] = {100, 250, 499, 500, 501, 1000, 1001, 2500, 9999};
  for (size_t i = 0; i < (sizeof(known) / sizeof(known[0])); i++) kg_hist_add(h, known[i]);
  assert_int_equal(kg_hist_count_le(h, 250), 2);
  assert_int_equal(kg_hist_count_le(h, 10000), (sizeof(known) / sizeof(known[0])));
  assert_true(kg_hist_count_le(h, 500) >= 3 && kg_hist_count_le(h, 500) <= 4);
  assert_true(kg_hist_count_le(h, 2500) >= 7 && kg_hist_count_le(h, 2500) <= 8);
  free(vals);
  free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_size_is_reasonable),
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_exact_small_values),
      cmocka_unit_test(test_single_large_value_is_exact_at_extremes),
      cmocka_unit_test(test_zero),
      cmocka_unit_test(test_huge_values_clamp),
      cmocka_unit_test(test_q_out_of_range),
      cmocka_unit_test(test_every_bucket_boundary),
      cmocka_unit_test(test_uniform_distribution),
      cmocka_unit_test(test_skewed_distribution),
      cmocka_unit_test(test_merge_equals_combined),
      cmocka_unit_test(test_count_le),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
