/* compare.h: one exchange's responses compared with the master's.
 *
 * Pure and thread-safe: runs in libuv's thread pool. Input is the list of
 * responses with the master first; output is a kg_result the caller owns
 * (free with kg_result_free). */
#ifndef KG_COMPARE_H
#define KG_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "hooks.h"

typedef struct kg_result_leg {
  bool equal;          /* this shadow matched the master (master: true) */
  bool status_differs; /* the status codes differ */
  size_t changed_lines; /* lines added + removed in the body diff */
} kg_result_leg;

typedef struct kg_result {
  bool equal;                          /* every shadow matched */
  bool truncated;                      /* some body was cut at the cap */
  kg_result_leg legs[KG_MAX_BACKENDS]; /* parallel to the input */
  size_t nlegs;
  kg_buf diff;                         /* unified diffs, shadow by shadow */
} kg_result;

#define KG_MAX_DIFF_BYTES (256 * 1024) /* per shadow, in the diff field */

/* Compares resps[1..n) with resps[0]. A failed backend (error set) never
 * equals; a master failure makes every shadow unequal. */
void kg_compare(const kg_resp_view *resps, size_t n, kg_result *out);
void kg_result_free(kg_result *r);

#endif
