/* linediff.c: line diff of two bodies as diff -u text (see linediff.h).
 *
 * Pipeline: split both bodies into lines; set aside the common head and
 * tail (shadow responses mostly differ in a few places, so this often
 * leaves little); number the remaining lines by equivalence class (hash,
 * then bytes) so the core compares integers; leave out of the search the
 * lines that occur on one side only (they can never be matched, so the
 * result stays minimal while the problem shrinks); run Myers' linear-space
 * divide-and-conquer on what is left; slide runs of changes the way GNU
 * diff does; print the hunks.
 *
 * The output has diff -u's format exactly. When several minimal diffs
 * exist, the one chosen usually matches GNU diff's but may not: GNU also
 * applies speed heuristics (provisional discards, a context-sized horizon)
 * that this file does not copy.
 *
 * Bounds, so that no pair of bodies can stall a worker thread:
 *  - Time: linear passes over the bytes (split, trim, hash, print), plus
 *    at most LD_WORK_MAX units of search (one unit = one diagonal step or
 *    one line comparison, ~3 ns) plus one final snake, plus at most
 *    LD_WORK_MAX units of boundary sliding. Measured: a spent search
 *    budget is ~50 ms; a 5 MB body against itself with its lines shuffled
 *    takes ~120 ms in all, most of the rest printing 12 MB of diff.
 *  - Memory: about 9 bytes per line of each body, plus up to ~100 bytes
 *    per line of the differing middle section (less when lines repeat).
 *    A middle section longer than LD_MAX_LINES lines on either side is
 *    not searched at all.
 *  - Whatever the search does not resolve (budget spent, section too
 *    long) is reported as a block replace: its lines removed, then added,
 *    after trimming the lines it shares at either end. That diff is still
 *    correct (applying it to a gives b), only not minimal.
 * Within those bounds the diff is minimal whenever each split the search
 * makes needs at most 2 * LD_SPLIT_COST edits; past that, a split is taken
 * at the furthest point either search reached (GNU diff's "too expensive"
 * heuristic), so dense diffs cost O(LD_SPLIT_COST^2) per split rather than
 * O(lines * edits). */
#include "compare/linediff.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

/* 16M units: ~50 ms of one core. */
#define LD_WORK_MAX ((uint64_t)1 << 24)
/* Edit steps each way before a split search settles for a good-enough
 * point; bounds one split at ~2M diagonal steps. */
#define LD_SPLIT_COST 1024
/* 1M lines is more than 5 MB of real HTML or JSON holds; only bodies of
 * nearly empty lines get there, and they are not worth ~100 MB per side. */
#define LD_MAX_LINES ((size_t)1 << 20)
#define LD_DEFAULT_CONTEXT 3
#define LD_NO_NEWLINE "\n\\ No newline at end of file\n"
#define LD_TRUNCATED "... diff truncated\n"

/* One body split into lines. */
typedef struct ld_side {
  const char *s;      /* the body; not owned */
  size_t *off;        /* owned; line i is s[off[i] .. off[i+1]) */
  size_t n;           /* number of lines */
  unsigned char *chg; /* owned; per line, 1 = removed (a) or added (b);
                         n + 1 entries, the last always 0 (a sentinel) */
} ld_side;

/* An equivalence class of lines: all lines with these bytes. */
typedef struct ld_class {
  const char *p; /* one such line, in either body */
  size_t len;
  uint64_t hash;
  size_t count[2]; /* occurrences in a's / b's middle section */
} ld_class;

/* Open-addressing table of classes, kept at most half full. */
typedef struct ld_classes {
  ld_class *v; /* owned */
  size_t n, cap;
  size_t *slots; /* owned; class number + 1, 0 = free */
  size_t mask;   /* slot count - 1 (a power of two) */
} ld_classes;

/* The Myers core's view of the problem; lives on kg_linediff's stack. */
typedef struct ld_core {
  size_t *xv, *yv;     /* owned; class numbers of the lines searched */
  size_t *xidx, *yidx; /* owned; each one's line index in its body */
  size_t xn, yn;
  unsigned char *xchg, *ychg; /* the sides' chg arrays; not owned */
  ptrdiff_t *fv, *bv; /* owned; per diagonal: furthest x forward, least x
                         backward */
  uint64_t work;      /* units of search done so far */
  bool exhausted;     /* work passed LD_WORK_MAX: no more searching */
} ld_core;

