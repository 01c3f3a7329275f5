/* Unit tests: minute histogram rows merged into hour rows (pgrollup.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "results/pgrollup.h"
#include "results/storeagg.h"

/* What the rollup emitted, one line per hour row, and each row's
 * histogram. */
#define MAX_OUT 16
typedef struct out {
  char line[MAX_OUT][160];
  kg_hist hist[MAX_OUT];
  size_t n;
  size_t stop_after; /* emit fails from this row on (0: never) */
} out;

static bool collect(void *ctx, const kg_pgrollup_hour_row *h) {
  out *o = ctx;
  if (o->stop_after && o->n >= o->stop_after) return false;
  assert_true(o->n < MAX_OUT);
  snprintf(o->line[o->n], sizeof(o->line[o->n]), "%s %s %s %s %lld %s pos=%lld errors=%lld",
           h->instance, h->part, h->endpoint, h->backend, (long long)h->hour, h->role,
           (long long)h->pos, (long long)h->errors);
  kg_hist_init(&o->hist[o->n]);
  assert_int_equal(kg_storeagg_hist_merge(&o->hist[o->n], h->blob, h->len), 0);
  o->n++;
  return true;
}

/* The blob of the given latencies (us). */
static void blob_of(kg_buf *b, const uint64_t *v, size_t n) {
  uint64_t *copy = kg_calloc(n ? n : 1, sizeof(*copy));
  memcpy(copy, v, n * sizeof(*v));
  kg_buf_reset(b);
  kg_storeagg_values_encode(copy, n, b);
  free(copy);
}

/* A row of instance a, part p, endpoint e, backend b at minute 0 with the
 * one latency us. */
static kg_pgrollup_row one_row(kg_buf *b, uint64_t us) {
  blob_of(b, &us, 1);
  return (kg_pgrollup_row){.instance = "a", .part = "p", .endpoint = "e", .backend = "b",
                           .role = "shadow", .pos = 1, .blob = b->data, .len = b->len};
}

static void test_hour_of_minute(void **state) {
  (void)state;
  assert_int_equal(kg_pgrollup_hour(0), 0);
  assert_int_equal(kg_pgrollup_hour(59), 0);
  assert_int_equal(kg_pgrollup_hour(60), 1);
  assert_int_equal(kg_pgrollup_hour(-1), -1);
  assert_int_equal(kg_pgrollup_hour(-60), -1);
  assert_int_equal(kg_pgrollup_hour(-61), -2);
  assert_int_equal(kg_pgrollup_hour(29600000 + 119), 493335);
}

/* Rows in primary-key order (instance, endpoint, minute, backend, part):
 * one hour row per instance, part, endpoint, backend and hour, with the
 * histograms merged, errors summed, the least position and "master" when
 * any minute said so. */
