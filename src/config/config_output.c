/* config_output.c: where results and traffic go: the SQLite store, the
 * admin listener, and the traffic recording. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "common/common.h"
#include "config/config_int.h"

/* Never written to the store or a recording unless the config says so. */
static const char *const kg_cfg_default_redact[] = {
    "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
};

/* The store when the config names none: the row's default (kagami.db, in
 * the working directory), except under a service manager that gave us a
 * state directory (systemd's StateDirectory= sets $STATE_DIRECTORY, a
 * colon-separated list whose first entry is ours): there the working
 * directory is "/" or another place we cannot write, and the state
 * directory is the one made for this. Returns an owned string. */
static char *kg_cfg_default_store(const char *def) {
  const char *dir = getenv("STATE_DIRECTORY");
  if (dir == NULL || dir[0] != '/') return kg_strdup(def);
  size_t n = strcspn(dir, ":");
  char *path = kg_malloc(n + 1 + strlen(def) + 1);
  snprintf(path, n + 1 + strlen(def) + 1, "%.*s/%s", (int)n, dir, def);
  return path;
}

bool kg_config_is_pg_url(const char *s) {
  return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

char *kg_config_read_secret(const char *env_name, const char *file_path, char *err,
                            size_t errlen) {
  if (env_name != NULL) {
    const char *v = getenv(env_name);
    if (v != NULL && *v != '\0') return kg_strdup(v);
    snprintf(err, errlen, "environment variable %s is not set", env_name);
    return NULL;
  }
  FILE *f = fopen(file_path, "r");
  if (f == NULL) {
    snprintf(err, errlen, "%s: %s", file_path, strerror(errno));
    return NULL;
  }
  char line[4096];
  if (fgets(line, sizeof(line), f) == NULL) line[0] = '\0';
  fclose(f);
  line[strcspn(line, "\r\n")] = '\0';
  if (line[0] == '\0') {
    snprintf(err, errlen, "%s is empty", file_path);
    return NULL;
  }
  return kg_strdup(line);
}

/* The url of store = { url_env = NAME } or { url_file = PATH }: forms that
 * keep a password out of the config (and so out of `kagami check` output
 * and version control). Returns an owned string, or NULL after
 * kg_cfg_fail. */
static char *kg_cfg_store_url(kg_cfg_ctx *c, int idx, const char *kp) {
  static const char *const keys[] = {"url_env", "url_file"};
  lua_State *L = c->L;
  char d[128], why[4200];
  if (kg_cfg_check_keys(c, idx, kp, keys, KG_ARRAY_SIZE(keys)) != 0) return NULL;
  int top = lua_gettop(L);
  char *url = NULL;
  if (kg_cfg_rawfield(L, idx, "url_env") == LUA_TSTRING) {
    url = kg_config_read_secret(lua_tostring(L, -1), NULL, why, sizeof(why));
    if (url == NULL) kg_cfg_fail(c, kp, "url_env: %s", why);
  } else if (kg_cfg_rawfield(L, idx, "url_file") == LUA_TSTRING) {
    url = kg_config_read_secret(NULL, lua_tostring(L, -1), why, sizeof(why));
    if (url == NULL) kg_cfg_fail(c, kp, "url_file: %s", why);
  } else {
    kg_cfg_fail(c, kp, "expected { url_env = \"NAME\" } or { url_file = \"PATH\" }, got %s",
                kg_cfg_describe(L, idx, d, sizeof(d)));
  }
  lua_settop(L, top);
  if (url != NULL && !kg_config_is_pg_url(url)) {
    kg_cfg_fail(c, kp, "expected a postgresql:// url in %s",
                lua_type(L, idx) == LUA_TTABLE ? "url_env / url_file" : "it");
    free(url);
    url = NULL;
  }
  return url;
}

/* store: a path (absent: kg_cfg_default_store), false to keep results
 * only in the diff log, or a PostgreSQL url (written directly, or read
 * from an environment variable or a file) for a fleet's shared store. */
static int kg_cfg_store(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                        const char *kp, void *base) {
  lua_State *L = c->L;
  kg_config *cfg = base;
  char d[128];
  int ty = lua_type(L, idx);
  if (ty == LUA_TNIL) {
    cfg->store_path = kg_cfg_default_store(k->def_str);
  } else if (ty == LUA_TSTRING && lua_rawlen(L, idx) > 0) {
    const char *s = lua_tostring(L, idx);
    if (kg_config_is_pg_url(s)) cfg->store_url = kg_strdup(s);
    else cfg->store_path = kg_strdup(s);
  } else if (ty == LUA_TTABLE) {
    cfg->store_url = kg_cfg_store_url(c, idx, kp);
    if (cfg->store_url == NULL) return -1;
  } else if (!(ty == LUA_TBOOLEAN && !lua_toboolean(L, idx))) {
    return kg_cfg_fail(c, kp, "expected a file path, a postgresql:// url or false, got %s",
                       kg_cfg_describe(L, idx, d, sizeof(d)));
  }
  return 0;
}

/* instance: this kagami's name in a shared store; default the host name. */
static int kg_cfg_instance(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                           const char *kp, void *base) {
  kg_config *cfg = base;
  char d[128], host[256];
  if (lua_isnil(c->L, idx)) {
    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0') strcpy(host, "kagami");
    host[sizeof(host) - 1] = '\0';
    cfg->instance = kg_strdup(host);
    return 0;
  }
  if (lua_type(c->L, idx) != LUA_TSTRING || lua_rawlen(c->L, idx) == 0 ||
      lua_rawlen(c->L, idx) > 200)
    return kg_cfg_fail(c, kp, "expected a name (1 to 200 bytes), got %s",
                       kg_cfg_describe(c->L, idx, d, sizeof(d)));
  cfg->instance = kg_strdup(lua_tostring(c->L, idx));
  return 0;
}

/* redact_headers: added to the built-in list, which always applies. */
static int kg_cfg_redact(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                         const char *kp, void *base) {
  kg_config *cfg = base;
  for (size_t i = 0; i < KG_ARRAY_SIZE(kg_cfg_default_redact); i++)
    kg_cfg_add_name(&cfg->redact_headers, &cfg->nredact_headers,
                    kg_cfg_default_redact[i]);
  if (lua_isnil(c->L, idx)) return 0;
  return kg_cfg_read_names(c, idx, kp, &cfg->redact_headers, &cfg->nredact_headers);
}

static const char *const kg_cfg_admin_keys[] = {"address", "tls"};

/* admin = "127.0.0.1:8091", or a bare port, which means loopback; or
 * { address = either of those, tls = { cert = FILE, key = FILE } } for a
 * dashboard served over TLS. */
static int kg_cfg_admin(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                        const char *kp, void *base) {
  lua_State *L = c->L;
  kg_config *cfg = base;
  char text[300], why[256];
  int tls_idx = 0;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TTABLE) {
    if (kg_cfg_check_keys(c, idx, kp, kg_cfg_admin_keys,
                          KG_ARRAY_SIZE(kg_cfg_admin_keys)) != 0)
      return -1;
    kg_cfg_rawfield(L, idx, "tls");
    tls_idx = lua_gettop(L);
    kg_cfg_rawfield(L, idx, "address");
    idx = lua_gettop(L);
  }
  if (kg_cfg_address(c, idx, kp, text, sizeof(text)) != 0) return -1;
  cfg->admin = kg_calloc(1, sizeof(kg_addr));
  if (kg_addr_parse(text, cfg->admin, why, sizeof(why)) != 0)
    return kg_cfg_fail(c, kp, "%s", why);
  for (size_t i = 0; i < cfg->nlisten; i++)
    if (cfg->listen[i].port == cfg->admin->port &&
        cfg->listen[i].sa.ss_family == cfg->admin->sa.ss_family &&
        memcmp(&cfg->listen[i].sa, &cfg->admin->sa, cfg->admin->salen) == 0)
      return kg_cfg_fail(c, kp, "%s is also a listen address", cfg->admin->text);
  if (tls_idx == 0 || lua_isnil(L, tls_idx)) return 0;
  return kg_cfg_tls(c, tls_idx, "admin.tls", true, NULL, &cfg->admin_tls_cfg,
                    &cfg->admin_tls);
}

