/* test_source.c: unit tests for the line parsers of the traffic sources
 * (src/traffic/source.c): URL lists and nginx access logs. Reading whole
 * files, WARC ones included, is tested with the recorder in test_warc.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "common/common.h"
#include "traffic/source.h"

static const char *field(const kg_hdrs *h, const char *name) {
  long i = kg_hdrs_find(h, name);
  return i < 0 ? NULL : kg_hdrs_value(h, (size_t)i);
}

static void test_url_lines(void **state) {
  (void)state;
  static const struct {
    const char *line;
    int rc;
    const char *method, *url, *host;
  } cases[] = {
      {"/users/1", 1, "GET", "/users/1", NULL},
      {"  /a?b=1#frag  ", 1, "GET", "/a?b=1", NULL},
      {"http://example.com/p?q", 1, "GET", "/p?q", "example.com"},
      {"https://example.com:8443", 1, "GET", "/", "example.com:8443"},
      {"http://example.com?x=1", 1, "GET", "/?x=1", "example.com"},
      {"HEAD /h", 1, "HEAD", "/h", NULL},
      {"GET /v HTTP/1.1", 1, "GET", "/v", NULL},
      {"", 0, NULL, NULL, NULL},
      {"   ", 0, NULL, NULL, NULL},
      {"# a comment", 0, NULL, NULL, NULL},
      {"example.com/no-scheme", -1, NULL, NULL, NULL},
      {"get /lowercase-method", -1, NULL, NULL, NULL},
      {"GET /a b c", -1, NULL, NULL, NULL},
      {"ftp://example.com/", -1, NULL, NULL, NULL},
      {"http:///nohost", -1, NULL, NULL, NULL},
      {"/with\x01control", -1, NULL, NULL, NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    kg_source_item it;
    kg_source_item_init(&it);
    int rc = kg_source_parse_url_line(cases[i].line, strlen(cases[i].line), &it);
    if (rc != cases[i].rc) fail_msg("line %zu '%s': %d, wanted %d", i, cases[i].line, rc, cases[i].rc);
    if (rc == 1) {
      assert_string_equal(it.method, cases[i].method);
      assert_string_equal(it.url, cases[i].url);
      if (cases[i].host) assert_string_equal(it.host, cases[i].host);
      else assert_null(it.host);
      assert_true(isnan(it.ts));
    }
    kg_source_item_free(&it);
  }
}

static void test_nginx_lines(void **state) {
  (void)state;
  const char *combined =
      "203.0.113.9 - alice [10/Oct/2023:13:55:36 -0700] \"GET /shop/items?id=3 HTTP/1.1\" 200 "
      "2326 \"http://example.com/start\" \"Mozilla/5.0 (X11; \\\"quoted\\\")\"";
  kg_source_item it;
  kg_source_item_init(&it);
  assert_int_equal(kg_source_parse_nginx_line(combined, strlen(combined), &it), 1);
  assert_string_equal(it.method, "GET");
  assert_string_equal(it.url, "/shop/items?id=3");
  /* 13:55:36 at -0700 is 20:55:36 UTC. */
  assert_true(fabs(it.ts - 1696971336.0) < 1e-6);
  assert_string_equal(field(&it.req_hdrs, "User-Agent"), "Mozilla/5.0 (X11; \"quoted\")");
  assert_string_equal(field(&it.req_hdrs, "Referer"), "http://example.com/start");
  kg_source_item_free(&it);

  static const struct {
    const char *line;
    int rc;
    const char *url;
  } cases[] = {
      /* common format (no referer, no agent), "-" user */
      {"::1 - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.0\" 304 0", 1, "/"},
      /* nginx's \x escapes in the request */
      {"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"GET /a\\x22b HTTP/1.1\" 200 1 \"-\" \"-\"", 1,
       "/a\"b"},
      /* HTTP/0.9-style request line without a version */
      {"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"GET /old\" 200 1 \"-\" \"-\"", 1, "/old"},
      /* other methods are well-formed but not replayed */
      {"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"POST /login HTTP/1.1\" 302 0 \"-\" \"-\"", 0,
       NULL},
      /* garbage nginx logs for TLS on a plain port, and the empty request */
      {"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"\\x16\\x03\\x01\" 400 157 \"-\" \"-\"", -1, NULL},
      {"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"-\" 400 0 \"-\" \"-\"", -1, NULL},
      {"1.2.3.4 - - [32/Foo/2024:00:00:00 +0000] \"GET / HTTP/1.1\" 200 1", -1, NULL},
      {"not a log line at all", -1, NULL},
      {"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.1\" 2000 1", -1, NULL},
      {"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.1", -1, NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    kg_source_item_init(&it);
    int rc = kg_source_parse_nginx_line(cases[i].line, strlen(cases[i].line), &it);
    if (rc != cases[i].rc) fail_msg("line %zu: %d, wanted %d", i, rc, cases[i].rc);
    if (rc == 1) assert_string_equal(it.url, cases[i].url);
    kg_source_item_free(&it);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_url_lines),
      cmocka_unit_test(test_nginx_lines),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
