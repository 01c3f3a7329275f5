/* config_compare.c: the comparison part of the config (headers, noise
 * rules, endpoint templates, sampling caps, latency flag, learned noise).
 * Every pattern is compiled or checked here, at load time, so a bad JSON
 * path, XPath or regex is a FILE:LINE error at start, not a surprise at
 * the first request. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "common/common.h"
#include "compare/htmldiff.h"
#include "compare/jsondiff.h"
#include "compare/textnorm.h"
#include "config/config_int.h"
#include "compare/endpoint.h"

const char *const kg_cfg_compare_keys[] = {
    "compare_headers", "ignore_headers", "default_ignore_headers",
    "rules",           "endpoints",      "max_per_endpoint_per_s",
    "latency_regression", "noise",
};
const size_t kg_cfg_ncompare_keys = KG_ARRAY_SIZE(kg_cfg_compare_keys);

/* Response fields that differ between any two deployments without meaning
 * anything: times, server identity, per-request ids, caches. Content-Length
 * is here because a body difference is reported as such. (Set-Cookie is
 * compared by cookie names only, its values being per session.) */
static const char *const kg_default_ignore_headers[] = {
    "Date",          "Server",        "ETag",          "Age",
    "Expires",       "Last-Modified", "X-Request-Id",  "X-Runtime",
    "X-Response-Time", "Via",         "X-Cache",       "X-Served-By",
    "Request-Id",    "Traceparent",   "X-Trace-Id",    "X-Amzn-Trace-Id",
    "Content-Length", "Keep-Alive",   "Connection",
    "Transfer-Encoding",
};

static const char *const kg_rule_keys[] = {
    "endpoint", "ignore", "unordered", "ignore_xpath", "ignore_headers", "replace",
};
/* ("shadow_twice", not "repeat": that is a Lua keyword, and a key a user
 * cannot write without brackets.) */
static const char *const kg_noise_keys[] = {"learn", "threshold", "min_pairs",
                                            "shadow_twice"};

/* Copies a list of strings at idx into *out / *n, checking each with
 * check (may be NULL). kp names the list in messages. */
int kg_cfg_strlist(kg_cfg_ctx *c, int idx, const char *kp, char ***out,
                   size_t *n, int (*check)(const char *, char *, size_t)) {
  lua_State *L = c->L;
  char d[128], why[256];
  idx = lua_absindex(L, idx);
  lua_Integer len = lua_type(L, idx) == LUA_TTABLE ? kg_cfg_list_len(L, idx) : -1;
  if (len < 0)
    return kg_cfg_fail(c, kp, "expected a list of strings, got %s",
                       kg_cfg_describe(L, idx, d, sizeof(d)));
  *out = kg_calloc((size_t)len + 1, sizeof(char *));
  for (lua_Integer i = 1; i <= len; i++) {
    lua_rawgeti(L, idx, i);
    if (lua_type(L, -1) != LUA_TSTRING) {
      kg_cfg_describe(L, -1, d, sizeof(d));
      lua_pop(L, 1);
      return kg_cfg_fail(c, kp, "entry %lld: expected a string, got %s",
                         (long long)i, d);
    }
    const char *s = lua_tostring(L, -1);
    if (check && check(s, why, sizeof(why)) != 0) {
      kg_cfg_describe(L, -1, d, sizeof(d));
      lua_pop(L, 1);
      return kg_cfg_fail(c, kp, "entry %lld %s: %s", (long long)i, d, why);
    }
    (*out)[(*n)++] = kg_strdup(s);
    lua_pop(L, 1);
  }
  return 0;
}

/* --- typed value readers shared by the config section files ------------ */

int kg_cfg_bool(kg_cfg_ctx *c, int idx, const char *kp, bool *out) {
  char d[128];
  if (lua_type(c->L, idx) != LUA_TBOOLEAN)
    return kg_cfg_fail(c, kp, "expected true or false, got %s",
                       kg_cfg_describe(c->L, idx, d, sizeof(d)));
  *out = lua_toboolean(c->L, idx);
  return 0;
}