/* A run of removed and/or added lines with no equal line inside. */
typedef struct ld_group {
  size_t a, na; /* first removed line (or where removal would be), count */
  size_t b, nb; /* first added line (or where it would be), count */
} ld_group;

/* Where the text goes, and the cap on how much of it. */
typedef struct ld_out {
  kg_buf *buf;
  size_t start; /* buf->len before the diff */
  size_t cap;   /* max bytes of diff text; 0 = no cap */
  bool full;    /* cap hit: marker written, the rest is dropped */
} ld_out;

static const char *kg_linediff_ptr(const ld_side *s, size_t i) {
  return s->s + s->off[i];
}

static size_t kg_linediff_len(const ld_side *s, size_t i) {
  return s->off[i + 1] - s->off[i];
}

static bool kg_linediff_eq(const ld_side *x, size_t i, const ld_side *y, size_t j) {
  size_t len = kg_linediff_len(x, i);
  return len == kg_linediff_len(y, j) &&
         memcmp(kg_linediff_ptr(x, i), kg_linediff_ptr(y, j), len) == 0;
}

/* Word-at-a-time multiply-xorshift: FNV-1a's idea, eight bytes per step,
 * since hashing every line is the main linear cost. Byte order does not
 * matter; the value never leaves this call of kg_linediff. */
static uint64_t kg_linediff_hash(const char *p, size_t n) {
  const uint64_t k = 0x9e3779b97f4a7c15u;
  uint64_t h = n * k, w;
  for (; n >= 8; p += 8, n -= 8) {
    memcpy(&w, p, 8);
    h = (h ^ w) * k;
    h ^= h >> 29;
  }
  if (n > 0) {
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * k;
  }
  h ^= h >> 32;
  h *= 0xd6e8feb86659fd93u;
  return h ^ (h >> 32);
}

/* Counts the '\n' in s[0..len), eight bytes per step (a byte loop is
 * not vectorised at -O2 and was a quarter of the time on a 1 MB body).
 * Knowing the count sizes the line array exactly. */
static size_t kg_linediff_count_newlines(const char *s, size_t len) {
  const uint64_t ones = 0x0101010101010101u, low7 = 0x7f7f7f7f7f7f7f7fu;
  size_t n = 0, i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    w ^= ones * '\n'; /* newline bytes become 0 */
    /* High bit of each byte set iff that byte is nonzero; exact. */
    uint64_t nonzero = ((w & low7) + low7) | w;
    /* One bit per newline byte, at bit 0 of it; the multiply sums them
     * into the top byte (popcount is a library call without -mpopcnt). */
    n += (size_t)((((~nonzero & ~low7) >> 7) * ones) >> 56);
  }
  for (; i < len; i++) n += s[i] == '\n';
  return n;
}

/* Splits s[0..len) at each '\n' (kept with its line); a tail without '\n'
 * is a line too. Fills side; free its arrays with kg_linediff_side_free. */
static void kg_linediff_split_lines(const char *s, size_t len, ld_side *side) {
  size_t nl = kg_linediff_count_newlines(s, len);
  size_t n = nl + (len > 0 && s[len - 1] != '\n');
  size_t *off = kg_malloc((n + 1) * sizeof *off);
  size_t k = 0;
  if (nl > len / 16) {
    /* Short lines: memchr's per-call cost would dominate. */
    for (size_t i = 0; i < len; i++) {
      if (i == 0 || s[i - 1] == '\n') off[k++] = i;
    }
  } else {
    for (size_t pos = 0; pos < len; k++) {
      off[k] = pos;
      const char *p = memchr(s + pos, '\n', len - pos);
      pos = p ? (size_t)(p - s) + 1 : len;
    }
  }
  off[n] = len;
  side->s = s;
  side->off = off;
  side->n = n;
  side->chg = kg_calloc(n + 1, 1);
}

static void kg_linediff_side_free(ld_side *side) {
  free(side->off);
  free(side->chg);
}

