/* jsondiff.c: structural JSON differ (see jsondiff.h).
 *
 * Design:
 *   - jansson parses; we only walk its values, so no JSON parsing here.
 *   - The current path is a stack of levels (one per depth). Each level also
 *     holds, for every pattern, the set of pattern positions still alive
 *     (a tiny NFA, one bit per position), so testing "is this node ignored /
 *     unordered" costs one step per push instead of re-matching strings.
 *   - Unordered arrays pair elements through a 64-bit hash of a canonical
 *     form (key order, number spelling and ignored parts removed), confirmed
 *     by an equality walk, so 10k-element arrays cost O(n log n).
 *   - Recursion depth follows the documents' depth, which jansson caps at
 *     JSON_PARSER_MAX_DEPTH; frames are small (~150 bytes a level): the
 *     deepest input, jansson's parse included, fits in 384 KB in a release
 *     build and 1.5 MB under ASan, against 8 MB for libuv's pool threads. */
#include "compare/jsondiff.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "compare/jsonfast.h"
#include "compare/jsonpath.h"

_Static_assert(JSON_PARSER_MAX_DEPTH <= 4096,
               "jsondiff recurses once per nesting level; re-check stack use");

#define NONE SIZE_MAX
/* In one hash group of an unordered array, how many candidates a master
 * element is compared with. Equal hashes almost always mean equal values;
 * the cap only keeps crafted collisions from going quadratic. */
#define PAIR_TRIES 8

/* ------------------------------------------------------------------------ */
/* Walker state                                                             */

typedef struct level {
  kg_jsonpath_seg s; /* segment leading here from the parent (unused at root) */
  size_t ign_depth; /* shallowest depth at or above this node that an ignore
                       pattern matched, or NONE */
  size_t ign_pat;   /* index of that pattern */
  bool unordered;   /* this exact path matches an unordered pattern */
  size_t uno_pat;   /* the first such pattern (when unordered) */
} level;

typedef struct walker {
  kg_jsonpath_pat *ign; /* compiled ignore patterns (owned) */
  size_t nign;
  kg_jsonpath_pat *uno; /* compiled unordered patterns (owned) */
  size_t nuno;
  level *lv;         /* lv[0..depth]: the current path (owned) */
  uint64_t *st;      /* NFA states, (nign + nuno) per level (owned) */
  size_t depth, cap;
  size_t cut;        /* a suppression was recorded for the ignored subtree at
                        this depth: stop walking it (NONE: no cut) */
  kg_buf where;      /* scratch: the rendered path */
  kg_buf vm, vs;     /* scratch: rendered values */
  kg_diffs *out;
} walker;

static void kg_jsondiff_push(walker *w, kg_jsonpath_seg s) {
  size_t d = w->depth + 1, nst = w->nign + w->nuno;
  if (d == w->cap) {
    w->cap *= 2;
    w->lv = kg_realloc(w->lv, w->cap * sizeof(*w->lv));
    w->st = kg_realloc(w->st, w->cap * (nst ? nst : 1) * sizeof(*w->st));
  }
  level *par = &w->lv[d - 1], *lv = &w->lv[d];
  const uint64_t *ps = w->st + (d - 1) * nst;
  uint64_t *ns = w->st + d * nst;
  lv->s = s;
  lv->ign_depth = par->ign_depth;
  lv->ign_pat = par->ign_pat;
  for (size_t k = 0; k < w->nign; k++) {
    /* Under an ignored node everything is ignored: skip the stepping. */
    ns[k] = par->ign_depth == NONE ? kg_jsonpath_step(&w->ign[k], ps[k], &s, true) : 0;
    if (lv->ign_depth == NONE && (ns[k] & kg_jsonpath_accept(&w->ign[k]))) {
      lv->ign_depth = d;
      lv->ign_pat = k;
    }
  }
  lv->unordered = false;
  for (size_t k = 0; k < w->nuno; k++) {
    size_t x = w->nign + k;
    ns[x] = kg_jsonpath_step(&w->uno[k], ps[x], &s, false);
    if (!lv->unordered && (ns[x] & kg_jsonpath_accept(&w->uno[k]))) {
      lv->unordered = true;
      lv->uno_pat = k;
    }
  }
  w->depth = d;
}

