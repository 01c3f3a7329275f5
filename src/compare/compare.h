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
#include "compare/noise.h"
#include "compare/result.h"

/* What applies to one comparison, gathered by the caller. */
typedef struct kg_compare_opts {
  const kg_compare_settings *settings; /* header policy, from the config */
  size_t max_body_bytes;         /* a decoded body's bound: the config's
                                    max_capture_bytes */
  const kg_rule *const *rules;   /* rules matching the endpoint */
  size_t nrules;
  const kg_noise_view *noisy;    /* learned noise, or NULL */
  size_t max_differences;        /* stored per list (body, headers); 0: 100.
                                    Noise pairs store up to what noise can
                                    learn, so every noisy location counts */
} kg_compare_opts;

/* The rules (a config's, in config order) whose endpoint pattern matches
 * endpoint, at most max of them: what kg_compare_opts.rules wants. Returns
 * how many were put in out. */
size_t kg_compare_rules(const kg_rule *rules, size_t nrules, const char *endpoint,
                        const kg_rule **out, size_t max);

/* Compares b (a shadow, or a noise partner) with a (the master). Fills
 * out, which the caller frees with kg_pair_result_free. */
void kg_compare_pair(const kg_resp_view *a, const kg_resp_view *b,
                     const kg_compare_opts *o, kg_pair_result *out);
void kg_pair_result_free(kg_pair_result *r);

/* Every difference pattern of r (headers and body), for noise learning.
 * Returns a count; *out is an owned array of borrowed strings. */
size_t kg_pair_result_patterns(const kg_pair_result *r, const char ***out);

#endif
