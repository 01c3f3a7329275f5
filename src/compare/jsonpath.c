/* jsonpath.c: JSON paths and patterns (see jsonpath.h and the syntax in
 * jsondiff.h). Key strings inside [...] are unescaped by jansson, so no
 * JSON string parsing is written here. */
#include "compare/jsonpath.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "compare/jsondiff.h"

void kg_jsonpath_free(kg_jsonpath_pat *p) {
  for (size_t i = 0; i < p->n; i++) free(p->seg[i].key);
  free(p->seg);
  p->seg = NULL;
  p->n = p->cap = 0;
}

static int kg_jsonpath_fail(char *err, size_t errlen, size_t at, const char *msg) {
  if (err && errlen) snprintf(err, errlen, "offset %zu: %s", at, msg);
  return -1;
}

static bool kg_jsonpath_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool kg_jsonpath_ident_char(char c) {
  return kg_jsonpath_ident_start(c) || (c >= '0' && c <= '9');
}

/* Parses "[...]" at s[*i] into g; advances *i past the ']'. */
static int kg_jsonpath_parse_bracket(const char *s, size_t *i, kg_jsonpath_pseg *g, char *err,
                         size_t errlen) {
  size_t at = *i, j = at + 1;
  if (s[j] == '*') {
    g->kind = KG_JSONPATH_P_ANYINDEX;
    j++;
  } else if (s[j] >= '0' && s[j] <= '9') {
    if (s[j] == '0' && s[j + 1] >= '0' && s[j + 1] <= '9')
      return kg_jsonpath_fail(err, errlen, j, "array index with a leading zero");
    size_t v = 0;
    for (; s[j] >= '0' && s[j] <= '9'; j++) {
      if (v > (SIZE_MAX - 9) / 10)
        return kg_jsonpath_fail(err, errlen, at, "array index too large");
      v = v * 10 + (size_t)(s[j] - '0');
    }
    g->kind = KG_JSONPATH_P_INDEX;
    g->index = v;
  } else if (s[j] == '"') {
    /* Find the closing quote, then let jansson do the unescaping. */
    size_t k = j + 1;
    while (s[k] && s[k] != '"') k += (s[k] == '\\' && s[k + 1]) ? 2 : 1;
    if (s[k] != '"') return kg_jsonpath_fail(err, errlen, j, "unterminated key string");
    json_error_t e;
    json_t *str = json_loadb(s + j, k + 1 - j, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                             &e);
    if (str == NULL || !json_is_string(str)) {
      json_decref(str);
      return kg_jsonpath_fail(err, errlen, j, "key is not a valid JSON string");
    }
    size_t len = json_string_length(str);
    if (memchr(json_string_value(str), '\0', len) != NULL) {
      json_decref(str);
      return kg_jsonpath_fail(err, errlen, j, "key contains U+0000 (never in a path)");
    }
    g->kind = KG_JSONPATH_P_KEY;
    g->key = kg_strndup(json_string_value(str), len);
    g->keylen = len;
    json_decref(str);
    j = k + 1;
  } else {
    return kg_jsonpath_fail(err, errlen, j,
                    "expected an index, '*' or a JSON string after '['");
  }
  if (s[j] != ']') {
    free(g->key);
    g->key = NULL;
    return kg_jsonpath_fail(err, errlen, j, "expected ']'");
  }
  *i = j + 1;
  return 0;
}

