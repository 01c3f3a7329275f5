/* test_linediff.c: unit tests for the line differ (src/compare/linediff.c).
 *
 * Expected texts were written by hand from GNU diff's conventions and
 * checked against `diff -u --label a --label b` (diffutils 3.8). Larger
 * and randomised cases check the returned count against an LCS computed
 * here, and check that the printed diff, applied to a, gives b. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "compare/linediff.h"

#define TRUNC_MARK "... diff truncated\n"
#define NO_NL "\\ No newline at end of file\n"

/* Diffs two NUL-free strings with labels a/b; returns the count. */
static size_t diff_str(const char *a, const char *b, int ctx, size_t cap,
                       kg_buf *out) {
  kg_linediff_opts o = {.a_label = "a", .b_label = "b", .context = ctx,
                        .max_output = cap};
  return kg_linediff(a, strlen(a), b, strlen(b), &o, out);
}

static void expect_diff(const char *a, const char *b, int ctx,
                        size_t want_count, const char *want) {
  kg_buf out = KG_BUF_INIT;
  size_t n = diff_str(a, b, ctx, 0, &out);
  assert_int_equal(n, want_count);
  assert_non_null(out.data);
  assert_string_equal(out.data, want);
  kg_buf_free(&out);
}

/* --- a tiny patch applier, to check diffs we cannot spell out ---------- */

typedef struct lines {
  const char *s;
  size_t *off; /* line i is s[off[i] .. off[i+1]) */
  size_t n;
} lines;

static lines split(const char *s, size_t len) {
  lines l = {.s = s, .off = kg_malloc((len + 2) * sizeof(size_t)), .n = 0};
  size_t pos = 0;
  while (pos < len) {
    l.off[l.n++] = pos;
    const char *nl = memchr(s + pos, '\n', len - pos);
    pos = nl ? (size_t)(nl - s) + 1 : len;
  }
  l.off[l.n] = len;
  return l;
}

/* Applies unified diff d to a, appending the result to res. Returns false
 * when d is malformed, its counts are wrong, or a line it claims from a is
 * not there byte for byte. */
static bool apply_diff(const char *a, size_t alen, const char *d, size_t dlen,
                       kg_buf *res) {
  lines al = split(a, alen);
  const char *p = d, *end = d + dlen;
  size_t next = 0; /* first line of a not yet consumed */
  bool ok = false;
  for (int h = 0; h < 2; h++) { /* "--- a" and "+++ b" */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) goto out;
    p = nl + 1;
  }
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL || nl - p > 100) goto out;
    char hdr[128];
    memcpy(hdr, p, (size_t)(nl - p));
    hdr[nl - p] = '\0';
    p = nl + 1;
    unsigned long l0, s0 = 1, l1, s1 = 1;
    char *q;
    if (strncmp(hdr, "@@ -", 4) != 0) goto out;
    l0 = strtoul(hdr + 4, &q, 10);
    if (*q == ',') s0 = strtoul(q + 1, &q, 10);
    if (strncmp(q, " +", 2) != 0) goto out;
    l1 = strtoul(q + 2, &q, 10);
    if (*q == ',') s1 = strtoul(q + 1, &q, 10);
    if (strcmp(q, " @@") != 0) goto out;
    (void)l1;
    size_t start = s0 == 0 ? l0 : l0 - 1;
    if (start < next || start > al.n) goto out;
    kg_buf_append(res, a + al.off[next], al.off[start] - al.off[next]);
    next = start;
    unsigned long seen0 = 0, seen1 = 0;
    while (p < end && *p != '@') {
      char c = *p;
      nl = memchr(p, '\n', (size_t)(end - p));
      if (nl == NULL || (c != ' ' && c != '-' && c != '+')) goto out;
      const char *body = p + 1;
      size_t blen = (size_t)(nl - body) + 1;
      p = nl + 1;
      if ((size_t)(end - p) >= strlen(NO_NL) &&
          memcmp(p, NO_NL, strlen(NO_NL)) == 0) {
        blen--; /* the line had no '\n' */
        p += strlen(NO_NL);
      }
      if (c != '+') {
        if (next >= al.n || al.off[next + 1] - al.off[next] != blen ||
            memcmp(a + al.off[next], body, blen) != 0)
          goto out;
        next++;
        seen0++;
      }
      if (c != '-') {
        kg_buf_append(res, body, blen);
        seen1++;
      }
    }
    if (seen0 != s0 || seen1 != s1) goto out;
  }
  kg_buf_append(res, a + al.off[next], alen - al.off[next]);
  ok = true;
