/* Unit tests: kagami admin's short-lived answers (admin_cache.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"

static kg_admin_resp json_resp(int status, const char *body) {
  kg_admin_resp r = {.status = status, .content_type = "application/json"};
  kg_buf_appends(&r.body, body);
  return r;
}

/* An answer serves its own question until the period ends, no other. */
static void test_kept_for_the_period(void **state) {
  (void)state;
  kg_admin_cache *c = kg_admin_cache_new(2000);
  kg_admin_resp in = json_resp(200, "{\"compared\":1}\n"), out = {0};
  kg_admin_cache_put(c, 1000, "/api/endpoints?", &in);
  assert_true(kg_admin_cache_get(c, 2999, "/api/endpoints?", &out));
  assert_int_equal(out.status, 200);
  assert_string_equal(out.content_type, "application/json");
  assert_string_equal(out.body.data, "{\"compared\":1}\n");
  assert_false(kg_admin_cache_get(c, 1500, "/api/endpoints?instance=a", &out));
  assert_false(kg_admin_cache_get(c, 3000, "/api/endpoints?", &out));
  /* a newer answer replaces it, in the same slot */
  kg_buf_reset(&in.body);
  kg_buf_appends(&in.body, "{\"compared\":2}\n");
  kg_admin_cache_put(c, 3000, "/api/endpoints?", &in);
  assert_true(kg_admin_cache_get(c, 3100, "/api/endpoints?", &out));
  assert_string_equal(out.body.data, "{\"compared\":2}\n");
  kg_buf_free(&in.body);
  kg_buf_free(&out.body);
  kg_admin_cache_free(c);
}

/* Failures are asked again; a full cache gives up its oldest answer; an
 * answer too big is not kept. */
static void test_what_is_not_kept(void **state) {
  (void)state;
  kg_admin_cache *c = kg_admin_cache_new(2000);
  kg_admin_resp err = json_resp(503, "store away\n"), out = {0};
  kg_admin_cache_put(c, 0, "/api/results?", &err);
  assert_false(kg_admin_cache_get(c, 1, "/api/results?", &out));
  kg_admin_resp ok = json_resp(200, "{}\n");
  char key[32];
  for (int i = 0; i < 17; i++) { /* one more than the slots */
    snprintf(key, sizeof(key), "/api/results/%d?", i);
    kg_admin_cache_put(c, (uint64_t)i, key, &ok);
  }
  assert_false(kg_admin_cache_get(c, 20, "/api/results/0?", &out));
  assert_true(kg_admin_cache_get(c, 20, "/api/results/1?", &out));
  assert_true(kg_admin_cache_get(c, 20, "/api/results/16?", &out));
  kg_admin_resp big = {.status = 200, .content_type = "application/json"};
  kg_buf_reserve(&big.body, 2 * 1024 * 1024);
  memset(big.body.data, ' ', 2 * 1024 * 1024);
  big.body.len = 2 * 1024 * 1024;
  big.body.data[big.body.len] = '\0';
  kg_admin_cache_put(c, 30, "/api/results?limit=1000", &big);
  assert_false(kg_admin_cache_get(c, 31, "/api/results?limit=1000", &out));
  kg_buf_free(&err.body);
  kg_buf_free(&ok.body);
  kg_buf_free(&big.body);
  kg_buf_free(&out.body);
  kg_admin_cache_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kept_for_the_period),
      cmocka_unit_test(test_what_is_not_kept),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
