/* config_compare.c: the comparison part of the config (headers, noise
 * rules, endpoint templates, sampling caps, latency flag, learned noise).
 * Every pattern is compiled or checked here, at load time, by compare/'s
 * own checkers, so a bad JSON path, XPath or regex is a FILE:LINE error at
 * start, not a surprise at the first request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "common/common.h"
#include "compare/endpoint.h"
#include "compare/htmldiff.h"
#include "compare/jsondiff.h"
#include "compare/textnorm.h"
#include "config/config_int.h"

/* Response fields that differ between any two deployments without meaning
 * anything: times, server identity, per-request ids, caches. Content-Length
 * is here because a body difference is reported as such. (Set-Cookie is
 * compared by cookie names only, its values being per session.) */
static const char *const kg_cfg_default_ignore_headers[] = {
    "Date",          "Server",        "ETag",          "Age",
    "Expires",       "Last-Modified", "X-Request-Id",  "X-Runtime",
    "X-Response-Time", "Via",         "X-Cache",       "X-Served-By",
    "Request-Id",    "Traceparent",   "X-Trace-Id",    "X-Amzn-Trace-Id",
    "Content-Length", "Keep-Alive",   "Connection",
    "Transfer-Encoding",
};

/* replace = { { "regex", "replacement" }, ... } */
static int kg_cfg_replace(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                          const char *kp, void *base) {
  lua_State *L = c->L;
  kg_rule *r = base;
  char d[128], why[512];
  idx = lua_absindex(L, idx);
  lua_Integer n = kg_cfg_read_list(c, idx, kp,
                                   "a list of { \"regex\", \"replacement\" } pairs");
  if (n < 0) return -1;
  if (n == 0) return 0;
  const char **pats = kg_calloc((size_t)n, sizeof(char *));
  const char **reps = kg_calloc((size_t)n, sizeof(char *));
  int rc = 0;
  for (lua_Integer i = 1; i <= n && rc == 0; i++) {
    lua_rawgeti(L, idx, i); /* stays on the stack until the end: the
                               strings below are borrowed from it */
    if (lua_type(L, -1) != LUA_TTABLE || kg_cfg_list_len(L, -1) != 2) {
      rc = kg_cfg_fail(c, kp, "entry %lld: expected { \"regex\", \"replacement\" }, got %s",
                       (long long)i, kg_cfg_describe(L, -1, d, sizeof(d)));
      break;
    }
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
      rc = kg_cfg_fail(c, kp, "entry %lld: both the regex and the replacement must be strings",
                       (long long)i);
      lua_pop(L, 2);
      break;
    }
    pats[i - 1] = lua_tostring(L, -2);
    reps[i - 1] = lua_tostring(L, -1);
    lua_pop(L, 2); /* the pair table keeps the strings alive */
  }
  if (rc == 0) {
    r->replace = kg_textnorm_new(pats, reps, (size_t)n, why, sizeof(why));
    if (r->replace == NULL) rc = kg_cfg_fail(c, kp, "%s", why);
    r->replace_patterns = kg_calloc((size_t)n, sizeof(char *));
    for (lua_Integer i = 0; i < n; i++) r->replace_patterns[i] = kg_strdup(pats[i]);
    r->nreplace_patterns = (size_t)n;
  }
  lua_settop(L, idx); /* drop the pair tables */
  free(pats);
  free(reps);
  return rc;
}

/* endpoint: a glob on the endpoint name, any string (kg_rule_matches). */
static int kg_cfg_rule_endpoint(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                                const char *kp, void *base) {
  if (kg_cfg_want(c, idx, kp, LUA_TSTRING, "a pattern such as \"GET /api/*\"") != 0)
    return -1;
  ((kg_rule *)base)->endpoint = kg_strdup(lua_tostring(c->L, idx));
  return 0;
}

#define KG_RULE_LIST(field) \
  KG_CFG_AT(kg_rule, field), .off_n = offsetof(kg_rule, n##field)
/* One entry of rules = { ... }. */
static const kg_cfg_key kg_cfg_rule_keys[] = {
    {"endpoint", KG_CFG_CUSTOM, .read = kg_cfg_rule_endpoint},
    {"ignore", KG_CFG_STRLIST, KG_RULE_LIST(ignore), .check_str = kg_jsonpath_check},
    {"unordered", KG_CFG_STRLIST, KG_RULE_LIST(unordered),
     .check_str = kg_jsonpath_check},
    {"ignore_xpath", KG_CFG_STRLIST, KG_RULE_LIST(ignore_xpath),
     .check_str = kg_htmldiff_check_xpath},
    {"ignore_headers", KG_CFG_STRLIST, KG_RULE_LIST(ignore_headers),
     .check_str = kg_cfg_check_header_name},
    {"replace", KG_CFG_CUSTOM, .read = kg_cfg_replace},
};
#undef KG_RULE_LIST

/* rules = { { endpoint = ..., ignore = { ... } }, ... }: a list. */
static int kg_cfg_rules(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                        const char *kp, void *base) {
  lua_State *L = c->L;
  kg_config *cfg = base;
  char rkp[256], d[128];
  idx = lua_absindex(L, idx);
  lua_Integer n = kg_cfg_read_list(c, idx, kp, "a list of rule tables");
  if (n < 0) return -1;
  cfg->rules = kg_calloc((size_t)n + 1, sizeof(kg_rule));
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    cfg->nrules++; /* counted first: a half-filled rule is still freed */
    int rc;
    if (lua_type(L, -1) != LUA_TTABLE) {
      rc = kg_cfg_fail(c, kp, "entry %lld: expected a table, got %s", (long long)i,
                       kg_cfg_describe(L, -1, d, sizeof(d)));
    } else {
      snprintf(rkp, sizeof(rkp), "%s.%lld", kp, (long long)i);
      rc = kg_cfg_read_table(c, -1, rkp, kg_cfg_rule_keys,
                             KG_ARRAY_SIZE(kg_cfg_rule_keys), &cfg->rules[i - 1]);
    }
    lua_settop(L, idx);
    if (rc != 0) return rc;
  }
  return 0;
}