out:
  free(al.off);
  return ok;
}

/* Diffs a and b (any bytes), checks the diff applies to a to give b, and
 * returns the count. */
static size_t diff_and_apply(const char *a, size_t alen, const char *b,
                             size_t blen, int ctx) {
  kg_buf out = KG_BUF_INIT, res = KG_BUF_INIT;
  kg_linediff_opts o = {.a_label = "a", .b_label = "b", .context = ctx};
  size_t n = kg_linediff(a, alen, b, blen, &o, &out);
  if (n == 0) {
    assert_int_equal(out.len, 0);
  } else {
    assert_true(apply_diff(a, alen, out.data, out.len, &res));
    assert_int_equal(res.len, blen);
    assert_memory_equal(res.data, b, blen);
  }
  kg_buf_free(&out);
  kg_buf_free(&res);
  return n;
}

/* Lines removed + added by a minimal diff: |a| + |b| - 2 * LCS. */
static size_t min_changes(const char *a, size_t alen, const char *b,
                          size_t blen) {
  lines x = split(a, alen), y = split(b, blen);
  size_t *row = kg_calloc((y.n + 1) * 2, sizeof(size_t));
  size_t *prev = row, *cur = row + y.n + 1;
  for (size_t i = 0; i < x.n; i++) {
    for (size_t j = 0; j < y.n; j++) {
      size_t li = x.off[i + 1] - x.off[i], lj = y.off[j + 1] - y.off[j];
      if (li == lj && memcmp(a + x.off[i], b + y.off[j], li) == 0)
        cur[j + 1] = prev[j] + 1;
      else
        cur[j + 1] = KG_MAX(prev[j + 1], cur[j]);
    }
    size_t *t = prev;
    prev = cur, cur = t;
  }
  size_t n = x.n + y.n - 2 * prev[y.n];
  free(row);
  free(x.off);
  free(y.off);
  return n;
}

static uint64_t rng_state = 0x2545f4914f6cdd1du;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* --- the cases ---------------------------------------------------------- */

static void test_equal(void **state) {
  (void)state;
  kg_buf out = KG_BUF_INIT;
  kg_buf_appends(&out, "before");
  assert_int_equal(diff_str("", "", 3, 0, &out), 0);
  assert_int_equal(diff_str("a\nb\n", "a\nb\n", 3, 0, &out), 0);
  assert_int_equal(diff_str("a\nb", "a\nb", 3, 0, &out), 0);
  assert_int_equal(kg_linediff(NULL, 0, NULL, 0, NULL, &out), 0);
  assert_string_equal(out.data, "before");
  kg_buf_free(&out);
}

static void test_empty_vs_nonempty(void **state) {
  (void)state;
  expect_diff("", "x\ny\n", 3, 2, "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+x\n+y\n");
  expect_diff("x\ny\n", "", 3, 2, "--- a\n+++ b\n@@ -1,2 +0,0 @@\n-x\n-y\n");
  expect_diff("", "x\n", 3, 1, "--- a\n+++ b\n@@ -0,0 +1 @@\n+x\n");
  expect_diff("x\n", "", 3, 1, "--- a\n+++ b\n@@ -1 +0,0 @@\n-x\n");
  expect_diff("", "x", 3, 1, "--- a\n+++ b\n@@ -0,0 +1 @@\n+x\n" NO_NL);
}

#define TEN "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"

static void test_change_in_middle(void **state) {
  (void)state;
  const char *b = "1\n2\n3\n4\nFIVE\n6\n7\n8\n9\n10\n";
  expect_diff(TEN, b, 3, 2,
              "--- a\n+++ b\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+FIVE\n"
              " 6\n 7\n 8\n");
  expect_diff(TEN, b, 1, 2,
              "--- a\n+++ b\n@@ -4,3 +4,3 @@\n 4\n-5\n+FIVE\n 6\n");
  expect_diff(TEN, b, 0, 2, "--- a\n+++ b\n@@ -5 +5 @@\n-5\n+FIVE\n");
  /* context < 0 means the default, 3 */
  expect_diff(TEN, b, -1, 2,
              "--- a\n+++ b\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+FIVE\n"
              " 6\n 7\n 8\n");
}

