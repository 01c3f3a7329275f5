/* jsonpath.h: JSON paths and patterns, compiled and matched (see the
 * syntax in jsondiff.h), and how locations and values are written in
 * differences. Shared by the tree differ (jsondiff.c) and the
 * lockstep fast path (jsonfast.c); not for use outside compare/.
 *
 * A pattern compiles to a list of segments matched by a tiny NFA: bit i of
 * a state means "segments 0..i-1 matched so far", so a pattern has at most
 * KG_JSONPATH_MAX_SEGS segments and a state fits a uint64_t. */
#ifndef KG_JSONPATH_H
#define KG_JSONPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Pattern positions are bits of a uint64_t, plus one bit for "matched". */
#define KG_JSONPATH_MAX_SEGS 63

enum { KG_JSONPATH_P_KEY, KG_JSONPATH_P_ANYKEY, KG_JSONPATH_P_INDEX, KG_JSONPATH_P_ANYINDEX };

typedef struct kg_jsonpath_pseg {
  unsigned char kind; /* KG_JSONPATH_P_* */
  bool deep;          /* written "..": any number of segments may precede */
  char *key;          /* KG_JSONPATH_P_KEY: unescaped bytes (owned) */
  size_t keylen;
  size_t index;       /* KG_JSONPATH_P_INDEX */
} kg_jsonpath_pseg;

typedef struct kg_jsonpath_pat {
  const char *text; /* as configured (not owned): what suppression reports */
  kg_jsonpath_pseg *seg; /* owned */
  size_t n, cap;
} kg_jsonpath_pat;

enum { KG_JSONPATH_S_KEY, KG_JSONPATH_S_INDEX, KG_JSONPATH_S_ANYINDEX };

typedef struct kg_jsonpath_seg {
  unsigned char kind; /* KG_JSONPATH_S_*; S_ANYINDEX: any element of an
                         unordered array */
  const char *key;    /* KG_JSONPATH_S_KEY: not owned, points into a
                         document or a pattern */
  size_t keylen;
  size_t index;       /* KG_JSONPATH_S_INDEX */
} kg_jsonpath_seg;

/* Compiles s into p. path_mode parses a concrete or generalised path:
 * [*] is allowed there (the pattern form of a difference) but .* and ..
 * are not, and there is no segment limit. p->text points at s (not
 * copied). Returns 0, or -1 with a message in err (when errlen > 0) and p
 * holding nothing to free. */
int kg_jsonpath_parse(kg_jsonpath_pat *p, const char *s, bool path_mode, char *err,
                      size_t errlen);
/* Frees what p owns (its segments); p may be reused. */
void kg_jsonpath_free(kg_jsonpath_pat *p);
/* Compiles the valid patterns of list into *out (owned by the caller: free
 * with kg_jsonpath_free_all); returns how many. Invalid
 * or NULL entries are skipped. */
size_t kg_jsonpath_compile_all(const char *const *list, size_t n, kg_jsonpath_pat **out);
/* Frees n patterns from kg_jsonpath_compile_all and their array v. */
void kg_jsonpath_free_all(kg_jsonpath_pat *v, size_t n);
/* The state bit meaning "the whole pattern matched". */
uint64_t kg_jsonpath_accept(const kg_jsonpath_pat *p);
/* One NFA step over path segment s from state st (the root's state is 1).
 * sticky keeps a match once made (ignore patterns cover whole subtrees;
 * unordered ones name one array). */
uint64_t kg_jsonpath_step(const kg_jsonpath_pat *p, uint64_t st, const kg_jsonpath_seg *s,
                          bool sticky);
/* Appends s (n bytes, valid UTF-8) as a JSON string: quotes, backslashes
 * and control bytes escaped, UTF-8 as is. How keys in paths and string
 * values in differences are written. */
void kg_jsonpath_put_str(kg_buf *b, const char *s, size_t n);
/* Appends the shortest decimal that reads back as d, always with a '.' or
 * an exponent (1.0, not 1): how real values are written in differences. */
void kg_jsonpath_put_real(kg_buf *b, double d);
/* Appends one path segment as a location is written: .name, ["other key"],
 * [3] or [*] (the path's "$" is the caller's). */
void kg_jsonpath_put_seg(kg_buf *b, const kg_jsonpath_seg *s);
/* True when key k (n bytes) is written .k in a path rather than ["k"]. */
bool kg_jsonpath_is_ident(const char *k, size_t n);

#endif
