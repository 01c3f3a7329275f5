/* jsonfast.c: lockstep comparison of two JSON documents (see jsonfast.h).
 *
 * Design:
 *   - Each document has a reader (kg_jsonfast_side): a tokenizer and a
 *     grammar state per open container, on an explicit heap stack. It
 *     hands out one event at a time (a container opened or closed, a key,
 *     a scalar) and validates as it goes, strictly: whatever jansson might
 *     read differently or reject (an escape that decodes to a surrogate or
 *     to U+0000, an integer beyond 18 digits, which makes jsondiff re-read
 *     the whole body as doubles, a real that may overflow, a NUL byte,
 *     nesting beyond KG_JSONFAST_MAX_DEPTH) is "unsure": the fast path
 *     gives up and the tree differ decides. Unsure must never be "valid".
 *   - While the two documents are byte for byte the same, which is most of
 *     the time, only the master's is tokenized: the shadow's bytes are
 *     compared a word at a time and its reader is "in step" (its state is
 *     the master's). Where an event reads differently, the shadow's reader
 *     takes the master's state and both are read until the difference is
 *     dealt with (kg_jsonfast_run).
 *   - Out of step, the driver pulls one event from each side and compares
 *     them. Equal bytes are equal values; strings whose bytes differ are compared
 *     after unescaping, numbers by value (as jsondiff.c's num), so 1 and
 *     1.0 or "\u00e9" and "é" are equal here too.
 *   - Where two values differ, the path (read off the master's stack) is
 *     matched against the ignore patterns only then, with jsonpath.c's
 *     NFA, so agreeing documents never pay for pattern matching. Under an
 *     ignored node the tree differ records one suppression and skips the
 *     rest of that node (its "cut"); the readers skip it the same way.
 *   - Duplicate keys: jansson keeps the last, so a difference under an
 *     object with a duplicate key may not be one. Keys are remembered per
 *     open object, and an object something differed under is checked for
 *     duplicates when it closes; a duplicate means "give up".
 *   - Unordered arrays pair elements by value: any difference under one
 *     (outside an ignored node) means "give up".
 * Everything here is reentrant: no globals. */
#include "compare/jsonfast.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "compare/jsonpath.h"
#include "compare/noise.h"

/* Deeper documents go to the tree differ, which knows jansson's own limit
 * (and recurses within its budget). */
#define KG_JSONFAST_MAX_DEPTH 1024
/* An integer of at most 18 digits always fits int64 (jansson's strtoll). */
#define KG_JSONFAST_MAX_INT_DIGITS 18
/* Below 309 integer digits and without an exponent a real cannot overflow
 * a double, which jansson would reject. */
#define KG_JSONFAST_MAX_REAL_DIGITS 308
/* Objects with more keys than this are checked for duplicates by sorting. */
#define KG_JSONFAST_DUP_LINEAR 16

/* Reader and driver: give up, the tree differ decides. */
#define KG_JSONFAST_UNSURE (-1)

typedef enum kg_jsonfast_ev {
  KG_JSONFAST_END,   /* the document ended after its value */
  KG_JSONFAST_OBJ,   /* '{' */
  KG_JSONFAST_ARR,   /* '[' */
  KG_JSONFAST_CLOSE, /* '}' or ']' */
  KG_JSONFAST_KEY,   /* an object member's key (tok: its bytes, unquoted) */
  KG_JSONFAST_STR,   /* a string value (tok: with its quotes) */
  KG_JSONFAST_NUM,
  KG_JSONFAST_LIT,   /* true, false, null */
} kg_jsonfast_ev;

typedef struct kg_jsonfast_tok {
  kg_jsonfast_ev ev;
  const char *p;  /* the token's bytes in the document */
  size_t n;
  bool esc;       /* STR: has a backslash escape */
  bool isint;     /* NUM: no fraction, no exponent */
} kg_jsonfast_tok;

typedef enum kg_jsonfast_state {
  KG_JSONFAST_FIRST, /* just opened: a member/element or the close */
  KG_JSONFAST_VALUE, /* objects: after "key":, the value */
  KG_JSONFAST_AFTER, /* after a member/element: ',' or the close (the
                        ',' and the next member are read in one call) */
} kg_jsonfast_state;

/* One open container; level 0 stands for the top of the document. */
typedef struct kg_jsonfast_level {
  bool obj;                /* object (else array, or the top) */
  bool dirty;              /* something differed below: check duplicates */
  kg_jsonfast_state state;
  size_t count;            /* members/elements started; the current
                              element's index is count - 1 */
  const char *key;         /* objects: the current member's key (into the
                              document, no escapes) */
  size_t keylen;
  size_t keys0;            /* objects: this object's first key in keys[] */
} kg_jsonfast_level;

typedef struct kg_jsonfast_keyref {
  const char *p;
  size_t n;
} kg_jsonfast_keyref;

/* Stack room the caller provides for a typical document (a comparison
 * runs for every response: a malloc here was a tenth of its time). Deeper
 * nesting or more open keys move to the heap. */
#define KG_JSONFAST_LV_INLINE 16
#define KG_JSONFAST_KEYS_INLINE 64

/* A reader over one document. Owns lv and keys once they have moved to
 * the heap (they are then no longer lv_inline and keys_inline, which the
 * caller owns). */
typedef struct kg_jsonfast_side {
  const char *start;       /* the document */
  const char *p, *end;     /* what is left to read */
  kg_jsonfast_level *lv;   /* lv[0..depth] */
  size_t depth, cap;
  kg_jsonfast_keyref *keys;   /* keys of the open objects, outermost first */
  size_t nkeys, capkeys;
  kg_jsonfast_level *lv_inline;
  kg_jsonfast_keyref *keys_inline;
} kg_jsonfast_side;

