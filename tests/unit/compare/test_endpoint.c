/* Unit tests: endpoint naming (default templating and config rules). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "compare/endpoint.h"

static void expect_name(const kg_endpoint_rules *rules, const char *method,
                        const char *path, const char *want) {
  kg_buf out = KG_BUF_INIT;
  kg_endpoint_of(method, path, rules, &out);
  if (out.data == NULL || strcmp(out.data, want) != 0) {
    print_error("%s %s: got \"%s\", want \"%s\"\n", method ? method : "(null)",
                path ? path : "(null)", out.data ? out.data : "", want);
    fail();
  }
  kg_buf_free(&out);
}

static void expect_default(const char *path, const char *want) {
  expect_name(NULL, "GET", path, want);
}

static void test_plain_paths_kept(void **state) {
  (void)state;
  expect_default("/", "GET /");
  expect_default("", "GET /");
  expect_default(NULL, "GET /");
  expect_default("/users", "GET /users");
  expect_default("/users/", "GET /users/"); /* trailing slash kept */
  expect_default("/a//b", "GET /a//b");
  expect_default("/index.html", "GET /index.html");
  expect_default("/v2/users", "GET /v2/users");
  expect_name(NULL, "OPTIONS", "*", "OPTIONS *");
  expect_name(NULL, "POST", "/users", "POST /users");
}

static void test_ids(void **state) {
  (void)state;
  expect_default("/users/42", "GET /users/:id");
  expect_default("/users/42/posts", "GET /users/:id/posts");
  expect_default("/users/42/posts/7/", "GET /users/:id/posts/:id/");
  expect_default("/0", "GET /:id");
  expect_default("/12345678901234567890123", "GET /:id"); /* digits, not hex */
  expect_default("/42abc", "GET /42abc");
  expect_default("/-42", "GET /-42");
}

static void test_uuids(void **state) {
  (void)state;
  expect_default("/orders/123e4567-e89b-12d3-a456-426614174000", "GET /orders/:uuid");
  expect_default("/orders/123E4567-E89B-12D3-A456-426614174000/items",
                 "GET /orders/:uuid/items");
  /* Wrong layout or non-hex: not a UUID, though still a token. */
  expect_default("/o/123e4567e89b-12d3-a456-426614174000-", "GET /o/:token");
  expect_default("/o/123e4567-e89b-12d3-a456-42661417400g", "GET /o/:token");
  expect_default("/o/123e4567-e89b-12d3-a456-42661417400.", "GET /o/123e4567-e89b-12d3-a456-42661417400.");
  /* Without dashes it is a hex string. */
  expect_default("/o/123e4567e89b12d3a456426614174000", "GET /o/:hex");
}

static void test_hex(void **state) {
  (void)state;
  expect_default("/commits/0123456789abcdef", "GET /commits/:hex");
  expect_default("/commits/DEADBEEFCAFEBABE0123", "GET /commits/:hex");
  expect_default("/c/0123456789abcde", "GET /c/0123456789abcde"); /* 15: too short */
  expect_default("/c/deadbeef", "GET /c/deadbeef");
}

static void test_tokens(void **state) {
  (void)state;
  expect_default("/reset/eyJhbGciOiJIUzI1NiJ9abc", "GET /reset/:token");
  expect_default("/s/A1b2C3d4E5f6G7h8I9j0", "GET /s/:token");
  expect_default("/s/abc_DEF-123_xyz-7890", "GET /s/:token");
  /* Long words without digits are slugs, not tokens. */
  expect_default("/blog/a-very-long-article-title", "GET /blog/a-very-long-article-title");
  /* 19 characters: too short. */
  expect_default("/s/A1b2C3d4E5f6G7h8I", "GET /s/A1b2C3d4E5f6G7h8I");
  /* Dots (file names) are not token characters. */
  expect_default("/js/bootstrap-5.3.2.bundle.min.js", "GET /js/bootstrap-5.3.2.bundle.min.js");
}

static void test_dates(void **state) {
  (void)state;
  expect_default("/archive/2026-11-26", "GET /archive/:date");
  expect_default("/archive/2026-11-26/posts", "GET /archive/:date/posts");
  expect_default("/archive/2026-13-26", "GET /archive/2026-13-26");
  expect_default("/archive/2026-1-26", "GET /archive/2026-1-26");
  expect_default("/archive/26-11-2026", "GET /archive/26-11-2026");
}

static void test_mixed(void **state) {
  (void)state;
  expect_default("/api/v1/users/42/orders/123e4567-e89b-12d3-a456-426614174000/"
                 "2026-01-31/0123456789abcdef0123/x",
                 "GET /api/v1/users/:id/orders/:uuid/:date/:hex/x");
}

