/* test_parse.c: the config's pure parsers (parse.h): addresses, durations
 * as `kagami report --since` and the admin API read them, sizes, and the
 * seconds -> milliseconds conversion of the timeouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/parse.h"

/* ---- kg_addr_parse ---------------------------------------------------- */

static void test_addr_parse_unix(void **state) {
  kg_addr a;
  char err[512];
  assert_int_equal(kg_addr_parse_unix("/run/app.sock", &a, err, sizeof(err)), 0);
  assert_string_equal(a.text, "unix:/run/app.sock");
  assert_string_equal(a.host, "localhost");
  assert_int_equal(a.port, 0);
  assert_int_equal(a.sa.ss_family, AF_UNIX);
  assert_string_equal(((struct sockaddr_un *)&a.sa)->sun_path, "/run/app.sock");
  kg_addr_free(&a);

  /* Relative: from the working directory, made absolute. */
  char cwd[4096], want[4200];
  assert_non_null(getcwd(cwd, sizeof(cwd)));
  snprintf(want, sizeof(want), "%s/tmp/app.sock", cwd);
  assert_int_equal(kg_addr_parse_unix("tmp/app.sock", &a, err, sizeof(err)), 0);
  assert_string_equal(((struct sockaddr_un *)&a.sa)->sun_path, want);
  assert_string_equal(a.text + 5, want);
  kg_addr_free(&a);

  assert_int_equal(kg_addr_parse_unix("", &a, err, sizeof(err)), -1);
  assert_string_equal(err, "expected unix:/path/to/socket, got an empty path");
  assert_null(a.text);
  char longpath[200];
  memset(longpath, 'x', sizeof(longpath) - 1);
  longpath[0] = '/';
  longpath[sizeof(longpath) - 1] = '\0';
  assert_int_equal(kg_addr_parse_unix(longpath, &a, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "is 199 bytes, longer than a socket address holds (107)"));
  assert_null(a.text);
}

static void test_addr_parse(void **state) {
  kg_addr a;
  char err[256];
  assert_int_equal(kg_addr_parse("127.0.0.1:80", &a, err, sizeof(err)), 0);
  assert_string_equal(a.text, "127.0.0.1:80");
  assert_string_equal(a.host, "127.0.0.1");
  assert_int_equal(a.port, 80);
  assert_int_equal(a.salen, sizeof(struct sockaddr_in));
  assert_int_equal(ntohs(((struct sockaddr_in *)&a.sa)->sin_port), 80);
  kg_addr_free(&a);

  assert_int_equal(kg_addr_parse("[::1]:8080", &a, err, sizeof(err)), 0);
  assert_string_equal(a.host, "::1");
  assert_int_equal(a.sa.ss_family, AF_INET6);
  assert_int_equal(ntohs(((struct sockaddr_in6 *)&a.sa)->sin6_port), 8080);
  kg_addr_free(&a);
  kg_addr_free(&a); /* idempotent */

  struct {
    const char *in, *err;
  } bad[] = {
      {"localhost", "expected host:port, got \"localhost\""},
      {":80", "missing host in \":80\""},
      {"h:0", "invalid port in \"h:0\" (expected 1-65535)"},
      {"h:65536", "invalid port in \"h:65536\" (expected 1-65535)"},
      {"h:8o", "invalid port in \"h:8o\" (expected 1-65535)"},
      {"h:", "invalid port in \"h:\" (expected 1-65535)"},
      {"[::1]", "expected [ipv6]:port, got \"[::1]\""},
      {"[::1]8080", "expected [ipv6]:port, got \"[::1]8080\""},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(kg_addr_parse(bad[i].in, &a, err, sizeof(err)), -1);
    assert_string_equal(err, bad[i].err);
    assert_null(a.text);
    assert_null(a.host);
  }
}

static void test_parse_duration(void **state) {
  (void)state;
  double d;
  assert_int_equal(kg_config_parse_duration("30s", &d), 0);
  assert_true(d == 30);
  assert_int_equal(kg_config_parse_duration("15m", &d), 0);
  assert_true(d == 900);
  assert_int_equal(kg_config_parse_duration("2h", &d), 0);
  assert_true(d == 7200);
  assert_int_equal(kg_config_parse_duration("7d", &d), 0);
  assert_true(d == 7 * 86400);
  assert_int_equal(kg_config_parse_duration("1.5h", &d), 0);
  assert_true(d == 5400);
  assert_int_equal(kg_config_parse_duration("90", &d), 0);
  assert_true(d == 90);
  assert_int_equal(kg_config_parse_duration("", &d), -1);
  assert_int_equal(kg_config_parse_duration("h", &d), -1);
  assert_int_equal(kg_config_parse_duration("-5m", &d), -1);
  assert_int_equal(kg_config_parse_duration("5mm", &d), -1);
  assert_int_equal(kg_config_parse_duration("5y", &d), -1);
}

static void test_parse_size(void **state) {
  (void)state;
  uint64_t v = 0;
  assert_int_equal(kg_config_parse_size("512", &v), 0);
  assert_true(v == 512);
  assert_int_equal(kg_config_parse_size(" 8 MiB ", &v), 0);
  assert_true(v == (uint64_t)8 << 20);
  assert_int_equal(kg_config_parse_size("2gib", &v), 0);
  assert_true(v == (uint64_t)2 << 30);
  assert_int_equal(kg_config_parse_size("8MB", &v), -1);
  assert_int_equal(kg_config_parse_size("", &v), -1);
  assert_int_equal(kg_config_parse_size("20000000TiB", &v), -2);
  assert_int_equal(kg_config_parse_size("99999999999999999999", &v), -2);
}

static void test_seconds_to_ms(void **state) {
  (void)state;
  assert_true(kg_config_seconds_to_ms(15) == 15000);
  assert_true(kg_config_seconds_to_ms(2.5) == 2500);
  assert_true(kg_config_seconds_to_ms(0.0001) == 0); /* truncated, as before */
  assert_true(kg_config_seconds_to_ms(1e300) == KG_CONFIG_MAX_MS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_addr_parse),
      cmocka_unit_test(test_addr_parse_unix),
      cmocka_unit_test(test_parse_duration),
      cmocka_unit_test(test_parse_size),
      cmocka_unit_test(test_seconds_to_ms),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
