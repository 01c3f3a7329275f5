/* config.c: the Lua config file -> kg_config (see config.h).
 *
 * The file is run once in a throw-away Lua state; the table it returns is
 * walked with raw accesses only (no metamethods, so nothing the user wrote
 * runs while we validate) and copied into plain C. Every error names the
 * file, a line and the key path. Lua tables do not remember where a key was
 * written, so the line comes from scanning the source text for the key path
 * (kg_config_locate): good enough for the common "key = value" layout, and
 * line 1 when the table was built by code. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
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

/* Number of methods http_parser knows, counted from its own X-macro so a
 * newer http_parser with more methods needs no change here. */
#define KG_COUNT_METHOD(num, name, string) +1
enum { KG_NMETHODS = 0 HTTP_METHOD_MAP(KG_COUNT_METHOD) };
#undef KG_COUNT_METHOD
_Static_assert(KG_NMETHODS <= 64, "shadow_methods is a 64-bit mask");

/* ---- locating keys in the source text -------------------------------- */

/* Skips a long bracket ("[[", "[==[") opening at p, returning the position
 * after its closing bracket, or NULL if p does not open one. Newlines
 * inside are counted into *line. */
static const char *skip_long_bracket(const char *p, int *line) {
  if (*p != '[') return NULL;
  const char *q = p + 1;
  size_t level = 0;
  while (*q == '=') q++, level++;
  if (*q != '[') return NULL;
  for (q++; *q; q++) {
    if (*q == '\n') (*line)++;
    if (*q != ']') continue;
    const char *r = q + 1;
    size_t l = 0;
    while (*r == '=') r++, l++;
    if (l == level && *r == ']') return r + 1;
  }
  return q; /* unterminated: the rest of the file is inside it */
}

/* Skips a quoted string opening at p (on the quote). */
static const char *skip_quoted(const char *p, int *line) {
  char quote = *p++;
  for (; *p && *p != quote; p++) {
    /* A raw newline ends it: Lua rejects that, so the chunk did not get
     * this far, but the scanner must not swallow the rest of the file. */
    if (*p == '\n') return p;
    if (*p != '\\' || p[1] == '\0') continue;
    p++;
    if (*p == '\r' && p[1] == '\n') p++;
    if (*p == '\n') {
      (*line)++; /* backslash-newline continues the string */
    } else if (*p == 'z') {
      /* \z skips the following whitespace, newlines included */
      while (p[1] == ' ' || p[1] == '\t' || p[1] == '\r' || p[1] == '\n')
        if (*++p == '\n') (*line)++;
    }
  }
  return *p ? p + 1 : p;
}

static bool is_ident_start(char ch) {
  return ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}
static bool is_ident_char(char ch) {
  return is_ident_start(ch) || (ch >= '0' && ch <= '9');
}

/* A word found in code: an identifier, or the string of a bracketed key
 * ["name"] / ['name']. */
typedef struct src_word {
  const char *s;    /* first character of the name */
  size_t len;
  int line;         /* 1-based line where the word starts */
  bool bracketed;
} src_word;

/* Recognises ["name"] at p (on the '['): fills w and returns the position
 * after ']', or NULL. Names with escapes are not recognised (rare in keys,
 * and it keeps this scanner simple). */
static const char *match_bracket_key(const char *p, int line, src_word *w) {
  const char *q = p + 1;
  while (*q == ' ' || *q == '\t') q++;
  if (*q != '"' && *q != '\'') return NULL;
  char quote = *q++;
  const char *s = q;
  while (*q && *q != quote && *q != '\\' && *q != '\n') q++;
  if (*q != quote) return NULL;
  size_t len = (size_t)(q - s);
  q++;
  while (*q == ' ' || *q == '\t') q++;
  if (*q != ']') return NULL;
  w->s = s;
  w->len = len;
  w->line = line;
  w->bracketed = true;
  return q + 1;
}

/* Finds the next word outside comments and strings, starting at *pp (which
 * must be in code, not inside a string) with *line the line number there.
 * Returns false at the end of the text. */
