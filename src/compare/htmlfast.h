/* htmlfast.h: the HTML differ's fast path (issue 13: comparing at line
 * rate).
 *
 * A real page is never byte-equal to its shadow's (a CSRF token, a
 * timestamp), so every pair used to be parsed into two libxml2 trees,
 * matched against the ignore expressions and written out as canonical
 * text: ~0.8 ms for a 20 KB page, two thirds of it the parses. Two renders
 * of one template differ in a few bytes, though. kg_htmlfast tokenizes
 * both pages in one lockstep pass (only the master's while the bytes
 * agree) and, where they differ, decides from the tokens around the
 * difference alone whether an ignore expression hides it:
 *
 * - a differing attribute value: `//TAG[@A='V']/@NAME` (TAG may be "*",
 *   without the predicate too) naming that attribute of that start tag;
 * - a differing text: `//TAG[@A='V']/text()` where the text follows the
 *   start tag directly and ends at a tag;
 * - a comment, or whitespace that the canonical form collapses: no
 *   difference at all.
 *
 * Anything else (a real difference, an expression outside that subset,
 * markup whose reading by libxml2's HTML parser is not certain, a non-ASCII
 * or escaped value, nesting near libxml2's depth limit) makes it give up,
 * and the caller runs the tree differ. Where it decides, the differences
 * changed nothing the parser builds but the hidden values, so the answer
 * is the tree differ's: no difference, the same suppressed expressions.
 * Checked against the tree differ by a differential fuzz target. */
#ifndef KG_HTMLFAST_H
#define KG_HTMLFAST_H

#include <stddef.h>

#include "compare/differences.h"
#include "compare/htmldiff.h"

/* kg_htmlfast could not decide: compare with kg_htmldiff_tree. */
#define KG_HTMLFAST_FALLBACK 1

/* Compares HTML bodies a (master) and b (shadow). Returns 0 when both are
 * HTML pages that differ only where o's ignore expressions hide it: out
 * then has the suppressed expressions kg_htmldiff_tree would list, in the
 * same order, and no difference, and the unified diff is empty. Returns
 * KG_HTMLFAST_FALLBACK, out untouched, in every other case. */
int kg_htmlfast(const char *a, size_t alen, const char *b, size_t blen,
                const kg_htmldiff_opts *o, kg_diffs *out);

#endif