static void test_rows_merge_into_hours(void **state) {
  (void)state;
  out o = {0};
  kg_pgrollup r;
  kg_pgrollup_init(&r, collect, &o);
  kg_buf b1 = KG_BUF_INIT, b2 = KG_BUF_INIT, b3 = KG_BUF_INIT;
  const uint64_t v1[] = {100, 200}, v2[] = {300}, v3[] = {5000, 7000, 9000};
  blob_of(&b1, v1, 2);
  blob_of(&b2, v2, 1);
  blob_of(&b3, v3, 3);
  const struct {
    const char *inst, *part, *ep, *be, *role;
    int64_t minute, pos, errors;
    const kg_buf *blob;
  } rows[] = {
      {"a", "p1", "GET /x", "new", "shadow", 60, 1, 0, &b1},
      {"a", "p2", "GET /x", "new", "shadow", 60, 1, 1, &b2}, /* a restart: its own row */
      {"a", "p1", "GET /x", "prod", "master", 60, 0, 0, &b1},
      {"a", "p1", "GET /x", "new", "shadow", 61, 1, 2, &b3},
      {"a", "p1", "GET /x", "new", "master", 119, 0, 0, &b2},
      {"a", "p1", "GET /x", "new", "shadow", 120, 1, 0, &b1}, /* the next hour */
      {"a", "p1", "GET /y", "new", "shadow", 120, 1, 0, &b2}, /* another endpoint */
      {"b", "p9", "GET /y", "new", "shadow", 120, 1, 0, &b3}, /* another instance */
  };
  for (size_t i = 0; i < KG_ARRAY_SIZE(rows); i++) {
    kg_pgrollup_row row = {.instance = rows[i].inst, .part = rows[i].part,
                           .endpoint = rows[i].ep, .backend = rows[i].be,
                           .role = rows[i].role, .minute = rows[i].minute,
                           .pos = rows[i].pos, .errors = rows[i].errors,
                           .blob = rows[i].blob->data, .len = rows[i].blob->len};
    assert_true(kg_pgrollup_add(&r, &row));
  }
  assert_true(kg_pgrollup_finish(&r));
  assert_int_equal(o.n, 6);
  assert_string_equal(o.line[0], "a p1 GET /x new 1 master pos=0 errors=2");
  assert_string_equal(o.line[1], "a p2 GET /x new 1 shadow pos=1 errors=1");
  assert_string_equal(o.line[2], "a p1 GET /x prod 1 master pos=0 errors=0");
  assert_string_equal(o.line[3], "a p1 GET /x new 2 shadow pos=1 errors=0");
  assert_string_equal(o.line[4], "a p1 GET /y new 2 shadow pos=1 errors=0");
  assert_string_equal(o.line[5], "b p9 GET /y new 2 shadow pos=1 errors=0");
  /* the first row's histogram is its three minutes' */
  assert_int_equal(kg_hist_count(&o.hist[0]), 6);
  assert_int_equal(kg_hist_min(&o.hist[0]), 100);
  assert_int_equal(kg_hist_max(&o.hist[0]), 9000);
  kg_hist want;
  kg_hist_init(&want);
  const uint64_t all[] = {100, 200, 5000, 7000, 9000, 300};
  for (size_t i = 0; i < KG_ARRAY_SIZE(all); i++) kg_hist_add(&want, all[i]);
  assert_memory_equal(&o.hist[0], &want, sizeof(want));
  assert_int_equal(kg_hist_count(&o.hist[1]), 1);
  assert_int_equal(r.bad_blobs, 0);
  kg_pgrollup_free(&r);
  kg_buf_free(&b1);
  kg_buf_free(&b2);
  kg_buf_free(&b3);
}

/* Stored data is untrusted: a damaged histogram leaves its latencies out
 * (and is counted), its errors still count; a group of only damaged ones
 * has an empty histogram. */
static void test_damaged_blob(void **state) {
  (void)state;
  out o = {0};
  kg_pgrollup r;
  kg_pgrollup_init(&r, collect, &o);
  kg_buf good = KG_BUF_INIT;
  kg_pgrollup_row row = one_row(&good, 42);
  row.minute = 5;
  row.errors = 3;
  row.blob = "\x02zz";
  row.len = 3;
  assert_true(kg_pgrollup_add(&r, &row));
  row.blob = good.data;
  row.len = good.len;
  row.errors = 0;
  assert_true(kg_pgrollup_add(&r, &row));
  row.minute = 65; /* next hour: damaged only */
  row.blob = "";
  row.len = 0;
  assert_true(kg_pgrollup_add(&r, &row));
  assert_true(kg_pgrollup_finish(&r));
  assert_int_equal(r.bad_blobs, 2);
  assert_int_equal(o.n, 2);
  assert_string_equal(o.line[0], "a p e b 0 shadow pos=1 errors=3");
  assert_int_equal(kg_hist_count(&o.hist[0]), 1);
  assert_int_equal(kg_hist_count(&o.hist[1]), 0);
  kg_pgrollup_free(&r);
  kg_buf_free(&good);
}

/* A failing emit stops the rollup, and everything is still freed. */
static void test_emit_fails(void **state) {
  (void)state;
  out o = {.stop_after = 1};
  kg_pgrollup r;
  kg_pgrollup_init(&r, collect, &o);
  kg_buf b = KG_BUF_INIT;
  kg_pgrollup_row row = one_row(&b, 1);
  assert_true(kg_pgrollup_add(&r, &row));
  row.backend = "c";
  assert_true(kg_pgrollup_add(&r, &row));
  row.minute = 60;
  assert_false(kg_pgrollup_add(&r, &row)); /* the first group's second row fails */
  kg_pgrollup_free(&r);
  kg_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hour_of_minute),
      cmocka_unit_test(test_rows_merge_into_hours),
      cmocka_unit_test(test_damaged_blob),
      cmocka_unit_test(test_emit_fails),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