static bool next_word(const char **pp, int *line, src_word *w) {
  const char *p = *pp;
  while (*p) {
    char ch = *p;
    if (ch == '\n') {
      (*line)++;
      p++;
    } else if (ch == '-' && p[1] == '-') {
      const char *e = skip_long_bracket(p + 2, line);
      if (e != NULL) {
        p = e;
      } else {
        while (*p && *p != '\n') p++;
      }
    } else if (ch == '"' || ch == '\'') {
      p = skip_quoted(p, line);
    } else if (ch == '[') {
      const char *e = skip_long_bracket(p, line);
      if (e != NULL) {
        p = e;
        continue;
      }
      e = match_bracket_key(p, *line, w);
      if (e != NULL) {
        *pp = e;
        return true;
      }
      p++;
    } else if (is_ident_start(ch)) {
      const char *s = p;
      while (is_ident_char(*p)) p++;
      w->s = s;
      w->len = (size_t)(p - s);
      w->line = *line;
      w->bracketed = false;
      *pp = p;
      return true;
    } else if (ch >= '0' && ch <= '9') {
      /* Numbers like 0x1f or 1e5: consume the whole literal so its letters
       * are not taken for an identifier. */
      while (is_ident_char(*p) || *p == '.') p++;
    } else {
      p++;
    }
  }
  *pp = p;
  return false;
}

/* True when p (just after a word) is followed by optional whitespace and a
 * single '=' (an assignment, not "=="). */
static bool followed_by_assign(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  return p[0] == '=' && p[1] != '=';
}

/* From p (in code), finds the list's opening '{' and then the n-th table
 * constructor directly inside it (n from 1), skipping strings and
 * comments; returns the position after that '{' with *line updated, or
 * NULL. Lets "rules.2.ignore" find the ignore of the second rule. */
static const char *nth_table(const char *p, int *line, long n) {
  int depth = 0;
  long seen = 0;
  while (*p) {
    char ch = *p;
    if (ch == '\n') {
      (*line)++;
      p++;
    } else if (ch == '-' && p[1] == '-') {
      const char *e = skip_long_bracket(p + 2, line);
      if (e != NULL) p = e;
      else while (*p && *p != '\n') p++;
    } else if (ch == '"' || ch == '\'') {
      p = skip_quoted(p, line);
    } else if (ch == '[') {
      /* Called once: skip_long_bracket counts the newlines it passes. */
      const char *e = skip_long_bracket(p, line);
      p = e != NULL ? e : p + 1;
    } else if (ch == '{') {
      depth++;
      p++;
      if (depth == 2 && ++seen == n) return p;
    } else if (ch == '}') {
      if (--depth <= 0) return NULL; /* the list ended first */
      p++;
    } else {
      p++;
    }
  }
  return NULL;
}

/* Each component is searched for after the previous one's match, so
 * "backends.newdb.url" finds the url inside newdb rather than the first url
 * in the file. The search stops at the first component not found (looking
 * further would likely land on another table's key) and reports the line of
 * the deepest component found. A numeric component (a list index) moves to
 * that entry of the list when the entries are tables. */
int kg_config_locate(const char *source, const char *keypath) {
  if (source == NULL || keypath == NULL) return 0;
  const char *p = source;
  int line = 1;
  int found = 0;
  const char *comp = keypath;
  while (*comp) {
    size_t clen = strcspn(comp, ".");
    if (clen > 0 && kg_cfg_all_digits(comp, clen)) {
      if (found) {
        int l = line;
        const char *q = nth_table(p, &l, strtol(comp, NULL, 10));
        if (q == NULL) break;
        p = q;
        line = l;
        found = l;
      }
    } else if (clen > 0) {
      src_word w;
      bool hit = false;
      while (next_word(&p, &line, &w)) {
        if (w.len == clen && memcmp(w.s, comp, clen) == 0 &&
            followed_by_assign(p)) {
          hit = true;
          break;
        }
      }
      if (!hit) break;
      found = w.line;
    }
    comp += clen;
    if (*comp == '.') comp++;
  }
  return found;
}

/* Line of the last "return" in code: where a chunk's value comes from. */
static int locate_last_return(const char *source) {
  const char *p = source;
  int line = 1, found = 0;
  src_word w;
  while (next_word(&p, &line, &w))
    if (!w.bracketed && w.len == 6 && memcmp(w.s, "return", 6) == 0)
      found = w.line;
  return found;
}

/* ---- errors ----------------------------------------------------------- */


/* Writes "FILE:LINE: where: message" (or "FILE:LINE: message" when where is
 * empty) into the caller's buffer; returns -1 so callers can
 * `return fail...`. */
static int fail_vat(kg_cfg_ctx *c, int line, const char *where, const char *fmt,
                    va_list ap) {
  char msg[768];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  if (c->err == NULL || c->errlen == 0) return -1;
  if (line <= 0) line = 1;
  if (where != NULL && where[0] != '\0')
    snprintf(c->err, c->errlen, "%s:%d: %s: %s", c->path, line, where, msg);
  else
    snprintf(c->err, c->errlen, "%s:%d: %s", c->path, line, msg);
  return -1;
}

