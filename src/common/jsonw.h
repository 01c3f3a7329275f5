/* jsonw.h: writing JSON text straight into a kg_buf.
 *
 * Results are written on every compared request; building a jansson tree
 * and serialising it cost more than the comparison of two equal bodies. So
 * records are written directly, with this small writer: strings are escaped
 * as RFC 8259 requires and any byte that is not valid UTF-8 becomes U+FFFD,
 * so a record is always valid JSON whatever a backend sent. (Reading JSON is
 * jansson's job.) */
#ifndef KG_JSONW_H
#define KG_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Appends s[0..n) as a JSON string, quotes included. */
void kg_jsonw_str(kg_buf *out, const char *s, size_t n);
/* Same for a C string; NULL is written as null. */
void kg_jsonw_cstr(kg_buf *out, const char *s);
/* Numbers, written by hand: printf's cost showed in every record. */
void kg_jsonw_u64(kg_buf *out, uint64_t v);
/* v with exactly three decimals, as "%.3f" writes it. */
void kg_jsonw_fixed3(kg_buf *out, double v);

#endif
