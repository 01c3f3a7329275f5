/* locate.c: where a key is written, and messages that say so.
 *
 * Lua tables do not remember where a key was written, so the line of an
 * error comes from scanning the source text for the key path
 * (kg_config_locate): a small scanner that knows Lua's comments, strings,
 * long brackets and ["bracketed"] keys, good enough for the usual
 * "key = value" layout, and line 1 when the table was built by code.
 * Every message of the loader is written here as "FILE:LINE: where: what".
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_int.h"

/* Skips a long bracket ("[[", "[==[") opening at p, returning the position
 * after its closing bracket, or NULL if p does not open one. Newlines
 * inside are counted into *line. */
static const char *kg_cfg_skip_long_bracket(const char *p, int *line) {
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
static const char *kg_cfg_skip_quoted(const char *p, int *line) {
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

static bool kg_cfg_is_ident_start(char ch) {
  return ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}
bool kg_cfg_is_ident_char(char ch) {
  return kg_cfg_is_ident_start(ch) || (ch >= '0' && ch <= '9');
}

/* A word found in code: an identifier, or the string of a bracketed key
 * ["name"] / ['name']. */
typedef struct kg_cfg_word {
  const char *s;    /* first character of the name */
  size_t len;
  int line;         /* 1-based line where the word starts */
  bool bracketed;
} kg_cfg_word;

/* Recognises ["name"] at p (on the '['): fills w and returns the position
 * after ']', or NULL. Names with escapes are not recognised (rare in keys,
 * and it keeps this scanner simple). */
static const char *kg_cfg_match_bracket_key(const char *p, int line, kg_cfg_word *w) {
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

/* What both scans below skip: a newline (counted), a comment, a quoted
 * string or a long-bracket string. Returns the position after it, or p
 * itself when p is in code. */
static const char *kg_cfg_skip_noncode(const char *p, int *line) {
  if (*p == '\n') {
    (*line)++;
    return p + 1;
  }
  if (p[0] == '-' && p[1] == '-') {
    const char *e = kg_cfg_skip_long_bracket(p + 2, line);
    if (e != NULL) return e;
    while (*p && *p != '\n') p++;
    return p;
  }
  if (*p == '"' || *p == '\'') return kg_cfg_skip_quoted(p, line);
  const char *e = kg_cfg_skip_long_bracket(p, line);
  return e != NULL ? e : p;
}

/* Finds the next word outside comments and strings, starting at *pp (which
 * must be in code, not inside a string) with *line the line number there.
 * Returns false at the end of the text. */
static bool kg_cfg_next_word(const char **pp, int *line, kg_cfg_word *w) {
  const char *p = *pp;
  while (*p) {
    const char *q = kg_cfg_skip_noncode(p, line);
    if (q != p) {
      p = q;
      continue;
    }
    char ch = *p;
    if (ch == '[') {
      const char *e = kg_cfg_match_bracket_key(p, *line, w);
      if (e != NULL) {
        *pp = e;
        return true;
      }
      p++;
    } else if (kg_cfg_is_ident_start(ch)) {
      const char *s = p;
      while (kg_cfg_is_ident_char(*p)) p++;
      w->s = s;
      w->len = (size_t)(p - s);
      w->line = *line;
      w->bracketed = false;
      *pp = p;
      return true;
    } else if (ch >= '0' && ch <= '9') {
      /* Numbers like 0x1f or 1e5: consume the whole literal so its letters
       * are not taken for an identifier. */
      while (kg_cfg_is_ident_char(*p) || *p == '.') p++;
    } else {
      p++;
    }
  }
  *pp = p;
  return false;
}

/* True when p (just after a word) is followed by optional whitespace and a
 * single '=' (an assignment, not "=="). */
static bool kg_cfg_followed_by_assign(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  return p[0] == '=' && p[1] != '=';
}

/* From p (in code), finds the list's opening '{' and then the n-th table
 * constructor directly inside it (n from 1), skipping strings and
 * comments; returns the position after that '{' with *line updated, or
 * NULL. Lets "rules.2.ignore" find the ignore of the second rule. */
static const char *kg_cfg_nth_table(const char *p, int *line, long n) {
  int depth = 0;
  long seen = 0;
  while (*p) {
    const char *q = kg_cfg_skip_noncode(p, line);
    if (q != p) {
      p = q;
    } else if (*p == '{') {
      depth++;
      p++;
      if (depth == 2 && ++seen == n) return p;
    } else if (*p == '}') {
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
        const char *q = kg_cfg_nth_table(p, &l, strtol(comp, NULL, 10));
        if (q == NULL) break;
        p = q;
        line = l;
        found = l;
      }
    } else if (clen > 0) {
      kg_cfg_word w;
      bool hit = false;
      while (kg_cfg_next_word(&p, &line, &w)) {
        if (w.len == clen && memcmp(w.s, comp, clen) == 0 &&
            kg_cfg_followed_by_assign(p)) {
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
int kg_cfg_locate_return(const char *source) {
  const char *p = source;
  int line = 1, found = 0;
  kg_cfg_word w;
  while (kg_cfg_next_word(&p, &line, &w))
    if (!w.bracketed && w.len == 6 && memcmp(w.s, "return", 6) == 0)
      found = w.line;
  return found;
}

/* ---- errors ----------------------------------------------------------- */

/* Adds "FILE:LINE: where: message" (or "FILE:LINE: message" when where is
 * empty) as a line of the caller's buffer: the reader goes on to the next
 * key, so one `kagami check` names every mistake it can. A message that
 * does not fit whole is left out (the first always fits). Returns -1 so
 * callers can `return kg_cfg_fail...`. */
static int kg_cfg_fail_vat(kg_cfg_ctx *c, int line, const char *where,
                           const char *fmt, va_list ap) {
  char msg[768], full[1024];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  c->nerrors++;
  if (c->err == NULL || c->errlen == 0) return -1;
  if (line <= 0) line = 1;
  if (where != NULL && where[0] != '\0')
    snprintf(full, sizeof(full), "%s:%d: %s: %s", c->path, line, where, msg);
  else
    snprintf(full, sizeof(full), "%s:%d: %s", c->path, line, msg);
  size_t used = c->nerrors > 1 ? strlen(c->err) : 0;
  if (used == 0)
    snprintf(c->err, c->errlen, "%s", full);
  else if (used + 1 + strlen(full) < c->errlen)
    snprintf(c->err + used, c->errlen - used, "\n%s", full);
  return -1;
}

int kg_cfg_fail_at(kg_cfg_ctx *c, int line, const char *where, const char *fmt,
                   ...) {
  va_list ap;
  va_start(ap, fmt);
  kg_cfg_fail_vat(c, line, where, fmt, ap);
  va_end(ap);
  return -1;
}

/* The common case: the line is where `keypath` is written. */
int kg_cfg_fail(kg_cfg_ctx *c, const char *keypath, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  kg_cfg_fail_vat(c, kg_config_locate(c->src, keypath), keypath, fmt, ap);
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
