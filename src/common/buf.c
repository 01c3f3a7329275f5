/* buf.c: growable byte buffer (see buf.h). */
#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

void kg_buf_grow(kg_buf *b, size_t extra) {
  if (b->data != NULL && b->len + extra <= b->cap) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra) cap *= 2;
  bool fresh = b->data == NULL;
  b->data = kg_realloc(b->data, cap + 1);
  if (fresh) b->data[0] = '\0';
  b->cap = cap;
}

void kg_buf_appends(kg_buf *b, const char *s) { kg_buf_append(b, s, strlen(s)); }

void kg_buf_vappendf(kg_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return;
  kg_buf_reserve(b, (size_t)n);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void kg_buf_appendf(kg_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  kg_buf_vappendf(b, fmt, ap);
  va_end(ap);
}

void kg_buf_consume(kg_buf *b, size_t n) {
  if (n >= b->len) {
    kg_buf_reset(b);
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  b->data[b->len] = '\0';
}

void kg_buf_reset(kg_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

void kg_buf_free(kg_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

char *kg_buf_steal(kg_buf *b, size_t *len) {
  if (b->data == NULL) {
    kg_buf_reserve(b, 0);
    b->data[0] = '\0';
  }
  char *p = b->data;
  if (len) *len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}
