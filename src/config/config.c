/* config.c: the Lua config file -> kg_config (see config.h): loading,
 * the top-level table, and the proxy's own keys (listen, timeouts,
 * backends, limits, hooks).
 *
 * The file is run once in a throw-away Lua state (sandbox.c); the table it
 * returns is walked with raw accesses only (read.c) and copied into plain
 * C, section by section: this file's keys, then config_compare.c's, then
 * config_output.c's. Every error names the file, a line and the key path
 * (locate.c). */
#include "config/config.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "common/buf.h"
#include "common/common.h"
#include "config/config_int.h"
#include "net/conn.h"

/* Number of methods http_parser knows, counted from its own X-macro so a
 * newer http_parser with more methods needs no change here. */
#define KG_COUNT_METHOD(num, name, string) +1
enum { KG_NMETHODS = 0 HTTP_METHOD_MAP(KG_COUNT_METHOD) };
#undef KG_COUNT_METHOD
_Static_assert(KG_NMETHODS <= 64, "shadow_methods is a 64-bit mask");

/* Same family, address and port: what "the same listening socket" means. */
static bool kg_cfg_same_sockaddr(const kg_addr *a, const kg_addr *b) {
  if (a->sa.ss_family != b->sa.ss_family) return false;
  if (a->sa.ss_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)&a->sa;
    const struct sockaddr_in *y = (const struct sockaddr_in *)&b->sa;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->sa.ss_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->sa;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->sa;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
  }
  return a->salen == b->salen && memcmp(&a->sa, &b->sa, a->salen) == 0;
}

static int kg_cfg_add_listen(kg_cfg_ctx *c, const char *text) {
  kg_config *cfg = c->cfg;
  char why[256];
  kg_addr *a = &cfg->listen[cfg->nlisten];
  if (kg_addr_parse(text, a, why, sizeof(why)) != 0)
    return kg_cfg_fail(c, "listen", "%s", why);
  cfg->nlisten++;
  for (size_t i = 0; i + 1 < cfg->nlisten; i++) {
    if (!kg_cfg_same_sockaddr(&cfg->listen[i], a)) continue;
    if (strcmp(cfg->listen[i].text, a->text) == 0)
      return kg_cfg_fail(c, "listen", "duplicate listen address %s", a->text);
    return kg_cfg_fail(c, "listen", "duplicate listen address %s (same as %s)",
                a->text, cfg->listen[i].text);
  }
  return 0;
}

static const char *const kg_cfg_listen_keys[] = {"address", "tls"};

/* One listen entry at idx: "host:port", a bare port (loopback, as for
 * admin), or { address = either, tls = { cert = FILE, key = FILE } } for a
 * TLS listener. */
static int kg_cfg_listen_entry(kg_cfg_ctx *c, int idx) {
  lua_State *L = c->L;
  kg_config *cfg = c->cfg;
  char text[300];
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE) {
    if (kg_cfg_address(c, idx, "listen", text, sizeof(text)) != 0) return -1;
    return kg_cfg_add_listen(c, text);
  }
  if (kg_cfg_check_keys(c, idx, "listen", kg_cfg_listen_keys,
                        KG_ARRAY_SIZE(kg_cfg_listen_keys)) != 0)
    return -1;
  int top = lua_gettop(L);
  int rc;
  kg_cfg_rawfield(L, idx, "address");
  rc = kg_cfg_address(c, -1, "listen.address", text, sizeof(text));
  if (rc == 0) rc = kg_cfg_add_listen(c, text);
  if (rc == 0) {
    size_t n = cfg->nlisten - 1;
    kg_cfg_rawfield(L, idx, "tls");
    if (!lua_isnil(L, -1))
      rc = kg_cfg_tls(c, -1, "listen.tls", true, NULL, &cfg->listen_tls_cfg[n],
                      &cfg->listen_tls[n]);
  }
  lua_settop(L, top);
  return rc;
}