static void kg_jsondiff_pop(walker *w) { w->depth--; }

static void kg_jsondiff_push_key(walker *w, const char *key, size_t len) {
  kg_jsonpath_seg s = {KG_JSONPATH_S_KEY, key, len, 0};
  kg_jsondiff_push(w, s);
}
static void kg_jsondiff_push_index(walker *w, size_t i) {
  kg_jsonpath_seg s = {KG_JSONPATH_S_INDEX, NULL, 0, i};
  kg_jsondiff_push(w, s);
}
static void kg_jsondiff_push_any(walker *w) {
  kg_jsonpath_seg s = {KG_JSONPATH_S_ANYINDEX, NULL, 0, 0};
  kg_jsondiff_push(w, s);
}

static bool kg_jsondiff_ignored(const walker *w) {
  return w->lv[w->depth].ign_depth != NONE;
}

/* ------------------------------------------------------------------------ */
/* Rendering                                                                */

/* Compact JSON text of v, object members in document order. */
static void kg_jsondiff_put_value(kg_buf *b, const json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: {
      kg_buf_append(b, "{", 1);
      bool first = true;
      for (void *it = json_object_iter((json_t *)v); it;
           it = json_object_iter_next((json_t *)v, it)) {
        if (!first) kg_buf_append(b, ",", 1);
        first = false;
        kg_jsonpath_put_str(b, json_object_iter_key(it), json_object_iter_key_len(it));
        kg_buf_append(b, ":", 1);
        kg_jsondiff_put_value(b, json_object_iter_value(it));
      }
      kg_buf_append(b, "}", 1);
      break;
    }
    case JSON_ARRAY: {
      kg_buf_append(b, "[", 1);
      size_t n = json_array_size(v);
      for (size_t i = 0; i < n; i++) {
        if (i) kg_buf_append(b, ",", 1);
        kg_jsondiff_put_value(b, json_array_get(v, i));
      }
      kg_buf_append(b, "]", 1);
      break;
    }
    case JSON_STRING:
      kg_jsonpath_put_str(b, json_string_value(v), json_string_length(v));
      break;
    case JSON_INTEGER:
      kg_buf_appendf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
      break;
    case JSON_REAL:
      kg_jsonpath_put_real(b, json_real_value(v));
      break;
    case JSON_TRUE:
      kg_buf_appends(b, "true");
      break;
    case JSON_FALSE:
      kg_buf_appends(b, "false");
      break;
    default:
      kg_buf_appends(b, "null");
      break;
  }
}

/* Renders the current path into w->where. */
static void kg_jsondiff_render_path(walker *w) {
  kg_buf_reset(&w->where);
  kg_buf_append(&w->where, "$", 1);
  for (size_t d = 1; d <= w->depth; d++) kg_jsonpath_put_seg(&w->where, &w->lv[d].s);
}

/* ------------------------------------------------------------------------ */
/* Values                                                                   */

/* A number reduced to one form per mathematical value: an integral value
 * in int64 range is an integer whatever its spelling (1, 1.0, 1e0, -0.0),
 * anything else a double. Equal forms mean equal values, exactly: the
 * integers 2^63-1 and 2^63-2 differ, and so do the integer 2^53+1 and the
 * real 9007199254740992.0, which a comparison as doubles would confuse.
 * The hash of unordered elements relies on this being an equivalence. */
typedef struct num {
  bool isint;
  int64_t i;
  double d;
} num;

static num kg_jsondiff_num_of(const json_t *v) {
  num n = {true, 0, 0.0};
  if (json_is_integer(v)) {
    n.i = (int64_t)json_integer_value(v);
    return n;
  }
  double d = json_real_value(v);
  /* The range test comes first: casting an out-of-range double is UB. */
  if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
      (double)(int64_t)d == d) {
    n.i = (int64_t)d;
    return n;
  }
  n.isint = false;
  n.d = d;
  return n;
}

static bool kg_jsondiff_num_eq(const json_t *a, const json_t *b) {
  num x = kg_jsondiff_num_of(a), y = kg_jsondiff_num_of(b);
  if (x.isint != y.isint) return false;
  return x.isint ? x.i == y.i : x.d == y.d;
}

