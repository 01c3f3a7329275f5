/* config_tls.c: `tls = { ... }` tables (a backend's, a listener's, the
 * admin listener's) -> kg_tls_cfg, and the context built from it
 * (net/tls.h). The files are read here, at load: a missing, unreadable or
 * mismatched certificate or key is a FILE:LINE error at start, and a
 * reload with a bad pair fails as a whole, keeping the running config. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "config/config_int.h"
#include "net/tls.h"

/* min_version = "1.2" | "1.3" (also "TLSv1.2", "TLSv1.3"); absent: 1.2. */
static int kg_cfg_tls_version(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                              const char *kp, void *base) {
  kg_tls_cfg *tc = base;
  char d[128];
  if (lua_isnil(c->L, idx)) {
    tc->min_version = 12;
    return 0;
  }
  const char *s = lua_type(c->L, idx) == LUA_TSTRING ? lua_tostring(c->L, idx) : "";
  if (strncmp(s, "TLSv", 4) == 0) s += 4;
  if (strcmp(s, "1.2") == 0 || strcmp(s, "1.3") == 0) {
    tc->min_version = s[2] == '2' ? 12 : 13;
    return 0;
  }
  return kg_cfg_fail(c, kp, "expected \"1.2\" or \"1.3\", got %s",
                     kg_cfg_describe(c->L, idx, d, sizeof(d)));
}

#define KG_TLS(field) KG_CFG_AT(kg_tls_cfg, field)
static const kg_cfg_key kg_cfg_tls_keys[] = {
    {"ca", KG_CFG_PATH, KG_TLS(ca)},
    {"cert", KG_CFG_PATH, KG_TLS(cert)},
    {"key", KG_CFG_PATH, KG_TLS(key)},
    {"server_name", KG_CFG_PATH, KG_TLS(server_name)},
    {"ciphers", KG_CFG_PATH, KG_TLS(ciphers)},
    {"min_version", KG_CFG_CUSTOM, .flags = KG_CFG_ALWAYS, .read = kg_cfg_tls_version},
    {"verify", KG_CFG_BOOL, KG_TLS(verify), .def = 1},
};
#undef KG_TLS

/* A file named by kp.<key> must be readable now. */
static int kg_cfg_tls_file(kg_cfg_ctx *c, const char *kp, const char *key,
                           const char *file) {
  if (file == NULL || access(file, R_OK) == 0) return 0;
  char where[512];
  snprintf(where, sizeof(where), "%s.%s", kp, key);
  return kg_cfg_fail(c, where, "cannot read %s: %s", file, strerror(errno));
}

int kg_cfg_tls(kg_cfg_ctx *c, int idx, const char *kp, bool server,
               const char *host, kg_tls_cfg *tc, struct kg_tls_ctx **out) {
  idx = lua_absindex(c->L, idx);
  kg_cfg_defaults(kg_cfg_tls_keys, KG_ARRAY_SIZE(kg_cfg_tls_keys), tc);
  if (!lua_isnil(c->L, idx)) {
    if (kg_cfg_want(c, idx, kp, LUA_TTABLE,
                    server ? "a table like { cert = FILE, key = FILE }"
                           : "a table like { ca = FILE }") != 0 ||
        kg_cfg_read_table(c, idx, kp, kg_cfg_tls_keys,
                          KG_ARRAY_SIZE(kg_cfg_tls_keys), tc) != 0)
      return -1;
  } else {
    tc->min_version = 12;
  }
  if (server && (tc->cert == NULL || tc->key == NULL))
    return kg_cfg_fail(c, kp, "a TLS listener needs both cert and key");
  if (server && (tc->server_name || tc->ca || !tc->verify))
    return kg_cfg_fail(c, kp, "ca, server_name and verify are for backends, "
                              "not listeners");
  if (!server && (tc->cert == NULL) != (tc->key == NULL))
    return kg_cfg_fail(c, kp, "a client certificate needs both cert and key");
  if (kg_cfg_tls_file(c, kp, "cert", tc->cert) != 0 ||
      kg_cfg_tls_file(c, kp, "key", tc->key) != 0 ||
      kg_cfg_tls_file(c, kp, "ca", tc->ca) != 0)
    return -1;
  kg_tls_settings s = {.server = server,
                       .cert = tc->cert,
                       .key = tc->key,
                       .ca = tc->ca,
                       .server_name = tc->server_name ? tc->server_name : host,
                       .ciphers = tc->ciphers,
                       .min_version = tc->min_version,
                       .verify = tc->verify};
  char why[512];
  if (kg_tls_ctx_new(&s, out, why, sizeof(why)) != 0)
    return kg_cfg_fail(c, kp, "%s", why);
  return 0;
}

void kg_cfg_free_tls(kg_tls_cfg *tc, struct kg_tls_ctx *ctx) {
  free(tc->ca);
  free(tc->cert);
  free(tc->key);
  free(tc->server_name);
  free(tc->ciphers);
  kg_tls_ctx_free(ctx);
}
