/* hdrs.c: ordered header field list (see hdrs.h). */
#include "http/hdrs.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"

/* Room for a typical head up front: messages are parsed into fresh lists
 * (they move on to their exchange), and growing from nothing took several
 * reallocs per message. */
#define KG_HDRS_FIRST_BYTES 512

void kg_hdrs_add(kg_hdrs *h, const char *name, size_t nlen, const char *value,
                 size_t vlen) {
  if (h->n == h->cap) {
    h->cap = h->cap ? h->cap * 2 : 16;
    h->v = kg_realloc(h->v, h->cap * sizeof(*h->v));
  }
  kg_buf_reserve(&h->data, KG_MAX(nlen + vlen + 2, h->data.data ? 0 : KG_HDRS_FIRST_BYTES));
  kg_hdr *f = &h->v[h->n++];
  char *d = h->data.data + h->data.len;
  f->name_off = (uint32_t)h->data.len;
  f->name_len = (uint32_t)nlen;
  if (nlen) memcpy(d, name, nlen);
  d[nlen] = '\0';
  f->value_off = (uint32_t)(h->data.len + nlen + 1);
  f->value_len = (uint32_t)vlen;
  if (vlen) memcpy(d + nlen + 1, value, vlen);
  d[nlen + 1 + vlen] = '\0';
  h->data.len += nlen + vlen + 2;
  h->data.data[h->data.len] = '\0';
}

/* The last field's value is the last thing in the buffer: drop its
 * terminator, append, terminate again. */
void kg_hdrs_extend_last_value(kg_hdrs *h, const char *p, size_t n) {
  if (h->n == 0) return;
  kg_hdr *f = &h->v[h->n - 1];
  h->data.len--;
  kg_buf_append(&h->data, p, n);
  kg_buf_append(&h->data, "", 1);
  f->value_len += (uint32_t)n;
}

/* Only valid while the last field has an empty value (the parser delivers
 * the whole name before any of the value). */
void kg_hdrs_extend_last_name(kg_hdrs *h, const char *p, size_t n) {
  if (h->n == 0) return;
  kg_hdr *f = &h->v[h->n - 1];
  h->data.len = f->name_off + f->name_len;
  kg_buf_append(&h->data, p, n);
  kg_buf_append(&h->data, "", 1);
  f->name_len += (uint32_t)n;
  f->value_off = (uint32_t)h->data.len;
  kg_buf_append(&h->data, "", 1);
}

void kg_hdrs_reset(kg_hdrs *h) {
  kg_buf_reset(&h->data);
  h->n = 0;
}

void kg_hdrs_free(kg_hdrs *h) {
  kg_buf_free(&h->data);
  free(h->v);
  h->v = NULL;
  h->n = h->cap = 0;
}

void kg_hdrs_copy(kg_hdrs *dst, const kg_hdrs *src) {
  kg_hdrs_reset(dst);
  for (size_t i = 0; i < src->n; i++)
    kg_hdrs_add(dst, kg_hdrs_name(src, i), src->v[i].name_len,
                kg_hdrs_value(src, i), src->v[i].value_len);
}

long kg_hdrs_find(const kg_hdrs *h, const char *name) {
  size_t len = strlen(name);
  for (size_t i = 0; i < h->n; i++)
    if (h->v[i].name_len == len && strcasecmp(kg_hdrs_name(h, i), name) == 0)
      return (long)i;
  return -1;
}