int kg_jsonpath_parse(kg_jsonpath_pat *p, const char *s, bool path_mode, char *err,
                     size_t errlen) {
  memset(p, 0, sizeof(*p));
  p->text = s;
  if (s == NULL || s[0] != '$')
    return kg_jsonpath_fail(err, errlen, 0, "a path starts with '$'");
  size_t i = 1;
  while (s[i]) {
    kg_jsonpath_pseg g = {0};
    size_t at = i;
    if (s[i] == '.') {
      i++;
      if (s[i] == '.') {
        if (path_mode)
          return kg_jsonpath_free(p), kg_jsonpath_fail(err, errlen, at, "'..' in a path");
        g.deep = true;
        i++;
      }
      if (g.deep && s[i] == '[') {
        if (kg_jsonpath_parse_bracket(s, &i, &g, err, errlen) < 0)
          return kg_jsonpath_free(p), -1;
      } else if (s[i] == '*') {
        if (path_mode)
          return kg_jsonpath_free(p), kg_jsonpath_fail(err, errlen, at, "'.*' in a path");
        g.kind = KG_JSONPATH_P_ANYKEY;
        i++;
      } else if (kg_jsonpath_ident_start(s[i])) {
        size_t st = i;
        while (kg_jsonpath_ident_char(s[i])) i++;
        g.kind = KG_JSONPATH_P_KEY;
        g.key = kg_strndup(s + st, i - st);
        g.keylen = i - st;
      } else {
        kg_jsonpath_free(p);
        return kg_jsonpath_fail(err, errlen, i,
                        g.deep ? "expected a name, '*' or '[' after '..'"
                               : "expected a name or '*' after '.' (other keys "
                                 "are written [\"key\"])");
      }
    } else if (s[i] == '[') {
      if (kg_jsonpath_parse_bracket(s, &i, &g, err, errlen) < 0)
        return kg_jsonpath_free(p), -1;
    } else {
      kg_jsonpath_free(p);
      return kg_jsonpath_fail(err, errlen, i, "expected '.' or '['");
    }
    if (!path_mode && p->n == KG_JSONPATH_MAX_SEGS) {
      free(g.key);
      kg_jsonpath_free(p);
      return kg_jsonpath_fail(err, errlen, at, "more than 63 segments");
    }
    if (p->n == p->cap) {
      p->cap = p->cap ? p->cap * 2 : 8;
      p->seg = kg_realloc(p->seg, p->cap * sizeof(*p->seg));
    }
    p->seg[p->n++] = g;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Path segments and pattern matching                                       */

static bool kg_jsonpath_seg_match(const kg_jsonpath_pseg *p, const kg_jsonpath_seg *s) {
  switch (p->kind) {
    case KG_JSONPATH_P_KEY:
      return s->kind == KG_JSONPATH_S_KEY && s->keylen == p->keylen &&
             memcmp(s->key, p->key, p->keylen) == 0;
    case KG_JSONPATH_P_ANYKEY:
      return s->kind == KG_JSONPATH_S_KEY;
    case KG_JSONPATH_P_INDEX:
      return s->kind == KG_JSONPATH_S_INDEX && s->index == p->index;
    default: /* KG_JSONPATH_P_ANYINDEX */
      return s->kind != KG_JSONPATH_S_KEY;
  }
}

uint64_t kg_jsonpath_accept(const kg_jsonpath_pat *p) { return (uint64_t)1 << p->n; }

/* One NFA step: bit i of st means "segments 0..i-1 matched so far". A deep
 * segment may also absorb any path segment. sticky keeps a match once made
 * (ignore patterns cover whole subtrees; unordered ones name one array). */
uint64_t kg_jsonpath_step(const kg_jsonpath_pat *p, uint64_t st, const kg_jsonpath_seg *s,
                          bool sticky) {
  uint64_t acc = kg_jsonpath_accept(p);
  if (sticky && (st & acc)) return acc;
  uint64_t nx = 0;
  for (size_t i = 0; i < p->n && (st >> i) != 0; i++) {
    if (!((st >> i) & 1)) continue;
    if (p->seg[i].deep) nx |= (uint64_t)1 << i;
    if (kg_jsonpath_seg_match(&p->seg[i], s)) nx |= (uint64_t)1 << (i + 1);
  }
  return nx;
}

/* Appends s as a JSON string: quotes, backslashes and control bytes are
 * escaped; UTF-8 stays as is (jansson has validated it). */
void kg_jsonpath_put_str(kg_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  kg_buf_append(b, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    kg_buf_append(b, s + run, i - run);
    run = i + 1;
    char e[6] = {'\\', 0};
    size_t elen = 2;
    switch (c) {
      case '"': e[1] = '"'; break;
      case '\\': e[1] = '\\'; break;
      case '\n': e[1] = 'n'; break;
      case '\r': e[1] = 'r'; break;
      case '\t': e[1] = 't'; break;
      case '\b': e[1] = 'b'; break;
      case '\f': e[1] = 'f'; break;
      default:
        memcpy(e + 1, "u00", 3);
        e[4] = hex[c >> 4];
        e[5] = hex[c & 15];
        elen = 6;
    }
    kg_buf_append(b, e, elen);
  }
  kg_buf_append(b, s + run, n - run);
  kg_buf_append(b, "\"", 1);
}

/* Shortest decimal that reads back as d (jansson's dump always uses 17
 * digits, which turns 0.1 into 0.10000000000000001). */
void kg_jsonpath_put_real(kg_buf *b, double d) {
  char tmp[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
    if (strtod(tmp, NULL) == d) break;
  }
  bool looks_real = false;
  for (char *c = tmp; *c; c++) {
    if (*c == ',') *c = '.'; /* a locale's decimal comma */
    if (*c == '.' || *c == 'e') looks_real = true;
  }
  kg_buf_appends(b, tmp);
  if (!looks_real) kg_buf_append(b, ".0", 2);
}

void kg_jsonpath_put_seg(kg_buf *b, const kg_jsonpath_seg *s) {
  if (s->kind == KG_JSONPATH_S_INDEX) {
    kg_buf_appendf(b, "[%zu]", s->index);
  } else if (s->kind == KG_JSONPATH_S_ANYINDEX) {
    kg_buf_append(b, "[*]", 3);
  } else if (kg_jsonpath_is_ident(s->key, s->keylen)) {
    kg_buf_append(b, ".", 1);
    kg_buf_append(b, s->key, s->keylen);
  } else {
    kg_buf_append(b, "[", 1);
    kg_jsonpath_put_str(b, s->key, s->keylen);
    kg_buf_append(b, "]", 1);
  }
}

bool kg_jsonpath_is_ident(const char *k, size_t n) {
  if (n == 0 || !kg_jsonpath_ident_start(k[0])) return false;
  for (size_t i = 1; i < n; i++)
    if (!kg_jsonpath_ident_char(k[i])) return false;
  return true;
}

size_t kg_jsonpath_compile_all(const char *const *list, size_t n, kg_jsonpath_pat **out) {
  *out = n ? kg_calloc(n, sizeof(**out)) : NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (list[i] && kg_jsonpath_parse(&(*out)[k], list[i], false, NULL, 0) == 0) k++;
  return k;
}

void kg_jsonpath_free_all(kg_jsonpath_pat *v, size_t n) {
  for (size_t k = 0; k < n; k++) kg_jsonpath_free(&v[k]);
  free(v);
}

bool kg_jsonpath_match(const char *pattern, const char *path) {
  kg_jsonpath_pat p, q;
  if (kg_jsonpath_parse(&p, pattern, false, NULL, 0) < 0) return false;
  if (kg_jsonpath_parse(&q, path, true, NULL, 0) < 0) {
    kg_jsonpath_free(&p);
    return false;
  }
  uint64_t st = 1, acc = kg_jsonpath_accept(&p);
  for (size_t i = 0; i < q.n && st && !(st & acc); i++) {
    kg_jsonpath_seg s = {KG_JSONPATH_S_KEY, q.seg[i].key, q.seg[i].keylen, q.seg[i].index};
    if (q.seg[i].kind == KG_JSONPATH_P_INDEX) s.kind = KG_JSONPATH_S_INDEX;
    if (q.seg[i].kind == KG_JSONPATH_P_ANYINDEX) s.kind = KG_JSONPATH_S_ANYINDEX;
    st = kg_jsonpath_step(&p, st, &s, true);
  }
  kg_jsonpath_free(&p);
  kg_jsonpath_free(&q);
  return (st & acc) != 0;
}

int kg_jsonpath_check(const char *pattern, char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  kg_jsonpath_pat p;
  if (kg_jsonpath_parse(&p, pattern, false, err, errlen) < 0) return -1;
  kg_jsonpath_free(&p);
  return 0;
}
