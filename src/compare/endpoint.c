/* endpoint.c: endpoint names from method and path (see endpoint.h). */
#include "compare/endpoint.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"

typedef struct pattern_seg {
  size_t off, len; /* the segment's text within the rule's path */
  bool param;      /* ":name": any one non-empty segment */
  bool star;       /* "*": the rest of the path (only ever last) */
} pattern_seg;

typedef struct rule {
  char *method;      /* owned; NULL matches any method */
  char *path;        /* owned; the pattern path as written, "/users/:id" */
  pattern_seg *segs; /* owned; the segments after the leading '/' */
  size_t nsegs;
} rule;

struct kg_endpoint_rules {
  rule *v; /* owned array, in config order: the first match wins */
  size_t n;
};

/* --- rendering ----------------------------------------------------------- */

/* Names end up in logs and JSON keys; keeping them printable ASCII means
 * no consumer has to cope with control bytes or broken UTF-8. */
static bool kg_endpoint_needs_escape(unsigned char c) { return c <= 0x20 || c >= 0x7f; }

/* Appends s[0..n) escaped, but only as much as fits in budget bytes, and
 * never half an escape. Returns the bytes written. */
static size_t kg_endpoint_append_escaped(kg_buf *out, const char *s, size_t n, size_t budget) {
  static const char hex[] = "0123456789ABCDEF";
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (kg_endpoint_needs_escape(c)) {
      if (w + 3 > budget) break;
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      kg_buf_append(out, e, 3);
      w += 3;
    } else {
      if (w + 1 > budget) break;
      kg_buf_append(out, &s[i], 1);
      w += 1;
    }
  }
  return w;
}

static size_t kg_endpoint_escaped_len(const char *s, size_t n) {
  size_t w = 0;
  for (size_t i = 0; i < n; i++) w += kg_endpoint_needs_escape((unsigned char)s[i]) ? 3 : 1;
  return w;
}

static void kg_endpoint_append_method(kg_buf *out, const char *method) {
  if (method == NULL || method[0] == '\0') {
    kg_buf_appends(out, "-");
    return;
  }
  size_t n = strlen(method);
  if (kg_endpoint_escaped_len(method, n) <= KG_ENDPOINT_MAX_METHOD) {
    kg_endpoint_append_escaped(out, method, n, KG_ENDPOINT_MAX_METHOD);
    return;
  }
  kg_endpoint_append_escaped(out, method, n, KG_ENDPOINT_MAX_METHOD - 3);
  kg_buf_appends(out, "...");
}

/* --- default templating -------------------------------------------------- */

static bool kg_endpoint_is_digit(char c) { return c >= '0' && c <= '9'; }
static bool kg_endpoint_is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool kg_endpoint_is_hex(char c) {
  return kg_endpoint_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool kg_endpoint_all_of(const char *s, size_t n, bool (*pred)(char)) {
  for (size_t i = 0; i < n; i++)
    if (!pred(s[i])) return false;
  return true;
}

static bool kg_endpoint_is_uuid(const char *s, size_t n) {
  if (n != 36) return false;
  for (size_t i = 0; i < n; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !kg_endpoint_is_hex(s[i])) return false;
  }
  return true;
}

/* YYYY-MM-DD with a plausible month and day; "2026-13-45" is more likely
 * a version or an identifier than a date, so it stays literal. */
static bool kg_endpoint_is_date(const char *s, size_t n) {
  if (n != 10 || s[4] != '-' || s[7] != '-') return false;
  if (!kg_endpoint_all_of(s, 4, kg_endpoint_is_digit) ||
      !kg_endpoint_all_of(s + 5, 2, kg_endpoint_is_digit) ||
      !kg_endpoint_all_of(s + 8, 2, kg_endpoint_is_digit))
    return false;
  int month = (s[5] - '0') * 10 + (s[6] - '0');
  int day = (s[8] - '0') * 10 + (s[9] - '0');
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

/* Base64url-ish session ids, API keys, signed tokens. Both letters and
 * digits are required so that long slugs made of words ("a-long-article-
 * title-here") keep their names. */
static bool kg_endpoint_is_token(const char *s, size_t n) {
  if (n < 20) return false;
  bool letter = false, digit = false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (kg_endpoint_is_alpha(c)) letter = true;
    else if (kg_endpoint_is_digit(c)) digit = true;
    else if (c != '-' && c != '_') return false;
  }
  return letter && digit;
}