static void kg_linediff_classes_rehash(ld_classes *t, size_t nslots) {
  size_t *slots = kg_calloc(nslots, sizeof *slots);
  for (size_t c = 0; c < t->n; c++) {
    size_t i = (size_t)t->v[c].hash & (nslots - 1);
    while (slots[i] != 0) i = (i + 1) & (nslots - 1);
    slots[i] = c + 1;
  }
  free(t->slots);
  t->slots = slots;
  t->mask = nslots - 1;
}

/* Returns the class number of line i of s, adding a class if needed. The
 * table grows with the number of distinct lines, not of lines, so a body
 * of repeated lines stays cheap. */
static size_t kg_linediff_class_of(ld_classes *t, const ld_side *s, size_t i) {
  const char *p = kg_linediff_ptr(s, i);
  size_t len = kg_linediff_len(s, i);
  uint64_t h = kg_linediff_hash(p, len);
  size_t slot = (size_t)h & t->mask;
  for (; t->slots[slot] != 0; slot = (slot + 1) & t->mask) {
    const ld_class *c = &t->v[t->slots[slot] - 1];
    if (c->hash == h && c->len == len && memcmp(c->p, p, len) == 0)
      return t->slots[slot] - 1;
  }
  if (t->n == t->cap) t->v = kg_realloc(t->v, (t->cap *= 2) * sizeof *t->v);
  t->v[t->n] = (ld_class){.p = p, .len = len, .hash = h};
  t->slots[slot] = ++t->n;
  if (2 * t->n > t->mask + 1) kg_linediff_classes_rehash(t, 2 * (t->mask + 1));
  return t->n - 1;
}

/* Classifies lines a[lo..ahi) and b[lo..bhi) and keeps, in order, only
 * those whose class occurs on the other side too: their class numbers go
 * to core->xv / yv, their line indices to core->xidx / yidx (kg_malloc'd,
 * freed by the caller). The lines left out are marked changed. */
static void kg_linediff_classify(const ld_side *a, size_t ahi, const ld_side *b,
                        size_t bhi, size_t lo, ld_core *core) {
  ld_classes t = {.cap = 64};
  t.v = kg_malloc(t.cap * sizeof *t.v);
  kg_linediff_classes_rehash(&t, 128);

  const ld_side *side[2] = {a, b};
  size_t m[2] = {ahi - lo, bhi - lo};
  size_t *cls[2], *idx[2], kept[2];
  for (int s = 0; s < 2; s++) {
    cls[s] = kg_malloc(m[s] * sizeof *cls[s]);
    for (size_t i = 0; i < m[s]; i++) {
      size_t c = kg_linediff_class_of(&t, side[s], lo + i);
      t.v[c].count[s]++;
      cls[s][i] = c;
    }
  }
  for (int s = 0; s < 2; s++) {
    idx[s] = kg_malloc(m[s] * sizeof *idx[s]);
    kept[s] = 0;
    /* In place: kept entries only ever move towards the front. */
    for (size_t i = 0; i < m[s]; i++) {
      size_t c = cls[s][i];
      if (t.v[c].count[1 - s] == 0) {
        side[s]->chg[lo + i] = 1;
      } else {
        cls[s][kept[s]] = c;
        idx[s][kept[s]++] = lo + i;
      }
    }
  }
  free(t.v);
  free(t.slots);
  core->xv = cls[0], core->xidx = idx[0], core->xn = kept[0];
  core->yv = cls[1], core->yidx = idx[1], core->yn = kept[1];
}

/* Finds a split point (*sx, *sy), 0 < sx + sy < n + m, for the edit path
 * from x[0..n) to y[0..m): the middle of a minimal path when the forward
 * and backward searches meet within LD_SPLIT_COST steps each, else the
 * point furthest along either search. Requires n, m >= 1, x[0] != y[0] and
 * x[n-1] != y[m-1]. Returns false, leaving *sx and *sy alone, once the
 * work budget is spent.
 *
 * fv/bv hold, per diagonal k = x - y, the furthest x reachable from (0,0)
 * and the least x reachable back from (n,m) with at most d edits. Moves
 * that would leave the edit graph are clamped onto its border, which still
 * names a point reachable within d edits; that keeps every stored point
 * inside the graph without sentinels. */
