/* hdrs.h: an ordered list of HTTP header fields.
 *
 * Names and values live NUL-terminated in one owned buffer and are found by
 * offset, so growing the list never invalidates what was stored. Order and
 * spelling are kept exactly as received: a proxy must not reorder or
 * re-case what it forwards. */
#ifndef KG_HDRS_H
#define KG_HDRS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct kg_hdr {
  uint32_t name_off, name_len;
  uint32_t value_off, value_len;
} kg_hdr;

typedef struct kg_hdrs {
  kg_buf data;  /* owned: "name\0value\0" for every field */
  kg_hdr *v;    /* owned array of n fields */
  size_t n, cap;
} kg_hdrs;

#define KG_HDRS_INIT {KG_BUF_INIT, NULL, 0, 0}

void kg_hdrs_add(kg_hdrs *h, const char *name, size_t nlen, const char *value,
                 size_t vlen);
/* Appends to the value of the last field (a header split across reads). */
void kg_hdrs_extend_last_value(kg_hdrs *h, const char *p, size_t n);
void kg_hdrs_extend_last_name(kg_hdrs *h, const char *p, size_t n);
void kg_hdrs_reset(kg_hdrs *h);
void kg_hdrs_free(kg_hdrs *h);
void kg_hdrs_copy(kg_hdrs *dst, const kg_hdrs *src);

static inline const char *kg_hdrs_name(const kg_hdrs *h, size_t i) {
  return h->data.data + h->v[i].name_off;
}
static inline const char *kg_hdrs_value(const kg_hdrs *h, size_t i) {
  return h->data.data + h->v[i].value_off;
}
/* Index of the first field named `name` (case-insensitive), or -1. */
long kg_hdrs_find(const kg_hdrs *h, const char *name);

#endif