/* The placeholder for a segment, or NULL to keep it. The order matters
 * where kinds overlap: a long run of digits is an id before it is hex, and
 * a hex string is :hex before it is a token. */
static const char *kg_endpoint_placeholder(const char *s, size_t n) {
  if (n == 0) return NULL;
  if (kg_endpoint_all_of(s, n, kg_endpoint_is_digit)) return ":id";
  if (kg_endpoint_is_uuid(s, n)) return ":uuid";
  if (kg_endpoint_is_date(s, n)) return ":date";
  if (n >= 16 && kg_endpoint_all_of(s, n, kg_endpoint_is_hex)) return ":hex";
  if (kg_endpoint_is_token(s, n)) return ":token";
  return NULL;
}

/* Writes the templated path, cut at a segment boundary to stay within
 * KG_ENDPOINT_MAX_PATH. Every non-last piece leaves room for "/...", so
 * the marker always fits. */
static void kg_endpoint_append_templated(kg_buf *out, const char *p, size_t plen) {
  size_t written = 0, pos = 0;
  bool first = true;
  bool slash = plen > 0 && p[0] == '/';
  if (slash) pos = 1;
  for (;;) {
    const char *seg = p + pos;
    const char *e = memchr(seg, '/', plen - pos);
    size_t slen = e ? (size_t)(e - seg) : plen - pos;
    bool last = e == NULL;
    const char *ph = kg_endpoint_placeholder(seg, slen);
    size_t lead = (first && !slash) ? 0 : 1;
    size_t piece = lead + (ph ? strlen(ph) : kg_endpoint_escaped_len(seg, slen));
    size_t room = KG_ENDPOINT_MAX_PATH - (last ? 0 : 4);
    if (written + piece > room) {
      kg_buf_appends(out, "/...");
      return;
    }
    if (lead) kg_buf_append(out, "/", 1);
    if (ph) kg_buf_appends(out, ph);
    else kg_endpoint_append_escaped(out, seg, slen, SIZE_MAX);
    written += piece;
    if (last) return;
    pos += slen + 1;
    first = false;
  }
}

/* --- rules --------------------------------------------------------------- */

/* Whether a path (starting with '/') matches a rule's segments. */
static bool kg_endpoint_rule_matches(const rule *r, const char *p, size_t plen) {
  if (plen == 0 || p[0] != '/') return false;
  size_t pos = 1;
  bool more = true; /* a path segment remains at pos (possibly empty) */
  for (size_t i = 0; i < r->nsegs; i++) {
    const pattern_seg *ps = &r->segs[i];
    if (ps->star) return true;
    if (!more) return false;
    const char *seg = p + pos;
    const char *e = memchr(seg, '/', plen - pos);
    size_t slen = e ? (size_t)(e - seg) : plen - pos;
    if (ps->param) {
      if (slen == 0) return false;
    } else if (slen != ps->len || memcmp(seg, r->path + ps->off, slen) != 0) {
      return false;
    }
    if (e) pos += slen + 1;
    else more = false;
  }
  return !more;
}