static bool kg_jsondiff_str_eq(const json_t *a, const json_t *b) {
  size_t n = json_string_length(a);
  return n == json_string_length(b) &&
         memcmp(json_string_value(a), json_string_value(b), n) == 0;
}

static bool kg_jsondiff_both_numbers(const json_t *a, const json_t *b) {
  return json_is_number(a) && json_is_number(b);
}

/* ------------------------------------------------------------------------ */
/* Canonical hash and equality "modulo noise"                               */
/* Both are computed at the current path (pushed by the caller) and skip
 * ignored parts, so that two unordered-array elements that differ only in
 * ignored fields (a timestamp) still pair up. Invariant: eq(a, b) implies
 * hash(a) == hash(b). */

static uint64_t kg_jsondiff_mix(uint64_t x) { /* splitmix64 finaliser */
  x ^= x >> 30;
  x *= UINT64_C(0xbf58476d1ce4e5b9);
  x ^= x >> 27;
  x *= UINT64_C(0x94d049bb133111eb);
  x ^= x >> 31;
  return x;
}

static uint64_t kg_jsondiff_hash_bytes(const char *p, size_t n) {
  uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ n;
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    h = (h ^ v) * UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 32;
    p += 8;
    n -= 8;
  }
  uint64_t v = 0;
  memcpy(&v, p, n);
  return kg_jsondiff_mix(h ^ v);
}

static uint64_t kg_jsondiff_hash_value(walker *w, const json_t *v);
static bool kg_jsondiff_eq_value(walker *w, const json_t *a, const json_t *b);

static uint64_t kg_jsondiff_hash_value(walker *w, const json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: {
      /* A sum is order-independent, as object members are. */
      uint64_t h = 0x0b1ec7;
      for (void *it = json_object_iter((json_t *)v); it;
           it = json_object_iter_next((json_t *)v, it)) {
        const char *k = json_object_iter_key(it);
        size_t kl = json_object_iter_key_len(it);
        kg_jsondiff_push_key(w, k, kl);
        if (!kg_jsondiff_ignored(w))
          h += kg_jsondiff_mix(kg_jsondiff_hash_bytes(k, kl) ^
                   (kg_jsondiff_hash_value(w, json_object_iter_value(it)) * 31));
        kg_jsondiff_pop(w);
      }
      return kg_jsondiff_mix(h);
    }
    case JSON_ARRAY: {
      size_t n = json_array_size(v);
      uint64_t h = 0xa77a7;
      if (w->lv[w->depth].unordered) {
        kg_jsondiff_push_any(w);
        if (!kg_jsondiff_ignored(w))
          for (size_t i = 0; i < n; i++)
            h += kg_jsondiff_hash_value(w, json_array_get(v, i));
        kg_jsondiff_pop(w);
        return kg_jsondiff_mix(h ^ 0x5e7);
      }
      /* Index mixed in, so that skipping an ignored index keeps positions. */
      for (size_t i = 0; i < n; i++) {
        kg_jsondiff_push_index(w, i);
        if (!kg_jsondiff_ignored(w))
          h += kg_jsondiff_mix(kg_jsondiff_hash_value(w, json_array_get(v, i)) +
                   i * UINT64_C(0x9e3779b97f4a7c15));
        kg_jsondiff_pop(w);
      }
      return kg_jsondiff_mix(h);
    }
    case JSON_STRING:
      return kg_jsondiff_hash_bytes(json_string_value(v), json_string_length(v)) ^ 0x57;
    case JSON_INTEGER:
    case JSON_REAL: {
      num x = kg_jsondiff_num_of(v);
      if (x.isint) return kg_jsondiff_mix((uint64_t)x.i ^ 0x1117);
      uint64_t bits;
      memcpy(&bits, &x.d, sizeof(bits));
      return kg_jsondiff_mix(bits ^ 0x7ea1);
    }
    case JSON_TRUE:
      return 0x7707;
    case JSON_FALSE:
      return 0xfa15e;
    default:
      return 0x0011;
  }
}

typedef struct hent {
  uint64_t h;
  size_t i;
} hent;

static int kg_jsondiff_hent_cmp(const void *x, const void *y) {
  const hent *a = x, *b = y;
  if (a->h != b->h) return a->h < b->h ? -1 : 1;
  return a->i < b->i ? -1 : a->i > b->i;
}