/* ------------------------------------------------------------------------ */
/* Reader                                                                   */

/* lv0 and keys0: KG_JSONFAST_LV_INLINE levels and KG_JSONFAST_KEYS_INLINE
 * keys of the caller's, used until they are outgrown. */
static void kg_jsonfast_side_init(kg_jsonfast_side *s, const char *p, size_t n,
                                  kg_jsonfast_level *lv0, kg_jsonfast_keyref *keys0) {
  memset(s, 0, sizeof(*s));
  s->start = s->p = p;
  s->end = p + n;
  s->lv = s->lv_inline = lv0;
  s->cap = KG_JSONFAST_LV_INLINE;
  memset(&s->lv[0], 0, sizeof(s->lv[0]));
  s->keys = s->keys_inline = keys0;
  s->capkeys = KG_JSONFAST_KEYS_INLINE;
}

static void kg_jsonfast_side_free(kg_jsonfast_side *s) {
  if (s->lv != s->lv_inline) free(s->lv);
  if (s->keys != s->keys_inline) free(s->keys);
}

/* Resizes a stack of `size`-byte items to `cap` items, keeping the first
 * `old`: the first move off the caller's inline array copies them to the
 * heap. */
static void *kg_jsonfast_regrow(void *p, const void *inline_p, size_t old, size_t cap,
                                size_t size) {
  if (p != inline_p) return kg_realloc(p, cap * size);
  void *q = kg_malloc(cap * size);
  memcpy(q, p, KG_MIN(old, cap) * size);
  return q;
}

