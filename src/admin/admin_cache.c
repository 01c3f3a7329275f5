/* admin_cache.c: the last answers of a fleet's store, for a moment (see
 * admin_int.h).
 *
 * Under `kagami admin` every dashboard polls every 3 seconds, and each
 * poll's answers are copies out of PostgreSQL (pgread.h): with many
 * browsers open, the same copy would be made many times a second. An
 * answer is kept for less than one poll period, so one browser always
 * sees what was written before its poll, and many share each copy. Only
 * on the loop thread; a handful of slots, and no answer over a size, so
 * the memory it holds stays small. */
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "common/common.h"

#define KG_ADMIN_CACHE_SLOTS 16
#define KG_ADMIN_CACHE_MAX_BODY (1024 * 1024) /* a bigger answer is not kept */

typedef struct kg_admin_cached {
  char *key;                 /* owned; NULL: a free slot */
  const char *content_type;  /* static */
  kg_buf body;
  uint64_t at_ms;            /* uv_now when it was answered */
} kg_admin_cached;

struct kg_admin_cache {
  uint64_t ttl_ms;
  kg_admin_cached slots[KG_ADMIN_CACHE_SLOTS];
};

kg_admin_cache *kg_admin_cache_new(uint64_t ttl_ms) {
  kg_admin_cache *c = kg_calloc(1, sizeof(*c));
  c->ttl_ms = ttl_ms;
  return c;
}

void kg_admin_cache_free(kg_admin_cache *c) {
  if (c == NULL) return;
  for (size_t i = 0; i < KG_ADMIN_CACHE_SLOTS; i++) {
    free(c->slots[i].key);
    kg_buf_free(&c->slots[i].body);
  }
  free(c);
}

bool kg_admin_cache_get(kg_admin_cache *c, uint64_t now_ms, const char *key,
                        kg_admin_resp *resp) {
  for (size_t i = 0; i < KG_ADMIN_CACHE_SLOTS; i++) {
    const kg_admin_cached *s = &c->slots[i];
    if (s->key == NULL || strcmp(s->key, key) != 0) continue;
    if (now_ms - s->at_ms >= c->ttl_ms) return false;
    resp->status = 200;
    resp->content_type = s->content_type;
    kg_buf_reset(&resp->body);
    kg_buf_append(&resp->body, s->body.data, s->body.len);
    return true;
  }
  return false;
}

void kg_admin_cache_put(kg_admin_cache *c, uint64_t now_ms, const char *key,
                        const kg_admin_resp *resp) {
  if (resp->status != 200 || resp->body.len > KG_ADMIN_CACHE_MAX_BODY) return;
  /* the same question's slot, else a free one, else the oldest */
  kg_admin_cached *slot = NULL;
  for (size_t i = 0; i < KG_ADMIN_CACHE_SLOTS && slot == NULL; i++)
    if (c->slots[i].key && strcmp(c->slots[i].key, key) == 0) slot = &c->slots[i];
  for (size_t i = 0; i < KG_ADMIN_CACHE_SLOTS && slot == NULL; i++)
    if (c->slots[i].key == NULL) slot = &c->slots[i];
  if (slot == NULL) {
    slot = &c->slots[0];
    for (size_t i = 1; i < KG_ADMIN_CACHE_SLOTS; i++)
      if (c->slots[i].at_ms < slot->at_ms) slot = &c->slots[i];
  }
  if (slot->key == NULL || strcmp(slot->key, key) != 0) {
    free(slot->key);
    slot->key = kg_strdup(key);
  }
  slot->content_type = resp->content_type;
  kg_buf_reset(&slot->body);
  kg_buf_append(&slot->body, resp->body.data, resp->body.len);
  slot->at_ms = now_ms;
}