/* Pairs the elements of arrays a and b (the current node) as multisets:
 * pa[i] = the shadow index paired with master element i, pb[j] the reverse,
 * NONE when unpaired. Each master element, in index order, takes the first
 * unpaired equal shadow element. Returns true, pairing nothing, when the
 * elements themselves are ignored. */
static bool kg_jsondiff_pair_elements(walker *w, const json_t *a, const json_t *b,
                          size_t *pa, size_t *pb) {
  size_t n = json_array_size(a), m = json_array_size(b);
  for (size_t i = 0; i < n; i++) pa[i] = NONE;
  for (size_t j = 0; j < m; j++) pb[j] = NONE;
  kg_jsondiff_push_any(w);
  if (kg_jsondiff_ignored(w)) {
    kg_jsondiff_pop(w);
    return true;
  }
  hent *ha = kg_malloc(n * sizeof(*ha)), *hb = kg_malloc(m * sizeof(*hb));
  for (size_t i = 0; i < n; i++)
    ha[i] = (hent){kg_jsondiff_hash_value(w, json_array_get(a, i)), i};
  for (size_t j = 0; j < m; j++)
    hb[j] = (hent){kg_jsondiff_hash_value(w, json_array_get(b, j)), j};
  qsort(ha, n, sizeof(*ha), kg_jsondiff_hent_cmp);
  qsort(hb, m, sizeof(*hb), kg_jsondiff_hent_cmp);
  size_t i = 0, j = 0;
  while (i < n && j < m) {
    if (ha[i].h < hb[j].h) {
      i++;
    } else if (ha[i].h > hb[j].h) {
      j++;
    } else {
      uint64_t h = ha[i].h;
      size_t ie = i, je = j;
      while (ie < n && ha[ie].h == h) ie++;
      while (je < m && hb[je].h == h) je++;
      size_t first = j; /* shadow entries before this are all paired */
      for (size_t x = i; x < ie; x++) {
        size_t tries = 0;
        for (size_t y = first; y < je && tries < PAIR_TRIES; y++) {
          if (pb[hb[y].i] != NONE) {
            if (y == first) first++;
            continue;
          }
          tries++;
          if (kg_jsondiff_eq_value(w, json_array_get(a, ha[x].i),
                       json_array_get(b, hb[y].i))) {
            pa[ha[x].i] = hb[y].i;
            pb[hb[y].i] = ha[x].i;
            if (y == first) first++;
            break;
          }
        }
      }
      i = ie;
      j = je;
    }
  }
  free(ha);
  free(hb);
  kg_jsondiff_pop(w);
  return false;
}

static bool kg_jsondiff_eq_object(walker *w, const json_t *a, const json_t *b) {
  if (w->nign == 0 && json_object_size(a) != json_object_size(b)) return false;
  for (void *it = json_object_iter((json_t *)a); it;
       it = json_object_iter_next((json_t *)a, it)) {
    const char *k = json_object_iter_key(it);
    size_t kl = json_object_iter_key_len(it);
    kg_jsondiff_push_key(w, k, kl);
    bool ok = true;
    if (!kg_jsondiff_ignored(w)) {
      const json_t *vb = json_object_getn(b, k, kl);
      ok = vb != NULL && kg_jsondiff_eq_value(w, json_object_iter_value(it), vb);
    }
    kg_jsondiff_pop(w);
    if (!ok) return false;
  }
  if (w->nign == 0) return true; /* same size and every key of a found */
  for (void *it = json_object_iter((json_t *)b); it;
       it = json_object_iter_next((json_t *)b, it)) {
    const char *k = json_object_iter_key(it);
    size_t kl = json_object_iter_key_len(it);
    kg_jsondiff_push_key(w, k, kl);
    bool ok = kg_jsondiff_ignored(w) || json_object_getn(a, k, kl) != NULL;
    kg_jsondiff_pop(w);
    if (!ok) return false;
  }
  return true;
}

