/* Unit tests: the PostgreSQL store's url masking (a password must never
 * reach a log line). The writing itself is tested against a real
 * PostgreSQL in tests/integration/test_pgstore.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "results/pgstore.h"

static void check(const char *url, const char *want) {
  kg_buf b = KG_BUF_INIT;
  kg_pgstore_mask(url, &b);
  kg_buf_append(&b, "", 0);
  assert_string_equal(b.data, want);
  kg_buf_free(&b);
}

static void test_mask(void **state) {
  (void)state;
  check("postgresql://kagami@db:5432/fleet", "postgresql://kagami@db:5432/fleet");
  check("postgresql://kagami:s3cret@db:5432/fleet?sslmode=require",
        "postgresql://kagami:***@db:5432/fleet?sslmode=require");
  /* an @ in the password: the last @ before the path ends the user info */
  check("postgres://u:p@ss@db/x", "postgres://u:***@db/x");
  check("postgresql://db/x?user=u&password=hunter2&sslmode=verify-full",
        "postgresql://db/x?user=u&password=***&sslmode=verify-full");
  check("postgresql://db/x?password=hunter2", "postgresql://db/x?password=***");
  /* "password=" inside another parameter's value is not a parameter */
  check("postgresql://db/x?application_name=mypassword=1",
        "postgresql://db/x?application_name=mypassword=1");
  check("postgresql://", "postgresql://");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mask),
  };
  return cmocka_run_group_tests_name("pgstore", tests, NULL, NULL);
}