/* Room for n listen entries, with their TLS settings. */
static void kg_cfg_listen_alloc(kg_config *cfg, size_t n) {
  cfg->listen = kg_calloc(n, sizeof(kg_addr));
  cfg->listen_tls = kg_calloc(n, sizeof(*cfg->listen_tls));
  cfg->listen_tls_cfg = kg_calloc(n, sizeof(kg_tls_cfg));
}

/* listen: absent -> the default; "host:port" or a port; one { address = ..., tls =
 * ... } table; or a non-empty list of these. */
static int kg_cfg_listen(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                         const char *kp, void *base) {
  lua_State *L = c->L;
  kg_config *cfg = base;
  idx = lua_absindex(L, idx);
  if (lua_isnil(L, idx)) {
    kg_cfg_listen_alloc(cfg, 1);
    return kg_cfg_add_listen(c, k->def_str);
  }
  if (lua_type(L, idx) != LUA_TTABLE || kg_cfg_rawfield(L, idx, "address") != LUA_TNIL) {
    lua_settop(L, idx);
    kg_cfg_listen_alloc(cfg, 1);
    return kg_cfg_listen_entry(c, idx);
  }
  lua_settop(L, idx);
  lua_Integer n = kg_cfg_read_list(c, idx, kp, "\"host:port\" or a list of them");
  if (n < 0) return -1;
  if (n == 0) return kg_cfg_fail(c, "listen", "expected at least one address");
  kg_cfg_listen_alloc(cfg, (size_t)n);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    int rc = kg_cfg_listen_entry(c, -1);
    lua_pop(L, 1);
    if (rc != 0) return rc;
  }
  return 0;
}

/* url = "SCHEME://host:port" with an optional "/" and nothing else, or
 * "unix:/path/to/app.sock"; the scheme names the transport (net/conn.h:
 * "http" is TCP, "https" TLS, "unix" a Unix domain socket). */
static int kg_cfg_parse_url(kg_cfg_ctx *c, const char *kp, const char *url,
                            kg_addr *addr, const kg_conn_ops **transport) {
  char q[128], why[256];
  kg_cfg_quote(q, sizeof(q), url, strlen(url));
  if (strncasecmp(url, "unix:", 5) == 0) {
    *transport = kg_conn_transport(url, 4);
    if (kg_addr_parse_unix(url + 5, addr, why, sizeof(why)) != 0)
      return kg_cfg_fail(c, kp, "%s", why);
    return 0;
  }
  const char *sep = strstr(url, "://");
  *transport = sep ? kg_conn_transport(url, (size_t)(sep - url)) : NULL;
  if (*transport == NULL)
    return kg_cfg_fail(c, kp, "expected http://host:port, https://host:port or "
                       "unix:/path, got %s", q);
  const char *auth = sep + 3;
  size_t alen = strcspn(auth, "/?#");
  const char *rest = auth + alen;
  if (rest[0] != '\0' && strcmp(rest, "/") != 0)
    return kg_cfg_fail(c, kp, "a path after host:port is not supported yet, got %s",
                q);
  if (memchr(auth, '@', alen) != NULL)
    return kg_cfg_fail(c, kp, "credentials in the url are not supported, got %s", q);
  /* The port is required: find the colon after the host ("]:" for v6). */
  const char *colon;
  if (alen > 0 && auth[0] == '[') {
    const char *rb = memchr(auth, ']', alen);
    colon = (rb != NULL && rb + 1 < auth + alen && rb[1] == ':') ? rb + 1 : NULL;
  } else {
    colon = memchr(auth, ':', alen);
  }
  if (alen == 0 || colon == NULL)
    return kg_cfg_fail(c, kp, "expected http://host:port (the port is required), got %s",
                q);
  char *hostport = kg_strndup(auth, alen);
  int rc = kg_addr_parse(hostport, addr, why, sizeof(why));
  free(hostport);
  if (rc != 0) return kg_cfg_fail(c, kp, "%s", why);
  return 0;
}

static bool kg_cfg_valid_backend_name(const char *s) {
  if (*s == '\0') return false;
  for (; *s; s++)
    if (!kg_cfg_is_ident_char(*s) && *s != '-') return false; /* ASCII only */
  return true;
}