static void test_change_near_ends(void **state) {
  (void)state;
  expect_diff(TEN, "one\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", 3, 2,
              "--- a\n+++ b\n@@ -1,4 +1,4 @@\n-1\n+one\n 2\n 3\n 4\n");
  expect_diff(TEN, "1\n2\n3\n4\n5\n6\n7\n8\n9\nten\n", 3, 2,
              "--- a\n+++ b\n@@ -7,4 +7,4 @@\n 7\n 8\n 9\n-10\n+ten\n");
  /* pure insertion / removal at the end, without context */
  expect_diff("1\n2\n3\n", "1\n2\n3\n4\n", 0, 1,
              "--- a\n+++ b\n@@ -3,0 +4 @@\n+4\n");
  expect_diff("1\n2\n3\n4\n", "1\n2\n3\n", 0, 1,
              "--- a\n+++ b\n@@ -4 +3,0 @@\n-4\n");
}

static void test_hunks_merge_or_split(void **state) {
  (void)state;
  const char *a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n";
  /* 6 equal lines between the changes (= 2 * context): one hunk */
  expect_diff(a, "1\n2\nthree\n4\n5\n6\n7\n8\n9\nten\n11\n12\n13\n14\n15\n",
              3, 4,
              "--- a\n+++ b\n@@ -1,13 +1,13 @@\n 1\n 2\n-3\n+three\n 4\n"
              " 5\n 6\n 7\n 8\n 9\n-10\n+ten\n 11\n 12\n 13\n");
  /* 7 equal lines between them: two hunks */
  expect_diff(a,
              "1\n2\nthree\n4\n5\n6\n7\n8\n9\n10\neleven\n12\n13\n14\n15\n",
              3, 4,
              "--- a\n+++ b\n@@ -1,6 +1,6 @@\n 1\n 2\n-3\n+three\n 4\n 5\n"
              " 6\n@@ -8,7 +8,7 @@\n 8\n 9\n 10\n-11\n+eleven\n 12\n 13\n"
              " 14\n");
  /* without context, even adjacent-but-separate runs are own hunks */
  expect_diff("a\nb\nc\n", "A\nb\nC\n", 0, 4,
              "--- a\n+++ b\n@@ -1 +1 @@\n-a\n+A\n@@ -3 +3 @@\n-c\n+C\n");
}

static void test_no_trailing_newline(void **state) {
  (void)state;
  expect_diff("a\nb", "a\nc", 3, 2,
              "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n" NO_NL "+c\n" NO_NL);
  /* "y" and "y\n" are different lines */
  expect_diff("x\ny", "x\ny\n", 3, 2,
              "--- a\n+++ b\n@@ -1,2 +1,2 @@\n x\n-y\n" NO_NL "+y\n");
  expect_diff("x\ny\n", "x\ny", 3, 2,
              "--- a\n+++ b\n@@ -1,2 +1,2 @@\n x\n-y\n+y\n" NO_NL);
  /* a shared last line without '\n' shows up as context */
  expect_diff("x\ny", "z\ny", 3, 2,
              "--- a\n+++ b\n@@ -1,2 +1,2 @@\n-x\n+z\n y\n" NO_NL);
}

static void test_crlf_vs_lf(void **state) {
  (void)state;
  expect_diff("a\r\nb\r\n", "a\nb\r\n", 3, 2,
              "--- a\n+++ b\n@@ -1,2 +1,2 @@\n-a\r\n+a\n b\r\n");
  expect_diff("a\r\n", "a\n", 3, 2, "--- a\n+++ b\n@@ -1 +1 @@\n-a\r\n+a\n");
}

/* kg_linediff_keep gives what a capped kg_linediff gives, from the whole
 * diff: a copy when it fits, a capped run when not, nothing when equal. */
static void test_keep(void **state) {
  (void)state;
  static const char a[] = "one\ntwo\nthree\nfour\n", b[] = "one\nTWO\nthree\nFOUR\n";
  kg_linediff_opts o = {.a_label = "a", .b_label = "b", .context = 3};
  kg_buf whole = KG_BUF_INIT, kept = KG_BUF_INIT, direct = KG_BUF_INIT;
  kg_linediff(a, sizeof a - 1, b, sizeof b - 1, &o, &whole);
  for (size_t cap = 0; cap <= whole.len + 1; cap++) {
    kg_buf_reset(&kept);
    kg_buf_reset(&direct);
    kg_linediff_keep(a, sizeof a - 1, b, sizeof b - 1, &o, &whole, cap, &kept);
    kg_linediff_opts capped = o;
    capped.max_output = cap;
    kg_linediff(a, sizeof a - 1, b, sizeof b - 1, &capped, &direct);
    assert_int_equal(kept.len, direct.len);
    assert_memory_equal(kept.data, direct.data, kept.len);
  }
  kg_buf empty = KG_BUF_INIT;
  kg_linediff_keep(a, sizeof a - 1, a, sizeof a - 1, &o, &empty, 8, &kept);
  assert_int_equal(kept.len, direct.len); /* nothing appended */
  kg_buf_free(&whole);
  kg_buf_free(&kept);
  kg_buf_free(&direct);
}

