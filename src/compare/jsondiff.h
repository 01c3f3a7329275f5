/* jsondiff.h: structural comparison of two JSON documents.
 *
 * Both bodies are parsed (jansson) and walked side by side; each difference
 * is reported at the deepest path where the two sides disagree, as a
 * kg_difference whose `where` and `pattern` are the concrete path: noise is
 * learned and hidden per concrete location, so a noisy $.rows[0].n never
 * hides a change at $.rows[1].n.
 *
 * Paths and patterns share one syntax:
 *   $               the root
 *   .name           an object key made of [A-Za-z_][A-Za-z0-9_]*
 *   ["any key"]     any other key, as a JSON string ("\u00e9", "a \"b\"", "")
 *   [3]             an array index (no leading zeros)
 * Patterns add:
 *   [*]             any array index
 *   .*              any object key (never an index; ["*"] is the key "*")
 *   ..seg           seg at any depth below (seg is a name, *, or [...]):
 *                   $..request_id, $..[*], $..["odd key"]
 * A pattern matches a path when it matches the whole path or an ancestor of
 * it: the pattern $.meta covers $.meta.ts.
 *
 * Comparison rules (the why is in jsondiff.c):
 *   - object key order never matters; with duplicate keys the last one wins
 *     (what JavaScript's JSON.parse and most clients see);
 *   - numbers compare by exact value whatever their spelling or jansson type:
 *     1 == 1.0 == 1e0 == 10e-1, -0 == 0, 2^63-1 != 2^63-2;
 *   - strings compare by their bytes after unescaping ("\u00e9" == "é");
 *   - arrays compare index by index, or as multisets when their path matches
 *     an `unordered` pattern;
 *   - a type change is a difference reported at the node itself.
 *
 * Two documents that differ only where ignore patterns or learned noise
 * say are compared token by token without building trees (jsonfast.h);
 * anything else is compared on trees, with the same results.
 *
 * Everything here is reentrant: no globals, safe from libuv's thread pool. */
#ifndef KG_JSONDIFF_H
#define KG_JSONDIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "compare/differences.h"
#include "compare/noise.h"

typedef struct kg_jsondiff_opts {
  const char *const *ignore;    /* patterns whose differences are noise:
                                   hidden and listed in out->suppressed */
  size_t nignore;
  const char *const *unordered; /* patterns of arrays compared as multisets */
  size_t nunordered;
  const kg_noise_view *noisy;   /* learned noise, or NULL: locations whose
                                   differences the caller takes out
                                   afterwards (kg_compare_pair). Reported
                                   like any other here; they only let the
                                   fast path (jsonfast.h) go on */
} kg_jsondiff_opts;

/* Compares JSON bodies a (master) and b (shadow), which need not be
 * NUL-terminated. Any top-level value is accepted. Not JSON: an empty body,
 * trailing garbage, a BOM, nesting beyond jansson's limit (2047 containers
 * in 2.14), a number outside double range, "\u0000" inside a key.
 * o may be NULL (no patterns); patterns that fail kg_jsonpath_check are
 * skipped. Differences and suppressions are appended to out (owned by the
 * caller, freed with kg_diffs_free).
 * Returns 0 when both parsed, -1 when a is not JSON, -2 when b is not (a is
 * checked first); out is untouched unless 0 is returned. */
int kg_jsondiff(const char *a, size_t alen, const char *b, size_t blen,
                const kg_jsondiff_opts *o, kg_diffs *out);

/* kg_jsondiff without its fast path: both bodies parsed into jansson trees
 * and walked. The reference the fast path is measured and fuzzed against
 * (same contract, same results). kg_jsondiff tries kg_jsonfast first and
 * falls back to this one. */
int kg_jsondiff_tree(const char *a, size_t alen, const char *b, size_t blen,
                     const kg_jsondiff_opts *o, kg_diffs *out);

/* True when pattern matches path or an ancestor of path. path is a concrete
 * path as kg_jsondiff writes it, or its generalised form with [*] (matched
 * only by a [*] pattern segment). False when either fails to parse. */
bool kg_jsonpath_match(const char *pattern, const char *path);

/* Validates a pattern for the config loader: 0, or -1 with a message naming
 * the offset of the problem in err (always NUL-terminated when errlen > 0). */
int kg_jsonpath_check(const char *pattern, char *err, size_t errlen);

#endif