static int kg_cfg_cmp_backend_name(const void *a, const void *b) {
  return strcmp(((const kg_backend_cfg *)a)->name,
                ((const kg_backend_cfg *)b)->name);
}

static int kg_cfg_method_index(const char *s) {
  for (int m = 0; m < KG_NMETHODS; m++)
    if (strcmp(http_method_str((enum http_method)m), s) == 0) return m;
  return -1;
}

/* shadow_methods (top level or per backend): a list of method names as
 * http_parser spells them, into a uint64_t bit mask; absent, the row's
 * default. */
static int kg_cfg_methods(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                          const char *kp, void *base) {
  lua_State *L = c->L;
  uint64_t *out = (uint64_t *)((char *)base + k->off);
  char d[128];
  idx = lua_absindex(L, idx);
  if (lua_isnil(L, idx)) {
    *out = (uint64_t)k->def;
    return 0;
  }
  lua_Integer n = kg_cfg_read_list(c, idx, kp,
                                   "a list of method names like { \"GET\", \"HEAD\" }");
  if (n < 0) return -1;
  uint64_t mask = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    kg_cfg_describe(L, -1, d, sizeof(d));
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      return kg_cfg_fail(c, kp, "expected a method name, got %s", d);
    }
    const char *s = lua_tostring(L, -1);
    int m = kg_cfg_method_index(s);
    if (m < 0) {
      char up[32];
      size_t j = 0;
      for (; s[j] && j + 1 < sizeof(up); j++)
        up[j] = (char)toupper((unsigned char)s[j]);
      up[j] = '\0';
      int mu = s[j] == '\0' ? kg_cfg_method_index(up) : -1;
      lua_pop(L, 1);
      if (mu >= 0)
        return kg_cfg_fail(c, kp,
                    "unknown method %s (did you mean \"%s\"?)", d, up);
      return kg_cfg_fail(c, kp, "unknown method %s", d);
    }
    mask |= 1ULL << m;
    lua_pop(L, 1);
  }
  *out = mask;
  return 0;
}

/* A shadow that is also the master makes no sense: checked once both are
 * read, before the backend's shadow_methods. */
static int kg_cfg_check_secondary(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                                  const char *kp, void *base) {
  const kg_backend_cfg *be = base;
  if (be->secondary && be->master)
    return kg_cfg_fail(c, kp, "the master cannot also be the secondary");
  return 0;
}

/* url = "http://host:port", "https://host:port" or "unix:/path":
 * required; resolved into the backend's addr. */
static int kg_cfg_backend_url(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                              const char *kp, void *base) {
  lua_State *L = c->L;
  kg_backend_cfg *be = base;
  if (lua_isnil(L, idx))
    return kg_cfg_fail(c, kp, "missing (expected \"http://host:port\")");
  if (kg_cfg_want(c, idx, kp, LUA_TSTRING, "http://host:port") != 0) return -1;
  be->url = kg_strdup(lua_tostring(L, idx));
  return kg_cfg_parse_url(c, kp, be->url, &be->addr, &be->transport);
}

/* tls = { ... }: read for an https url (its absence means the defaults:
 * verified against the system store, the url's host checked); refused
 * with a plain http url, where it would silently mean nothing. */
static int kg_cfg_backend_tls(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                              const char *kp, void *base) {
  kg_backend_cfg *be = base;
  if (be->transport != &kg_conn_tls) {
    if (lua_isnil(c->L, idx)) return 0;
    return kg_cfg_fail(c, kp, "tls settings need an https:// url, got %s", be->url);
  }
  return kg_cfg_tls(c, idx, kp, false, be->addr.host, &be->tls_cfg, &be->tls);
}

#define KG_BE(field) KG_CFG_AT(kg_backend_cfg, field)
/* One backend: backends.NAME = { ... }. */
static const kg_cfg_key kg_cfg_backend_keys[] = {
    {"url", KG_CFG_CUSTOM, .flags = KG_CFG_ALWAYS, .read = kg_cfg_backend_url},
    {"tls", KG_CFG_CUSTOM, .flags = KG_CFG_ALWAYS, .read = kg_cfg_backend_tls},
    {"master", KG_CFG_BOOL, KG_BE(master)},
    {"secondary", KG_CFG_BOOL, KG_BE(secondary), .check = kg_cfg_check_secondary},
    /* Unsafe methods reach a shadow only when its own entry says so. */
    {"shadow_methods", KG_CFG_CUSTOM, KG_BE(shadow_methods),
     .read = kg_cfg_methods},
};
#undef KG_BE

