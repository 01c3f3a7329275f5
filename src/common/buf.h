/* buf.h: a growable byte buffer. The struct is owned by whoever embeds it;
 * its storage is freed by kg_buf_free. Data is always NUL-terminated (the
 * terminator is not counted in len) so it can be handed to C string APIs. */
#ifndef KG_BUF_H
#define KG_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

typedef struct kg_buf {
  char *data;  /* owned; NULL until the first append */
  size_t len;  /* bytes in use */
  size_t cap;  /* bytes allocated (excluding the terminator slot) */
} kg_buf;

#define KG_BUF_INIT {NULL, 0, 0}

/* Makes room for `extra` more bytes (plus the terminator). */
void kg_buf_grow(kg_buf *b, size_t extra);

static inline void kg_buf_reserve(kg_buf *b, size_t extra) {
  if (b->data == NULL || b->cap - b->len < extra) kg_buf_grow(b, extra);
}

/* Inline because the proxy path appends a few hundred small pieces per
 * request; the call and the growth check would cost more than the copy. */
static inline void kg_buf_append(kg_buf *b, const void *p, size_t n) {
  kg_buf_reserve(b, n);
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}
void kg_buf_appends(kg_buf *b, const char *s);
/* A string literal, its length known at compile time. */
#define kg_buf_appendl(b, lit) kg_buf_append((b), "" lit, sizeof(lit) - 1)
void kg_buf_appendf(kg_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void kg_buf_vappendf(kg_buf *b, const char *fmt, va_list ap);
/* Drops the first n bytes, keeping the rest. */
void kg_buf_consume(kg_buf *b, size_t n);
void kg_buf_reset(kg_buf *b);  /* len = 0, keeps the storage */
void kg_buf_free(kg_buf *b);   /* frees the storage, back to KG_BUF_INIT */
/* Hands the storage to the caller (free with free()); b becomes empty. */
char *kg_buf_steal(kg_buf *b, size_t *len);

#endif
