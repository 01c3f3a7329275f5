/* Unit tests: a batch's aggregates and the histogram blob (storeagg.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "results/storeagg.h"

static kg_hist *hist_new(void) {
  kg_hist *h = kg_malloc(sizeof(*h));
  kg_hist_init(h);
  return h;
}

/* Encoding and merging back gives the same histogram, and merging adds. */
static void test_blob_round_trip(void **state) {
  (void)state;
  kg_hist *h = hist_new(), *back = hist_new();
  const uint64_t vals[] = {0, 1, 255, 256, 1000, 1000, 5000, 123456, KG_HIST_MAX_VALUE};
  for (size_t i = 0; i < KG_ARRAY_SIZE(vals); i++) kg_hist_add(h, vals[i]);
  kg_buf b = KG_BUF_INIT;
  kg_storeagg_hist_encode(h, &b);
  assert_true(b.len < 64); /* sparse: nine values, not 26 KiB */
  assert_int_equal(kg_storeagg_hist_merge(back, b.data, b.len), 0);
  assert_memory_equal(h, back, sizeof(*h));
  assert_int_equal(kg_storeagg_hist_merge(back, b.data, b.len), 0);
  assert_int_equal(kg_hist_count(back), 2 * KG_ARRAY_SIZE(vals));
  assert_int_equal(kg_hist_min(back), 0);
  assert_int_equal(kg_hist_max(back), KG_HIST_MAX_VALUE);
  /* empty */
  kg_buf e = KG_BUF_INIT;
  kg_hist_init(h);
  kg_storeagg_hist_encode(h, &e);
  assert_int_equal(e.len, 1);
  assert_int_equal(kg_storeagg_hist_merge(back, e.data, e.len), 0);
  assert_int_equal(kg_hist_count(back), 2 * KG_ARRAY_SIZE(vals));
  kg_buf_free(&b);
  kg_buf_free(&e);
  free(h);
  free(back);
}

/* A blob that is not one (stored data is untrusted) is refused and leaves
 * the target as it was. */