static void test_nul_bytes(void **state) {
  (void)state;
  static const char a[] = "x\0y\nsame\nab\0c\n";
  static const char b[] = "x\0z\nsame\nab\0c\n";
  static const char want[] = "--- a\n+++ b\n@@ -1,3 +1,3 @@\n-x\0y\n+x\0z\n"
                             " same\n ab\0c\n";
  kg_buf out = KG_BUF_INIT;
  kg_linediff_opts o = {.a_label = "a", .b_label = "b", .context = 3};
  /* sizeof - 1: the bodies end at their last '\n' */
  assert_int_equal(kg_linediff(a, sizeof a - 1, b, sizeof b - 1, &o, &out), 2);
  assert_int_equal(out.len, sizeof want - 1);
  assert_memory_equal(out.data, want, sizeof want - 1);
  kg_buf_free(&out);

  /* equal up to a NUL, different after it: no strlen anywhere */
  assert_int_equal(diff_and_apply("k\0a\n", 4, "k\0b\n", 4, 3), 2);
  assert_int_equal(diff_and_apply("k\0a\n", 4, "k\0a\n", 4, 3), 0);
  assert_int_equal(diff_and_apply("\0", 1, "\0\0", 2, 3), 2);
}

static void test_slides_like_gnu(void **state) {
  (void)state;
  /* of the two equal "e" lines, GNU diff removes the second */
  expect_diff("x\ne\ne\ny\n", "x\ne\ny\n", 3, 1,
              "--- a\n+++ b\n@@ -1,4 +1,3 @@\n x\n e\n-e\n y\n");
  expect_diff("x\nA\nB\ny\n", "x\nA\nB\nA\nB\ny\n", 3, 2,
              "--- a\n+++ b\n@@ -1,4 +1,6 @@\n x\n A\n B\n+A\n+B\n y\n");
  /* the added "b" could pair with either removed "a": the one it lines up
   * with wins, so removal and addition stay one group */
  expect_diff("a\nb\na\n", "b\nb\n", 3, 3,
              "--- a\n+++ b\n@@ -1,3 +1,2 @@\n-a\n b\n-a\n+b\n");
}

static void test_defaults_and_append(void **state) {
  (void)state;
  kg_buf out = KG_BUF_INIT;
  kg_buf_appends(&out, "prefix|");
  assert_int_equal(kg_linediff("a\n", 2, "b\n", 2, NULL, &out), 2);
  assert_string_equal(out.data, "prefix|--- a\n+++ b\n@@ -1 +1 @@\n-a\n+b\n");
  kg_buf_reset(&out);
  kg_linediff_opts o = {.a_label = "master", .b_label = "shadow-1",
                        .context = 3};
  assert_int_equal(kg_linediff("a\n", 2, "b\n", 2, &o, &out), 2);
  assert_string_equal(out.data,
                      "--- master\n+++ shadow-1\n@@ -1 +1 @@\n-a\n+b\n");
  kg_buf_free(&out);
}

/* Random small bodies over a few distinct lines, where alignments are
 * ambiguous: the count must be minimal and the diff must apply. */
static void test_random_small(void **state) {
  (void)state;
  static const char *pool[] = {"a\n", "b\n", "c\n", "d\n",  "e\n",
                               "a",   "b\r\n", "\n", "\0\n"};
  for (int iter = 0; iter < 3000; iter++) {
    kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT;
    size_t npool = 2 + rng() % 8;
    for (int side = 0; side < 2; side++) {
      kg_buf *s = side ? &b : &a;
      size_t n = rng() % 25;
      for (size_t i = 0; i < n; i++) {
        size_t k = rng() % npool;
        if (k == 5 && i + 1 < n) k = 0; /* no-'\n' line only at the end */
        kg_buf_append(s, pool[k], k == 8 ? 2 : strlen(pool[k]));
      }
      kg_buf_reserve(s, 0);
    }
    int ctx = (int)(rng() % 5) - 1;
    size_t n = diff_and_apply(a.data, a.len, b.data, b.len, ctx);
    assert_int_equal(n, min_changes(a.data, a.len, b.data, b.len));
    kg_buf_free(&a);
    kg_buf_free(&b);
  }
}

