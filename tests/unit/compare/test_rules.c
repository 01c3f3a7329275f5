/* test_rules.c: which endpoints a noise rule applies to (rules.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "compare/rules.h"

static bool matches(const char *glob, const char *endpoint) {
  kg_rule r = {.endpoint = (char *)glob};
  return kg_rule_matches(&r, endpoint);
}

static void test_rule_matches(void **state) {
  (void)state;
  assert_true(matches(NULL, "GET /anything"));
  assert_true(matches("GET /api/*", "GET /api/users/:id"));
  assert_false(matches("GET /api/*", "POST /api/users"));
  /* No method in the glob: matched against the path alone. */
  assert_true(matches("/api/*", "POST /api/users"));
  assert_false(matches("/api/*", "GET /other"));
  assert_true(matches("*/:id", "GET /users/:id"));
  assert_true(matches("GET /a*b*c", "GET /axxbyyc"));
  assert_false(matches("GET /a*b*c", "GET /axxbyy"));
  /* Backtracking stays linear per star: a long near-miss is quick. */
  char path[4096];
  memset(path, 'a', sizeof(path) - 1);
  path[sizeof(path) - 1] = '\0';
  assert_false(matches("*a*a*a*a*a*b", path));
}

static void test_rule_clear(void **state) {
  (void)state;
  kg_rule r = {0};
  r.endpoint = strdup("GET /x");
  r.ignore = calloc(2, sizeof(char *));
  r.ignore[0] = strdup("$.a");
  r.nignore = 1;
  kg_rule_clear(&r); /* ASan reports anything left behind */
  assert_null(r.endpoint);
  assert_null(r.ignore);
  assert_int_equal(r.nignore, 0);
  kg_rule_clear(&r); /* a cleared rule clears again */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rule_matches),
      cmocka_unit_test(test_rule_clear),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