static bool kg_jsondiff_eq_array(walker *w, const json_t *a, const json_t *b) {
  size_t n = json_array_size(a), m = json_array_size(b);
  if (w->lv[w->depth].unordered) {
    kg_jsondiff_push_any(w);
    bool all_ignored = kg_jsondiff_ignored(w);
    kg_jsondiff_pop(w);
    if (all_ignored) return true;
    if (n != m) return false;
    size_t *pa = kg_malloc(n * sizeof(*pa)), *pb = kg_malloc(m * sizeof(*pb));
    kg_jsondiff_pair_elements(w, a, b, pa, pb);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) ok = pa[i] != NONE;
    free(pa);
    free(pb);
    return ok;
  }
  if (w->nign == 0 && n != m) return false;
  for (size_t i = 0; i < KG_MAX(n, m); i++) {
    kg_jsondiff_push_index(w, i);
    bool ok = kg_jsondiff_ignored(w) ||
              (i < n && i < m &&
               kg_jsondiff_eq_value(w, json_array_get(a, i), json_array_get(b, i)));
    kg_jsondiff_pop(w);
    if (!ok) return false;
  }
  return true;
}

static bool kg_jsondiff_eq_value(walker *w, const json_t *a, const json_t *b) {
  if (kg_jsondiff_both_numbers(a, b)) return kg_jsondiff_num_eq(a, b);
  if (json_typeof(a) != json_typeof(b)) return false;
  switch (json_typeof(a)) {
    case JSON_OBJECT:
      return kg_jsondiff_eq_object(w, a, b);
    case JSON_ARRAY:
      return kg_jsondiff_eq_array(w, a, b);
    case JSON_STRING:
      return kg_jsondiff_str_eq(a, b);
    default: /* true, false, null: the type is the value */
      return true;
  }
}

/* ------------------------------------------------------------------------ */
/* The diff walk                                                            */

/* Records a difference at the current path: a or b is NULL when absent.
 * Under an ignored path it is suppressed instead, and the rest of the
 * ignored subtree is skipped (one suppression says it all). */
static void kg_jsondiff_report(walker *w, const json_t *a, const json_t *b) {
  const level *lv = &w->lv[w->depth];
  if (lv->ign_depth != NONE) {
    kg_diffs_suppress(w->out, w->ign[lv->ign_pat].text);
    /* Only a strict ancestor is cut: it is a kg_jsondiff_diff_node frame on the stack,
     * which clears the cut when it returns. */
    if (lv->ign_depth < w->depth && lv->ign_depth < w->cut)
      w->cut = lv->ign_depth;
    return;
  }
  kg_jsondiff_render_path(w);
  if (kg_diffs_full(w->out)) { /* counted in total; values not worth rendering */
    kg_diffs_add(w->out, w->where.data, w->where.data, NULL, NULL);
    return;
  }
  kg_buf_reset(&w->vm);
  kg_buf_reset(&w->vs);
  if (a) kg_jsondiff_put_value(&w->vm, a);
  if (b) kg_jsondiff_put_value(&w->vs, b);
  kg_diffs_add(w->out, w->where.data, w->where.data, a ? w->vm.data : NULL,
               b ? w->vs.data : NULL);
}

static bool kg_jsondiff_cut_here(const walker *w) { return w->cut <= w->depth; }

static void kg_jsondiff_diff_node(walker *w, const json_t *a, const json_t *b);

static void kg_jsondiff_diff_object(walker *w, const json_t *a, const json_t *b) {
  /* Master's keys in master's order (changed or removed), then the keys only
   * the shadow has (added), in shadow's order. */
  for (void *it = json_object_iter((json_t *)a); it && !kg_jsondiff_cut_here(w);
       it = json_object_iter_next((json_t *)a, it)) {
    const char *k = json_object_iter_key(it);
    size_t kl = json_object_iter_key_len(it);
    const json_t *vb = json_object_getn(b, k, kl);
    kg_jsondiff_push_key(w, k, kl);
    if (vb)
      kg_jsondiff_diff_node(w, json_object_iter_value(it), vb);
    else
      kg_jsondiff_report(w, json_object_iter_value(it), NULL);
    kg_jsondiff_pop(w);
  }
  for (void *it = json_object_iter((json_t *)b); it && !kg_jsondiff_cut_here(w);
       it = json_object_iter_next((json_t *)b, it)) {
    const char *k = json_object_iter_key(it);
    size_t kl = json_object_iter_key_len(it);
    if (json_object_getn(a, k, kl)) continue;
    kg_jsondiff_push_key(w, k, kl);
    kg_jsondiff_report(w, NULL, json_object_iter_value(it));
    kg_jsondiff_pop(w);
  }
}