/* One backend table (at idx) into be, whose name is set. */
static int kg_cfg_backend(kg_cfg_ctx *c, int idx, kg_backend_cfg *be) {
  char kp[256];
  snprintf(kp, sizeof(kp), "backends.%s", be->name);
  if (kg_cfg_want(c, idx, kp, LUA_TTABLE,
                  "a table like { url = \"http://host:port\" }") != 0)
    return -1;
  int rc = kg_cfg_read_table(c, idx, kp, kg_cfg_backend_keys,
                             KG_ARRAY_SIZE(kg_cfg_backend_keys), be);
  be->has_shadow_methods = rc == 0 && be->shadow_methods != 0;
  return rc;
}

/* backends: collected by name, sorted (so errors and the shadow order do
 * not depend on hash order), validated, then the master rotated to [0]. */
static int kg_cfg_backends(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                           const char *kp, void *base) {
  lua_State *L = c->L;
  kg_config *cfg = c->cfg;
  char d[128];
  idx = lua_absindex(L, idx);
  if (lua_isnil(L, idx))
    return kg_cfg_fail(c, "backends",
                "missing (define at least one backend, one with master = true)");
  if (lua_type(L, idx) != LUA_TTABLE)
    return kg_cfg_fail(c, "backends",
                "expected a table of name = { url = ... }, got %s",
                kg_cfg_describe(L, idx, d, sizeof(d)));
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      kg_cfg_describe(L, -2, d, sizeof(d));
      lua_pop(L, 2);
      return kg_cfg_fail(c, "backends",
                  "expected name = { url = ... } entries, got an entry [%s]", d);
    }
    n++;
    lua_pop(L, 1);
  }
  if (n == 0) return kg_cfg_fail(c, "backends", "no backends defined");
  if (n > KG_MAX_BACKENDS)
    return kg_cfg_fail(c, "backends", "too many backends (%zu, at most %d)", n,
                KG_MAX_BACKENDS);

  cfg->backends = kg_calloc(n, sizeof(kg_backend_cfg));
  cfg->nbackends = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    cfg->backends[cfg->nbackends++].name = kg_strdup(lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  qsort(cfg->backends, n, sizeof(kg_backend_cfg), kg_cfg_cmp_backend_name);

  for (size_t i = 0; i < n; i++) {
    kg_backend_cfg *be = &cfg->backends[i];
    if (!kg_cfg_valid_backend_name(be->name)) {
      char q[128];
      kg_cfg_quote(q, sizeof(q), be->name, strlen(be->name));
      return kg_cfg_fail(c, "backends",
                  "invalid backend name %s (use letters, digits, '_' and '-')",
                  q);
    }
    kg_cfg_rawfield(L, idx, be->name);
    int rc = kg_cfg_backend(c, -1, be);
    lua_pop(L, 1);
    if (rc != 0) return rc;
  }

  size_t master = n;
  for (size_t i = 0; i < n; i++) {
    if (!cfg->backends[i].master) continue;
    if (master != n) {
      char where[256];
      snprintf(where, sizeof(where), "backends.%s.master", cfg->backends[i].name);
      return kg_cfg_fail_at(c, kg_config_locate(c->src, where), "backends",
                     "more than one master: '%s' and '%s' (exactly one backend "
                     "has master = true)",
                     cfg->backends[master].name, cfg->backends[i].name);
    }
    master = i;
  }
  if (master == n)
    return kg_cfg_fail(c, "backends",
                "no master backend (set master = true on exactly one)");
  kg_backend_cfg m = cfg->backends[master];
  memmove(&cfg->backends[1], &cfg->backends[0], master * sizeof(kg_backend_cfg));
  cfg->backends[0] = m;

  cfg->secondary = -1;
  for (size_t i = 1; i < n; i++) {
    if (!cfg->backends[i].secondary) continue;
    if (cfg->secondary >= 0) {
      char where[256];
      snprintf(where, sizeof(where), "backends.%s.secondary", cfg->backends[i].name);
      return kg_cfg_fail_at(c, kg_config_locate(c->src, where), "backends",
                     "more than one secondary: '%s' and '%s'",
                     cfg->backends[cfg->secondary].name, cfg->backends[i].name);
    }
    cfg->secondary = (int)i;
  }
  return 0;
}

