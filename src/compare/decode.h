/* decode.h: undoing Content-Encoding before bodies are compared.
 *
 * Master and shadow may compress differently (or one not at all), and a
 * diff of compressed bytes means nothing, so bodies are decoded first.
 * Decoding is bounded: a small compressed body can expand a thousandfold,
 * and the output never grows past the caller's max_out. Pure and
 * thread-safe (no shared state); safe to run on the thread pool. */
#ifndef KG_DECODE_H
#define KG_DECODE_H

#include <stddef.h>

#include "common/buf.h"

/* Decodes `in` (n bytes) according to `content_encoding`, the header's
 * value: a comma-separated list of codings in the order they were applied
 * ("gzip", "deflate, gzip"), case-insensitive, which is undone from last to
 * first. Understood: gzip and x-gzip (concatenated members are all
 * decoded), deflate (zlib-wrapped as RFC 9110 says, or raw as some servers
 * send; told apart by the header), identity. NULL or an empty value means
 * identity. An empty body decodes to nothing whatever the coding (HEAD and
 * 304 responses carry the header without a body).
 *
 * max_out bounds the bytes this call may append (identity included): no
 * buffer ever grows past it, so a compression bomb costs at most max_out
 * of memory and the time to inflate that much.
 *
 * Returns 0 with the decoded bytes appended to out (kg_buf keeps its NUL
 * terminator), or -1 with out as it was and *err pointing at a static
 * message (never freed, safe to keep or pass to another thread):
 *   "unsupported content-encoding br" (also zstd, compress, x-compress;
 *        other unknown codings give "unsupported content-encoding")
 *   "too many content-codings"       (more than 4 besides identity)
 *   "invalid gzip data" / "invalid deflate data"
 *   "truncated gzip data" / "truncated deflate data"
 *   "decoded body over the capture limit" (the caller knows the number).
 * err may be NULL if the caller does not want the message. */
int kg_decode_body(const char *content_encoding, const char *in, size_t n,
                   size_t max_out, kg_buf *out, const char **err);

#endif