static bool kg_linediff_midpoint(ld_core *c, const size_t *x, ptrdiff_t n,
                        const size_t *y, ptrdiff_t m, ptrdiff_t *sx,
                        ptrdiff_t *sy) {
  ptrdiff_t *fv = c->fv + m + 1; /* diagonals -m .. n */
  ptrdiff_t *bv = c->bv + m + 1;
  const ptrdiff_t delta = n - m;
  const bool odd = delta % 2 != 0;
  ptrdiff_t flo = 0, fhi = 0, blo = delta, bhi = delta;

  fv[0] = 0;
  bv[delta] = n;
  for (ptrdiff_t d = 1;; d++) {
    ptrdiff_t lo = KG_MAX(-d, -m), hi = KG_MIN(d, n);
    if ((lo + d) % 2 != 0) lo++;
    if ((hi + d) % 2 != 0) hi--;
    /* High diagonals first, as GNU diff does: when several meet in the same
     * step, the split (hence the output) then matches diff -u's. */
    for (ptrdiff_t k = hi; k >= lo; k -= 2) {
      ptrdiff_t px = -1;
      if (k - 1 >= flo && k - 1 <= fhi) px = KG_MIN(fv[k - 1] + 1, n);
      if (k + 1 >= flo && k + 1 <= fhi) {
        ptrdiff_t t = fv[k + 1];
        if (t - k > m) t = m + k;
        if (t > px) px = t;
      }
      ptrdiff_t px0 = px, py = px - k;
      while (px < n && py < m && x[px] == y[py]) px++, py++;
      fv[k] = px;
      c->work += 1 + (uint64_t)(px - px0);
      if (odd && k >= blo && k <= bhi && bv[k] <= px) {
        *sx = px, *sy = py;
        return true;
      }
      if (c->work > LD_WORK_MAX) return false;
    }
    flo = lo, fhi = hi;

    lo = KG_MAX(delta - d, -m), hi = KG_MIN(delta + d, n);
    if ((lo - delta + d) % 2 != 0) lo++;
    if ((hi - delta + d) % 2 != 0) hi--;
    for (ptrdiff_t k = hi; k >= lo; k -= 2) {
      ptrdiff_t px = PTRDIFF_MAX;
      if (k + 1 >= blo && k + 1 <= bhi) px = KG_MAX(bv[k + 1] - 1, 0);
      if (k - 1 >= blo && k - 1 <= bhi) {
        ptrdiff_t t = bv[k - 1];
        if (t - k < 0) t = k;
        if (t < px) px = t;
      }
      ptrdiff_t px0 = px, py = px - k;
      while (px > 0 && py > 0 && x[px - 1] == y[py - 1]) px--, py--;
      bv[k] = px;
      c->work += 1 + (uint64_t)(px0 - px);
      if (!odd && k >= flo && k <= fhi && px <= fv[k]) {
        *sx = px, *sy = py;
        return true;
      }
      if (c->work > LD_WORK_MAX) return false;
    }
    blo = lo, bhi = hi;

    if (d >= LD_SPLIT_COST) {
      ptrdiff_t fbest = -1, fx = 0, bbest = PTRDIFF_MAX, bx = 0;
      for (ptrdiff_t k = flo; k <= fhi; k += 2) {
        if (2 * fv[k] - k > fbest) fbest = 2 * fv[k] - k, fx = fv[k];
      }
      for (ptrdiff_t k = blo; k <= bhi; k += 2) {
        if (2 * bv[k] - k < bbest) bbest = 2 * bv[k] - k, bx = bv[k];
      }
      if (fbest >= n + m - bbest) {
        *sx = fx, *sy = fbest - fx;
      } else {
        *sx = bx, *sy = bbest - bx;
      }
      return true;
    }
  }
}

/* Marks a small (minimal within the bounds above) set of changed lines
 * turning xv[xoff..xlim) into yv[yoff..ylim). Recurses into the smaller
 * part of each split and loops on the larger, so the stack depth stays
 * O(log lines). */