static void test_query_and_absolute_form(void **state) {
  (void)state;
  expect_default("/users/42?page=2", "GET /users/:id");
  expect_default("/users/42#frag", "GET /users/:id");
  expect_default("/search?q=a/b/c", "GET /search");
  expect_default("?q=1", "GET /");
  expect_default("http://example.com/users/42?x=1", "GET /users/:id");
  expect_default("HTTPS://example.com:8443", "GET /");
}

static void test_weird_bytes(void **state) {
  (void)state;
  expect_default("/a b/\x01/\x7f", "GET /a%20b/%01/%7F");
  expect_default("/caf\xc3\xa9/\xff\xfe", "GET /caf%C3%A9/%FF%FE");
  /* Percent escapes are compared and written as given. */
  expect_default("/files/a%2Fb", "GET /files/a%2Fb");
  expect_default("/files/%31%32", "GET /files/%31%32");
  expect_name(NULL, NULL, "/x", "- /x");
  expect_name(NULL, "", "/x", "- /x");
  expect_name(NULL, "G\tET", "/x", "G%09ET /x");
  char longm[100];
  memset(longm, 'M', sizeof(longm) - 1);
  longm[sizeof(longm) - 1] = '\0';
  kg_buf out = KG_BUF_INIT;
  kg_endpoint_of(longm, "/", NULL, &out);
  assert_int_equal(out.len, KG_ENDPOINT_MAX_METHOD + 2);
  assert_memory_equal(out.data + KG_ENDPOINT_MAX_METHOD - 3, "... /", 5);
  kg_buf_free(&out);
}

static void test_long_paths_bounded(void **state) {
  (void)state;
  /* Many short segments: cut at a segment boundary with a marker. */
  kg_buf path = KG_BUF_INIT, out = KG_BUF_INIT;
  for (int i = 0; i < 1000; i++) kg_buf_appendf(&path, "/seg%d", i);
  kg_endpoint_of("GET", path.data, NULL, &out);
  assert_true(out.len <= 4 + KG_ENDPOINT_MAX_PATH);
  assert_int_equal(strncmp(out.data, "GET /seg0/seg1/", 15), 0);
  assert_string_equal(out.data + out.len - 4, "/...");
  kg_buf_free(&out);

  /* Numbers all template to :id, so a long numeric path stays short-ish
   * but is still bounded. */
  kg_buf_reset(&path);
  for (int i = 0; i < 1000; i++) kg_buf_appendf(&path, "/%d", i);
  kg_endpoint_of("GET", path.data, NULL, &out);
  assert_true(out.len <= 4 + KG_ENDPOINT_MAX_PATH);
  kg_buf_free(&out);

  /* One huge segment of escaped bytes. */
  kg_buf_reset(&path);
  kg_buf_appends(&path, "/");
  for (int i = 0; i < 5000; i++) kg_buf_appends(&path, "\x01");
  kg_endpoint_of("GET", path.data, NULL, &out);
  assert_string_equal(out.data, "GET /...");
  kg_buf_free(&out);

  /* A path exactly at the bound is kept whole; one byte more is cut. */
  kg_buf_reset(&path);
  kg_buf_appends(&path, "/a/");
  while (path.len < KG_ENDPOINT_MAX_PATH) kg_buf_appends(&path, "x"); /* not hex */
  kg_endpoint_of("GET", path.data, NULL, &out);
  assert_int_equal(out.len, 4 + KG_ENDPOINT_MAX_PATH);
  assert_string_equal(out.data + 4, path.data);
  kg_buf_reset(&out);
  kg_buf_appends(&path, "x");
  kg_endpoint_of("GET", path.data, NULL, &out);
  assert_string_equal(out.data, "GET /a/...");
  kg_buf_free(&out);
  kg_buf_free(&path);
}