static int kg_cfg_admin_token(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                              const char *kp, void *base) {
  char d[128];
  if (lua_type(c->L, idx) != LUA_TSTRING || lua_rawlen(c->L, idx) == 0)
    return kg_cfg_fail(c, kp, "expected a non-empty string, got %s",
                       kg_cfg_describe(c->L, idx, d, sizeof(d)));
  ((kg_config *)base)->admin_token = kg_strdup(lua_tostring(c->L, idx));
  return 0;
}

/* A recording file smaller than this would rotate at every request. */
static int kg_cfg_check_record(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                               const char *kp, void *base) {
  if (((const kg_config *)base)->record_max_bytes < 4096)
    return kg_cfg_fail(c, "record.max_bytes", "must be at least 4KiB");
  return 0;
}

#define KG_AT(field) KG_CFG_AT(kg_config, field)
/* record = { file = "traffic.kgr", sample = 0.1, bodies = true,
 *            keep_credentials = false, max_bytes = "2GiB" } */
static const kg_cfg_key kg_cfg_record_keys[] = {
    {"file", KG_CFG_PATH, KG_AT(record_file), .flags = KG_CFG_ALWAYS},
    {"sample", KG_CFG_SHARE, KG_AT(record_sample), .def = 1},
    {"bodies", KG_CFG_BOOL, KG_AT(record_bodies), .def = 1},
    {"keep_credentials", KG_CFG_BOOL, KG_AT(record_keep_credentials)},
    {"max_bytes", KG_CFG_SIZE, KG_AT(record_max_bytes), .def = 1 << 30,
     .flags = KG_CFG_TERSE_SIZE},
};