int kg_cfg_share(kg_cfg_ctx *c, int idx, const char *kp, double *out) {
  char d[128];
  double v = lua_type(c->L, idx) == LUA_TNUMBER ? (double)lua_tonumber(c->L, idx) : NAN;
  if (!(v >= 0 && v <= 1))
    return kg_cfg_fail(c, kp, "expected a number from 0 to 1, got %s",
                       kg_cfg_describe(c->L, idx, d, sizeof(d)));
  *out = v;
  return 0;
}

int kg_cfg_count(kg_cfg_ctx *c, int idx, const char *kp, uint64_t *out) {
  char d[128];
  int isint = 0;
  lua_Integer v = lua_tointegerx(c->L, idx, &isint);
  if (lua_type(c->L, idx) != LUA_TNUMBER || !isint || v < 1)
    return kg_cfg_fail(c, kp, "expected a positive whole number, got %s",
                       kg_cfg_describe(c->L, idx, d, sizeof(d)));
  *out = (uint64_t)v;
  return 0;
}

int kg_cfg_check_header_name(const char *s, char *err, size_t errlen) {
  if (*s == '\0') {
    snprintf(err, errlen, "empty header name");
    return -1;
  }
  for (const char *p = s; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p)) {
      snprintf(err, errlen, "not a valid header name");
      return -1;
    }
  return 0;
}

/* replace = { { "regex", "replacement" }, ... } */
static int kg_cfg_replace(kg_cfg_ctx *c, int idx, const char *kp, kg_rule *r) {
  lua_State *L = c->L;
  char d[128], why[512];
  idx = lua_absindex(L, idx);
  lua_Integer n = lua_type(L, idx) == LUA_TTABLE ? kg_cfg_list_len(L, idx) : -1;
  if (n < 0)
    return kg_cfg_fail(c, kp,
                       "expected a list of { \"regex\", \"replacement\" } pairs, "
                       "got %s",
                       kg_cfg_describe(L, idx, d, sizeof(d)));
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

static int kg_cfg_rule(kg_cfg_ctx *c, int idx, lua_Integer i, kg_rule *r) {
  lua_State *L = c->L;
  char kp[256], sub[300], d[128];
  snprintf(kp, sizeof(kp), "rules.%lld", (long long)i);
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE)
    return kg_cfg_fail(c, "rules", "entry %lld: expected a table, got %s",
                       (long long)i, kg_cfg_describe(L, idx, d, sizeof(d)));
  if (kg_cfg_check_keys(c, idx, kp, kg_rule_keys,
                        KG_ARRAY_SIZE(kg_rule_keys)) != 0)
    return -1;
  int t = kg_cfg_rawfield(L, idx, "endpoint");
  if (t == LUA_TSTRING) {
    r->endpoint = kg_strdup(lua_tostring(L, -1));
  } else if (t != LUA_TNIL) {
    kg_cfg_describe(L, -1, d, sizeof(d));
    lua_pop(L, 1);
    snprintf(sub, sizeof(sub), "%s.endpoint", kp);
    return kg_cfg_fail(c, sub, "expected a pattern such as \"GET /api/*\", got %s", d);
  }
  lua_pop(L, 1);
  static const struct {
    const char *key;
    size_t off_list, off_n;
    int (*check)(const char *, char *, size_t);
  } lists[] = {
      {"ignore", offsetof(kg_rule, ignore), offsetof(kg_rule, nignore), kg_jsonpath_check},
      {"unordered", offsetof(kg_rule, unordered), offsetof(kg_rule, nunordered), kg_jsonpath_check},
      {"ignore_xpath", offsetof(kg_rule, ignore_xpath), offsetof(kg_rule, nignore_xpath),
       kg_htmldiff_check_xpath},
      {"ignore_headers", offsetof(kg_rule, ignore_headers), offsetof(kg_rule, nignore_headers),
       kg_cfg_check_header_name},
  };
  for (size_t k = 0; k < KG_ARRAY_SIZE(lists); k++) {
    if (kg_cfg_rawfield(L, idx, lists[k].key) != LUA_TNIL) {
      snprintf(sub, sizeof(sub), "%s.%s", kp, lists[k].key);
      int rc = kg_cfg_strlist(c, -1, sub, (char ***)((char *)r + lists[k].off_list),
                              (size_t *)((char *)r + lists[k].off_n), lists[k].check);
      if (rc != 0) return rc; /* the stack is reset by the caller's pcall */
    }
    lua_pop(L, 1);
  }
  snprintf(sub, sizeof(sub), "%s.replace", kp);
  if (kg_cfg_rawfield(L, idx, "replace") != LUA_TNIL && kg_cfg_replace(c, -1, sub, r) != 0)
    return -1;
  lua_pop(L, 1);
  return 0;
}