static void kg_jsondiff_diff_ordered(walker *w, const json_t *a, const json_t *b) {
  size_t n = json_array_size(a), m = json_array_size(b);
  for (size_t i = 0; i < KG_MAX(n, m) && !kg_jsondiff_cut_here(w); i++) {
    kg_jsondiff_push_index(w, i);
    if (i < n && i < m)
      kg_jsondiff_diff_node(w, json_array_get(a, i), json_array_get(b, i));
    else
      kg_jsondiff_report(w, i < n ? json_array_get(a, i) : NULL,
             i < m ? json_array_get(b, i) : NULL);
    kg_jsondiff_pop(w);
  }
}

/* True when the paired elements are not in the same relative order on
 * both sides (pa as kg_jsondiff_pair_elements fills it). Unpaired elements
 * do not count: an insertion or a removal shifts indexes but moves nothing. */
static bool kg_jsondiff_moved(const size_t *pa, size_t n) {
  size_t last = 0;
  bool seen = false;
  for (size_t i = 0; i < n; i++) {
    if (pa[i] == NONE) continue;
    if (seen && pa[i] < last) return true;
    last = pa[i];
    seen = true;
  }
  return false;
}

/* An unordered rule declared a reordered array equal: that is a hidden
 * difference like an ignored value, so it is listed in suppressed as
 * "unordered PATTERN" (the rule's text), which the dashboard marks in the
 * side-by-side view instead of showing moved lines as changes. */
static void kg_jsondiff_suppress_reorder(walker *w) {
  const char *pat = w->uno[w->lv[w->depth].uno_pat].text;
  size_t len = strlen(pat) + sizeof("unordered ");
  char *s = kg_malloc(len);
  snprintf(s, len, "unordered %s", pat);
  kg_diffs_suppress(w->out, s);
  free(s);
}

static void kg_jsondiff_diff_unordered(walker *w, const json_t *a, const json_t *b) {
  size_t n = json_array_size(a), m = json_array_size(b);
  size_t *pa = kg_malloc(n * sizeof(*pa)), *pb = kg_malloc(m * sizeof(*pb));
  if (kg_jsondiff_pair_elements(w, a, b, pa, pb)) {
    /* Every element is noise: whatever differs gets suppressed, and an
     * index walk finds whether anything does (nothing for equal arrays). */
    free(pa);
    free(pb);
    kg_jsondiff_diff_ordered(w, a, b);
    return;
  }
  if (kg_jsondiff_moved(pa, n)) kg_jsondiff_suppress_reorder(w);
  /* Paired elements are equal up to noise; walking them again (at the
   * master's index) only records what was hidden inside them: ignored
   * values and reorderings of nested unordered arrays. */
  for (size_t i = 0; i < n && !kg_jsondiff_cut_here(w); i++) {
    if (pa[i] == NONE) continue;
    kg_jsondiff_push_index(w, i);
    kg_jsondiff_diff_node(w, json_array_get(a, i), json_array_get(b, pa[i]));
    kg_jsondiff_pop(w);
  }
  for (size_t i = 0; i < n && !kg_jsondiff_cut_here(w); i++) {
    if (pa[i] != NONE) continue;
    kg_jsondiff_push_index(w, i);
    kg_jsondiff_report(w, json_array_get(a, i), NULL);
    kg_jsondiff_pop(w);
  }
  for (size_t j = 0; j < m && !kg_jsondiff_cut_here(w); j++) {
    if (pb[j] != NONE) continue;
    kg_jsondiff_push_index(w, j);
    kg_jsondiff_report(w, NULL, json_array_get(b, j));
    kg_jsondiff_pop(w);
  }
  free(pa);
  free(pb);
}

/* Compares a and b found at the current path, reporting the deepest
 * disagreements. */
