/* Unit tests: learned noise exported as config rules (cli/noise_export.c).
 * The fragment is run by Lua itself, as a config would run it, so that
 * what is checked is what a config gets, not the text's look. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "cli/noise_export.h"

/* Exports the /api/noise answer `api_text`; returns the rule count and
 * the fragment in *out (owned by the caller). */
static int export_text(const char *api_text, kg_buf *out) {
  json_error_t err;
  json_t *api = json_loads(api_text, 0, &err);
  assert_non_null(api);
  *out = (kg_buf)KG_BUF_INIT;
  int n = kg_noise_export_lua(api, "http://127.0.0.1:8091", out);
  json_decref(api);
  return n;
}

/* Runs the fragment as the inside of a config's table and leaves its
 * `rules` on the stack of the returned state. */
static lua_State *run_fragment(const kg_buf *fragment) {
  lua_State *L = luaL_newstate();
  kg_buf chunk = KG_BUF_INIT;
  kg_buf_appends(&chunk, "return {\n");
  kg_buf_append(&chunk, fragment->data, fragment->len);
  kg_buf_appends(&chunk, "}\n");
  int rc = luaL_loadstring(L, chunk.data);
  if (rc == 0) rc = lua_pcall(L, 0, 1, 0);
  if (rc != 0) fail_msg("fragment does not run: %s\n%s", lua_tostring(L, -1), chunk.data);
  kg_buf_free(&chunk);
  lua_getfield(L, -1, "rules");
  assert_true(lua_istable(L, -1));
  return L;
}

