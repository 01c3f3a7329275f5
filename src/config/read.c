/* read.c: the table-driven reader every config section uses.
 *
 * A section is an array of kg_cfg_key rows (config_int.h): key name, type,
 * default, field. kg_cfg_defaults stores the defaults; kg_cfg_read_table
 * rejects unknown keys (with a suggestion) and reads the rows in order.
 * Values are read with raw accesses only (no metamethods), so nothing the
 * user wrote runs while the config is validated. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "config/config_int.h"

/* ---- small Lua helpers ------------------------------------------------ */

int kg_cfg_rawfield(lua_State *L, int t, const char *name) {
  t = lua_absindex(L, t);
  lua_pushstring(L, name);
  return lua_rawget(L, t);
}

/* Number of entries when the table at idx is a list (keys 1..n); -1 when it
 * has other keys. */
lua_Integer kg_cfg_list_len(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    count++;
    lua_pop(L, 1);
  }
  return count == n ? n : -1;
}

lua_Integer kg_cfg_read_list(kg_cfg_ctx *c, int idx, const char *kp,
                             const char *what) {
  char d[128];
  lua_Integer n = lua_type(c->L, idx) == LUA_TTABLE ? kg_cfg_list_len(c->L, idx) : -1;
  if (n < 0)
    return kg_cfg_fail(c, kp, "expected %s, got %s", what,
                       kg_cfg_describe(c->L, idx, d, sizeof(d)));
  return n;
}

int kg_cfg_want(kg_cfg_ctx *c, int idx, const char *kp, int type,
                const char *what) {
  char d[128];
  if (lua_type(c->L, idx) == type) return 0;
  return kg_cfg_fail(c, kp, "expected %s, got %s", what,
                     kg_cfg_describe(c->L, idx, d, sizeof(d)));
}

static void kg_cfg_join_path(char *out, size_t outlen, const char *prefix,
                             const char *key) {
  if (prefix != NULL && prefix[0] != '\0')
    snprintf(out, outlen, "%s.%s", prefix, key);
  else
    snprintf(out, outlen, "%s", key);
}

/* Rejects keys of the table at idx that are not in `allowed`. `prefix` is
 * the table's key path ("" for the top level). When several keys are
 * unknown the one written first in the file is reported, so the message
 * does not depend on Lua's hash order. */
int kg_cfg_check_keys(kg_cfg_ctx *c, int idx, const char *prefix,
                      const char *const *allowed, size_t nallowed) {
  lua_State *L = c->L;
  idx = lua_absindex(L, idx);
  const char *worst = NULL;
  int worst_line = INT_MAX;
  char kp[512], d[128];
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      kg_cfg_describe(L, -2, d, sizeof(d));
      lua_pop(L, 2);
      return kg_cfg_fail(c, prefix, "unexpected entry [%s] (expected name = value)",
                  d);
    }
    /* The key string stays alive while the table holds it. */
    const char *k = lua_tostring(L, -2);
    bool ok = false;
    for (size_t i = 0; i < nallowed && !ok; i++) ok = strcmp(k, allowed[i]) == 0;
    if (!ok) {
      kg_cfg_join_path(kp, sizeof(kp), prefix, k);
      int line = kg_config_locate(c->src, kp);
      if (line == 0) line = INT_MAX - 1;
      if (worst == NULL || line < worst_line ||
          (line == worst_line && strcmp(k, worst) < 0)) {
        worst = k;
        worst_line = line;
      }
    }
    lua_pop(L, 1);
  }
  if (worst == NULL) return 0;
  const char *s = kg_cfg_suggest(worst, allowed, nallowed);
  char hint[128] = "";
  if (s != NULL) snprintf(hint, sizeof(hint), " (did you mean '%s'?)", s);
  kg_cfg_join_path(kp, sizeof(kp), prefix, worst);
  return kg_cfg_fail_at(c, kg_config_locate(c->src, kp), prefix,
                        "unknown key '%s'%s", worst, hint);
}

