/* config_output.c: where results and traffic go: the SQLite store, the
 * admin listener, and the traffic recording. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>

#include "common/common.h"
#include "config/config_int.h"

const char *const kg_cfg_output_keys[] = {
    "store",       "store_max_rows", "store_max_days", "store_max_body_bytes",
    "redact_headers", "admin",       "admin_token",    "record",
};
const size_t kg_cfg_noutput_keys = KG_ARRAY_SIZE(kg_cfg_output_keys);

/* Never written to the store or a recording unless the config says so. */
static const char *const kg_default_redact[] = {
    "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
};

static const char *const kg_record_keys[] = {"file", "sample", "bodies",
                                             "max_bytes", "keep_credentials"};

static void kg_add_redact(kg_config *cfg, const char *name) {
  kg_cfg_add_name(&cfg->redact_headers, &cfg->nredact_headers, name);
}

/* A size: a positive whole number of bytes or a string like "2GiB". */
static int kg_cfg_size(kg_cfg_ctx *c, int idx, const char *kp, uint64_t *out) {
  lua_State *L = c->L;
  char d[128];
  uint64_t u = 0;
  int isint = 0;
  if (lua_type(L, idx) == LUA_TSTRING) {
    if (kg_config_parse_size(lua_tostring(L, idx), &u) == 0 && u > 0) {
      *out = u;
      return 0;
    }
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer v = lua_tointegerx(L, idx, &isint);
    if (isint && v > 0) {
      *out = (uint64_t)v;
      return 0;
    }
  }
  return kg_cfg_fail(c, kp, "expected a positive size such as 512, \"64KiB\" or "
                     "\"2GiB\", got %s", kg_cfg_describe(L, idx, d, sizeof(d)));
}

/* record = { file = "traffic.kgr", sample = 0.1, bodies = true,
 *            max_bytes = "2GiB", keep_credentials = false } */
static int kg_cfg_record(kg_cfg_ctx *c, int idx) {
  lua_State *L = c->L;
  kg_config *cfg = c->cfg;
  char d[128];
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE)
    return kg_cfg_fail(c, "record", "expected a table such as { file = \"traffic.kgr\" }, got %s",
                       kg_cfg_describe(L, idx, d, sizeof(d)));
  if (kg_cfg_check_keys(c, idx, "record", kg_record_keys,
                        KG_ARRAY_SIZE(kg_record_keys)) != 0)
    return -1;
  int t = kg_cfg_rawfield(L, idx, "file");
  if (t != LUA_TSTRING || lua_rawlen(L, -1) == 0)
    return kg_cfg_fail(c, "record.file", "expected a file path, got %s",
                       kg_cfg_describe(L, -1, d, sizeof(d)));
  cfg->record_file = kg_strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  if (kg_cfg_rawfield(L, idx, "sample") != LUA_TNIL &&
      kg_cfg_share(c, -1, "record.sample", &cfg->record_sample) != 0)
    return -1;
  lua_pop(L, 1);
  if (kg_cfg_rawfield(L, idx, "bodies") != LUA_TNIL &&
      kg_cfg_bool(c, -1, "record.bodies", &cfg->record_bodies) != 0)
    return -1;
  lua_pop(L, 1);
  if (kg_cfg_rawfield(L, idx, "keep_credentials") != LUA_TNIL &&
      kg_cfg_bool(c, -1, "record.keep_credentials", &cfg->record_keep_credentials) != 0)
    return -1;
  lua_pop(L, 1);
  if (kg_cfg_rawfield(L, idx, "max_bytes") != LUA_TNIL &&
      kg_cfg_size(c, -1, "record.max_bytes", &cfg->record_max_bytes) != 0)
    return -1;
  lua_pop(L, 1);
  if (cfg->record_max_bytes < 4096)
    return kg_cfg_fail(c, "record.max_bytes", "must be at least 4KiB");
  return 0;
}

/* admin = "127.0.0.1:8091", or a bare port, which means loopback. */
static int kg_cfg_admin(kg_cfg_ctx *c, int idx) {
  lua_State *L = c->L;
  kg_config *cfg = c->cfg;
  char d[128], text[300], why[256];
  if (lua_type(L, idx) == LUA_TNUMBER && lua_isinteger(L, idx)) {
    snprintf(text, sizeof(text), "127.0.0.1:%lld", (long long)lua_tointeger(L, idx));
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    snprintf(text, sizeof(text), "%s", lua_tostring(L, idx));
  } else {
    return kg_cfg_fail(c, "admin", "expected \"host:port\" or a port number, got %s",
                       kg_cfg_describe(L, idx, d, sizeof(d)));
  }
  cfg->admin = kg_calloc(1, sizeof(kg_addr));
  if (kg_addr_parse(text, cfg->admin, why, sizeof(why)) != 0)
    return kg_cfg_fail(c, "admin", "%s", why);
  for (size_t i = 0; i < cfg->nlisten; i++)
    if (cfg->listen[i].port == cfg->admin->port &&
        cfg->listen[i].sa.ss_family == cfg->admin->sa.ss_family &&
        memcmp(&cfg->listen[i].sa, &cfg->admin->sa, cfg->admin->salen) == 0)
      return kg_cfg_fail(c, "admin", "%s is also a listen address", cfg->admin->text);
  return 0;
}