static int fail_at(kg_cfg_ctx *c, int line, const char *where, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
static int fail_at(kg_cfg_ctx *c, int line, const char *where, const char *fmt,
                   ...) {
  va_list ap;
  va_start(ap, fmt);
  fail_vat(c, line, where, fmt, ap);
  va_end(ap);
  return -1;
}

/* The common case: the line is where `keypath` is written. */
int kg_cfg_fail(kg_cfg_ctx *c, const char *keypath, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int kg_cfg_fail(kg_cfg_ctx *c, const char *keypath, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fail_vat(c, kg_config_locate(c->src, keypath), keypath, fmt, ap);
  va_end(ap);
  return -1;
}

/* A short description of the Lua value at idx for "got ..." messages:
 * strings quoted, numbers and booleans as written, other types by name. */
const char *kg_cfg_describe(lua_State *L, int idx, char *out, size_t outlen) {
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    kg_cfg_quote(out, outlen, s, len);
    break;
  }
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      snprintf(out, outlen, "%lld", (long long)lua_tointeger(L, idx));
    else if (isnan(lua_tonumber(L, idx)))
      snprintf(out, outlen, "nan"); /* not "-nan": the sign means nothing */
    else
      snprintf(out, outlen, "%.14g", (double)lua_tonumber(L, idx));
    break;
  case LUA_TBOOLEAN:
    snprintf(out, outlen, "%s", lua_toboolean(L, idx) ? "true" : "false");
    break;
  case LUA_TNIL:
    snprintf(out, outlen, "nil");
    break;
  default:
    snprintf(out, outlen, "a %s", lua_typename(L, lua_type(L, idx)));
    break;
  }
  return out;
}

/* Levenshtein distance, for "did you mean" on misspelt keys. Keys are
 * short; longer strings are simply not compared. */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63) return SIZE_MAX;
  size_t row[64];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      size_t best = KG_MIN(row[j] + 1, row[j - 1] + 1);
      row[j] = KG_MIN(best, diag + cost);
      diag = up;
    }
  }
  return row[lb];
}

/* The allowed name closest to `key`, if close enough to be a likely typo
 * (a third of the key's length, at least 1 and at most 3 edits). */
static const char *suggest(const char *key, const char *const *names,
                           size_t n) {
  size_t limit = KG_MAX((size_t)1, KG_MIN((size_t)3, strlen(key) / 3));
  const char *best = NULL;
  size_t bestd = SIZE_MAX;
  for (size_t i = 0; i < n; i++) {
    size_t d = edit_distance(key, names[i]);
    if (d < bestd) bestd = d, best = names[i];
  }
  return bestd <= limit ? best : NULL;
}

/* ---- small Lua helpers ------------------------------------------------ */

/* Pushes t[name] without metamethods; returns its type. */
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

static void join_path(char *out, size_t outlen, const char *prefix,
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
      join_path(kp, sizeof(kp), prefix, k);
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
  const char *s = suggest(worst, allowed, nallowed);
  char hint[128] = "";
  if (s != NULL) snprintf(hint, sizeof(hint), " (did you mean '%s'?)", s);
  join_path(kp, sizeof(kp), prefix, worst);
  return fail_at(c, kg_config_locate(c->src, kp), prefix, "unknown key '%s'%s",
                 worst, hint);
}