/* default_ignore_headers replaces the built-in list (absent: the built-in
 * list); ignore_headers then adds to whichever list is in force. */
static int kg_cfg_default_ignore(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                                 const char *kp, void *base) {
  kg_compare_settings *set = &((kg_config *)base)->compare;
  if (!lua_isnil(c->L, idx))
    return kg_cfg_read_names(c, idx, kp, &set->ignore_headers, &set->nignore_headers);
  for (size_t i = 0; i < KG_ARRAY_SIZE(kg_cfg_default_ignore_headers); i++)
    kg_cfg_add_name(&set->ignore_headers, &set->nignore_headers,
                    kg_cfg_default_ignore_headers[i]);
  return 0;
}

static int kg_cfg_ignore(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                         const char *kp, void *base) {
  kg_compare_settings *set = &((kg_config *)base)->compare;
  return kg_cfg_read_names(c, idx, kp, &set->ignore_headers, &set->nignore_headers);
}

/* endpoints = { "GET /users/:id", ... }: templating overrides. */
static int kg_cfg_endpoints(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                            const char *kp, void *base) {
  kg_config *cfg = base;
  char **list = NULL;
  size_t n = 0;
  char why[512];
  int rc = kg_cfg_strlist(c, idx, kp, &list, &n, NULL);
  if (rc == 0 && n > 0) {
    cfg->endpoints = kg_endpoint_rules_new((const char *const *)list, n, why, sizeof(why));
    if (cfg->endpoints == NULL) rc = kg_cfg_fail(c, kp, "%s", why);
  }
  kg_cfg_free_strs(list, n);
  return rc;
}

/* Repeats go to the first shadow: there must be one. */
static int kg_cfg_check_noise(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                              const char *kp, void *base) {
  const kg_config *cfg = base;
  if (cfg->noise_repeat > 0 && cfg->nbackends < 2)
    return kg_cfg_fail(c, "noise.shadow_twice", "needs a shadow backend to send repeats to");
  return 0;
}

#define KG_AT(field) KG_CFG_AT(kg_config, field)
/* noise = { ... }. ("shadow_twice", not "repeat": that is a Lua keyword,
 * and a key a user cannot write without brackets.) */
static const kg_cfg_key kg_cfg_noise_keys[] = {
    {"learn", KG_CFG_BOOL, KG_AT(noise_learn)},
    {"threshold", KG_CFG_SHARE, KG_AT(noise_threshold), .def = 0.2},
    {"shadow_twice", KG_CFG_SHARE, KG_AT(noise_repeat)},
    {"min_pairs", KG_CFG_COUNT, KG_AT(noise_min_pairs), .def = 10},
};

/* The comparison's top-level keys, in the order they are read. */
const kg_cfg_key kg_cfg_compare_keys[] = {
    {"compare_headers", KG_CFG_BOOL, KG_AT(compare.compare_headers), .def = 1},
    {"default_ignore_headers", KG_CFG_CUSTOM, .flags = KG_CFG_ALWAYS,
     .read = kg_cfg_default_ignore},
    {"ignore_headers", KG_CFG_CUSTOM, .read = kg_cfg_ignore},
    {"rules", KG_CFG_CUSTOM, .read = kg_cfg_rules, .what = "rules[]",
     .sub = kg_cfg_rule_keys, .nsub = KG_ARRAY_SIZE(kg_cfg_rule_keys)},
    {"endpoints", KG_CFG_CUSTOM, .read = kg_cfg_endpoints},
    {"max_per_endpoint_per_s", KG_CFG_NUMBER, KG_AT(max_per_endpoint_per_s),
     .bound = 0},
    {"latency_regression", KG_CFG_NUMBER, KG_AT(latency_regression),
     .def = KG_CONFIG_DEFAULT_LATENCY_REGRESSION,
     .bound = 1},
    {"max_endpoints", KG_CFG_INT, KG_AT(max_endpoints), .def = 1000, /* KG_EPSTATS_MAX */
     .bound = 1000000},
    {"noise", KG_CFG_TABLE, .what = "a table such as { learn = true }",
     .sub = kg_cfg_noise_keys, .nsub = KG_ARRAY_SIZE(kg_cfg_noise_keys),
     .check = kg_cfg_check_noise},
};
const size_t kg_cfg_ncompare_keys = KG_ARRAY_SIZE(kg_cfg_compare_keys);
#undef KG_AT

void kg_cfg_free_compare(kg_config *cfg) {
  for (size_t i = 0; i < cfg->nrules; i++) kg_rule_clear(&cfg->rules[i]);
  free(cfg->rules);
  kg_cfg_free_strs(cfg->compare.ignore_headers, cfg->compare.nignore_headers);
  kg_endpoint_rules_free(cfg->endpoints);
}
