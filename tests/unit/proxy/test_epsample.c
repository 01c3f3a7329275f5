/* Unit tests: per-endpoint caps and the once-a-minute floor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "proxy/epsample.h"

#define SEC 1000000000ULL

static void test_cap_per_endpoint(void **state) {
  (void)state;
  kg_epsample s;
  kg_epsample_init(&s, 10); /* 10 per second */
  uint64_t t = 1000 * SEC;
  int hot = 0, rare = 0;
  /* One second of 1000 requests/s on a hot endpoint, 2 on a rare one. */
  for (int i = 0; i < 1000; i++) {
    hot += kg_epsample_decide(&s, "GET /hot", true, t + (uint64_t)i * SEC / 1000);
    if (i % 500 == 0) rare += kg_epsample_decide(&s, "GET /rare", true, t + (uint64_t)i * SEC / 1000);
  }
  /* The burst (10) plus about 10 refilled over the second. */
  assert_true(hot >= 18 && hot <= 21);
  assert_int_equal(rare, 2);
  kg_epsample_free(&s);
}

static void test_floor_once_a_minute(void **state) {
  (void)state;
  kg_epsample s;
  kg_epsample_init(&s, 0); /* no cap */
  uint64_t t = 5 * SEC;
  /* Never picked by the share: compared at first sight, then once per
   * minute. */
  assert_true(kg_epsample_decide(&s, "GET /x", false, t));
  assert_false(kg_epsample_decide(&s, "GET /x", false, t + 30 * SEC));
  assert_false(kg_epsample_decide(&s, "GET /x", false, t + 59 * SEC));
  assert_true(kg_epsample_decide(&s, "GET /x", false, t + 61 * SEC));
  assert_false(kg_epsample_decide(&s, "GET /x", false, t + 62 * SEC));
  /* Picked requests always pass without a cap. */
  assert_true(kg_epsample_decide(&s, "GET /x", true, t + 62 * SEC));
  kg_epsample_free(&s);
}

static void test_bounded_table(void **state) {
  (void)state;
  kg_epsample s;
  kg_epsample_init(&s, 1);
  char name[32];
  for (int i = 0; i < KG_EPSAMPLE_MAX + 50; i++) {
    snprintf(name, sizeof(name), "GET /e%d", i);
    kg_epsample_decide(&s, name, true, SEC);
  }
  assert_int_equal(s.count, KG_EPSAMPLE_MAX + 1); /* + "(other)" */
  kg_epsample_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cap_per_endpoint),
      cmocka_unit_test(test_floor_once_a_minute),
      cmocka_unit_test(test_bounded_table),
  };
  return cmocka_run_group_tests_name("epsample", tests, NULL, NULL);
}
