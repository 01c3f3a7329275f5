/* Unit tests: learned noise statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

static bool hidden(kg_noise *n, const char *ep, const char *pattern) {
  kg_noise_view v;
  kg_noise_view_get(n, ep, &v);
  bool has = kg_noise_view_has(&v, pattern);
  kg_noise_view_free(&v);
  return has;
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
  assert_false(hidden(n, "e", "$.x"));
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
  /* The snapshot says learning stopped somewhere, so a reader knows that
   * what it lists is not all the noise there is. */
  kg_noise_snapshot s;
  kg_noise_snapshot_get(n, "GET /e1", &s);
  assert_true(s.full);
  assert_int_equal(s.neps, 1);
  kg_noise_snapshot_free(&s);
  kg_noise_free(n);
}

/* The snapshot lists every endpoint and location sorted, with the
 * evidence (pairs, differed, first and last seen) and whether the location
 * is hidden now, by the same rule comparisons use. */
static void test_snapshot(void **state) {
  (void)state;
  kg_noise *n = kg_noise_new(0.5, 4);
  const char *ts[] = {"$.meta.ts", "header:x-id"};
  const char *rare[] = {"$.a"};
  double before = (double)time(NULL) - 1;
  for (int i = 0; i < 4; i++) kg_noise_observe(n, "GET /z", ts, 2);
  kg_noise_observe(n, "GET /z", rare, 1);
  kg_noise_observe(n, "GET /b", rare, 1);
  kg_noise_observe(n, "POST /z", NULL, 0);
  double after = (double)time(NULL) + 1;

  kg_noise_snapshot s;
  kg_noise_snapshot_get(n, NULL, &s);
  assert_false(s.full);
  assert_int_equal(s.min_pairs, 4);
  assert_true(s.threshold == 0.5);
  assert_int_equal(s.neps, 3);
  assert_string_equal(s.eps[0].endpoint, "GET /b");
  assert_string_equal(s.eps[1].endpoint, "GET /z");
  assert_string_equal(s.eps[2].endpoint, "POST /z");
  const kg_noise_ep_info *z = &s.eps[1];
  assert_int_equal(z->pairs, 5);
  assert_true(z->first_seen >= before && z->first_seen <= z->last_seen &&
              z->last_seen <= after);
  assert_int_equal(z->nlocs, 3);
  assert_int_equal(z->nnoisy, 2);
  assert_string_equal(z->locs[0].location, "$.a");
  assert_int_equal(z->locs[0].differed, 1);
  assert_false(z->locs[0].noisy); /* 1 of 5 < 50% */
  assert_string_equal(z->locs[1].location, "$.meta.ts");
  assert_int_equal(z->locs[1].differed, 4);
  assert_true(z->locs[1].noisy);
  assert_true(z->locs[1].first_seen <= z->locs[1].last_seen);
  /* $.a first differed on the fifth pair, after $.meta.ts last did. */
  assert_true(z->locs[0].first_seen >= z->locs[1].last_seen);
  assert_string_equal(z->locs[2].location, "header:x-id");
  assert_true(z->locs[2].noisy);
  /* An endpoint under min_pairs hides nothing, however often it differed. */
  assert_int_equal(s.eps[0].nlocs, 1);
  assert_false(s.eps[0].locs[0].noisy);
  assert_int_equal(s.eps[2].nlocs, 0);
  kg_noise_snapshot_free(&s);

  /* The filter matches as a rule's endpoint glob does: with a method, the
   * whole name; without, the path alone. */
  kg_noise_snapshot_get(n, "GET /*", &s);
  assert_int_equal(s.neps, 2);
  kg_noise_snapshot_free(&s);
  kg_noise_snapshot_get(n, "/z", &s);
  assert_int_equal(s.neps, 2);
  assert_string_equal(s.eps[1].endpoint, "POST /z");
  kg_noise_snapshot_free(&s);
  kg_noise_snapshot_get(n, "GET /nothing", &s);
  assert_int_equal(s.neps, 0);
  kg_noise_snapshot_free(&s);
  kg_noise_free(n);
}


/* A fleet's evidence (issue 15): the other instances' counts add to this
 * one's under the same rule; only local evidence is published; a second
 * set replaces the first. */
static void test_fleet_evidence(void **state) {
  kg_noise *n = kg_noise_new(0.5, 10);
  const char *two[] = {"$.ts", "$.rows[0].n"};
  for (int i = 0; i < 4; i++) kg_noise_observe(n, "GET /a", two, 2);
  assert_false(hidden(n, "GET /a", "$.ts")); /* 4 pairs < 10 */
  uint64_t seq = kg_noise_seq(n);

  kg_noise_row fleet[] = {
      {.endpoint = "GET /a", .count = 8, .first_seen = 100, .last_seen = 200},
      {.endpoint = "GET /a", .location = "$.ts", .count = 8, .first_seen = 100, .last_seen = 200},
      {.endpoint = "GET /a", .location = "$.id", .count = 7, .first_seen = 150, .last_seen = 190},
      {.endpoint = "GET /a", .location = "$.rows[1].n", .count = 1},
      {.endpoint = "GET /b", .location = "$.x", .count = 9}, /* no pairs row: 0 pairs */
  };
  kg_noise_set_fleet(n, fleet, 5);
  assert_int_equal(kg_noise_seq(n), seq); /* the fleet's evidence is not ours */
  /* 12 pairs: $.ts differed in 4 + 8, $.id (never seen here) in 7 */
  assert_true(hidden(n, "GET /a", "$.ts"));
  assert_true(hidden(n, "GET /a", "$.id"));
  assert_false(hidden(n, "GET /a", "$.rows[0].n")); /* 4 of 12 < 0.5 */
  assert_false(hidden(n, "GET /a", "$.rows[1].n")); /* never generalised */
  assert_false(hidden(n, "GET /b", "$.x"));         /* no pairs behind it */
  uint64_t pairs, differed;
  kg_noise_stats(n, "GET /a", "$.id", &pairs, &differed);
  assert_int_equal(pairs, 12);
  assert_int_equal(differed, 7);

  kg_noise_snapshot snap;
  kg_noise_snapshot_get(n, "GET /a", &snap);
  assert_int_equal(snap.neps, 1);
  assert_int_equal(snap.eps[0].pairs, 12);
  assert_int_equal(snap.eps[0].fleet_pairs, 8);
  assert_true(snap.eps[0].first_seen > 0 && snap.eps[0].first_seen <= 100);
  kg_noise_snapshot_free(&snap);

  /* published: this instance's own rows only */
  kg_noise_row *rows;
  size_t nrows;
  assert_int_equal(kg_noise_local_rows(n, &rows, &nrows), seq);
  assert_int_equal(nrows, 3); /* GET /a's pairs, $.ts, $.rows[0].n */
  for (size_t i = 0; i < nrows; i++) {
    assert_string_equal(rows[i].endpoint, "GET /a");
    assert_int_equal(rows[i].count, 4);
  }
  kg_noise_rows_free(rows, nrows);

  /* the next read replaces the last: the fleet's part gone, nothing hidden */
  kg_noise_set_fleet(n, NULL, 0);
  assert_false(hidden(n, "GET /a", "$.ts"));
  assert_false(hidden(n, "GET /a", "$.id"));
  kg_noise_free(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_threshold_and_min_pairs),
      cmocka_unit_test(test_agreeing_pairs_dilute),
      cmocka_unit_test(test_bounded),
      cmocka_unit_test(test_snapshot),
      cmocka_unit_test(test_fleet_evidence),
  };
  return cmocka_run_group_tests_name("noise", tests, NULL, NULL);
}
