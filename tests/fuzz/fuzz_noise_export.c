/* fuzz_noise_export: an /api/noise answer -> config rules
 * (src/cli/noise_export.c), as `kagami noise --export` writes them.
 *
 * Input: the JSON text of an answer (anything else is skipped: jansson's
 * parser is not ours to fuzz).
 *
 * What must hold: the fragment, pasted into a config's table, runs as Lua
 * (in a state with no libraries, so that injected code could only fail)
 * and yields a `rules` list whose ignore, ignore_xpath and ignore_headers
 * entries number exactly what the exporter said it wrote; whatever the
 * answer holds stays data: no location or endpoint ends a string or a
 * comment. */
#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>

#include "cli/noise_export.h"
#include "fuzz_util.h"

/* Entries of rules[*][key] in the table on top of L's stack. */
static long fz_count(lua_State *L, const char *key) {
  long n = 0;
  lua_Integer nrules = luaL_len(L, -1);
  for (lua_Integer i = 1; i <= nrules; i++) {
    lua_rawgeti(L, -1, i);
    FZ_CHECK(lua_istable(L, -1));
    lua_getfield(L, -1, "endpoint");
    FZ_CHECK(lua_type(L, -1) == LUA_TSTRING);
    lua_pop(L, 1);
    lua_getfield(L, -1, key);
    if (lua_istable(L, -1)) {
      lua_Integer k = luaL_len(L, -1);
      for (lua_Integer j = 1; j <= k; j++) {
        lua_rawgeti(L, -1, j);
        FZ_CHECK(lua_type(L, -1) == LUA_TSTRING);
        lua_pop(L, 1);
      }
      n += (long)k;
    }
    lua_pop(L, 2);
  }
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *api = json_loadb((const char *)data, size, 0, NULL);
  if (api == NULL) return 0;
  kg_buf out = KG_BUF_INIT;
  int n = kg_noise_export_lua(api, "http://127.0.0.1:8091", &out);
  json_decref(api);
  if (n < 0) {
    FZ_CHECK(out.len == 0);
    kg_buf_free(&out);
    return 0;
  }
  kg_buf chunk = KG_BUF_INIT;
  kg_buf_appends(&chunk, "return {\n");
  kg_buf_append(&chunk, out.data, out.len);
  kg_buf_appends(&chunk, "}\n");
  lua_State *L = luaL_newstate();
  int rc = luaL_loadbuffer(L, chunk.data, chunk.len, "=fragment");
  if (rc == 0) rc = lua_pcall(L, 0, 1, 0);
  if (rc != 0) {
    fprintf(stderr, "fragment does not run: %s\n%s", lua_tostring(L, -1), chunk.data);
    FZ_CHECK(!"the fragment runs");
  }
  lua_getfield(L, -1, "rules");
  FZ_CHECK(lua_istable(L, -1));
  long got = fz_count(L, "ignore") + fz_count(L, "ignore_xpath") +
             fz_count(L, "ignore_headers");
  FZ_CHECK(got == n);
  lua_close(L);
  kg_buf_free(&chunk);
  kg_buf_free(&out);
  return 0;
}