/* Bodies of a thousand-odd lines over few distinct lines, edited in many
 * places: still minimal (the search budget is far from spent). */
static void test_random_medium(void **state) {
  (void)state;
  for (int iter = 0; iter < 6; iter++) {
    kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT;
    size_t n = 800 + rng() % 800, distinct = 4 + rng() % 40;
    size_t *ln = kg_malloc(2 * n * sizeof *ln), m = n;
    for (size_t i = 0; i < n; i++) ln[i] = rng() % distinct;
    for (size_t i = 0; i < n; i++) kg_buf_appendf(&a, "line %zu\n", ln[i]);
    for (size_t e = n / 4; e > 0; e--) { /* edits, some repeated lines */
      size_t at = rng() % (m + 1);
      if (rng() % 2 && at < m) {
        memmove(ln + at, ln + at + 1, (m - at - 1) * sizeof *ln);
        m--;
      } else if (m < 2 * n) {
        memmove(ln + at + 1, ln + at, (m - at) * sizeof *ln);
        ln[at] = rng() % (distinct + 5);
        m++;
      }
    }
    for (size_t i = 0; i < m; i++) kg_buf_appendf(&b, "line %zu\n", ln[i]);
    size_t got = diff_and_apply(a.data, a.len, b.data, b.len, 3);
    assert_int_equal(got, min_changes(a.data, a.len, b.data, b.len));
    free(ln);
    kg_buf_free(&a);
    kg_buf_free(&b);
  }
}

/* Builds n lines "<tag> line <i> ...\n" into out, line i named by map[i]
 * (or i when map is NULL). */
static void make_body(kg_buf *out, size_t n, const char *tag,
                      const size_t *map) {
  for (size_t i = 0; i < n; i++)
    kg_buf_appendf(out, "<li class=\"%s\">item %zu of the list</li>\n", tag,
                   map ? map[i] : i);
  kg_buf_reserve(out, 0);
}

static void test_large_one_percent(void **state) {
  (void)state;
  const size_t n = 20000;
  kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT;
  make_body(&a, n, "x", NULL);
  for (size_t i = 0; i < n; i++) {
    if (i % 100 == 50)
      kg_buf_appendf(&b, "<li class=\"x\">item %zu CHANGED</li>\n", i);
    else
      kg_buf_appendf(&b, "<li class=\"x\">item %zu of the list</li>\n", i);
  }
  assert_int_equal(diff_and_apply(a.data, a.len, b.data, b.len, 3), 400);

  /* 200 separate hunks */
  kg_buf out = KG_BUF_INIT;
  kg_linediff_opts o = {.a_label = "a", .b_label = "b", .context = 3};
  assert_int_equal(kg_linediff(a.data, a.len, b.data, b.len, &o, &out), 400);
  size_t hunks = 0;
  for (const char *p = out.data; (p = strstr(p, "\n@@ -")) != NULL; p++)
    hunks++;
  assert_int_equal(hunks, 200);
  assert_non_null(strstr(out.data, "\n@@ -48,7 +48,7 @@\n"));
  kg_buf_free(&out);
  kg_buf_free(&a);
  kg_buf_free(&b);
}

static void test_large_totally_different(void **state) {
  (void)state;
  const size_t n = 20000;
  kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT;
  make_body(&a, n, "master", NULL);
  make_body(&b, n, "shadow", NULL);
  assert_int_equal(diff_and_apply(a.data, a.len, b.data, b.len, 3), 2 * n);
  kg_buf_free(&a);
  kg_buf_free(&b);
}

/* The same lines in a random order: every line has partners on the other
 * side, so the search cannot be skipped and runs out of budget. The diff
 * must still be correct, and remove as many lines as it adds. */
static void test_large_shuffled_bounded(void **state) {
  (void)state;
  const size_t n = 20000;
  size_t *perm = kg_malloc(n * sizeof *perm);
  for (size_t i = 0; i < n; i++) perm[i] = i;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = rng() % (i + 1), t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }
  kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT;
  make_body(&a, n, "x", NULL);
  make_body(&b, n, "x", perm);
  uint64_t t0 = kg_now_ns();
  size_t changed = diff_and_apply(a.data, a.len, b.data, b.len, 3);
  uint64_t ms = (kg_now_ns() - t0) / 1000000;
  assert_true(changed > 0 && changed <= 2 * n && changed % 2 == 0);
  /* generous even under sanitizers; unbounded search would take minutes */
  assert_true(ms < 20000);

  /* reversed: the minimal diff keeps just 1 line */
  kg_buf_reset(&b);
  for (size_t i = 0; i < n; i++) perm[i] = n - 1 - i;
  make_body(&b, n, "x", perm);
  changed = diff_and_apply(a.data, a.len, b.data, b.len, 0);
  assert_true(changed >= 2 * n - 2 && changed <= 2 * n);
  free(perm);
  kg_buf_free(&a);
  kg_buf_free(&b);
}

