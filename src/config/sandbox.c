/* sandbox.c: running a config file's Lua safely.
 *
 * The same file runs in `kagami check`, at start, on every reload and in
 * every worker's hook state, so all four go through kg_config_lua_run: no
 * __gc metamethods (a finalizer runs with hooks off and cannot be
 * stopped), an instruction budget (a loop that never ends would hang the
 * proxy), text chunks only (bytecode can crash the VM), and messages that
 * name the file by its full path. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "common/buf.h"
#include "common/common.h"
#include "config/config.h"
#include "config/config_int.h"

/* Reads the whole file: the source kg_config_locate scans. */
char *kg_cfg_read_file(const char *path, int *err_no) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    *err_no = errno;
    return NULL;
  }
  kg_buf b = KG_BUF_INIT;
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) kg_buf_append(&b, chunk, n);
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    kg_buf_free(&b);
    *err_no = EIO;
    return NULL;
  }
  /* An empty file appended nothing: make sure there is a terminator. */
  kg_buf_append(&b, "", 0);
  return kg_buf_steal(&b, NULL);
}

/* Lua cuts chunk names to 60 bytes ("...long/path/kagami.lua:3:"), which
 * would break FILE:LINE for long paths. So the chunk gets a short marker
 * name, and messages get the full path put back in its place. */
#define KG_CHUNK_MARK "\x01config"

int kg_config_lua_load(lua_State *L, const char *path) {
  int eno = 0;
  char *src = kg_cfg_read_file(path, &eno);
  if (src == NULL) {
    lua_pushfstring(L, "%s: cannot read: %s", path, strerror(eno));
    return LUA_ERRFILE;
  }
  /* A first line starting with '#' (a shebang) is skipped, as luaL_loadfile
   * would, but kept as an empty line so line numbers stay right. */
  const char *code = src;
  if (src[0] == '#') code = src + strcspn(src, "\n");
  /* "t": a config is text; precompiled bytecode can crash the VM. */
  int st = luaL_loadbufferx(L, code, strlen(code), "=" KG_CHUNK_MARK, "t");
  free(src);
  return st;
}

void kg_config_lua_message(const char *msg, const char *path, kg_buf *out) {
  const size_t mlen = strlen(KG_CHUNK_MARK);
  for (const char *p = msg;;) {
    const char *hit = strstr(p, KG_CHUNK_MARK);
    if (hit == NULL) {
      kg_buf_appends(out, p);
      break;
    }
    kg_buf_append(out, p, (size_t)(hit - p));
    kg_buf_appends(out, path);
    p = hit + mlen;
  }
  if (out->data == NULL) kg_buf_append(out, "", 0);
}

/* The config file runs at start, in `kagami check` and on every reload:
 * a loop that never ends would hang all three (a reload, the proxy).
 * Building even a large table takes a small fraction of this. */
#define KG_CONFIG_BUDGET 100000000 /* Lua instructions */

/* A count hook called once KG_CONFIG_BUDGET instructions have run. The
 * error carries the line being run (level 0 inside a hook: luaL_error's
 * level 1 would be its caller), so the message is FILE:LINE: ... */
static void kg_cfg_budget_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  luaL_where(L, 0);
  lua_pushfstring(L, "the config ran for more than %d Lua instructions "
                     "(a loop that never ends?)", KG_CONFIG_BUDGET);
  lua_concat(L, 2);
  lua_error(L);
}

/* setmetatable without __gc. Lua runs finalizers with debug hooks off, so
 * no instruction budget can stop one that never ends: it would hang the
 * loader, or a worker at some later collection. Written out (as the base
 * library's, plus the check) rather than wrapping the original, which a
 * config could otherwise dig out of the wrapper's upvalue. */
static int kg_cfg_setmetatable(lua_State *L) {
  int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "__gc metamethods are not allowed in a config "
                           "(a finalizer cannot be stopped if it never ends)");
    lua_pop(L, 1);
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

int kg_config_lua_run(lua_State *L, const char *path) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  lua_pushcfunction(L, kg_cfg_setmetatable);
  lua_setfield(L, -2, "setmetatable");
  lua_getfield(L, -1, "debug");
  if (lua_istable(L, -1)) { /* the other way to set a metatable */
    lua_pushnil(L);
    lua_setfield(L, -2, "setmetatable");
  }
  lua_pop(L, 2);
  /* Stays armed: the caller's further Lua (validation) runs under it too,
   * until it sets a hook of its own or clears it. */
  lua_sethook(L, kg_cfg_budget_hook, LUA_MASKCOUNT, KG_CONFIG_BUDGET);
  int st = kg_config_lua_load(L, path);
  if (st == LUA_OK) st = lua_pcall(L, 0, 1, 0);
  return st;
}
