/* jsonfast.h: the JSON differ's fast path (issue 13: comparing at line
 * rate).
 *
 * Real responses are never byte-equal (a request id, a timestamp), so
 * every JSON pair used to be parsed into two jansson trees and walked.
 * Two documents from one serializer list keys in the same order, though:
 * kg_jsonfast reads both token by token in one pass, without building a
 * tree, while they agree; a value that differs where an ignore pattern or
 * learned noise covers it is recorded as the tree differ would record it,
 * and anything else (a real difference, keys in another order, anything
 * whose meaning the tree differ would decide differently) makes it give up
 * so that the caller runs the tree differ. The answer is therefore always
 * the tree differ's, only sooner when only noise differs. */
#ifndef KG_JSONFAST_H
#define KG_JSONFAST_H

#include <stddef.h>

#include "compare/differences.h"
#include "compare/jsondiff.h"

/* kg_jsonfast could not decide: compare with kg_jsondiff_tree. */
#define KG_JSONFAST_FALLBACK 1

/* Compares JSON bodies a (master) and b (shadow) in one lockstep pass.
 * Returns 0 when both are JSON (as jansson reads them) and every
 * difference lies under an ignore pattern of o or at a location o->noisy
 * lists: out then holds exactly what kg_jsondiff_tree(a, b, o, out) would
 * have put there (the same differences in the same order, the same
 * suppressed list). Returns KG_JSONFAST_FALLBACK, out untouched, in every
 * other case, and when out is not empty on entry. Never recurses: the
 * depth of the documents costs heap, not stack. */
int kg_jsonfast(const char *a, size_t alen, const char *b, size_t blen,
                const kg_jsondiff_opts *o, kg_diffs *out);

#endif