#define KG_AT(field) KG_CFG_AT(kg_config, field)
/* The proxy's keys, in the order they are read; each with its default. */
const kg_cfg_key kg_cfg_proxy_keys[] = {
    {"listen", KG_CFG_CUSTOM, .def_str = "127.0.0.1:8090",
     .flags = KG_CFG_ALWAYS, .read = kg_cfg_listen},
    {"client_timeout", KG_CFG_MS, KG_AT(client_timeout_ms), .def = 15},
    {"backend_timeout", KG_CFG_MS, KG_AT(backend_timeout_ms), .def = 10},
    {"backends", KG_CFG_CUSTOM, .flags = KG_CFG_ALWAYS, .read = kg_cfg_backends,
     .what = "backends.NAME", .sub = kg_cfg_backend_keys,
     .nsub = KG_ARRAY_SIZE(kg_cfg_backend_keys)},
    {"shadow_methods", KG_CFG_CUSTOM, KG_AT(shadow_methods),
     .def = (1 << HTTP_GET) | (1 << HTTP_HEAD), .flags = KG_CFG_ALWAYS,
     .read = kg_cfg_methods},
    {"sample", KG_CFG_SHARE, KG_AT(sample), .def = 1},
    {"diff_log", KG_CFG_PATH, KG_AT(diff_log), .flags = KG_CFG_FALSE_OFF},
    {"max_capture_bytes", KG_CFG_SIZE, KG_AT(max_capture_bytes), .def = 8 << 20},
    {"max_header_bytes", KG_CFG_SIZE, KG_AT(max_header_bytes), .def = 64 << 10},
    {"max_headers", KG_CFG_COUNT, KG_AT(max_headers), .def = 100},
    {"max_body_bytes", KG_CFG_SIZE, KG_AT(max_body_bytes), .def = 16 << 20},
    {"max_connections", KG_CFG_COUNT, KG_AT(max_connections), .def = 10000},
    {"shadow_max_inflight", KG_CFG_COUNT, KG_AT(shadow_max_inflight), .def = 1000},
    {"shadow_max_inflight_bytes", KG_CFG_SIZE, KG_AT(shadow_max_inflight_bytes),
     .def = 64 << 20},
    {"shadow_max_body_bytes", KG_CFG_SIZE, KG_AT(shadow_max_body_bytes),
     .def = 16 << 20},
    {"workers", KG_CFG_INT, KG_AT(workers), .def = 1, .bound = 64},
    {"hook_budget", KG_CFG_INT, KG_AT(hook_budget), .def = 1000000,
     .bound = INT_MAX},
    {"select_backends", KG_CFG_HOOK, KG_AT(has_select_backends)},
    {"munge_headers", KG_CFG_HOOK, KG_AT(has_munge_headers)},
    {"on_backends_finished", KG_CFG_HOOK, KG_AT(has_on_backends_finished)},
};
const size_t kg_cfg_nproxy_keys = KG_ARRAY_SIZE(kg_cfg_proxy_keys);
#undef KG_AT

/* Walks the returned table (at t): unknown keys first, against every
 * section's names (also the list "did you mean" suggests from), then each
 * section in turn. Returns 0 or -1 (message written). */