static int kg_cfg_rules(kg_cfg_ctx *c, int idx) {
  lua_State *L = c->L;
  char d[128];
  idx = lua_absindex(L, idx);
  lua_Integer n = lua_type(L, idx) == LUA_TTABLE ? kg_cfg_list_len(L, idx) : -1;
  if (n < 0)
    return kg_cfg_fail(c, "rules", "expected a list of rule tables, got %s",
                       kg_cfg_describe(L, idx, d, sizeof(d)));
  kg_config *cfg = c->cfg;
  cfg->rules = kg_calloc((size_t)n + 1, sizeof(kg_rule));
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    cfg->nrules++; /* counted first: a half-filled rule is still freed */
    int rc = kg_cfg_rule(c, -1, i, &cfg->rules[i - 1]);
    lua_settop(L, idx);
    if (rc != 0) return rc;
  }
  return 0;
}

static int kg_cfg_noise(kg_cfg_ctx *c, int idx) {
  lua_State *L = c->L;
  kg_config *cfg = c->cfg;
  char d[128];
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE)
    return kg_cfg_fail(c, "noise", "expected a table such as { learn = true }, got %s",
                       kg_cfg_describe(L, idx, d, sizeof(d)));
  if (kg_cfg_check_keys(c, idx, "noise", kg_noise_keys,
                        KG_ARRAY_SIZE(kg_noise_keys)) != 0)
    return -1;
  if (kg_cfg_rawfield(L, idx, "learn") != LUA_TNIL &&
      kg_cfg_bool(c, -1, "noise.learn", &cfg->noise_learn) != 0)
    return -1;
  lua_pop(L, 1);
  if (kg_cfg_rawfield(L, idx, "threshold") != LUA_TNIL &&
      kg_cfg_share(c, -1, "noise.threshold", &cfg->noise_threshold) != 0)
    return -1;
  lua_pop(L, 1);
  if (kg_cfg_rawfield(L, idx, "shadow_twice") != LUA_TNIL &&
      kg_cfg_share(c, -1, "noise.shadow_twice", &cfg->noise_repeat) != 0)
    return -1;
  lua_pop(L, 1);
  if (kg_cfg_rawfield(L, idx, "min_pairs") != LUA_TNIL &&
      kg_cfg_count(c, -1, "noise.min_pairs", &cfg->noise_min_pairs) != 0)
    return -1;
  lua_pop(L, 1);
  return 0;
}

static int kg_cfg_number(kg_cfg_ctx *c, int idx, const char *kp, double min,
                         double *out) {
  char d[128];
  double v = lua_type(c->L, idx) == LUA_TNUMBER ? (double)lua_tonumber(c->L, idx) : NAN;
  if (!(v >= min) || !isfinite(v))
    return kg_cfg_fail(c, kp, "expected a number >= %g, got %s", min,
                       kg_cfg_describe(c->L, idx, d, sizeof(d)));
  *out = v;
  return 0;
}

void kg_cfg_add_name(char ***list, size_t *n, const char *name) {
  for (size_t i = 0; i < *n; i++)
    if (strcasecmp((*list)[i], name) == 0) return;
  *list = kg_realloc(*list, (*n + 1) * sizeof(char *));
  (*list)[(*n)++] = kg_strdup(name);
}

static void kg_cfg_add_header(kg_config *cfg, const char *name) {
  kg_cfg_add_name(&cfg->compare.ignore_headers, &cfg->compare.nignore_headers, name);
}