/* ---- lists of strings ------------------------------------------------- */

int kg_cfg_strlist(kg_cfg_ctx *c, int idx, const char *kp, char ***out,
                   size_t *n, int (*check)(const char *, char *, size_t)) {
  lua_State *L = c->L;
  char d[128], why[256];
  idx = lua_absindex(L, idx);
  lua_Integer len = kg_cfg_read_list(c, idx, kp, "a list of strings");
  if (len < 0) return -1;
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

int kg_cfg_address(kg_cfg_ctx *c, int idx, const char *kp, char *out, size_t outlen) {
  char d[128];
  if (lua_type(c->L, idx) == LUA_TNUMBER && lua_isinteger(c->L, idx)) {
    snprintf(out, outlen, "127.0.0.1:%lld", (long long)lua_tointeger(c->L, idx));
    return 0;
  }
  if (lua_type(c->L, idx) == LUA_TSTRING) {
    snprintf(out, outlen, "%s", lua_tostring(c->L, idx));
    return 0;
  }
  return kg_cfg_fail(c, kp, "expected \"host:port\" or a port number, got %s",
                     kg_cfg_describe(c->L, idx, d, sizeof(d)));
}

void kg_cfg_free_strs(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
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

void kg_cfg_add_name(char ***list, size_t *n, const char *name) {
  for (size_t i = 0; i < *n; i++)
    if (strcasecmp((*list)[i], name) == 0) return;
  *list = kg_realloc(*list, (*n + 1) * sizeof(char *));
  (*list)[(*n)++] = kg_strdup(name);
}

/* The list is read whole before anything is added, so a bad entry leaves
 * *list as it was. */
int kg_cfg_read_names(kg_cfg_ctx *c, int idx, const char *kp, char ***list,
                      size_t *n) {
  char **names = NULL;
  size_t count = 0;
  int rc = kg_cfg_strlist(c, idx, kp, &names, &count, kg_cfg_check_header_name);
  for (size_t i = 0; i < count && rc == 0; i++) kg_cfg_add_name(list, n, names[i]);
  kg_cfg_free_strs(names, count);
  return rc;
}

/* ---- typed values ------------------------------------------------------ */

/* A whole number > 0 (an integer, or a float with an integral value such
 * as 1e6) from the number at idx. */
static bool kg_cfg_positive_whole(lua_State *L, int idx, uint64_t *out) {
  if (lua_type(L, idx) != LUA_TNUMBER) return false;
  int isint = 0;
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  if (!isint || v <= 0) return false;
  *out = (uint64_t)v;
  return true;
}

/* The largest value an unsigned field of `width` bytes holds. */
static uint64_t kg_cfg_uint_max(size_t width) {
  return width >= sizeof(uint64_t) ? UINT64_MAX : (UINT64_C(1) << (8 * width)) - 1;
}

/* Stores v into the unsigned field of `width` bytes at p. */
static void kg_cfg_store_uint(void *p, size_t width, uint64_t v) {
  if (width == sizeof(uint64_t)) {
    uint64_t u = v;
    memcpy(p, &u, sizeof(u));
  } else {
    uint32_t u = (uint32_t)v;
    memcpy(p, &u, sizeof(u));
  }
}

/* Sizes: a whole number of bytes or a string such as "8MiB". */
static int kg_cfg_read_size(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                            const char *kp, void *field) {
  lua_State *L = c->L;
  bool terse = (k->flags & KG_CFG_TERSE_SIZE) != 0;
  uint64_t max = kg_cfg_uint_max(k->width), u = 0;
  char d[128];
  if (lua_type(L, idx) == LUA_TSTRING) {
    int rc = kg_config_parse_size(lua_tostring(L, idx), &u);
    if (!terse && (rc == -2 || (rc == 0 && u > max)))
      return kg_cfg_fail(c, kp, "size %s is too large",
                         kg_cfg_describe(L, idx, d, sizeof(d)));
    if (rc == 0 && u > 0 && u <= max) {
      kg_cfg_store_uint(field, k->width, u);
      return 0;
    }
  } else if (kg_cfg_positive_whole(L, idx, &u) && u <= max) {
    kg_cfg_store_uint(field, k->width, u);
    return 0;
  }
  return kg_cfg_fail(c, kp, "expected a positive size such as 512, \"64KiB\"%s "
                     "\"2GiB\", got %s", terse ? " or" : ", \"8MiB\" or",
                     kg_cfg_describe(L, idx, d, sizeof(d)));
}

/* Reads the value at idx (a KG_CFG_ALWAYS row's may be nil) for row k. */
static int kg_cfg_read_value(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                             const char *kp, void *base) {
  lua_State *L = c->L;
  void *field = (char *)base + k->off;
  char d[128];
  uint64_t u = 0;
  double v = lua_type(L, idx) == LUA_TNUMBER ? (double)lua_tonumber(L, idx) : NAN;
  switch (k->type) {
  case KG_CFG_BOOL:
    if (kg_cfg_want(c, idx, kp, LUA_TBOOLEAN, "true or false") != 0) return -1;
    *(bool *)field = lua_toboolean(L, idx);
    return 0;
  case KG_CFG_SHARE:
    if (!(v >= 0 && v <= 1))
      return kg_cfg_fail(c, kp, "expected a number from 0 to 1, got %s",
                         kg_cfg_describe(L, idx, d, sizeof(d)));
    *(double *)field = v;
    return 0;
  case KG_CFG_NUMBER:
    if (!(v >= k->bound) || !isfinite(v))
      return kg_cfg_fail(c, kp, "expected a number >= %g, got %s", k->bound,
                         kg_cfg_describe(L, idx, d, sizeof(d)));
    *(double *)field = v;
    return 0;
  case KG_CFG_POSITIVE:
  case KG_CFG_MS:
    if (!(v > 0) || !isfinite(v))
      return kg_cfg_fail(c, kp, "expected a positive number of %s, got %s",
                         k->type == KG_CFG_MS ? "seconds" : k->what,
                         kg_cfg_describe(L, idx, d, sizeof(d)));
    if (k->type == KG_CFG_MS)
      *(uint64_t *)field = kg_config_seconds_to_ms(v);
    else
      *(double *)field = v;
    return 0;
  case KG_CFG_COUNT:
    if (!kg_cfg_positive_whole(L, idx, &u) || u > kg_cfg_uint_max(k->width))
      return kg_cfg_fail(c, kp, "expected a positive whole number, got %s",
                         kg_cfg_describe(L, idx, d, sizeof(d)));
    kg_cfg_store_uint(field, k->width, u);
    return 0;
  case KG_CFG_INT:
    if (!kg_cfg_positive_whole(L, idx, &u) || u > (uint64_t)k->bound) {
      if (k->bound < INT_MAX)
        return kg_cfg_fail(c, kp, "expected a whole number from 1 to %llu, got %s",
                           (unsigned long long)k->bound,
                           kg_cfg_describe(L, idx, d, sizeof(d)));
      return kg_cfg_fail(c, kp, "expected a positive whole number, got %s",
                         kg_cfg_describe(L, idx, d, sizeof(d)));
    }
    *(int *)field = (int)u;
    return 0;
  case KG_CFG_SIZE:
    return kg_cfg_read_size(c, idx, k, kp, field);
  case KG_CFG_PATH: {
    if ((k->flags & KG_CFG_FALSE_OFF) && lua_type(L, idx) == LUA_TBOOLEAN && !lua_toboolean(L, idx))
      return 0;
    if (lua_type(L, idx) != LUA_TSTRING || lua_rawlen(L, idx) == 0)
      return kg_cfg_fail(c, kp, "expected a file path%s, got %s",
                         (k->flags & KG_CFG_FALSE_OFF) ? " or false" : "",
                         kg_cfg_describe(L, idx, d, sizeof(d)));
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (memchr(s, '\0', len) != NULL)
      return kg_cfg_fail(c, kp, "file path contains a NUL byte");
    *(char **)field = kg_strndup(s, len);
    return 0;
  }
  case KG_CFG_HOOK:
    if (kg_cfg_want(c, idx, kp, LUA_TFUNCTION, "a function") != 0) return -1;
    *(bool *)field = true;
    return 0;
  case KG_CFG_STRLIST:
    return kg_cfg_strlist(c, idx, kp, (char ***)field,
                          (size_t *)((char *)base + k->off_n), k->check_str);
  case KG_CFG_TABLE:
    if (kg_cfg_want(c, idx, kp, LUA_TTABLE, k->what) != 0) return -1;
    return kg_cfg_read_table(c, idx, kp, k->sub, k->nsub, base);
  case KG_CFG_CUSTOM:
    return k->read(c, idx, k, kp, base);
  }
  return kg_cfg_fail(c, kp, "internal error: unhandled key type");
}

/* ---- tables ------------------------------------------------------------ */

void kg_cfg_defaults(const kg_cfg_key *keys, size_t n, void *base) {
  for (size_t i = 0; i < n; i++) {
    const kg_cfg_key *k = &keys[i];
    void *field = (char *)base + k->off;
    switch (k->type) {
    case KG_CFG_BOOL:
      *(bool *)field = k->def != 0;
      break;
    case KG_CFG_SHARE:
    case KG_CFG_NUMBER:
    case KG_CFG_POSITIVE:
      *(double *)field = k->def;
      break;
    case KG_CFG_MS:
      *(uint64_t *)field = kg_config_seconds_to_ms(k->def);
      break;
    case KG_CFG_COUNT:
    case KG_CFG_SIZE:
      kg_cfg_store_uint(field, k->width, (uint64_t)k->def);
      break;
    case KG_CFG_INT:
      *(int *)field = (int)k->def;
      break;
    case KG_CFG_TABLE:
      kg_cfg_defaults(k->sub, k->nsub, base);
      break;
    default: /* no value until read; custom readers default on nil */
      break;
    }
  }
}

int kg_cfg_read_keys(kg_cfg_ctx *c, int t, const char *prefix,
                     const kg_cfg_key *keys, size_t n, void *base) {
  lua_State *L = c->L;
  t = lua_absindex(L, t);
  char kp[512];
  int failed = 0;
  for (size_t i = 0; i < n; i++) {
    const kg_cfg_key *k = &keys[i];
    int top = lua_gettop(L);
    kg_cfg_join_path(kp, sizeof(kp), prefix, k->name);
    int rc = 0;
    if (kg_cfg_rawfield(L, t, k->name) != LUA_TNIL || (k->flags & KG_CFG_ALWAYS))
      rc = kg_cfg_read_value(c, top + 1, k, kp, base);
    if (rc == 0 && k->check != NULL) rc = k->check(c, top + 1, k, kp, base);
    lua_settop(L, top);
    if (rc != 0) failed = -1; /* and on to the next key: report them all */
  }
  return failed;
}

void kg_cfg_key_names(const kg_cfg_key *keys, size_t n, const char **names,
                      size_t *count, size_t max) {
  for (size_t i = 0; i < n && *count < max; i++) names[(*count)++] = keys[i].name;
}

int kg_cfg_read_table(kg_cfg_ctx *c, int t, const char *prefix,
                      const kg_cfg_key *keys, size_t n, void *base) {
  const char *names[32];
  size_t nnames = 0;
  kg_cfg_key_names(keys, n, names, &nnames, KG_ARRAY_SIZE(names));
  if (kg_cfg_check_keys(c, t, prefix, names, nnames) != 0) return -1;
  return kg_cfg_read_keys(c, t, prefix, keys, n, base);
}