static void kg_linediff_compare(ld_core *c, ptrdiff_t xoff, ptrdiff_t xlim,
                       ptrdiff_t yoff, ptrdiff_t ylim) {
  for (;;) {
    ptrdiff_t x0 = xoff, x1 = xlim;
    while (xoff < xlim && yoff < ylim && c->xv[xoff] == c->yv[yoff])
      xoff++, yoff++;
    while (xlim > xoff && ylim > yoff && c->xv[xlim - 1] == c->yv[ylim - 1])
      xlim--, ylim--;
    c->work += (uint64_t)(xoff - x0) + (uint64_t)(x1 - xlim);
    if (xoff == xlim || yoff == ylim || c->exhausted) break;

    ptrdiff_t sx, sy;
    if (!kg_linediff_midpoint(c, c->xv + xoff, xlim - xoff, c->yv + yoff,
                     ylim - yoff, &sx, &sy)) {
      c->exhausted = true;
      break;
    }
    sx += xoff, sy += yoff;
    /* Cannot happen; but a split that makes no progress would loop
     * forever, so settle for a block replace instead. */
    if (sx < xoff || sx > xlim || sy < yoff || sy > ylim ||
        (sx == xoff && sy == yoff) || (sx == xlim && sy == ylim))
      break;
    if ((sx - xoff) + (sy - yoff) <= (xlim - sx) + (ylim - sy)) {
      kg_linediff_compare(c, xoff, sx, yoff, sy);
      xoff = sx, yoff = sy;
    } else {
      kg_linediff_compare(c, sx, xlim, sy, ylim);
      xlim = sx, ylim = sy;
    }
  }
  for (ptrdiff_t i = xoff; i < xlim; i++) c->xchg[c->xidx[i]] = 1;
  for (ptrdiff_t i = yoff; i < ylim; i++) c->ychg[c->yidx[i]] = 1;
}

/* Whether lines i and k of s are equal, charging the comparison (one unit
 * per started 64 bytes) to *budget; false once the budget is spent, which
 * simply stops the sliding. */
static bool kg_linediff_shift_eq(const ld_side *s, size_t i, size_t k,
                        uint64_t *budget) {
  uint64_t cost = 1 + kg_linediff_len(s, i) / 64;
  if (*budget < cost) {
    *budget = 0;
    return false;
  }
  *budget -= cost;
  return kg_linediff_eq(s, i, s, k);
}

/* Slides the changes of side s the way diff -u presents them: a run of
 * changed lines that could equally sit lower (the line after it equals its
 * first line) is slid down, merging with runs it meets; then it is moved
 * back up to the lowest place where it lines up with changes on the other
 * side o, so that removals and additions stay in one group. Every slide
 * keeps the set of changes valid and just as small, so stopping anywhere
 * (budget spent) is safe.
 *
 * j follows, for the line just below the run, its equal partner on side o
 * (o->n past the end): unchanged lines of both sides pair up in order. */
static void kg_linediff_shift(ld_side *s, const ld_side *o, uint64_t *budget) {
  unsigned char *chg = s->chg;
  const unsigned char *och = o->chg;
  size_t n = s->n, i = 0, j = 0;

  while (och[j]) j++;
  for (;;) {
    while (i < n && !chg[i]) {
      i++, j++;
      while (och[j]) j++;
    }
    if (i == n) return;
    size_t start = i, len, aligned;
    while (chg[i]) i++;
    do {
      len = i - start;
      while (start > 0 && kg_linediff_shift_eq(s, start - 1, i - 1, budget)) {
        chg[--start] = 1;
        chg[--i] = 0;
        while (start > 0 && chg[start - 1]) start--;
        do j--;
        while (och[j]);
      }
      aligned = j > 0 && och[j - 1] ? i : SIZE_MAX;
      while (i < n && kg_linediff_shift_eq(s, start, i, budget)) {
        chg[start++] = 0;
        chg[i++] = 1;
        while (chg[i]) i++;
        j++;
        if (och[j]) {
          while (och[j]) j++;
          aligned = i;
        }
      }
    } while (len != i - start && *budget > 0);
    /* Undoes slides of the last round, so no comparison is needed; not if
     * the budget ran out in a round that merged runs (not pure slides). */
    while (len == i - start && aligned != SIZE_MAX && i > aligned) {
      chg[--start] = 1;
      chg[--i] = 0;
      do j--;
      while (och[j]);
    }
  }
}