static void test_rules(void **state) {
  (void)state;
  const char *const pats[] = {
      "/users/:name/profile",
      "GET /search",
      "/static/*",
      "  POST   /users/:id  ",
      "/users/:id/profile", /* shadowed by the first: never used */
      "/",
  };
  char err[128] = "";
  kg_endpoint_rules *r = kg_endpoint_rules_new(pats, KG_ARRAY_SIZE(pats), err, sizeof(err));
  assert_non_null(r);

  expect_name(r, "GET", "/users/bob/profile", "GET /users/:name/profile");
  expect_name(r, "PUT", "/users/42/profile?x", "PUT /users/:name/profile");
  /* ":x" is exactly one non-empty segment. */
  expect_name(r, "GET", "/users/bob/extra/profile", "GET /users/bob/extra/profile");
  expect_name(r, "GET", "/users//profile", "GET /users//profile");
  expect_name(r, "GET", "/users/bob/profile/", "GET /users/bob/profile/");

  /* Method-specific. */
  expect_name(r, "GET", "/search", "GET /search");
  expect_name(r, "POST", "/search", "POST /search");
  expect_name(r, "get", "/search", "get /search"); /* methods are case-sensitive */
  expect_name(r, "POST", "/users/42", "POST /users/:id");
  expect_name(r, "POST", "/users/bob", "POST /users/:id");
  expect_name(r, "GET", "/users/bob", "GET /users/bob");
  expect_name(r, NULL, "/search", "- /search");

  /* "*" takes the rest, including nothing. */
  expect_name(r, "GET", "/static/css/site.css", "GET /static/*");
  expect_name(r, "GET", "/static/", "GET /static/*");
  expect_name(r, "GET", "/static", "GET /static/*");
  expect_name(r, "GET", "/staticfoo", "GET /staticfoo");

  /* A literal rule wins over default templating. */
  expect_name(r, "GET", "/", "GET /");
  expect_name(r, "GET", "", "GET /");
  kg_endpoint_rules_free(r);
}

static void test_rules_precedence_over_templating(void **state) {
  (void)state;
  /* A rule keeps a literal where templating would not, and the first
   * matching rule wins. */
  const char *const pats[] = {"/items/2026-01-01", "/items/:day", "/items/*"};
  kg_endpoint_rules *r = kg_endpoint_rules_new(pats, 3, NULL, 0);
  assert_non_null(r);
  expect_name(r, "GET", "/items/2026-01-01", "GET /items/2026-01-01");
  expect_name(r, "GET", "/items/2026-01-02", "GET /items/:day");
  expect_name(r, "GET", "/items/1/2", "GET /items/*");
  expect_name(r, "GET", "/other/42", "GET /other/:id");
  kg_endpoint_rules_free(r);

  /* Empty rules behave like none. */
  r = kg_endpoint_rules_new(NULL, 0, NULL, 0);
  assert_non_null(r);
  expect_name(r, "GET", "/users/42", "GET /users/:id");
  kg_endpoint_rules_free(r);
  kg_endpoint_rules_free(NULL);
}

static void expect_bad(const char *pattern, const char *want_in_err) {
  const char *const pats[] = {"/fine/:x", pattern};
  char err[160];
  memset(err, 'X', sizeof(err));
  kg_endpoint_rules *r = kg_endpoint_rules_new(pats, 2, err, sizeof(err));
  assert_null(r);
  if (strncmp(err, "pattern 2 ", 10) != 0 || strstr(err, want_in_err) == NULL) {
    print_error("pattern \"%s\": got \"%s\", want \"%s\"\n", pattern ? pattern : "(null)",
                err, want_in_err);
    fail();
  }
}

static void test_invalid_patterns(void **state) {
  (void)state;
  expect_bad("", "empty");
  expect_bad("   ", "empty");
  expect_bad(NULL, "missing");
  expect_bad("users/:id", "must be a path");
  expect_bad("GET", "must be a path");
  expect_bad("GET search", "followed by a path");
  expect_bad("G(ET /x", "must be a path");
  expect_bad("/a/*/b", "last segment");
  expect_bad("/a/b*", "whole segment");
  expect_bad("/a/:/b", "needs a name");
  expect_bad("/a/:na-me", "letters, digits");
  expect_bad("/a b", "printable ASCII");
  expect_bad("/caf\xc3\xa9", "printable ASCII");
  expect_bad("/a?x=1", "query");
  char longp[400];
  memset(longp, 'a', sizeof(longp) - 1);
  longp[0] = '/';
  longp[sizeof(longp) - 1] = '\0';
  expect_bad(longp, "longer than");

  /* A short error buffer is still terminated. */
  const char *const bad[] = {"nope"};
  char tiny[8];
  assert_null(kg_endpoint_rules_new(bad, 1, tiny, sizeof(tiny)));
  assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_paths_kept),
      cmocka_unit_test(test_ids),
      cmocka_unit_test(test_uuids),
      cmocka_unit_test(test_hex),
      cmocka_unit_test(test_tokens),
      cmocka_unit_test(test_dates),
      cmocka_unit_test(test_mixed),
      cmocka_unit_test(test_query_and_absolute_form),
      cmocka_unit_test(test_weird_bytes),
      cmocka_unit_test(test_long_paths_bounded),
      cmocka_unit_test(test_rules),
      cmocka_unit_test(test_rules_precedence_over_templating),
      cmocka_unit_test(test_invalid_patterns),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