static int kg_cfg_validate(kg_cfg_ctx *c, int t) {
  const char *names[64];
  size_t n = 0;
  kg_cfg_key_names(kg_cfg_proxy_keys, kg_cfg_nproxy_keys, names, &n,
                   KG_ARRAY_SIZE(names));
  kg_cfg_key_names(kg_cfg_compare_keys, kg_cfg_ncompare_keys, names, &n,
                   KG_ARRAY_SIZE(names));
  kg_cfg_key_names(kg_cfg_output_keys, kg_cfg_noutput_keys, names, &n,
                   KG_ARRAY_SIZE(names));
  /* Every section is read even after an error, so that one run names
   * every key it can find wrong. */
  int rc = kg_cfg_check_keys(c, t, "", names, n);
  rc |= kg_cfg_read_keys(c, t, "", kg_cfg_proxy_keys, kg_cfg_nproxy_keys, c->cfg);
  rc |= kg_cfg_read_keys(c, t, "", kg_cfg_compare_keys, kg_cfg_ncompare_keys, c->cfg);
  rc |= kg_cfg_read_keys(c, t, "", kg_cfg_output_keys, kg_cfg_noutput_keys, c->cfg);
  return rc ? -1 : 0;
}

/* The line number of a "FILE:LINE: ..." message, or 0 when `msg` does not
 * start one (a message may span lines: a quoted value, a traceback). */
static long kg_cfg_error_line(const kg_cfg_ctx *c, const char *msg) {
  size_t n = strlen(c->path);
  if (strncmp(msg, c->path, n) != 0 || msg[n] != ':' || msg[n + 1] < '0' || msg[n + 1] > '9')
    return 0;
  return strtol(msg + n + 1, NULL, 10);
}

typedef struct kg_cfg_msg {
  const char *text; /* in the copy, NUL-terminated */
  long line;
  size_t order;     /* as written, to keep equal lines in that order */
} kg_cfg_msg;

static int kg_cfg_msg_cmp(const void *x, const void *y) {
  const kg_cfg_msg *a = x, *b = y;
  if (a->line != b->line) return (a->line > b->line) - (a->line < b->line);
  return (a->order > b->order) - (a->order < b->order);
}

/* Several messages: in the order of their lines in the file, as a person
 * fixes them (the keys were read in table order). A line that starts no
 * message belongs to the one before it. */
static void kg_cfg_sort_errors(kg_cfg_ctx *c) {
  char *copy = kg_strdup(c->err);
  kg_cfg_msg msgs[64];
  size_t n = 0;
  for (char *p = copy; p && *p;) {
    char *nl = strchr(p, '\n');
    while (nl && kg_cfg_error_line(c, nl + 1) == 0) nl = strchr(nl + 1, '\n');
    if (nl) *nl = '\0';
    if (n < KG_ARRAY_SIZE(msgs)) msgs[n] = (kg_cfg_msg){p, kg_cfg_error_line(c, p), n}, n++;
    p = nl ? nl + 1 : NULL;
  }
  qsort(msgs, n, sizeof(msgs[0]), kg_cfg_msg_cmp);
  kg_buf b = KG_BUF_INIT;
  for (size_t i = 0; i < n; i++) kg_buf_appendf(&b, "%s%s", i ? "\n" : "", msgs[i].text);
  snprintf(c->err, c->errlen, "%s", b.data ? b.data : "");
  kg_buf_free(&b);
  free(copy);
}

/* Runs kg_cfg_validate() under lua_pcall: raw table accesses cannot run
 * user code, but Lua can still raise "not enough memory", and a longjmp
 * must not skip our cleanup (everything allocated is reachable from
 * c->cfg). */
static int kg_cfg_validate_protected(lua_State *L) {
  kg_cfg_ctx *c = lua_touserdata(L, 2);
  c->rc = kg_cfg_validate(c, 1);
  return 0;
}

/* True when msg already starts with "something:LINE:", as Lua's syntax
 * and runtime errors do. */
static bool kg_cfg_has_position(const char *msg) {
  const char *colon = strchr(msg, ':');
  if (colon == NULL || colon == msg) return false;
  const char *p = colon + 1;
  if (*p < '0' || *p > '9') return false;
  while (*p >= '0' && *p <= '9') p++;
  return *p == ':';
}