/* Appends p[0..n) unless the cap is reached; the text that crosses the cap
 * is cut there and followed by the truncation marker on a line of its
 * own, so the diff text never exceeds cap bytes plus the marker (and a
 * '\n' ending the cut line). */
static void kg_linediff_put(ld_out *o, const void *p, size_t n) {
  if (o->full) return;
  size_t used = o->buf->len - o->start;
  if (o->cap == 0 || n <= o->cap - used) {
    kg_buf_append(o->buf, p, n);
    return;
  }
  kg_buf_append(o->buf, p, o->cap - used);
  if (o->buf->len > o->start && o->buf->data[o->buf->len - 1] != '\n')
    kg_buf_append(o->buf, "\n", 1);
  kg_buf_appends(o->buf, LD_TRUNCATED);
  o->full = true;
}

static void kg_linediff_put_line(ld_out *o, char prefix, const ld_side *s, size_t i) {
  const char *p = kg_linediff_ptr(s, i);
  size_t len = kg_linediff_len(s, i);
  kg_linediff_put(o, &prefix, 1);
  kg_linediff_put(o, p, len);
  if (p[len - 1] != '\n') kg_linediff_put(o, LD_NO_NEWLINE, sizeof LD_NO_NEWLINE - 1);
}

/* GNU diff's range notation: "l,s"; "l" when s is 1; "l,0" for an empty
 * range, l being the line before it. lo/hi are 0-based, hi exclusive. */
static void kg_linediff_range(char *dst, size_t size, size_t lo, size_t hi) {
  if (hi == lo)
    snprintf(dst, size, "%zu,0", lo);
  else if (hi - lo == 1)
    snprintf(dst, size, "%zu", lo + 1);
  else
    snprintf(dst, size, "%zu,%zu", lo + 1, hi - lo);
}

/* Prints groups g[0..ng) as hunks: groups separated by at most 2 * ctx
 * equal lines share a hunk, as in diff -u. */
static void kg_linediff_print(ld_out *o, const ld_side *a, const ld_side *b,
                     const ld_group *g, size_t ng, size_t ctx) {
  size_t h = 0;
  while (h < ng && !o->full) {
    size_t e = h;
    while (e + 1 < ng && g[e + 1].a - (g[e].a + g[e].na) <= 2 * ctx) e++;

    /* Equal lines pair up, so context before and after a hunk has the
     * same length on both sides. */
    size_t alo = g[h].a - KG_MIN(ctx, g[h].a);
    size_t blo = g[h].b - (g[h].a - alo);
    size_t aend = g[e].a + g[e].na;
    size_t tail = KG_MIN(ctx, a->n - aend);
    size_t ahi = aend + tail, bhi = g[e].b + g[e].nb + tail;

    char ra[48], rb[48], hdr[128];
    kg_linediff_range(ra, sizeof ra, alo, ahi);
    kg_linediff_range(rb, sizeof rb, blo, bhi);
    int len = snprintf(hdr, sizeof hdr, "@@ -%s +%s @@\n", ra, rb);
    kg_linediff_put(o, hdr, (size_t)len);

    size_t i = alo;
    for (size_t t = h; t <= e && !o->full; t++) {
      for (; i < g[t].a && !o->full; i++) kg_linediff_put_line(o, ' ', a, i);
      for (size_t k = 0; k < g[t].na && !o->full; k++)
        kg_linediff_put_line(o, '-', a, g[t].a + k);
      for (size_t k = 0; k < g[t].nb && !o->full; k++)
        kg_linediff_put_line(o, '+', b, g[t].b + k);
      i = g[t].a + g[t].na;
    }
    for (; i < ahi && !o->full; i++) kg_linediff_put_line(o, ' ', a, i);
    h = e + 1;
  }
}

/* Collects the runs of changes into *out (kg_malloc'd, caller frees) and
 * returns how many; *changed gets the number of changed lines. Equal lines
 * pair up in order, so walking both sides in step meets every run on both
 * at once. */