static void test_blob_malformed(void **state) {
  (void)state;
  kg_hist *h = hist_new(), *want = hist_new();
  kg_hist_add(h, 7);
  kg_hist_add(want, 7);
  static const struct { const char *b; size_t n; } bad[] = {
      {"", 0},                          /* nothing */
      {"\x02", 1},                      /* unknown format */
      {"\x01\x05", 2},                  /* cut after min */
      {"\x01\x05\x03\x05\x05\x01", 6},  /* min > max */
      {"\x01\x01\x05\x06\x01\x01\x00\x01", 8}, /* a repeated bucket */
      {"\x01\x01\x05\x06\x01\x00", 6},  /* a bucket counted 0 times */
      {"\x01\x01\x05\x06\xff\xff\xff\x7f\x01", 9}, /* bucket out of range */
      {"\x01\x01\x05\x06\x01\x80", 6},  /* a varint cut short */
      {"\x01\x01\x05\x06", 4},          /* no buckets but a min */
      {"\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11}, /* over 64 bits */
  };
  for (size_t i = 0; i < KG_ARRAY_SIZE(bad); i++) {
    assert_int_equal(kg_storeagg_hist_merge(h, bad[i].b, bad[i].n), -1);
    assert_memory_equal(h, want, sizeof(*h));
  }
  free(h);
  free(want);
}

/* What a request counts as: a failed shadow or master is an error, never
 * a difference; a shadow that answered differently is a difference even
 * when another shadow failed. */
static void test_outcome(void **state) {
  (void)state;
  kg_resp_view v[3] = {{.backend = "m", .status = 200}, {.backend = "a", .status = 200},
                       {.backend = "b", .status = 200}};
  const char *roles[3] = {"master", "shadow", "shadow"};
  kg_pair_result pairs[3] = {{.equal = true}, {.equal = true}, {.equal = true}};
  kg_result r = {.resps = v, .roles = roles, .pairs = pairs, .n = 2, .equal = true};
  assert_int_equal(kg_storeagg_outcome(&r), KG_OUTCOME_EQUAL);
  r.equal = false;
  v[1].error = "connection refused";
  pairs[1].equal = false;
  assert_int_equal(kg_storeagg_outcome(&r), KG_OUTCOME_ERROR);
  r.n = 3;
  pairs[2].equal = false;
  assert_int_equal(kg_storeagg_outcome(&r), KG_OUTCOME_DIFFERING);
  v[0].error = "timeout";
  assert_int_equal(kg_storeagg_outcome(&r), KG_OUTCOME_ERROR);
  v[0].error = NULL;
  roles[2] = "secondary"; /* noise learning, not a comparison */
  assert_int_equal(kg_storeagg_outcome(&r), KG_OUTCOME_ERROR);
}

/* A batch sums per key; a result's repeated location counts once. */
static void test_batch_sums(void **state) {
  (void)state;
  kg_resp_view v[2] = {{.backend = "m", .status = 200, .elapsed = 0.002},
                       {.backend = "s", .status = 200, .elapsed = 0.003}};
  const char *roles[2] = {"master", "shadow"};
  kg_pair_result pairs[2] = {{.equal = true}, {.equal = false}};
  kg_result r = {.endpoint = "GET /a", .resps = v, .roles = roles, .pairs = pairs, .n = 2,
                 .ts = {.tv_sec = 6000}};
  kg_storeagg a = KG_STOREAGG_INIT;
  const char *locs[3] = {"$.a", "$.b", "$.a"};
  kg_storeagg_add(&a, &r, KG_OUTCOME_DIFFERING, locs, 3);
  kg_storeagg_add(&a, &r, KG_OUTCOME_DIFFERING, locs, 1);
  r.ts.tv_sec = 6060; /* the next minute */
  kg_storeagg_add(&a, &r, KG_OUTCOME_EQUAL, NULL, 0);
  assert_int_equal(a.nreq, 2);
  assert_int_equal(a.req[0].minute, 100);
  assert_int_equal(a.req[0].compared, 2);
  assert_int_equal(a.req[0].differing, 2);
  assert_int_equal(a.nbe, 4);
  assert_int_equal(a.be[0].nus, 2);
  assert_string_equal(a.be[0].role, "master");
  assert_int_equal(a.nloc, 2);
  assert_string_equal(a.loc[0].loc, "$.a");
  assert_int_equal(a.loc[0].count, 2);
  assert_int_equal(a.loc[1].count, 1);
  kg_storeagg_free(&a);
}

/* Merging blobs gives what merging their histograms gives; a damaged old
 * blob gives way to the new one, a damaged new one is refused. */
static void test_blob_merge(void **state) {
  (void)state;
  kg_hist *x = hist_new(), *y = hist_new(), *both = hist_new(), *got = hist_new();
  uint64_t vx[] = {5, 300, 300, 70000, 9}, vy[] = {300, 4, 1u << 20, 70001};
  for (size_t i = 0; i < 5; i++) kg_hist_add(x, vx[i]), kg_hist_add(both, vx[i]);
  for (size_t i = 0; i < 4; i++) kg_hist_add(y, vy[i]), kg_hist_add(both, vy[i]);
  kg_buf bx = KG_BUF_INIT, by = KG_BUF_INIT, bv = KG_BUF_INIT, m = KG_BUF_INIT, e = KG_BUF_INIT;
  kg_storeagg_hist_encode(x, &bx);
  kg_storeagg_hist_encode(y, &by);
  kg_storeagg_values_encode(vy, 4, &bv); /* from values: the same blob */
  assert_int_equal(bv.len, by.len);
  assert_memory_equal(bv.data, by.data, by.len);
  assert_int_equal(kg_storeagg_blob_merge(bx.data, bx.len, by.data, by.len, &m), 0);
  assert_int_equal(kg_storeagg_hist_merge(got, m.data, m.len), 0);
  assert_memory_equal(got, both, sizeof(*got));
  kg_buf_reset(&m);
  assert_int_equal(kg_storeagg_blob_merge("\x07", 1, by.data, by.len, &m), 0);
  assert_int_equal(m.len, by.len);
  assert_int_equal(kg_storeagg_blob_merge(bx.data, bx.len, "\x01\x05", 2, &e), -1);
  assert_int_equal(e.len, 0);
  kg_buf_free(&bx);
  kg_buf_free(&by);
  kg_buf_free(&bv);
  kg_buf_free(&m);
  free(x);
  free(y);
  free(both);
  free(got);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_blob_round_trip),
      cmocka_unit_test(test_blob_malformed),
      cmocka_unit_test(test_blob_merge),
      cmocka_unit_test(test_outcome),
      cmocka_unit_test(test_batch_sums),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