/* Same family, address and port: what "the same listening socket" means. */
static bool same_sockaddr(const kg_addr *a, const kg_addr *b) {
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

/* ---- the keys --------------------------------------------------------- */

enum key_kind {
  K_LISTEN,    /* special: string or list of "host:port" */
  K_BACKENDS,  /* special: name -> { url, master } */
  K_METHODS,   /* special: list of method names -> bitmask */
  K_SECONDS,   /* uint64_t ms, from seconds > 0 */
  K_FRACTION,  /* double in [0, 1] */
  K_PATH,      /* char *, non-empty string */
  K_SIZE,      /* size_t > 0, number or "8MiB" */
  K_COUNT,     /* size_t > 0, whole number */
  K_INT,       /* int in [1, max] */
  K_HOOK,      /* bool: a function is present */
};

typedef struct key_spec {
  const char *name;
  enum key_kind kind;
  size_t off;    /* offset of the field in kg_config */
  uint64_t max;  /* upper bound for K_INT */
} key_spec;

#define F(field) offsetof(kg_config, field)
/* One declarative table for the whole top level; also the list the
 * "did you mean" suggestions come from. Processed in this order, so the
 * first error reported does not depend on the file. */
static const key_spec top_keys[] = {
    {"listen", K_LISTEN, 0, 0},
    {"client_timeout", K_SECONDS, F(client_timeout_ms), 0},
    {"backend_timeout", K_SECONDS, F(backend_timeout_ms), 0},
    {"backends", K_BACKENDS, 0, 0},
    {"shadow_methods", K_METHODS, 0, 0},
    {"sample", K_FRACTION, F(sample), 0},
    {"diff_log", K_PATH, F(diff_log), 0},
    {"max_capture_bytes", K_SIZE, F(max_capture_bytes), 0},
    {"max_header_bytes", K_SIZE, F(max_header_bytes), 0},
    {"max_headers", K_COUNT, F(max_headers), 0},
    {"max_body_bytes", K_SIZE, F(max_body_bytes), 0},
    {"max_connections", K_COUNT, F(max_connections), 0},
    {"shadow_max_inflight", K_COUNT, F(shadow_max_inflight), 0},
    {"shadow_max_inflight_bytes", K_SIZE, F(shadow_max_inflight_bytes), 0},
    {"shadow_max_body_bytes", K_SIZE, F(shadow_max_body_bytes), 0},
    {"workers", K_INT, F(workers), 64},
    {"hook_budget", K_INT, F(hook_budget), INT_MAX},
    {"select_backends", K_HOOK, F(has_select_backends), 0},
    {"munge_headers", K_HOOK, F(has_munge_headers), 0},
    {"on_backends_finished", K_HOOK, F(has_on_backends_finished), 0},
};
#undef F

static const char *const backend_keys[] = {"url", "master", "secondary",
                                           "shadow_methods"};

static void set_defaults(kg_config *cfg) {
  cfg->client_timeout_ms = kg_config_seconds_to_ms(15);
  cfg->backend_timeout_ms = kg_config_seconds_to_ms(10);
  cfg->shadow_methods = (1ULL << HTTP_GET) | (1ULL << HTTP_HEAD);
  cfg->sample = 1.0;
  cfg->diff_log = NULL;
  cfg->max_capture_bytes = (size_t)8 << 20;
  cfg->max_header_bytes = (size_t)64 << 10;
  cfg->max_headers = 100;
  cfg->max_body_bytes = (size_t)16 << 20;
  cfg->max_connections = 10000;
  cfg->shadow_max_inflight = 1000;
  cfg->shadow_max_inflight_bytes = (size_t)64 << 20;
  cfg->shadow_max_body_bytes = (size_t)16 << 20;
  cfg->workers = 1;
  cfg->hook_budget = 1000000;
}

/* Reads a whole number > 0 (an integer, or a float with an integral value
 * such as 1e6) from the number at idx. */
static bool get_positive_whole(lua_State *L, int idx, uint64_t *out) {
  if (lua_type(L, idx) != LUA_TNUMBER) return false;
  int isint = 0;
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  if (!isint || v <= 0) return false;
  *out = (uint64_t)v;
  return true;
}

static int load_scalar(kg_cfg_ctx *c, const key_spec *k, int idx) {
  lua_State *L = c->L;
  char *field = (char *)c->cfg + k->off;
  char d[128];
  uint64_t u;
  switch (k->kind) {
  case K_SECONDS: {
    double v = lua_type(L, idx) == LUA_TNUMBER ? (double)lua_tonumber(L, idx) : NAN;
    if (!(v > 0) || !isfinite(v))
      return kg_cfg_fail(c, k->name, "expected a positive number of seconds, got %s",
                  kg_cfg_describe(L, idx, d, sizeof(d)));
    *(uint64_t *)field = kg_config_seconds_to_ms(v);
    return 0;
  }
  case K_FRACTION: {
    double v = lua_type(L, idx) == LUA_TNUMBER ? (double)lua_tonumber(L, idx) : NAN;
    if (!(v >= 0 && v <= 1))
      return kg_cfg_fail(c, k->name, "expected a number from 0 to 1, got %s",
                  kg_cfg_describe(L, idx, d, sizeof(d)));
    *(double *)field = v;
    return 0;
  }
  case K_PATH: {
    if (lua_type(L, idx) != LUA_TSTRING || lua_rawlen(L, idx) == 0)
      return kg_cfg_fail(c, k->name, "expected a file path, got %s",
                  kg_cfg_describe(L, idx, d, sizeof(d)));
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (memchr(s, '\0', len) != NULL)
      return kg_cfg_fail(c, k->name, "file path contains a NUL byte");
    *(char **)field = kg_strndup(s, len);
    return 0;
  }
  case K_SIZE:
    if (lua_type(L, idx) == LUA_TSTRING) {
      int rc = kg_config_parse_size(lua_tostring(L, idx), &u);
      if (rc == -2 || (rc == 0 && u > SIZE_MAX))
        return kg_cfg_fail(c, k->name, "size %s is too large",
                    kg_cfg_describe(L, idx, d, sizeof(d)));
      if (rc == 0 && u > 0) {
        *(size_t *)field = (size_t)u;
        return 0;
      }
    } else if (get_positive_whole(L, idx, &u) && u <= SIZE_MAX) {
      *(size_t *)field = (size_t)u;
      return 0;
    }
    return kg_cfg_fail(c, k->name,
                "expected a positive size such as 512, \"64KiB\", \"8MiB\" or "
                "\"2GiB\", got %s",
                kg_cfg_describe(L, idx, d, sizeof(d)));
  case K_COUNT:
    if (!get_positive_whole(L, idx, &u) || u > SIZE_MAX)
      return kg_cfg_fail(c, k->name, "expected a positive whole number, got %s",
                  kg_cfg_describe(L, idx, d, sizeof(d)));
    *(size_t *)field = (size_t)u;
    return 0;
  case K_INT:
    if (!get_positive_whole(L, idx, &u) || u > k->max) {
      if (k->max < INT_MAX)
        return kg_cfg_fail(c, k->name, "expected a whole number from 1 to %llu, got %s",
                    (unsigned long long)k->max, kg_cfg_describe(L, idx, d, sizeof(d)));
      return kg_cfg_fail(c, k->name, "expected a positive whole number, got %s",
                  kg_cfg_describe(L, idx, d, sizeof(d)));
    }
    *(int *)field = (int)u;
    return 0;
  case K_HOOK:
    if (lua_type(L, idx) != LUA_TFUNCTION)
      return kg_cfg_fail(c, k->name, "expected a function, got %s",
                  kg_cfg_describe(L, idx, d, sizeof(d)));
    *(bool *)field = true;
    return 0;
  default:
    return kg_cfg_fail(c, k->name, "internal error: unhandled key kind");
  }
}

static int add_listen(kg_cfg_ctx *c, const char *text) {
  kg_config *cfg = c->cfg;
  char why[256];
  kg_addr *a = &cfg->listen[cfg->nlisten];
  if (kg_addr_parse(text, a, why, sizeof(why)) != 0)
    return kg_cfg_fail(c, "listen", "%s", why);
  cfg->nlisten++;
  for (size_t i = 0; i + 1 < cfg->nlisten; i++) {
    if (!same_sockaddr(&cfg->listen[i], a)) continue;
    if (strcmp(cfg->listen[i].text, a->text) == 0)
      return kg_cfg_fail(c, "listen", "duplicate listen address %s", a->text);
    return kg_cfg_fail(c, "listen", "duplicate listen address %s (same as %s)",
                a->text, cfg->listen[i].text);
  }
  return 0;
}

/* listen: absent -> the default; "host:port"; or a non-empty list. */
static int load_listen(kg_cfg_ctx *c, int idx) {
  lua_State *L = c->L;
  kg_config *cfg = c->cfg;
  char d[128];
  idx = lua_absindex(L, idx);
  if (lua_isnil(L, idx)) {
    cfg->listen = kg_calloc(1, sizeof(kg_addr));
    return add_listen(c, "127.0.0.1:8090");
  }
  if (lua_type(L, idx) == LUA_TSTRING) {
    cfg->listen = kg_calloc(1, sizeof(kg_addr));
    return add_listen(c, lua_tostring(L, idx));
  }
  lua_Integer n = lua_type(L, idx) == LUA_TTABLE ? kg_cfg_list_len(L, idx) : -1;
  if (n < 0)
    return kg_cfg_fail(c, "listen",
                "expected \"host:port\" or a list of them, got %s",
                kg_cfg_describe(L, idx, d, sizeof(d)));
  if (n == 0) return kg_cfg_fail(c, "listen", "expected at least one address");
  cfg->listen = kg_calloc((size_t)n, sizeof(kg_addr));
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    if (lua_type(L, -1) != LUA_TSTRING) {
      kg_cfg_describe(L, -1, d, sizeof(d));
      lua_pop(L, 1);
      return kg_cfg_fail(c, "listen", "entry %lld: expected \"host:port\", got %s",
                  (long long)i, d);
    }
    int rc = add_listen(c, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (rc != 0) return rc;
  }
  return 0;
}

/* url = "http://host:port" with an optional "/" and nothing else. */
static int parse_url(kg_cfg_ctx *c, const char *kp, const char *url,
                     kg_addr *addr) {
  char q[128], why[256];
  kg_cfg_quote(q, sizeof(q), url, strlen(url));
  if (strncasecmp(url, "https://", 8) == 0)
    return kg_cfg_fail(c, kp, "TLS is not supported yet, got %s", q);
  if (strncasecmp(url, "http://", 7) != 0)
    return kg_cfg_fail(c, kp, "expected http://host:port, got %s", q);
  const char *auth = url + 7;
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

static bool valid_backend_name(const char *s) {
  if (*s == '\0') return false;
  for (; *s; s++)
    if (!is_ident_char(*s) && *s != '-') return false; /* ASCII only */
  return true;
}

static int cmp_backend_name(const void *a, const void *b) {
  return strcmp(((const kg_backend_cfg *)a)->name,
                ((const kg_backend_cfg *)b)->name);
}

static int method_index(const char *s) {
  for (int m = 0; m < KG_NMETHODS; m++)
    if (strcmp(http_method_str((enum http_method)m), s) == 0) return m;
  return -1;
}

/* shadow_methods (top level or per backend): a list of method names as
 * http_parser spells them, into a bit mask. nil leaves *out alone. */
static int load_methods(kg_cfg_ctx *c, int idx, const char *kp,
                        uint64_t *out) {
  lua_State *L = c->L;
  char d[128];
  idx = lua_absindex(L, idx);
  if (lua_isnil(L, idx)) return 0; /* the default stands */
  lua_Integer n = lua_type(L, idx) == LUA_TTABLE ? kg_cfg_list_len(L, idx) : -1;
  if (n < 0)
    return kg_cfg_fail(c, kp,
                "expected a list of method names like { \"GET\", \"HEAD\" }, "
                "got %s",
                kg_cfg_describe(L, idx, d, sizeof(d)));
  uint64_t mask = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    kg_cfg_describe(L, -1, d, sizeof(d));
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      return kg_cfg_fail(c, kp, "expected a method name, got %s", d);
    }
    const char *s = lua_tostring(L, -1);
    int m = method_index(s);
    if (m < 0) {
      char up[32];
      size_t j = 0;
      for (; s[j] && j + 1 < sizeof(up); j++)
        up[j] = (char)toupper((unsigned char)s[j]);
      up[j] = '\0';
      int mu = s[j] == '\0' ? method_index(up) : -1;
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

/* One backend table (on top of the stack) into cfg->backends[i]. */
static int load_backend(kg_cfg_ctx *c, kg_backend_cfg *be) {
  lua_State *L = c->L;
  char kp[256], d[128];
  snprintf(kp, sizeof(kp), "backends.%s", be->name);
  if (lua_type(L, -1) != LUA_TTABLE)
    return kg_cfg_fail(c, kp,
                "expected a table like { url = \"http://host:port\" }, got %s",
                kg_cfg_describe(L, -1, d, sizeof(d)));
  if (kg_cfg_check_keys(c, -1, kp, backend_keys, KG_ARRAY_SIZE(backend_keys)) != 0)
    return -1;

  snprintf(kp, sizeof(kp), "backends.%s.url", be->name);
  int t = kg_cfg_rawfield(L, -1, "url");
  if (t != LUA_TSTRING) {
    int rc = t == LUA_TNIL
                 ? kg_cfg_fail(c, kp, "missing (expected \"http://host:port\")")
                 : kg_cfg_fail(c, kp, "expected http://host:port, got %s",
                        kg_cfg_describe(L, -1, d, sizeof(d)));
    lua_pop(L, 1);
    return rc;
  }
  be->url = kg_strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  if (parse_url(c, kp, be->url, &be->addr) != 0) return -1;

  snprintf(kp, sizeof(kp), "backends.%s.master", be->name);
  t = kg_cfg_rawfield(L, -1, "master");
  if (t != LUA_TNIL && t != LUA_TBOOLEAN) {
    kg_cfg_fail(c, kp, "expected true or false, got %s", kg_cfg_describe(L, -1, d, sizeof(d)));
    lua_pop(L, 1);
    return -1;
  }
  be->master = lua_toboolean(L, -1);
  lua_pop(L, 1);

  snprintf(kp, sizeof(kp), "backends.%s.secondary", be->name);
  t = kg_cfg_rawfield(L, -1, "secondary");
  if (t != LUA_TNIL && t != LUA_TBOOLEAN) {
    kg_cfg_fail(c, kp, "expected true or false, got %s",
                kg_cfg_describe(L, -1, d, sizeof(d)));
    lua_pop(L, 1);
    return -1;
  }
  be->secondary = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (be->secondary && be->master)
    return kg_cfg_fail(c, kp, "the master cannot also be the secondary");

  /* Unsafe methods reach a shadow only when its own entry says so. */
  snprintf(kp, sizeof(kp), "backends.%s.shadow_methods", be->name);
  kg_cfg_rawfield(L, -1, "shadow_methods");
  int rc = load_methods(c, -1, kp, &be->shadow_methods);
  lua_pop(L, 1);
  be->has_shadow_methods = rc == 0 && be->shadow_methods != 0;
  return rc;
}

/* backends: collected by name, sorted (so errors and the shadow order do
 * not depend on hash order), validated, then the master rotated to [0]. */
static int load_backends(kg_cfg_ctx *c, int idx) {
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
  qsort(cfg->backends, n, sizeof(kg_backend_cfg), cmp_backend_name);

  for (size_t i = 0; i < n; i++) {
    kg_backend_cfg *be = &cfg->backends[i];
    if (!valid_backend_name(be->name)) {
      char q[128];
      kg_cfg_quote(q, sizeof(q), be->name, strlen(be->name));
      return kg_cfg_fail(c, "backends",
                  "invalid backend name %s (use letters, digits, '_' and '-')",
                  q);
    }
    kg_cfg_rawfield(L, idx, be->name);
    int rc = load_backend(c, be);
    lua_pop(L, 1);
    if (rc != 0) return rc;
  }

  size_t master = n;
  for (size_t i = 0; i < n; i++) {
    if (!cfg->backends[i].master) continue;
    if (master != n) {
      char kp[256];
      snprintf(kp, sizeof(kp), "backends.%s.master", cfg->backends[i].name);
      return fail_at(c, kg_config_locate(c->src, kp), "backends",
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
      char kp[256];
      snprintf(kp, sizeof(kp), "backends.%s.secondary", cfg->backends[i].name);
      return fail_at(c, kg_config_locate(c->src, kp), "backends",
                     "more than one secondary: '%s' and '%s'",
                     cfg->backends[cfg->secondary].name, cfg->backends[i].name);
    }
    cfg->secondary = (int)i;
  }
  return 0;
}


/* Walks the returned table (argument 1). Returns 0 or -1 (err filled). */
static int validate(kg_cfg_ctx *c, int t) {
  lua_State *L = c->L;
  const char *names[KG_ARRAY_SIZE(top_keys) + 32];
  size_t nnames = 0;
  for (size_t i = 0; i < KG_ARRAY_SIZE(top_keys); i++) names[nnames++] = top_keys[i].name;
  for (size_t i = 0; i < kg_cfg_ncompare_keys && nnames < KG_ARRAY_SIZE(names); i++)
    names[nnames++] = kg_cfg_compare_keys[i];
  for (size_t i = 0; i < kg_cfg_noutput_keys && nnames < KG_ARRAY_SIZE(names); i++)
    names[nnames++] = kg_cfg_output_keys[i];
  if (kg_cfg_check_keys(c, t, "", names, nnames) != 0) return -1;

  for (size_t i = 0; i < KG_ARRAY_SIZE(top_keys); i++) {
    const key_spec *k = &top_keys[i];
    int type = kg_cfg_rawfield(L, t, k->name);
    int rc = 0;
    if (k->kind == K_LISTEN)
      rc = load_listen(c, -1);
    else if (k->kind == K_BACKENDS)
      rc = load_backends(c, -1);
    else if (k->kind == K_METHODS)
      rc = load_methods(c, -1, "shadow_methods", &c->cfg->shadow_methods);
    else if (type != LUA_TNIL)
      rc = load_scalar(c, k, -1);
    lua_pop(L, 1);
    if (rc != 0) return rc;
  }
  if (kg_cfg_load_compare(c, t) != 0) return -1;
  return kg_cfg_load_output(c, t);
}

/* Runs validate() under lua_pcall: raw table accesses cannot run user code,
 * but Lua can still raise "not enough memory", and a longjmp must not skip
 * our cleanup (everything allocated is reachable from c->cfg). */
static int validate_protected(lua_State *L) {
  kg_cfg_ctx *c = lua_touserdata(L, 2);
  c->rc = validate(c, 1);
  return 0;
}

/* Reads the whole file: the source kg_config_locate scans. */
static char *read_file(const char *path, int *err_no) {
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

/* True when msg already starts with "something:LINE:", as Lua's syntax
 * and runtime errors do. */
static bool has_position(const char *msg) {
  const char *colon = strchr(msg, ':');
  if (colon == NULL || colon == msg) return false;
  const char *p = colon + 1;
  if (*p < '0' || *p > '9') return false;
  while (*p >= '0' && *p <= '9') p++;
  return *p == ':';
}

/* Lua cuts chunk names to 60 bytes ("...long/path/kagami.lua:3:"), which
 * would break FILE:LINE for long paths. So the chunk gets a short marker
 * name, and messages get the full path put back in its place. */
#define KG_CHUNK_MARK "\x01config"

int kg_config_lua_load(lua_State *L, const char *path) {
  int eno = 0;
  char *src = read_file(path, &eno);
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
static void kg_config_budget_hook(lua_State *L, lua_Debug *ar) {
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
static int kg_config_setmetatable(lua_State *L) {
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
  lua_pushcfunction(L, kg_config_setmetatable);
  lua_setfield(L, -2, "setmetatable");
  lua_getfield(L, -1, "debug");
  if (lua_istable(L, -1)) { /* the other way to set a metatable */
    lua_pushnil(L);
    lua_setfield(L, -2, "setmetatable");
  }
  lua_pop(L, 2);
  /* Stays armed: the caller's further Lua (validation) runs under it too,
   * until it sets a hook of its own or clears it. */
  lua_sethook(L, kg_config_budget_hook, LUA_MASKCOUNT, KG_CONFIG_BUDGET);
  int st = kg_config_lua_load(L, path);
  if (st == LUA_OK) st = lua_pcall(L, 0, 1, 0);
  return st;
}

int kg_config_load(const char *path, kg_config **out, char *err,
                   size_t errlen) {
  *out = NULL;
  if (err != NULL && errlen > 0) err[0] = '\0';
  int eno = 0;
  char *src = read_file(path, &eno);
  if (src == NULL) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "%s: cannot read: %s", path, strerror(eno));
    return -1;
  }

  kg_cfg_ctx c = {.path = path, .src = src, .err = err, .errlen = errlen};
  c.cfg = kg_calloc(1, sizeof(kg_config));
  c.cfg->path = kg_strdup(path);
  set_defaults(c.cfg);

  int rc = -1;
  lua_State *L = luaL_newstate();
  c.L = L;
  if (L == NULL) {
    fail_at(&c, 1, "", "cannot create a Lua state (out of memory)");
    goto done;
  }
  luaL_openlibs(L);

  int st = kg_config_lua_run(L, path);
  if (st != LUA_OK) {
    const char *raw = lua_tostring(L, -1);
    kg_buf msg = KG_BUF_INIT;
    if (raw != NULL) kg_config_lua_message(raw, path, &msg);
    if (raw == NULL)
      fail_at(&c, 1, "", "the config raised an error that is not a string (%s)",
              luaL_typename(L, -1));
    else if (!has_position(msg.data))
      fail_at(&c, 1, "", "%s", msg.data);
    else if (err != NULL && errlen > 0)
      snprintf(err, errlen, "%s", msg.data); /* Lua's own FILE:LINE: msg */
    kg_buf_free(&msg);
    goto done;
  }
  if (lua_type(L, -1) != LUA_TTABLE) {
    char d[128];
    fail_at(&c, locate_last_return(src), "",
            "the config must return a table, got %s",
            kg_cfg_describe(L, -1, d, sizeof(d)));
    goto done;
  }

  c.rc = -1;
  lua_pushcfunction(L, validate_protected);
  lua_pushvalue(L, -2);
  lua_pushlightuserdata(L, &c);
  st = lua_pcall(L, 2, 0, 0);
  if (st != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fail_at(&c, 1, "", "%s", msg != NULL ? msg : "error while reading the config");
    goto done;
  }
  rc = c.rc;

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
  for (size_t i = 0; i < cfg->nlisten; i++) kg_addr_free(&cfg->listen[i]);
  free(cfg->listen);
  for (size_t i = 0; i < cfg->nbackends; i++) {
    free(cfg->backends[i].name);
    free(cfg->backends[i].url);
    kg_addr_free(&cfg->backends[i].addr);
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
