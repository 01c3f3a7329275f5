/* linediff.h: line-by-line comparison of two bodies, as a unified diff.
 *
 * Myers' O(ND) algorithm (linear-space variant) over lines, the same result
 * shape as GNU diff -u / Ruby's Diff::LCS that kagami's users relied on.
 * Pure functions, safe to call from any thread. */
#ifndef KG_LINEDIFF_H
#define KG_LINEDIFF_H

#include <stddef.h>

#include "common/buf.h"

typedef struct kg_linediff_opts {
  const char *a_label;   /* "--- " line; e.g. the master's name */
  const char *b_label;   /* "+++ " line; e.g. the shadow's name */
  int context;           /* lines of context around changes; default 3 */
  size_t max_output;     /* stop appending hunks past this many bytes and
                            end with "... diff truncated\n"; 0 = no cap */
} kg_linediff_opts;

/* Compares a[0..alen) with b[0..blen) line by line (a line ends at '\n';
 * a final line without '\n' is a line too and is marked with
 * "\\ No newline at end of file" as diff -u does). Appends a unified diff to
 * out and returns the number of changed lines (added + removed), 0 when the
 * inputs are equal line for line (then nothing is appended). */
size_t kg_linediff(const char *a, size_t alen, const char *b, size_t blen,
                   const kg_linediff_opts *opts, kg_buf *out);

/* For callers that read every change off the whole diff and keep a copy
 * to show: appends to out what kg_linediff with max_output = cap would,
 * given whole, the diff of the same inputs and opts made without a cap.
 * Only a whole diff longer than cap is made again (capped). cap 0: all. */
void kg_linediff_keep(const char *a, size_t alen, const char *b, size_t blen,
                      const kg_linediff_opts *opts, const kg_buf *whole, size_t cap,
                      kg_buf *out);

#endif