static void kg_jsondiff_diff_node(walker *w, const json_t *a, const json_t *b) {
  if (kg_jsondiff_both_numbers(a, b)) {
    if (!kg_jsondiff_num_eq(a, b)) kg_jsondiff_report(w, a, b);
  } else if (json_typeof(a) != json_typeof(b)) {
    kg_jsondiff_report(w, a, b);
  } else {
    switch (json_typeof(a)) {
      case JSON_OBJECT:
        kg_jsondiff_diff_object(w, a, b);
        break;
      case JSON_ARRAY:
        if (w->lv[w->depth].unordered)
          kg_jsondiff_diff_unordered(w, a, b);
        else
          kg_jsondiff_diff_ordered(w, a, b);
        break;
      case JSON_STRING:
        if (!kg_jsondiff_str_eq(a, b)) kg_jsondiff_report(w, a, b);
        break;
      default:
        break;
    }
  }
  if (w->cut == w->depth) w->cut = NONE;
}

/* ------------------------------------------------------------------------ */
/* Entry points                                                             */

/* Parses a body. JSON_ALLOW_NUL: "\u0000" inside strings is valid JSON and
 * compares as a byte (jansson still rejects it inside keys). Duplicate keys:
 * jansson keeps the last, which is what JSON.parse and most clients use, so
 * we compare what a client would see. An integer beyond int64 makes jansson
 * fail; such a body is valid JSON, so it is re-read with every integer as a
 * double (exactness beyond 2^53 is lost only for that body). */
static json_t *kg_jsondiff_parse(const char *s, size_t n) {
  if (s == NULL || n == 0) return NULL;
  json_error_t e;
  size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
  json_t *v = json_loadb(s, n, flags, &e);
  if (v == NULL && json_error_code(&e) == json_error_numeric_overflow)
    v = json_loadb(s, n, flags | JSON_DECODE_INT_AS_REAL, &e);
  return v;
}

int kg_jsondiff(const char *a, size_t alen, const char *b, size_t blen,
                const kg_jsondiff_opts *o, kg_diffs *out) {
  if (kg_jsonfast(a, alen, b, blen, o, out) == 0) return 0;
  return kg_jsondiff_tree(a, alen, b, blen, o, out);
}

int kg_jsondiff_tree(const char *a, size_t alen, const char *b, size_t blen,
                     const kg_jsondiff_opts *o, kg_diffs *out) {
  json_t *ja = kg_jsondiff_parse(a, alen);
  if (ja == NULL) return -1;
  /* Most shadow responses are byte-identical to the master's: then only
   * validity is in question, and parsing dominates the cost. */
  if (b != NULL && alen == blen && memcmp(a, b, alen) == 0) {
    json_decref(ja);
    return 0;
  }
  json_t *jb = kg_jsondiff_parse(b, blen);
  if (jb == NULL) {
    json_decref(ja);
    return -2;
  }
  walker w;
  memset(&w, 0, sizeof(w));
  w.out = out;
  w.cut = NONE;
  if (o) {
    w.nign = kg_jsonpath_compile_all(o->ignore, o->nignore, &w.ign);
    w.nuno = kg_jsonpath_compile_all(o->unordered, o->nunordered, &w.uno);
  }
  size_t nst = w.nign + w.nuno;
  w.cap = 64;
  w.lv = kg_malloc(w.cap * sizeof(*w.lv));
  w.st = kg_malloc(w.cap * (nst ? nst : 1) * sizeof(*w.st));
  /* Root: every pattern has matched nothing yet; "$" alone matches here. */
  level *root = &w.lv[0];
  memset(root, 0, sizeof(*root));
  root->ign_depth = NONE;
  for (size_t k = 0; k < w.nign; k++) {
    w.st[k] = 1;
    if (w.ign[k].n == 0 && root->ign_depth == NONE) {
      root->ign_depth = 0;
      root->ign_pat = k;
    }
  }
  for (size_t k = 0; k < w.nuno; k++) {
    w.st[w.nign + k] = 1;
    if (w.uno[k].n == 0 && !root->unordered) {
      root->unordered = true;
      root->uno_pat = k;
    }
  }

  kg_jsondiff_diff_node(&w, ja, jb);

  kg_jsonpath_free_all(w.ign, w.nign);
  kg_jsonpath_free_all(w.uno, w.nuno);
  free(w.lv);
  free(w.st);
  kg_buf_free(&w.where);
  kg_buf_free(&w.vm);
  kg_buf_free(&w.vs);
  json_decref(ja);
  json_decref(jb);
  return 0;
}