int kg_config_load(const char *path, kg_config **out, char *err,
                   size_t errlen) {
  *out = NULL;
  if (err != NULL && errlen > 0) err[0] = '\0';
  int eno = 0;
  char *src = kg_cfg_read_file(path, &eno);
  if (src == NULL) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "%s: cannot read: %s", path, strerror(eno));
    return -1;
  }

  kg_cfg_ctx c = {.path = path, .src = src, .err = err, .errlen = errlen};
  c.cfg = kg_calloc(1, sizeof(kg_config));
  c.cfg->path = kg_strdup(path);
  kg_cfg_defaults(kg_cfg_proxy_keys, kg_cfg_nproxy_keys, c.cfg);
  kg_cfg_defaults(kg_cfg_compare_keys, kg_cfg_ncompare_keys, c.cfg);
  kg_cfg_defaults(kg_cfg_output_keys, kg_cfg_noutput_keys, c.cfg);

  int rc = -1;
  lua_State *L = luaL_newstate();
  c.L = L;
  if (L == NULL) {
    kg_cfg_fail_at(&c, 1, "", "cannot create a Lua state (out of memory)");
    goto done;
  }
  luaL_openlibs(L);

  int st = kg_config_lua_run(L, path);
  if (st != LUA_OK) {
    const char *raw = lua_tostring(L, -1);
    kg_buf msg = KG_BUF_INIT;
    if (raw != NULL) kg_config_lua_message(raw, path, &msg);
    if (raw == NULL)
      kg_cfg_fail_at(&c, 1, "", "the config raised an error that is not a string (%s)",
              luaL_typename(L, -1));
    else if (!kg_cfg_has_position(msg.data))
      kg_cfg_fail_at(&c, 1, "", "%s", msg.data);
    else if (err != NULL && errlen > 0) /* Lua's own FILE:LINE: msg */
      snprintf(err, errlen, "%s%s", msg.data,
               msg.data[msg.len - 1] == ' ' ? "(an error with an empty message)" : "");
    kg_buf_free(&msg);
    goto done;
  }
  if (lua_type(L, -1) != LUA_TTABLE) {
    char d[128];
    kg_cfg_fail_at(&c, kg_cfg_locate_return(src), "",
            "the config must return a table, got %s",
            kg_cfg_describe(L, -1, d, sizeof(d)));
    goto done;
  }

  c.rc = -1;
  lua_pushcfunction(L, kg_cfg_validate_protected);
  lua_pushvalue(L, -2);
  lua_pushlightuserdata(L, &c);
  st = lua_pcall(L, 2, 0, 0);
  if (st != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    kg_cfg_fail_at(&c, 1, "", "%s", msg != NULL ? msg : "error while reading the config");
    goto done;
  }
  rc = c.rc;
  if (rc != 0 && c.nerrors > 1) kg_cfg_sort_errors(&c);

done:
  if (L != NULL) lua_close(L);
  free(src);
  if (rc != 0) {
    kg_config_free(c.cfg);
    return -1;
  }
  *out = c.cfg;
  return 0;
}

void kg_config_free(kg_config *cfg) {
  if (cfg == NULL) return;
  free(cfg->path);
  for (size_t i = 0; i < cfg->nlisten; i++) {
    kg_addr_free(&cfg->listen[i]);
    kg_cfg_free_tls(&cfg->listen_tls_cfg[i], cfg->listen_tls[i]);
  }
  free(cfg->listen);
  free(cfg->listen_tls);
  free(cfg->listen_tls_cfg);
  for (size_t i = 0; i < cfg->nbackends; i++) {
    free(cfg->backends[i].name);
    free(cfg->backends[i].url);
    kg_addr_free(&cfg->backends[i].addr);
    kg_cfg_free_tls(&cfg->backends[i].tls_cfg, cfg->backends[i].tls);
  }
  free(cfg->backends);
  free(cfg->diff_log);
  kg_cfg_free_compare(cfg);
  kg_cfg_free_output(cfg);
  free(cfg);
}

int kg_config_backend_index(const kg_config *cfg, const char *name) {
  for (size_t i = 0; i < cfg->nbackends; i++)
    if (strcmp(cfg->backends[i].name, name) == 0) return (int)i;
  return -1;
}