static size_t kg_linediff_groups(const ld_side *a, const ld_side *b, ld_group **out,
                        size_t *changed) {
  size_t ng = 0, cap = 16, i = 0, j = 0;
  ld_group *g = kg_malloc(cap * sizeof *g);
  *changed = 0;
  while (i < a->n || j < b->n) {
    if (a->chg[i] || b->chg[j]) { /* the sentinels make index n safe */
      if (ng == cap) g = kg_realloc(g, (cap *= 2) * sizeof *g);
      ld_group *gr = &g[ng++];
      gr->a = i, gr->b = j;
      while (a->chg[i]) i++;
      while (b->chg[j]) j++;
      gr->na = i - gr->a, gr->nb = j - gr->b;
      *changed += gr->na + gr->nb;
    } else if (i < a->n && j < b->n) {
      i++, j++;
    } else {
      break; /* unreachable: the unchanged lines of both sides pair up */
    }
  }
  *out = g;
  return ng;
}

size_t kg_linediff(const char *a, size_t alen, const char *b, size_t blen,
                   const kg_linediff_opts *opts, kg_buf *out) {
  if (alen == blen && (alen == 0 || memcmp(a, b, alen) == 0)) return 0;

  ld_side sa, sb;
  kg_linediff_split_lines(a, alen, &sa);
  kg_linediff_split_lines(b, blen, &sb);

  size_t pre = 0, suf = 0;
  while (pre < sa.n && pre < sb.n && kg_linediff_eq(&sa, pre, &sb, pre)) pre++;
  while (suf < sa.n - pre && suf < sb.n - pre &&
         kg_linediff_eq(&sa, sa.n - 1 - suf, &sb, sb.n - 1 - suf))
    suf++;
  size_t ma = sa.n - pre - suf, mb = sb.n - pre - suf;

  if (ma > 0 && mb > 0 && ma <= LD_MAX_LINES && mb <= LD_MAX_LINES) {
    ld_core core = {.xchg = sa.chg, .ychg = sb.chg};
    kg_linediff_classify(&sa, sa.n - suf, &sb, sb.n - suf, pre, &core);
    core.fv = kg_malloc((core.xn + core.yn + 3) * sizeof *core.fv);
    core.bv = kg_malloc((core.xn + core.yn + 3) * sizeof *core.bv);
    kg_linediff_compare(&core, 0, (ptrdiff_t)core.xn, 0, (ptrdiff_t)core.yn);
    free(core.fv);
    free(core.bv);
    free(core.xv);
    free(core.xidx);
    free(core.yv);
    free(core.yidx);
  } else {
    memset(sa.chg + pre, 1, ma);
    memset(sb.chg + pre, 1, mb);
  }
  uint64_t budget = LD_WORK_MAX;
  kg_linediff_shift(&sa, &sb, &budget);
  kg_linediff_shift(&sb, &sa, &budget);

  ld_group *g;
  size_t changed;
  size_t ng = kg_linediff_groups(&sa, &sb, &g, &changed);
  if (ng > 0) {
    const char *al = opts && opts->a_label ? opts->a_label : "a";
    const char *bl = opts && opts->b_label ? opts->b_label : "b";
    int ctx = opts ? opts->context : LD_DEFAULT_CONTEXT;
    ld_out o = {
        .buf = out, .start = out->len, .cap = opts ? opts->max_output : 0};
    kg_linediff_put(&o, "--- ", 4);
    kg_linediff_put(&o, al, strlen(al));
    kg_linediff_put(&o, "\n+++ ", 5);
    kg_linediff_put(&o, bl, strlen(bl));
    kg_linediff_put(&o, "\n", 1);
    kg_linediff_print(&o, &sa, &sb, g, ng, ctx < 0 ? LD_DEFAULT_CONTEXT : (size_t)ctx);
  }
  free(g);
  kg_linediff_side_free(&sa);
  kg_linediff_side_free(&sb);
  return changed;
}

void kg_linediff_keep(const char *a, size_t alen, const char *b, size_t blen,
                      const kg_linediff_opts *opts, const kg_buf *whole, size_t cap,
                      kg_buf *out) {
  if (whole->len == 0) return;
  if (cap == 0 || whole->len <= cap) {
    kg_buf_append(out, whole->data, whole->len);
    return;
  }
  kg_linediff_opts capped = opts ? *opts : (kg_linediff_opts){0};
  capped.max_output = cap;
  kg_linediff(a, alen, b, blen, &capped, out);
}