/* The output keys, in the order they are read. */
const kg_cfg_key kg_cfg_output_keys[] = {
    {"store", KG_CFG_CUSTOM, .def_str = "kagami.db", .flags = KG_CFG_ALWAYS,
     .read = kg_cfg_store},
    {"instance", KG_CFG_CUSTOM, .flags = KG_CFG_ALWAYS, .read = kg_cfg_instance},
    /* Individual results kept; every result is counted in the aggregates
     * for store_max_days regardless. Per endpoint, so that one noisy
     * endpoint cannot evict the others' examples. */
    {"store_keep_differing", KG_CFG_COUNT, KG_AT(store_keep_differing), .def = 1000},
    {"store_keep_equal", KG_CFG_COUNT, KG_AT(store_keep_equal), .def = 100},
    {"store_keep_equal_per_minute", KG_CFG_COUNT, KG_AT(store_keep_equal_per_minute),
     .def = 2},
    /* Before the aggregates this was the only bound (results of every
     * kind, oldest first); it stays as the bound on all individual
     * results together, so old configs keep working. */
    {"store_max_rows", KG_CFG_COUNT, KG_AT(store_max_rows), .def = 100000},
    {"store_max_days", KG_CFG_POSITIVE, KG_AT(store_max_days), .def = 7,
     .what = "days"},
    {"store_max_body_bytes", KG_CFG_SIZE, KG_AT(store_max_body_bytes),
     .def = 256 * 1024, .flags = KG_CFG_TERSE_SIZE},
    {"redact_headers", KG_CFG_CUSTOM, .flags = KG_CFG_ALWAYS, .read = kg_cfg_redact},
    {"admin", KG_CFG_CUSTOM, .read = kg_cfg_admin},
    {"admin_token", KG_CFG_CUSTOM, .read = kg_cfg_admin_token},
    {"record", KG_CFG_TABLE, .what = "a table such as { file = \"traffic.kgr\" }",
     .sub = kg_cfg_record_keys, .nsub = KG_ARRAY_SIZE(kg_cfg_record_keys),
     .check = kg_cfg_check_record},
};
const size_t kg_cfg_noutput_keys = KG_ARRAY_SIZE(kg_cfg_output_keys);
#undef KG_AT

void kg_cfg_free_output(kg_config *cfg) {
  free(cfg->store_path);
  free(cfg->store_url);
  free(cfg->instance);
  kg_cfg_free_strs(cfg->redact_headers, cfg->nredact_headers);
  if (cfg->admin) kg_addr_free(cfg->admin);
  free(cfg->admin);
  kg_cfg_free_tls(&cfg->admin_tls_cfg, cfg->admin_tls);
  free(cfg->admin_token);
  free(cfg->record_file);
}