static void kg_jsonfast_ws_skip(kg_jsonfast_side *s) {
  while (s->p < s->end &&
         (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
    s->p++;
}

/* Compact JSON (most APIs) has no whitespace: one inlined test for that. */
static inline void kg_jsonfast_ws(kg_jsonfast_side *s) {
  if (s->p < s->end && (unsigned char)*s->p > ' ') return;
  kg_jsonfast_ws_skip(s);
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0 when
 * invalid: overlong forms, surrogates and code points above U+10FFFF are
 * refused, as jansson refuses them. */
static size_t kg_jsonfast_utf8(const unsigned char *p, const unsigned char *end) {
  unsigned c = p[0];
  size_t n;
  unsigned lo = 0x80, hi = 0xbf; /* range of the second byte */
  if (c < 0xc2) return 0;
  if (c < 0xe0) {
    n = 2;
  } else if (c < 0xf0) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c < 0xf5) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  return n;
}

static int kg_jsonfast_hex(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Non-zero when one of the 8 bytes at p is '"', '\\', a control byte or
 * not ASCII (a byte with its high bit set): the high bit of each such
 * byte is set. The "has a zero byte" test (x - 0x01..) & ~x & 0x80.. may
 * also flag a byte after a real hit, never one before it, so the lowest
 * flag is always a real hit. */
static uint64_t kg_jsonfast_word_special(const unsigned char *p) {
  const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
  uint64_t v;
  memcpy(&v, p, 8);
  uint64_t q = v ^ (ones * '"'), bs = v ^ (ones * '\\'), ctl = v & (ones * 0xe0);
  uint64_t zero = ((q - ones) & ~q) | ((bs - ones) & ~bs) | ((ctl - ones) & ~ctl);
  return (zero & high) | (v & high);
}

/* The first byte at or after p, before end, that is '"', '\\', a control
 * byte or not ASCII; end when there is none. */
static const unsigned char *kg_jsonfast_special(const unsigned char *p,
                                                const unsigned char *end) {
  while (end - p >= 8) {
    uint64_t m = kg_jsonfast_word_special(p);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* the lowest flag is the first byte in memory */
    if (m) return p + (__builtin_ctzll(m) >> 3);
#else
    if (m) break;
#endif
    p += 8;
  }
  while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
  return p;
}

/* Reads the string whose opening quote is at s->p into t (quotes
 * included) and moves past it. A \u escape is accepted only when it is
 * neither U+0000 nor a surrogate (those jansson treats specially). */
static int kg_jsonfast_string(kg_jsonfast_side *s, kg_jsonfast_tok *t) {
  const unsigned char *p = (const unsigned char *)s->p + 1;
  const unsigned char *end = (const unsigned char *)s->end;
  t->esc = false;
  for (;;) {
    /* Printable ASCII other than '"' and '\\' is the bulk of a string:
     * skipped a word at a time. */
    p = kg_jsonfast_special(p, end);
    if (p == end) return KG_JSONFAST_UNSURE;
    if (*p == '"') {
      t->p = s->p;
      t->n = (size_t)((const char *)p + 1 - s->p);
      s->p = (const char *)p + 1;
      return 0;
    }
    if (*p == '\\') {
      t->esc = true;
      if (end - p < 2) return KG_JSONFAST_UNSURE;
      unsigned char e = p[1];
      if (e == 'u') {
        if (end - p < 6) return KG_JSONFAST_UNSURE;
        unsigned v = 0;
        for (int i = 2; i < 6; i++) {
          int h = kg_jsonfast_hex(p[i]);
          if (h < 0) return KG_JSONFAST_UNSURE;
          v = v * 16 + (unsigned)h;
        }
        if (v == 0 || (v >= 0xd800 && v <= 0xdfff)) return KG_JSONFAST_UNSURE;
        p += 6;
      } else if (strchr("\"\\/bfnrt", e) != NULL && e != '\0') {
        p += 2;
      } else {
        return KG_JSONFAST_UNSURE;
      }
    } else if (*p >= 0x80) {
      size_t n = kg_jsonfast_utf8(p, end);
      if (n == 0) return KG_JSONFAST_UNSURE;
      p += n;
    } else {
      return KG_JSONFAST_UNSURE; /* a control byte: invalid inside a string */
    }
  }
}

static bool kg_jsonfast_digit(const char *p, const char *end) {
  return p < end && *p >= '0' && *p <= '9';
}

/* Reads a number (JSON's grammar: no leading zeros, no '+', no bare '.')
 * into t. Numbers jansson might reject or read differently are unsure. */
static int kg_jsonfast_number(kg_jsonfast_side *s, kg_jsonfast_tok *t) {
  const char *p = s->p, *end = s->end;
  if (*p == '-') p++;
  if (!kg_jsonfast_digit(p, end)) return KG_JSONFAST_UNSURE;
  const char *digits = p;
  if (*p == '0') {
    p++;
  } else {
    while (kg_jsonfast_digit(p, end)) p++;
  }
  size_t intdigits = (size_t)(p - digits);
  bool frac = false, exp = false;
  if (p < end && *p == '.') {
    p++;
    if (!kg_jsonfast_digit(p, end)) return KG_JSONFAST_UNSURE;
    while (kg_jsonfast_digit(p, end)) p++;
    frac = true;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (!kg_jsonfast_digit(p, end)) return KG_JSONFAST_UNSURE;
    while (kg_jsonfast_digit(p, end)) p++;
    exp = true;
  }
  t->p = s->p;
  t->n = (size_t)(p - s->p);
  t->isint = !frac && !exp;
  if (t->isint && intdigits > KG_JSONFAST_MAX_INT_DIGITS) return KG_JSONFAST_UNSURE;
  if (!t->isint && intdigits > KG_JSONFAST_MAX_REAL_DIGITS) return KG_JSONFAST_UNSURE;
  if (exp) {
    /* Could overflow: read it, as jansson will. */
    char tmp[64];
    if (t->n >= sizeof(tmp)) return KG_JSONFAST_UNSURE;
    memcpy(tmp, t->p, t->n);
    tmp[t->n] = '\0';
    char *stop = NULL;
    double d = strtod(tmp, &stop);
    if (stop != tmp + t->n || !isfinite(d)) return KG_JSONFAST_UNSURE;
  }
  s->p = p;
  return 0;
}

static int kg_jsonfast_literal(kg_jsonfast_side *s, kg_jsonfast_tok *t) {
  static const char *const lits[] = {"true", "false", "null"};
  for (size_t i = 0; i < 3; i++) {
    size_t n = strlen(lits[i]);
    if ((size_t)(s->end - s->p) >= n && memcmp(s->p, lits[i], n) == 0) {
      t->p = s->p;
      t->n = n;
      s->p += n;
      return 0;
    }
  }
  return KG_JSONFAST_UNSURE;
}

static int kg_jsonfast_push(kg_jsonfast_side *s, bool obj) {
  if (s->depth + 1 > KG_JSONFAST_MAX_DEPTH) return KG_JSONFAST_UNSURE;
  if (s->depth + 1 == s->cap) {
    s->lv = kg_jsonfast_regrow(s->lv, s->lv_inline, s->cap, 2 * s->cap, sizeof(*s->lv));
    s->cap *= 2;
  }
  kg_jsonfast_level *lv = &s->lv[++s->depth];
  memset(lv, 0, sizeof(*lv));
  lv->obj = obj;
  lv->state = KG_JSONFAST_FIRST;
  lv->keys0 = s->nkeys;
  return 0;
}

static int kg_jsonfast_key_cmp(const void *x, const void *y) {
  const kg_jsonfast_keyref *a = x, *b = y;
  if (a->n != b->n) return a->n < b->n ? -1 : 1;
  return memcmp(a->p, b->p, a->n);
}

/* True when keys[from..nkeys) holds the same key twice. Sorts a copy
 * beyond a few keys, so a big map costs n log n. */
static bool kg_jsonfast_has_dup(const kg_jsonfast_side *s, size_t from) {
  size_t n = s->nkeys - from;
  if (n < 2) return false; /* also: keys may still be NULL */
  const kg_jsonfast_keyref *k = s->keys + from;
  if (n <= KG_JSONFAST_DUP_LINEAR) {
    for (size_t i = 0; i < n; i++)
      for (size_t j = i + 1; j < n; j++)
        if (kg_jsonfast_key_cmp(&k[i], &k[j]) == 0) return true;
    return false;
  }
  kg_jsonfast_keyref *c = kg_malloc(n * sizeof(*c));
  memcpy(c, k, n * sizeof(*c));
  qsort(c, n, sizeof(*c), kg_jsonfast_key_cmp);
  bool dup = false;
  for (size_t i = 1; i < n && !dup; i++) dup = kg_jsonfast_key_cmp(&c[i - 1], &c[i]) == 0;
  free(c);
  return dup;
}

/* Closes the innermost container: an object something differed under
 * must not have a duplicate key (jansson would keep only the last). */
static int kg_jsonfast_pop(kg_jsonfast_side *s, kg_jsonfast_tok *t) {
  kg_jsonfast_level *lv = &s->lv[s->depth];
  if (lv->obj && lv->dirty && kg_jsonfast_has_dup(s, lv->keys0)) return KG_JSONFAST_UNSURE;
  s->nkeys = lv->keys0;
  s->depth--;
  s->p++;
  t->ev = KG_JSONFAST_CLOSE;
  return 0;
}

/* Reads a value starting at s->p (whitespace skipped) as the next member
 * or element of the innermost level. */
static int kg_jsonfast_value(kg_jsonfast_side *s, kg_jsonfast_tok *t) {
  kg_jsonfast_level *lv = &s->lv[s->depth];
  lv->state = KG_JSONFAST_AFTER;
  if (!lv->obj) lv->count++;
  if (s->p == s->end) return KG_JSONFAST_UNSURE;
  switch (*s->p) {
    case '{':
    case '[':
      t->ev = *s->p == '{' ? KG_JSONFAST_OBJ : KG_JSONFAST_ARR;
      t->p = s->p++;
      t->n = 1;
      return kg_jsonfast_push(s, t->ev == KG_JSONFAST_OBJ);
    case '"':
      t->ev = KG_JSONFAST_STR;
      return kg_jsonfast_string(s, t);
    case 't':
    case 'f':
    case 'n':
      t->ev = KG_JSONFAST_LIT;
      return kg_jsonfast_literal(s, t);
    default:
      t->ev = KG_JSONFAST_NUM;
      return kg_jsonfast_number(s, t);
  }
}

/* Reads a member's key and its ':' (whitespace skipped before the key). */
static int kg_jsonfast_read_key(kg_jsonfast_side *s, kg_jsonfast_tok *t) {
  kg_jsonfast_level *lv = &s->lv[s->depth];
  if (s->p == s->end || *s->p != '"' || kg_jsonfast_string(s, t) != 0) return KG_JSONFAST_UNSURE;
  /* An escaped key may equal another spelled differently: the tree
   * differ compares keys after unescaping. */
  if (t->esc) return KG_JSONFAST_UNSURE;
  t->ev = KG_JSONFAST_KEY;
  t->p++;
  t->n -= 2;
  kg_jsonfast_ws(s);
  if (s->p == s->end || *s->p != ':') return KG_JSONFAST_UNSURE;
  s->p++;
  if (s->nkeys == s->capkeys) {
    s->keys = kg_jsonfast_regrow(s->keys, s->keys_inline, s->capkeys, 2 * s->capkeys,
                                 sizeof(*s->keys));
    s->capkeys *= 2;
  }
  s->keys[s->nkeys++] = (kg_jsonfast_keyref){t->p, t->n};
  lv->key = t->p;
  lv->keylen = t->n;
  lv->count++;
  lv->state = KG_JSONFAST_VALUE;
  return 0;
}

/* The next event of s into t. 0, or KG_JSONFAST_UNSURE (invalid, or beyond what the
 * fast path is sure to read as jansson does). */
static int kg_jsonfast_next(kg_jsonfast_side *s, kg_jsonfast_tok *t) {
  kg_jsonfast_ws(s);
  kg_jsonfast_level *lv = &s->lv[s->depth];
  if (s->depth == 0) {
    if (lv->state != KG_JSONFAST_AFTER) return kg_jsonfast_value(s, t);
    if (s->p != s->end) return KG_JSONFAST_UNSURE; /* trailing bytes */
    t->ev = KG_JSONFAST_END;
    return 0;
  }
  char close = lv->obj ? '}' : ']';
  switch (lv->state) {
    case KG_JSONFAST_AFTER:
      if (s->p == s->end) return KG_JSONFAST_UNSURE;
      if (*s->p == close) return kg_jsonfast_pop(s, t);
      if (*s->p != ',') return KG_JSONFAST_UNSURE;
      s->p++;
      kg_jsonfast_ws(s);
      break;
    case KG_JSONFAST_FIRST:
      if (s->p < s->end && *s->p == close) return kg_jsonfast_pop(s, t);
      break;
    case KG_JSONFAST_VALUE:
      return kg_jsonfast_value(s, t);
    default:
      break;
  }
  return lv->obj ? kg_jsonfast_read_key(s, t) : kg_jsonfast_value(s, t);
}

/* Reads s until its depth is back to `depth` (the rest of the containers
 * above it skipped, validated all the same). */
static int kg_jsonfast_skip_to(kg_jsonfast_side *s, size_t depth) {
  kg_jsonfast_tok t;
  while (s->depth > depth)
    if (kg_jsonfast_next(s, &t) != 0) return KG_JSONFAST_UNSURE;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Values                                                                   */

/* A number in the tree differ's canonical form (see num in jsondiff.c):
 * an integral value in int64 range is an integer whatever its spelling,
 * anything else a double. */
typedef struct kg_jsonfast_num {
  bool isint;
  int64_t i;
  double d;
} kg_jsonfast_num;

/* The double a real token reads as (strtod, as jansson), or KG_JSONFAST_UNSURE. */
static int kg_jsonfast_real(const kg_jsonfast_tok *t, double *d) {
  char tmp[400];
  if (t->n >= sizeof(tmp)) return KG_JSONFAST_UNSURE;
  memcpy(tmp, t->p, t->n);
  tmp[t->n] = '\0';
  char *stop = NULL;
  *d = strtod(tmp, &stop);
  /* A locale with a decimal comma would stop early: then do not guess. */
  if (stop != tmp + t->n || !isfinite(*d)) return KG_JSONFAST_UNSURE;
  return 0;
}

static int kg_jsonfast_num_of(const kg_jsonfast_tok *t, kg_jsonfast_num *x) {
  const char *p = t->p, *end = t->p + t->n;
  x->isint = true;
  x->i = 0;
  x->d = 0.0;
  if (t->isint) { /* at most 18 digits: no overflow */
    bool neg = *p == '-';
    for (p += neg; p < end; p++) x->i = x->i * 10 + (*p - '0');
    if (neg) x->i = -x->i;
    return 0;
  }
  double d;
  if (kg_jsonfast_real(t, &d) != 0) return KG_JSONFAST_UNSURE;
  if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
      (double)(int64_t)d == d) {
    x->i = (int64_t)d;
    return 0;
  }
  x->isint = false;
  x->d = d;
  return 0;
}

/* Appends the bytes the string token t (quotes included, validated by
 * kg_jsonfast_string: every escape is known, no \u is a surrogate or 0)
 * stands for. */
static void kg_jsonfast_unescape(const kg_jsonfast_tok *t, kg_buf *out) {
  const char *p = t->p + 1, *end = t->p + t->n - 1;
  while (p < end) {
    const char *bs = memchr(p, '\\', (size_t)(end - p));
    if (bs == NULL) {
      kg_buf_append(out, p, (size_t)(end - p));
      return;
    }
    kg_buf_append(out, p, (size_t)(bs - p));
    char c = bs[1];
    p = bs + 2;
    switch (c) {
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'n': c = '\n'; break;
      case 'r': c = '\r'; break;
      case 't': c = '\t'; break;
      case 'u': {
        unsigned v = 0;
        for (int i = 0; i < 4; i++) v = v * 16 + (unsigned)kg_jsonfast_hex((unsigned char)p[i]);
        p += 4;
        unsigned char u[3];
        size_t n;
        if (v < 0x80) {
          u[0] = (unsigned char)v;
          n = 1;
        } else if (v < 0x800) {
          u[0] = (unsigned char)(0xc0 | (v >> 6));
          u[1] = (unsigned char)(0x80 | (v & 0x3f));
          n = 2;
        } else {
          u[0] = (unsigned char)(0xe0 | (v >> 12));
          u[1] = (unsigned char)(0x80 | ((v >> 6) & 0x3f));
          u[2] = (unsigned char)(0x80 | (v & 0x3f));
          n = 3;
        }
        kg_buf_append(out, u, n);
        continue;
      }
      default: /* '"', '\\', '/' stand for themselves */
        break;
    }
    kg_buf_append(out, &c, 1);
  }
}

/* Whether scalars a and b are equal as the tree differ sees them (strings
 * by their bytes after unescaping, into the scratch buffers ua and ub;
 * numbers by value): 1 equal, 0 different, KG_JSONFAST_UNSURE when a number cannot be
 * read as jansson would. */
static int kg_jsonfast_scalar_eq(const kg_jsonfast_tok *a, const kg_jsonfast_tok *b,
                                 kg_buf *ua, kg_buf *ub) {
  if (a->ev != b->ev) return 0;
  if (a->n == b->n && memcmp(a->p, b->p, a->n) == 0) return 1;
  if (a->ev == KG_JSONFAST_STR) {
    if (!a->esc && !b->esc) return 0;
    kg_buf_reset(ua);
    kg_buf_reset(ub);
    kg_jsonfast_unescape(a, ua);
    kg_jsonfast_unescape(b, ub);
    return ua->len == ub->len && memcmp(ua->data, ub->data, ua->len) == 0;
  }
  if (a->ev != KG_JSONFAST_NUM) return 0;
  kg_jsonfast_num x, y;
  if (kg_jsonfast_num_of(a, &x) != 0 || kg_jsonfast_num_of(b, &y) != 0) return KG_JSONFAST_UNSURE;
  if (x.isint != y.isint) return 0;
  return x.isint ? x.i == y.i : x.d == y.d;
}

static bool kg_jsonfast_is_scalar(kg_jsonfast_ev ev) {
  return ev == KG_JSONFAST_STR || ev == KG_JSONFAST_NUM || ev == KG_JSONFAST_LIT;
}

/* Appends scalar t as the tree differ renders it (compact JSON from the
 * parsed value: strings re-escaped, integers in decimal, reals shortest);
 * tmp is scratch. KG_JSONFAST_UNSURE for a real that cannot be read as jansson would. */
static int kg_jsonfast_render(const kg_jsonfast_tok *t, kg_buf *out, kg_buf *tmp) {
  if (t->ev == KG_JSONFAST_STR) {
    kg_buf_reset(tmp);
    kg_jsonfast_unescape(t, tmp);
    kg_jsonpath_put_str(out, tmp->data ? tmp->data : "", tmp->len);
  } else if (t->ev == KG_JSONFAST_LIT) {
    kg_buf_append(out, t->p, t->n);
  } else if (t->isint) {
    kg_jsonfast_num x;
    kg_jsonfast_num_of(t, &x);
    kg_buf_appendf(out, "%lld", (long long)x.i); /* "-0" is 0 */
  } else {
    double d;
    if (kg_jsonfast_real(t, &d) != 0) return KG_JSONFAST_UNSURE;
    kg_jsonpath_put_real(out, d);
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The lockstep walk                                                        */

typedef struct kg_jsonfast_walk {
  kg_jsonfast_side a, b;
  kg_jsonpath_pat *ign;          /* compiled ignore patterns (owned) */
  size_t nign;
  kg_jsonpath_pat *uno;          /* compiled unordered patterns (owned) */
  size_t nuno;
  const kg_noise_view *noisy;    /* learned noise, or NULL */
  kg_jsonpath_seg *path;         /* scratch: the differing node's path */
  size_t cappath;
  kg_buf where, vm, vs, tmp;     /* scratch: rendered path and values */
  kg_diffs *out;                 /* what the tree differ would have made */
  /* In step (see kg_jsonfast_run): the shadow's bytes from offset sync_b
   * are the master's from sync_a, at least up to the master's offset
   * horizon; the shadow's reader state is then the master's. */
  size_t sync_a, sync_b, horizon;
} kg_jsonfast_walk;

/* Copies the path of the node a value event of s just started (depth d:
 * the value's parent is lv[d]) into w->path[1..d]. */
static void kg_jsonfast_path(kg_jsonfast_walk *w, const kg_jsonfast_side *s, size_t d) {
  if (d + 1 > w->cappath) {
    w->cappath = KG_MAX(d + 1, 2 * w->cappath);
    w->path = kg_realloc(w->path, w->cappath * sizeof(*w->path));
  }
  for (size_t i = 1; i <= d; i++) {
    const kg_jsonfast_level *lv = &s->lv[i];
    w->path[i] = lv->obj ? (kg_jsonpath_seg){KG_JSONPATH_S_KEY, lv->key, lv->keylen, 0}
                         : (kg_jsonpath_seg){KG_JSONPATH_S_INDEX, NULL, 0, lv->count - 1};
  }
}

/* The shallowest depth e <= d at which an ignore pattern matches the path
 * (SIZE_MAX: none), and in *k the first such pattern, as the tree
 * differ's walker decides it. */
static size_t kg_jsonfast_ignored_at(const kg_jsonfast_walk *w, size_t d, size_t *k) {
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < w->nign; i++) {
    const kg_jsonpath_pat *p = &w->ign[i];
    uint64_t st = 1, acc = kg_jsonpath_accept(p);
    size_t e = 0;
    while (!(st & acc) && e < d && e < best && st) {
      e++;
      st = kg_jsonpath_step(p, st, &w->path[e], true);
    }
    if ((st & acc) && e < best) {
      best = e;
      *k = i;
    }
  }
  return best;
}

/* True when an array at depth < lim on the path is unordered: the tree
 * differ pairs its elements by value, which a lockstep walk cannot
 * mirror. */
static bool kg_jsonfast_unordered_above(const kg_jsonfast_walk *w, size_t lim) {
  for (size_t i = 0; i < w->nuno; i++) {
    const kg_jsonpath_pat *p = &w->uno[i];
    uint64_t st = 1, acc = kg_jsonpath_accept(p);
    for (size_t u = 0; u < lim && st; u++) {
      if ((st & acc) && w->path[u + 1].kind == KG_JSONPATH_S_INDEX) return true;
      st = kg_jsonpath_step(p, st, &w->path[u + 1], false);
    }
  }
  return false;
}

/* Renders w->path[1..d] as the tree differ writes a location (keys have no
 * escapes: the reader refuses them, so their bytes are what they mean). */
static void kg_jsonfast_render_path(kg_jsonfast_walk *w, size_t d) {
  kg_buf_reset(&w->where);
  kg_buf_append(&w->where, "$", 1);
  for (size_t i = 1; i <= d; i++) kg_jsonpath_put_seg(&w->where, &w->path[i]);
}

static void kg_jsonfast_mark_dirty(kg_jsonfast_side *s) {
  for (size_t i = 1; i <= s->depth; i++) s->lv[i].dirty = true;
}

/* Value depth: the parent level of the value event t just read from s. */
static size_t kg_jsonfast_parent(const kg_jsonfast_side *s, const kg_jsonfast_tok *t) {
  bool opened = t->ev == KG_JSONFAST_OBJ || t->ev == KG_JSONFAST_ARR;
  return s->depth - (opened ? 1 : 0);
}

/* Master's value ta and shadow's value tb (either NULL when absent) differ
 * at the same path. Records what the tree differ would (a suppression, or
 * a learned-noise difference that compare.c takes out later) and reads
 * past what the tree differ would not walk; KG_JSONFAST_UNSURE for anything else. */
static int kg_jsonfast_differ(kg_jsonfast_walk *w, const kg_jsonfast_tok *ta,
                              const kg_jsonfast_tok *tb) {
  kg_jsonfast_side *s = ta ? &w->a : &w->b;
  size_t d = kg_jsonfast_parent(s, ta ? ta : tb);
  size_t da = ta ? kg_jsonfast_parent(&w->a, ta) : w->a.depth;
  size_t db = tb ? kg_jsonfast_parent(&w->b, tb) : w->b.depth;
  kg_jsonfast_path(w, s, d);
  kg_jsonfast_mark_dirty(&w->a);
  kg_jsonfast_mark_dirty(&w->b);
  size_t k = 0, e = kg_jsonfast_ignored_at(w, d, &k);
  if (e != SIZE_MAX) {
    if (kg_jsonfast_unordered_above(w, e)) return KG_JSONFAST_UNSURE;
    kg_diffs_suppress(w->out, w->ign[k].text);
    /* The tree differ stops at the first difference under an ignored
     * node: skip the rest of it on both sides. */
    size_t to = KG_MIN(e, d);
    if (kg_jsonfast_skip_to(&w->a, KG_MIN(da, to)) != 0 ||
        kg_jsonfast_skip_to(&w->b, KG_MIN(db, to)) != 0)
      return KG_JSONFAST_UNSURE;
    return 0;
  }
  if (w->noisy == NULL || w->noisy->n == 0 || kg_jsonfast_unordered_above(w, d))
    return KG_JSONFAST_UNSURE;
  if ((ta && !kg_jsonfast_is_scalar(ta->ev)) || (tb && !kg_jsonfast_is_scalar(tb->ev)))
    return KG_JSONFAST_UNSURE;
  kg_jsonfast_render_path(w, d);
  if (!kg_noise_view_has(w->noisy, w->where.data)) return KG_JSONFAST_UNSURE;
  kg_buf_reset(&w->vm);
  kg_buf_reset(&w->vs);
  if ((ta && kg_jsonfast_render(ta, &w->vm, &w->tmp) != 0) ||
      (tb && kg_jsonfast_render(tb, &w->vs, &w->tmp) != 0))
    return KG_JSONFAST_UNSURE;
  kg_diffs_add(w->out, w->where.data, w->where.data, ta ? w->vm.data : NULL,
               tb ? w->vs.data : NULL);
  return 0;
}

/* One side closed a container the other still has members in: each extra
 * member is a difference with one side absent, as the tree differ lists
 * them (after the common ones, in document order). `more` is the longer
 * side, t its event already read; stops after that container's close (or
 * when an ignored ancestor's skip closed it). */
static int kg_jsonfast_extras(kg_jsonfast_walk *w, bool master_longer, kg_jsonfast_tok *t) {
  kg_jsonfast_side *s = master_longer ? &w->a : &w->b;
  size_t depth = kg_jsonfast_parent(s, t); /* the container being finished */
  for (;;) {
    if (t->ev == KG_JSONFAST_CLOSE) return 0;
    if (t->ev == KG_JSONFAST_KEY && kg_jsonfast_next(s, t) != 0) return KG_JSONFAST_UNSURE;
    if (t->ev == KG_JSONFAST_END || t->ev == KG_JSONFAST_KEY || t->ev == KG_JSONFAST_CLOSE)
      return KG_JSONFAST_UNSURE;
    int rc = master_longer ? kg_jsonfast_differ(w, t, NULL) : kg_jsonfast_differ(w, NULL, t);
    if (rc != 0) return rc;
    if (s->depth < depth) return 0; /* an ignored ancestor was skipped */
    if (kg_jsonfast_next(s, t) != 0) return KG_JSONFAST_UNSURE;
  }
}

/* What a reader event may change, so that the state before it can be
 * given to the other reader (kg_jsonfast_fork). */
typedef struct kg_jsonfast_snap {
  size_t depth, nkeys;
  kg_jsonfast_level top;
} kg_jsonfast_snap;

/* True when the master's bytes up to offset `to` are known to equal the
 * shadow's at the same distance from the sync point. Compares a word at a
 * time, and well beyond `to`, so that the cost spreads over many tokens. */
static bool kg_jsonfast_same_until(kg_jsonfast_walk *w, size_t to) {
  if (w->horizon >= to) return true;
  size_t alen = (size_t)(w->a.end - w->a.start), blen = (size_t)(w->b.end - w->b.start);
  size_t limit = KG_MAX(to, w->horizon + 4096);
  limit = KG_MIN(limit, alen);
  limit = KG_MIN(limit, w->sync_a + (blen - w->sync_b));
  /* Offsets relative to the sync point on each side. */
  const char *pa = w->a.start + w->sync_a, *pb = w->b.start + w->sync_b;
  size_t i = w->horizon - w->sync_a, n = limit - w->sync_a;
  while (i + 8 <= n) {
    uint64_t x, y;
    memcpy(&x, pa + i, 8);
    memcpy(&y, pb + i, 8);
    if (x != y) break;
    i += 8;
  }
  while (i < n && pa[i] == pb[i]) i++;
  i += w->sync_a;
  w->horizon = i;
  return i >= to;
}

/* Whether the master's event t, read from offset a0 on, reads the same in
 * the shadow: the bytes it took are equal, and so is the byte after a
 * number or a literal (which could go on in the shadow: 12 vs 123). */
static bool kg_jsonfast_same_event(kg_jsonfast_walk *w, const kg_jsonfast_tok *t) {
  size_t a1 = (size_t)(w->a.p - w->a.start);
  /* Most events end well inside what is known to be equal. (The horizon
   * stops where the shadow ends, so neither side ends at a1 then; and an
   * END event has a1 at the master's end, beyond any horizon.) */
  if (a1 < w->horizon) return true;
  size_t alen = (size_t)(w->a.end - w->a.start), blen = (size_t)(w->b.end - w->b.start);
  bool a_ends = a1 == alen, b_ends = a1 - w->sync_a + w->sync_b == blen;
  if (t->ev == KG_JSONFAST_END) return b_ends && kg_jsonfast_same_until(w, a1);
  if (t->ev == KG_JSONFAST_NUM || t->ev == KG_JSONFAST_LIT) {
    if (a_ends || b_ends) return a_ends && b_ends && kg_jsonfast_same_until(w, a1);
    return kg_jsonfast_same_until(w, a1 + 1);
  }
  return kg_jsonfast_same_until(w, a1);
}

/* The shadow's reader takes the master's state from before its last event
 * (snap), at the shadow's offset for a0: they were in step until there. */
static void kg_jsonfast_fork(kg_jsonfast_walk *w, const kg_jsonfast_snap *snap,
                             const char *a0) {
  kg_jsonfast_side *a = &w->a, *b = &w->b;
  /* (b's own levels and keys are replaced: nothing of them to keep) */
  if (b->cap < a->cap) {
    b->lv = kg_jsonfast_regrow(b->lv, b->lv_inline, 0, a->cap, sizeof(*b->lv));
    b->cap = a->cap;
  }
  memcpy(b->lv, a->lv, snap->depth * sizeof(*b->lv));
  b->lv[snap->depth] = snap->top;
  b->depth = snap->depth;
  if (b->capkeys < snap->nkeys) {
    b->keys = kg_jsonfast_regrow(b->keys, b->keys_inline, 0, a->capkeys, sizeof(*b->keys));
    b->capkeys = a->capkeys;
  }
  if (snap->nkeys) memcpy(b->keys, a->keys, snap->nkeys * sizeof(*b->keys));
  b->nkeys = snap->nkeys;
  b->p = b->start + ((size_t)(a0 - a->start) - w->sync_a + w->sync_b);
}

/* Both readers until both documents end. 0 when every difference was
 * recorded, KG_JSONFAST_UNSURE as soon as one cannot be.
 *
 * While the two documents are byte for byte the same (most of the time),
 * only the master's is read: its events are known to read the same in the
 * shadow, whose reader state is the master's ("in step"). At the first
 * event that reads differently, the shadow's reader takes the master's
 * state and both are read and compared event by event until the
 * difference is dealt with; from there they are in step again. */
static int kg_jsonfast_run(kg_jsonfast_walk *w) {
  kg_jsonfast_tok ta, tb;
  bool in_step = true;
  for (;;) {
    if (in_step) {
      kg_jsonfast_snap snap = {w->a.depth, w->a.nkeys, w->a.lv[w->a.depth]};
      const char *a0 = w->a.p;
      if (kg_jsonfast_next(&w->a, &ta) != 0) return KG_JSONFAST_UNSURE;
      if (kg_jsonfast_same_event(w, &ta)) {
        if (ta.ev == KG_JSONFAST_END) return 0;
        continue;
      }
      kg_jsonfast_fork(w, &snap, a0);
      in_step = false;
    } else if (kg_jsonfast_next(&w->a, &ta) != 0) {
      return KG_JSONFAST_UNSURE;
    }
    if (kg_jsonfast_next(&w->b, &tb) != 0) return KG_JSONFAST_UNSURE;
    if (ta.ev == KG_JSONFAST_END && tb.ev == KG_JSONFAST_END) return 0;
    if (ta.ev == KG_JSONFAST_END || tb.ev == KG_JSONFAST_END) return KG_JSONFAST_UNSURE;
    int rc = 0;
    if (ta.ev == KG_JSONFAST_CLOSE && tb.ev == KG_JSONFAST_CLOSE) {
      rc = 0;
    } else if (ta.ev == KG_JSONFAST_KEY && tb.ev == KG_JSONFAST_KEY) {
      /* Same keys in the same order, or the tree differ decides. */
      if (ta.n != tb.n || memcmp(ta.p, tb.p, ta.n) != 0) return KG_JSONFAST_UNSURE;
    } else if (tb.ev == KG_JSONFAST_CLOSE) {
      rc = kg_jsonfast_extras(w, true, &ta);
    } else if (ta.ev == KG_JSONFAST_CLOSE) {
      rc = kg_jsonfast_extras(w, false, &tb);
    } else if (ta.ev == KG_JSONFAST_KEY || tb.ev == KG_JSONFAST_KEY) {
      return KG_JSONFAST_UNSURE; /* cannot happen: both sides are in the same state */
    } else if (ta.ev == tb.ev && (ta.ev == KG_JSONFAST_OBJ || ta.ev == KG_JSONFAST_ARR)) {
      rc = 0; /* both descend */
    } else if (kg_jsonfast_is_scalar(ta.ev) && kg_jsonfast_is_scalar(tb.ev)) {
      int eq = kg_jsonfast_scalar_eq(&ta, &tb, &w->vm, &w->vs);
      if (eq == KG_JSONFAST_UNSURE) return KG_JSONFAST_UNSURE;
      rc = eq ? 0 : kg_jsonfast_differ(w, &ta, &tb);
    } else {
      rc = kg_jsonfast_differ(w, &ta, &tb); /* a type change */
    }
    if (rc != 0) return rc;
    if (w->a.depth != w->b.depth) return KG_JSONFAST_UNSURE; /* defensive: never expected */
    /* Both readers are in the same state again (same depth, same open
     * containers with the same keys): back in step from here. */
    in_step = true;
    w->sync_a = w->horizon = (size_t)(w->a.p - w->a.start);
    w->sync_b = (size_t)(w->b.p - w->b.start);
  }
}

int kg_jsonfast(const char *a, size_t alen, const char *b, size_t blen,
                const kg_jsondiff_opts *o, kg_diffs *out) {
  if (out->n || out->total || out->nsuppressed || a == NULL || b == NULL)
    return KG_JSONFAST_FALLBACK;
  kg_jsonfast_walk w;
  memset(&w, 0, sizeof(w));
  kg_jsonfast_level lva[KG_JSONFAST_LV_INLINE], lvb[KG_JSONFAST_LV_INLINE];
  kg_jsonfast_keyref keysa[KG_JSONFAST_KEYS_INLINE], keysb[KG_JSONFAST_KEYS_INLINE];
  kg_jsonfast_side_init(&w.a, a, alen, lva, keysa);
  kg_jsonfast_side_init(&w.b, b, blen, lvb, keysb);
  if (o) {
    w.nign = kg_jsonpath_compile_all(o->ignore, o->nignore, &w.ign);
    w.nuno = kg_jsonpath_compile_all(o->unordered, o->nunordered, &w.uno);
    w.noisy = o->noisy;
  }
  kg_diffs tmp;
  memset(&tmp, 0, sizeof(tmp));
  tmp.max = out->max;
  tmp.noisy = out->noisy; /* learned noise is suppressed as it is added */
  w.out = &tmp;

  int rc = kg_jsonfast_run(&w);

  if (rc == 0) {
    kg_diffs_free(out); /* empty, but may hold storage */
    *out = tmp;
  } else {
    kg_diffs_free(&tmp);
  }
  kg_jsonpath_free_all(w.ign, w.nign);
  kg_jsonpath_free_all(w.uno, w.nuno);
  free(w.path);
  kg_buf_free(&w.where);
  kg_buf_free(&w.vm);
  kg_buf_free(&w.vs);
  kg_buf_free(&w.tmp);
  kg_jsonfast_side_free(&w.a);
  kg_jsonfast_side_free(&w.b);
  return rc == 0 ? 0 : KG_JSONFAST_FALLBACK;
}