/* RFC 9110 tchar: what a method may be made of. */
static bool kg_endpoint_is_tchar(char c) {
  return kg_endpoint_is_alpha(c) || kg_endpoint_is_digit(c) ||
         (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool kg_endpoint_is_name_char(char c) {
  return kg_endpoint_is_alpha(c) || kg_endpoint_is_digit(c) || c == '_';
}

/* Parses one pattern into r. Returns NULL or a static reason. */
static const char *kg_endpoint_parse_rule(const char *pat, rule *r) {
  memset(r, 0, sizeof(*r));
  if (pat == NULL) return "missing";
  const char *s = pat, *end = pat + strlen(pat);
  while (s < end && (*s == ' ' || *s == '\t')) s++;
  while (end > s && (end[-1] == ' ' || end[-1] == '\t')) end--;
  if (s == end) return "empty";

  if (*s != '/') {
    const char *m = s;
    while (s < end && kg_endpoint_is_tchar(*s)) s++;
    if (s == m || s == end || (*s != ' ' && *s != '\t'))
      return "must be a path starting with '/', optionally after a method";
    if ((size_t)(s - m) > KG_ENDPOINT_MAX_METHOD) return "method too long";
    r->method = kg_strndup(m, (size_t)(s - m));
    while (s < end && (*s == ' ' || *s == '\t')) s++;
    if (s == end || *s != '/') return "the method must be followed by a path starting with '/'";
  }

  size_t plen = (size_t)(end - s);
  if (plen > KG_ENDPOINT_MAX_PATH) return "path longer than 256 bytes";
  for (size_t i = 0; i < plen; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c >= 0x7f) return "the path must be printable ASCII without blanks";
    if (c == '?' || c == '#') return "the path must not contain a query or fragment";
  }
  r->path = kg_strndup(s, plen);

  /* Segments: one per '/' in the path. */
  for (size_t i = 0; i < plen; i++) r->nsegs += r->path[i] == '/';
  r->segs = kg_calloc(r->nsegs, sizeof(*r->segs));
  size_t pos = 1;
  for (size_t k = 0; k < r->nsegs; k++) {
    const char *seg = r->path + pos;
    const char *e = memchr(seg, '/', plen - pos);
    size_t slen = e ? (size_t)(e - seg) : plen - pos;
    pattern_seg *ps = &r->segs[k];
    ps->off = pos;
    ps->len = slen;
    if (slen == 1 && seg[0] == '*') {
      if (k + 1 != r->nsegs) return "'*' is only allowed as the last segment";
      ps->star = true;
    } else if (memchr(seg, '*', slen) != NULL) {
      return "'*' must be a whole segment";
    } else if (slen > 0 && seg[0] == ':') {
      if (slen == 1) return "':' needs a name, like ':id'";
      for (size_t i = 1; i < slen; i++)
        if (!kg_endpoint_is_name_char(seg[i]))
          return "a ':name' may only hold letters, digits and '_'";
      ps->param = true;
    }
    pos += slen + 1;
  }
  return NULL;
}

static void kg_endpoint_rule_free(rule *r) {
  free(r->method);
  free(r->path);
  free(r->segs);
}

kg_endpoint_rules *kg_endpoint_rules_new(const char *const *patterns, size_t n,
                                         char *err, size_t errlen) {
  kg_endpoint_rules *rules = kg_calloc(1, sizeof(*rules));
  rules->v = kg_calloc(n, sizeof(*rules->v));
  for (size_t i = 0; i < n; i++) {
    const char *why = kg_endpoint_parse_rule(patterns[i], &rules->v[i]);
    if (why != NULL) {
      if (err && errlen) {
        /* Quote the pattern so it can be found, but not at the expense
         * of the reason when it is long. */
        const char *pat = patterns[i] ? patterns[i] : "";
        bool cut = strlen(pat) > 40;
        snprintf(err, errlen, "pattern %zu \"%.*s%s\": %s", i + 1, cut ? 37 : 40, pat,
                 cut ? "..." : "", why);
      }
      kg_endpoint_rule_free(&rules->v[i]);
      rules->n = i;
      kg_endpoint_rules_free(rules);
      return NULL;
    }
  }
  rules->n = n;
  return rules;
}

void kg_endpoint_rules_free(kg_endpoint_rules *rules) {
  if (rules == NULL) return;
  for (size_t i = 0; i < rules->n; i++) kg_endpoint_rule_free(&rules->v[i]);
  free(rules->v);
  free(rules);
}

/* --- naming -------------------------------------------------------------- */

/* Reduces a request target to its path: drops "scheme://authority" of an
 * absolute-form target, then any query or fragment. */
static const char *kg_endpoint_path_part(const char *path, size_t *len) {
  if (path == NULL) path = "";
  if (strncasecmp(path, "http://", 7) == 0 || strncasecmp(path, "https://", 8) == 0) {
    path = strstr(path, "://") + 3;
    path += strcspn(path, "/?#");
  }
  *len = strcspn(path, "?#");
  return path;
}

void kg_endpoint_of(const char *method, const char *path,
                    const kg_endpoint_rules *rules, kg_buf *out) {
  size_t plen;
  const char *p = kg_endpoint_path_part(path, &plen);
  if (plen == 0) {
    p = "/";
    plen = 1;
  }

  kg_endpoint_append_method(out, method);
  kg_buf_append(out, " ", 1);

  for (size_t i = 0; rules && i < rules->n; i++) {
    const rule *r = &rules->v[i];
    if (r->method && (method == NULL || strcmp(method, r->method) != 0)) continue;
    if (kg_endpoint_rule_matches(r, p, plen)) {
      kg_buf_appends(out, r->path); /* validated printable and bounded */
      return;
    }
  }
  kg_endpoint_append_templated(out, p, plen);
}