/* rules[i][key][k] as a string, or NULL when absent. */
static const char *rule_str(lua_State *L, int i, const char *key, int k) {
  lua_rawgeti(L, -1, i);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  lua_getfield(L, -1, key);
  const char *s = NULL;
  if (k == 0) {
    s = lua_tostring(L, -1); /* endpoint */
  } else if (lua_istable(L, -1)) {
    lua_rawgeti(L, -1, k);
    s = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return s; /* still referenced by the table, which stays on the stack */
}

static int rule_count(lua_State *L) { return (int)luaL_len(L, -1); }

static void test_each_location_kind_goes_to_its_rule(void **state) {
  (void)state;
  kg_buf out;
  int n = export_text(
      "{\"learning\":true,\"threshold\":0.2,\"min_pairs\":10,\"endpoints\":["
      "{\"endpoint\":\"GET /api/:id\",\"pairs\":20,\"locations\":["
      "{\"location\":\"$.meta.ts\",\"differed\":20,\"pairs\":20,\"suppressed\":true},"
      "{\"location\":\"$.price\",\"differed\":1,\"pairs\":20,\"suppressed\":false},"
      "{\"location\":\"$[\\\"odd key\\\"][3]\",\"differed\":9,\"pairs\":20,\"suppressed\":true},"
      "{\"location\":\"/html/body/p[1]/text()\",\"differed\":20,\"pairs\":20,\"suppressed\":true},"
      "{\"location\":\"header:x-id\",\"differed\":20,\"pairs\":20,\"suppressed\":true}]}]}",
      &out);
  assert_int_equal(n, 4);
  lua_State *L = run_fragment(&out);
  assert_int_equal(rule_count(L), 1);
  assert_string_equal(rule_str(L, 1, "endpoint", 0), "GET /api/:id");
  assert_string_equal(rule_str(L, 1, "ignore", 1), "$.meta.ts");
  assert_string_equal(rule_str(L, 1, "ignore", 2), "$[\"odd key\"][3]");
  assert_null(rule_str(L, 1, "ignore", 3)); /* $.price is not hidden now */
  assert_string_equal(rule_str(L, 1, "ignore_xpath", 1), "/html/body/p[1]/text()");
  assert_string_equal(rule_str(L, 1, "ignore_headers", 1), "x-id");
  assert_non_null(strstr(out.data, "\"$.meta.ts\",  -- differed in 20 of 20 pairs\n"));
  lua_close(L);
  kg_buf_free(&out);
}

/* What no rule hides exactly stays a comment with the reason: never a
 * wider rule, which could hide a real change. */
static void test_inexact_locations_stay_comments(void **state) {
  (void)state;
  kg_buf out;
  int n = export_text(
      "{\"endpoints\":[{\"endpoint\":\"GET /page\",\"pairs\":12,\"locations\":["
      "{\"location\":\"header:set-cookie[2]\",\"differed\":12,\"pairs\":12,\"suppressed\":true},"
      "{\"location\":\"line 3: Took # ms -> Took # ms\",\"differed\":12,\"pairs\":12,\"suppressed\":true},"
      "{\"location\":\"body\",\"differed\":12,\"pairs\":12,\"suppressed\":true},"
      "{\"location\":\"/!DOCTYPE\",\"differed\":12,\"pairs\":12,\"suppressed\":true},"
      "{\"location\":\"$.a..b\",\"differed\":12,\"pairs\":12,\"suppressed\":true}]},"
      "{\"endpoint\":\"GET /a*b\",\"pairs\":12,\"locations\":["
      "{\"location\":\"$.ts\",\"differed\":12,\"pairs\":12,\"suppressed\":true}]}]}",
      &out);
  assert_int_equal(n, 0);
  lua_State *L = run_fragment(&out);
  assert_int_equal(rule_count(L), 0);
  lua_close(L);
  assert_non_null(strstr(out.data, "--   header:set-cookie[2] (differed in 12 of 12 pairs): "
                                   "one field of a repeated header"));
  assert_non_null(strstr(out.data, "--   line 3: Took # ms -> Took # ms (differed in 12 of "
                                   "12 pairs): a text line"));
  assert_non_null(strstr(out.data, "--   body ("));
  assert_non_null(strstr(out.data, "--   /!DOCTYPE ("));
  assert_non_null(strstr(out.data, "--   $.a..b ("));
  assert_non_null(strstr(out.data, "--   $.ts (differed in 12 of 12 pairs): a rule's "
                                   "endpoint glob cannot name this endpoint alone"));
  kg_buf_free(&out);
}

/* The answer is untrusted: a location or endpoint that tries to end a
 * string or a comment stays data, and entries of the wrong shape are
 * skipped, never exported. */
static void test_hostile_answer_stays_data(void **state) {
  (void)state;
  kg_buf out;
  int n = export_text(
      "{\"endpoints\":[{\"endpoint\":\"GET /x\\\"}} os.exit(3) --\",\"pairs\":3,"
      "\"locations\":["
      "{\"location\":\"$[\\\"a\\\\\\\"\\\\n\\\"]\",\"differed\":3,\"pairs\":3,\"suppressed\":true},"
      "{\"location\":\"line 1: x\\nos.exit(4)\",\"differed\":3,\"pairs\":3,\"suppressed\":true},"
      "{\"location\":17,\"suppressed\":true},"
      "{\"location\":\"header:a\\r\\nb\",\"differed\":3,\"pairs\":3,\"suppressed\":true}]},"
      "{\"pairs\":1},"
      "\"not an object\"]}",
      &out);
  assert_int_equal(n, 1);
  lua_State *L = run_fragment(&out);
  assert_int_equal(rule_count(L), 1);
  assert_string_equal(rule_str(L, 1, "endpoint", 0), "GET /x\"}} os.exit(3) --");
  assert_string_equal(rule_str(L, 1, "ignore", 1), "$[\"a\\\"\\n\"]");
  assert_null(rule_str(L, 1, "ignore_headers", 1));
  lua_close(L);
  assert_non_null(strstr(out.data, "--   line 1: x\\010os.exit(4) ("));
  assert_non_null(strstr(out.data, "an endpoint entry without a name"));
  kg_buf_free(&out);

  json_t *j = json_loads("{\"endpoints\":{}}", 0, NULL);
  out = (kg_buf)KG_BUF_INIT;
  assert_int_equal(kg_noise_export_lua(j, NULL, &out), -1);
  assert_int_equal(out.len, 0);
  json_decref(j);
  kg_buf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_each_location_kind_goes_to_its_rule),
      cmocka_unit_test(test_inexact_locations_stay_comments),
      cmocka_unit_test(test_hostile_answer_stays_data),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
