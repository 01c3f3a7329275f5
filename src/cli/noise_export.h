/* noise_export.h: learned noise as config rules, for `kagami noise
 * --export`.
 *
 * A team reviews what kagami learned and freezes it: the fragment this
 * writes is pasted into the config's table (`rules = { ... },`) and, run
 * with noise = { learn = false }, hides the same locations. Only
 * locations hidden now (`suppressed`) are exported, each as the rule that
 * hides that location:
 *   a JSON path ($.meta.ts)       -> ignore
 *   an XPath (/html/body/p[1]/..) -> ignore_xpath (positions kept)
 *   header:name                   -> ignore_headers
 * These are exact for what noise usually is, a leaf (a value, a text
 * node, an attribute, a single header field). Rules have no "this node
 * only" form, so where learning saw a whole object, array or element
 * differ (added, removed, changing type), the rule also hides changes
 * inside it, and ignore_headers also hides the field when it is repeated:
 * the fragment's header says so, for the reviewer.
 * Every other location becomes a comment saying why no rule is written:
 * a repeated header's k-th field (ignore_headers would hide every field of
 * that name), a text line (`line N: shape -> shape`: a replace regex acts
 * on every line of that shape anywhere in the body, so it would hide real
 * changes on other lines), a binary body, a pattern the rule's checker
 * refuses, an endpoint whose name has '*' (a rule's glob cannot match it
 * literally). A hidden real difference is worse than a false alarm, so
 * the export never widens. */
#ifndef KG_NOISE_EXPORT_H
#define KG_NOISE_EXPORT_H

#include <jansson.h>

#include "common/buf.h"

/* Appends the fragment for `api`, the /api/noise answer as parsed (see
 * admin_api.c), to out; `source` (the admin URL, or NULL) is named in its
 * header comment. Untrusted input: a member of the wrong type makes its
 * entry a comment, never a rule. Returns the number of locations written
 * as rules, or -1 (nothing appended) when api has no "endpoints" array. */
int kg_noise_export_lua(const json_t *api, const char *source, kg_buf *out);

/* Appends s with control bytes as \ddd: for the inside of a Lua comment
 * (a newline would end it and make the rest code) and for a terminal
 * (an escape sequence in a location must not reach it). */
void kg_noise_export_printable(kg_buf *out, const char *s);

#endif