/* A middle section of over a million lines is not searched: it becomes
 * one block replace, which must still be a correct diff. */
static void test_huge_line_count(void **state) {
  (void)state;
  const size_t len = (size_t)3 << 20; /* 3M lines of "\n" */
  char *a = kg_malloc(len), *b = kg_malloc(len);
  memset(a, '\n', len);
  memset(b, '\n', len);
  b[10] = b[len / 2] = b[len - 10] = 'x';
  size_t changed = diff_and_apply(a, len, b, len, 3);
  assert_true(changed >= 6);
  free(a);
  free(b);
}

static void test_max_output(void **state) {
  (void)state;
  kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT, out = KG_BUF_INIT;
  make_body(&a, 100, "x", NULL);
  make_body(&b, 100, "y", NULL);
  kg_linediff_opts o = {.a_label = "a", .b_label = "b", .context = 3,
                        .max_output = 200};
  assert_int_equal(kg_linediff(a.data, a.len, b.data, b.len, &o, &out), 200);
  assert_true(out.len <= 200 + 1 + strlen(TRUNC_MARK));
  assert_true(out.len > strlen(TRUNC_MARK));
  assert_string_equal(out.data + out.len - strlen(TRUNC_MARK), TRUNC_MARK);
  static const char head[] = "--- a\n+++ b\n@@ -1,100 +1,100 @@\n-<li";
  assert_memory_equal(out.data, head, sizeof head - 1);
  size_t capped = out.len;

  /* the full diff, then caps around its exact size */
  kg_buf_reset(&out);
  o.max_output = 0;
  assert_int_equal(kg_linediff(a.data, a.len, b.data, b.len, &o, &out), 200);
  size_t full = out.len;
  assert_true(full > capped);
  assert_null(strstr(out.data, TRUNC_MARK));

  kg_buf_reset(&out);
  o.max_output = full;
  assert_int_equal(kg_linediff(a.data, a.len, b.data, b.len, &o, &out), 200);
  assert_int_equal(out.len, full);
  assert_null(strstr(out.data, TRUNC_MARK));

  kg_buf_reset(&out);
  o.max_output = full - 1; /* cuts the final '\n' only */
  assert_int_equal(kg_linediff(a.data, a.len, b.data, b.len, &o, &out), 200);
  assert_int_equal(out.len, full + strlen(TRUNC_MARK));
  assert_string_equal(out.data + out.len - strlen(TRUNC_MARK), TRUNC_MARK);

  /* appending after existing content counts only the diff's own bytes */
  kg_buf_reset(&out);
  kg_buf_appends(&out, "xyz");
  o.max_output = 20;
  assert_int_equal(kg_linediff(a.data, a.len, b.data, b.len, &o, &out), 200);
  assert_string_equal(out.data, "xyz--- a\n+++ b\n@@ -1,10\n" TRUNC_MARK);
  kg_buf_free(&a);
  kg_buf_free(&b);
  kg_buf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_equal),
      cmocka_unit_test(test_empty_vs_nonempty),
      cmocka_unit_test(test_change_in_middle),
      cmocka_unit_test(test_change_near_ends),
      cmocka_unit_test(test_hunks_merge_or_split),
      cmocka_unit_test(test_no_trailing_newline),
      cmocka_unit_test(test_crlf_vs_lf),
      cmocka_unit_test(test_nul_bytes),
      cmocka_unit_test(test_keep),
      cmocka_unit_test(test_slides_like_gnu),
      cmocka_unit_test(test_defaults_and_append),
      cmocka_unit_test(test_random_small),
      cmocka_unit_test(test_random_medium),
      cmocka_unit_test(test_large_one_percent),
      cmocka_unit_test(test_large_totally_different),
      cmocka_unit_test(test_large_shuffled_bounded),
      cmocka_unit_test(test_huge_line_count),
      cmocka_unit_test(test_max_output),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
