/* textnorm.h: regex replacements that remove noise from text bodies.
 *
 * Before two text bodies are diffed line by line, values that change on
 * every request (CSRF tokens, timestamps, request ids) are replaced with
 * fixed text, so that only real differences remain. Each rule is a PCRE2
 * pattern and a replacement in PCRE2's syntax ($1, ${name}, $$), applied
 * globally; rules apply in order, each to the previous one's output.
 *
 * Bytes, not characters: patterns are compiled without UTF (and with
 * PCRE2_NEVER_UTF, so "(*UTF)" is a compile error rather than a surprise),
 * because bodies are often not valid UTF-8 and a UTF-mode match would fail
 * on them. "." matches one byte, \w and [a-z] are ASCII; a literal
 * multibyte character in a pattern still matches its bytes. NUL bytes in
 * the input are ordinary bytes.
 *
 * Bounded: each match attempt runs under KG_TEXTNORM_MATCH_LIMIT (and, for
 * the interpreter, depth and heap limits), so a catastrophically
 * backtracking rule fails instead of stalling a thread. The limits bound
 * one attempt; a rule that nearly hits them at every position of a large
 * body is still slow, which is what testing a rule on real bodies is for.
 * Replacements are trusted config: a rule that matches the empty string
 * everywhere with a long replacement grows the text accordingly.
 *
 * A kg_textnorm is immutable once built, so any number of threads may
 * apply the same one at once (each call uses its own match data). */
#ifndef KG_TEXTNORM_H
#define KG_TEXTNORM_H

#include <stddef.h>

#include "common/buf.h"

#define KG_TEXTNORM_MATCH_LIMIT 1000000u /* pcre2_set_match_limit */
#define KG_TEXTNORM_DEPTH_LIMIT 100000u  /* pcre2_set_depth_limit */
#define KG_TEXTNORM_HEAP_LIMIT 32768u    /* pcre2_set_heap_limit, KiB */

typedef struct kg_textnorm kg_textnorm;

/* Compiles n rules: patterns[i] replaced by replacements[i]. Returns the
 * normaliser (free with kg_textnorm_free) or NULL with a message in err
 * (NUL-terminated when errlen > 0) naming the first bad rule by its
 * 1-based position: "pattern 2: missing closing parenthesis at offset 7",
 * "replacement 1: group 3 does not exist (the pattern has 1)". Replacements
 * are checked here, so a rule cannot fail later because of its own syntax.
 * n == 0 gives a normaliser that copies its input. JIT-compiled when the
 * platform allows, silently interpreted otherwise. */
kg_textnorm *kg_textnorm_new(const char *const *patterns,
                             const char *const *replacements, size_t n,
                             char *err, size_t errlen);

/* Appends to out the normalised form of in[0..n): every rule applied in
 * order. If replaced is not NULL it receives the number of substitutions
 * made (all rules together). Returns 0, or -1 when some rule failed (it hit
 * a match limit): that rule's step is skipped, its input passed on
 * unreplaced, and the other rules still apply, so out is still appended;
 * the caller should compare raw text instead. */
int kg_textnorm_apply(const kg_textnorm *t, const char *in, size_t n,
                      kg_buf *out, size_t *replaced);

/* Frees t (NULL is fine). */
void kg_textnorm_free(kg_textnorm *t);

#endif