int kg_cfg_load_output(kg_cfg_ctx *c, int t) {
  lua_State *L = c->L;
  kg_config *cfg = c->cfg;
  char d[128];
  cfg->store_max_rows = 100000;
  cfg->store_max_days = 7;
  cfg->store_max_body_bytes = 256 * 1024;
  cfg->record_sample = 1.0;
  cfg->record_bodies = true;
  cfg->record_max_bytes = (uint64_t)1 << 30;
  for (size_t i = 0; i < KG_ARRAY_SIZE(kg_default_redact); i++)
    kg_add_redact(cfg, kg_default_redact[i]);

  /* store: a path, or false to keep results only in the diff log. */
  int ty = kg_cfg_rawfield(L, t, "store");
  if (ty == LUA_TNIL) cfg->store_path = kg_strdup("kagami.db");
  else if (ty == LUA_TSTRING && lua_rawlen(L, -1) > 0)
    cfg->store_path = kg_strdup(lua_tostring(L, -1));
  else if (!(ty == LUA_TBOOLEAN && !lua_toboolean(L, -1)))
    return kg_cfg_fail(c, "store", "expected a file path or false, got %s",
                       kg_cfg_describe(L, -1, d, sizeof(d)));
  lua_pop(L, 1);

  if (kg_cfg_rawfield(L, t, "store_max_rows") != LUA_TNIL &&
      kg_cfg_count(c, -1, "store_max_rows", &cfg->store_max_rows) != 0)
    return -1;
  lua_pop(L, 1);
  ty = kg_cfg_rawfield(L, t, "store_max_days");
  if (ty != LUA_TNIL) {
    double v = ty == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : NAN;
    if (!(v > 0) || !isfinite(v))
      return kg_cfg_fail(c, "store_max_days", "expected a positive number of days, got %s",
                         kg_cfg_describe(L, -1, d, sizeof(d)));
    cfg->store_max_days = v;
  }
  lua_pop(L, 1);
  uint64_t sz;
  if (kg_cfg_rawfield(L, t, "store_max_body_bytes") != LUA_TNIL) {
    if (kg_cfg_size(c, -1, "store_max_body_bytes", &sz) != 0) return -1;
    cfg->store_max_body_bytes = (size_t)sz;
  }
  lua_pop(L, 1);

  if (kg_cfg_rawfield(L, t, "redact_headers") != LUA_TNIL) {
    char **list = NULL;
    size_t n = 0;
    int rc = kg_cfg_strlist(c, -1, "redact_headers", &list, &n,
                            kg_cfg_check_header_name);
    for (size_t i = 0; i < n; i++) {
      if (rc == 0) kg_add_redact(cfg, list[i]);
      free(list[i]);
    }
    free(list);
    if (rc) return rc;
  }
  lua_pop(L, 1);

  if (kg_cfg_rawfield(L, t, "admin") != LUA_TNIL && kg_cfg_admin(c, -1) != 0) return -1;
  lua_pop(L, 1);
  ty = kg_cfg_rawfield(L, t, "admin_token");
  if (ty == LUA_TSTRING && lua_rawlen(L, -1) > 0)
    cfg->admin_token = kg_strdup(lua_tostring(L, -1));
  else if (ty != LUA_TNIL)
    return kg_cfg_fail(c, "admin_token", "expected a non-empty string, got %s",
                       kg_cfg_describe(L, -1, d, sizeof(d)));
  lua_pop(L, 1);
  if (kg_cfg_rawfield(L, t, "record") != LUA_TNIL && kg_cfg_record(c, -1) != 0) return -1;
  lua_pop(L, 1);
  return 0;
}

void kg_cfg_free_output(kg_config *cfg) {
  free(cfg->store_path);
  for (size_t i = 0; i < cfg->nredact_headers; i++) free(cfg->redact_headers[i]);
  free(cfg->redact_headers);
  if (cfg->admin) kg_addr_free(cfg->admin);
  free(cfg->admin);
  free(cfg->admin_token);
  free(cfg->record_file);
}
