/* compare.h: one shadow's response compared with the master's.
 *
 * Pure and thread-safe: runs in libuv's thread pool. The pipeline, for a
 * pair of responses:
 *   status -> header fields (minus the ignore list; Set-Cookie by cookie
 *   name) -> Content-Encoding undone (bounded) -> by media type:
 *     JSON  structural, by JSON path (noise rules: ignore, unordered)
 *     HTML  by node, with XPath locations (noise rules: ignore_xpath)
 *     text  line by line after regex replacements (noise rules: replace)
 *     other byte for byte, with sizes and a CRC-32
 *   -> learned noise: differences whose pattern is noisy for the endpoint
 *      are taken out and listed as suppressed.
 * A JSON or HTML body that does not parse is compared as text. */
#ifndef KG_COMPARE_H
#define KG_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "compare/differences.h"
#include "compare/rules.h"
#include "proxy/hooks.h"
#include "compare/noise.h"

typedef enum kg_kind {
  KG_KIND_TEXT = 0,
  KG_KIND_JSON,
  KG_KIND_HTML,
  KG_KIND_BINARY,
} kg_kind;

const char *kg_kind_name(kg_kind k);

/* Header differences use the same shape as body differences: where is
 * "header:Name", master/shadow the values (several fields joined by ", "). */

typedef struct kg_pair_result {
  bool equal;            /* nothing differs (after noise) */
  bool status_differs;
  kg_kind kind;          /* how the bodies were compared */
  const char *error;     /* static: why the comparison could not be made
                            (a failed backend, an undecodable body) */
  kg_diffs body;         /* body differences */
  kg_diffs headers;      /* header differences */
  kg_buf diff;           /* human-readable unified diff of the bodies */
} kg_pair_result;

/* What applies to one comparison, gathered by the caller. */
typedef struct kg_compare_opts {
  const kg_compare_settings *settings; /* header policy, from the config */
  size_t max_body_bytes;         /* a decoded body's bound: the config's
                                    max_capture_bytes */
  const kg_rule *const *rules;   /* rules matching the endpoint */
  size_t nrules;
  const kg_noise_view *noisy;    /* learned noise, or NULL */
} kg_compare_opts;

/* Compares b (a shadow, or a noise partner) with a (the master). Fills
 * out, which the caller frees with kg_pair_result_free. */
void kg_compare_pair(const kg_resp_view *a, const kg_resp_view *b,
                     const kg_compare_opts *o, kg_pair_result *out);
void kg_pair_result_free(kg_pair_result *r);

/* Every difference pattern of r (headers and body), for noise learning.
 * Returns a count; *out is an owned array of borrowed strings. */
size_t kg_pair_result_patterns(const kg_pair_result *r, const char ***out);

#endif