int kg_cfg_load_compare(kg_cfg_ctx *c, int t) {
  lua_State *L = c->L;
  kg_config *cfg = c->cfg;
  cfg->compare.compare_headers = true;
  cfg->latency_regression = 1.5;
  cfg->noise_threshold = 0.2;
  cfg->noise_min_pairs = 10;
  int rc = 0;

  if (kg_cfg_rawfield(L, t, "compare_headers") != LUA_TNIL &&
      kg_cfg_bool(c, -1, "compare_headers", &cfg->compare.compare_headers) != 0)
    return -1;
  lua_pop(L, 1);

  /* default_ignore_headers replaces the built-in list; ignore_headers adds
   * to whichever list is in force. */
  char **list = NULL;
  size_t n = 0;
  if (kg_cfg_rawfield(L, t, "default_ignore_headers") != LUA_TNIL) {
    rc = kg_cfg_strlist(c, -1, "default_ignore_headers", &list, &n,
                        kg_cfg_check_header_name);
    for (size_t i = 0; i < n; i++) {
      if (rc == 0) kg_cfg_add_header(cfg, list[i]);
      free(list[i]);
    }
    free(list);
    if (rc) return rc;
  } else {
    for (size_t i = 0; i < KG_ARRAY_SIZE(kg_default_ignore_headers); i++)
      kg_cfg_add_header(cfg, kg_default_ignore_headers[i]);
  }
  lua_pop(L, 1);
  list = NULL;
  n = 0;
  if (kg_cfg_rawfield(L, t, "ignore_headers") != LUA_TNIL) {
    rc = kg_cfg_strlist(c, -1, "ignore_headers", &list, &n, kg_cfg_check_header_name);
    for (size_t i = 0; i < n; i++) {
      if (rc == 0) kg_cfg_add_header(cfg, list[i]);
      free(list[i]);
    }
    free(list);
    if (rc) return rc;
  }
  lua_pop(L, 1);

  if (kg_cfg_rawfield(L, t, "rules") != LUA_TNIL && kg_cfg_rules(c, -1) != 0)
    return -1;
  lua_pop(L, 1);

  if (kg_cfg_rawfield(L, t, "endpoints") != LUA_TNIL) {
    list = NULL;
    n = 0;
    char why[512];
    rc = kg_cfg_strlist(c, -1, "endpoints", &list, &n, NULL);
    if (rc == 0 && n > 0) {
      cfg->endpoints = kg_endpoint_rules_new((const char *const *)list, n, why, sizeof(why));
      if (cfg->endpoints == NULL) rc = kg_cfg_fail(c, "endpoints", "%s", why);
    }
    for (size_t i = 0; i < n; i++) free(list[i]);
    free(list);
    if (rc) return rc;
  }
  lua_pop(L, 1);

  if (kg_cfg_rawfield(L, t, "max_per_endpoint_per_s") != LUA_TNIL &&
      kg_cfg_number(c, -1, "max_per_endpoint_per_s", 0, &cfg->max_per_endpoint_per_s) != 0)
    return -1;
  lua_pop(L, 1);
  if (kg_cfg_rawfield(L, t, "latency_regression") != LUA_TNIL &&
      kg_cfg_number(c, -1, "latency_regression", 1, &cfg->latency_regression) != 0)
    return -1;
  lua_pop(L, 1);
  if (kg_cfg_rawfield(L, t, "noise") != LUA_TNIL && kg_cfg_noise(c, -1) != 0)
    return -1;
  lua_pop(L, 1);
  if (cfg->noise_repeat > 0 && cfg->nbackends < 2)
    return kg_cfg_fail(c, "noise.shadow_twice", "needs a shadow backend to send repeats to");
  return 0;
}

static void kg_free_strs(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

void kg_cfg_free_compare(kg_config *cfg) {
  for (size_t i = 0; i < cfg->nrules; i++) {
    kg_rule_clear(&cfg->rules[i]);
  }
  free(cfg->rules);
  kg_free_strs(cfg->compare.ignore_headers, cfg->compare.nignore_headers);
  kg_endpoint_rules_free(cfg->endpoints);
}
