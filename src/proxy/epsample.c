/* epsample.c: per-endpoint token buckets and the once-a-minute floor
 * (see epsample.h). */
#include "proxy/epsample.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "common/common.h"

#undef uthash_malloc
#undef uthash_free
#define uthash_malloc(sz) kg_malloc(sz)
#define uthash_free(ptr, sz) free(ptr)

struct kg_epsample_entry {
  char *endpoint;          /* owned key */
  double tokens;           /* available comparisons */
  uint64_t refilled_ns;    /* when tokens were last topped up */
  uint64_t compared_ns;    /* last comparison, 0 = never */
  UT_hash_handle hh;
};

void kg_epsample_init(kg_epsample *s, double rate_per_s) {
  memset(s, 0, sizeof(*s));
  s->rate = rate_per_s;
}

void kg_epsample_free(kg_epsample *s) {
  kg_epsample_entry *e, *tmp;
  HASH_ITER(hh, s->table, e, tmp) {
    HASH_DEL(s->table, e);
    free(e->endpoint);
    free(e);
  }
}

static kg_epsample_entry *kg_epsample_get(kg_epsample *s, const char *ep,
                                          uint64_t now) {
  kg_epsample_entry *e = NULL;
  HASH_FIND_STR(s->table, ep, e);
  if (e) return e;
  if (s->count >= KG_EPSAMPLE_MAX) {
    ep = "(other)";
    HASH_FIND_STR(s->table, ep, e);
    if (e) return e;
  }
  e = kg_calloc(1, sizeof(*e));
  e->endpoint = kg_strdup(ep);
  /* A full bucket to start: a burst of one second's worth. */
  e->tokens = s->rate > 1 ? s->rate : 1;
  e->refilled_ns = now;
  HASH_ADD_KEYPTR(hh, s->table, e->endpoint, strlen(e->endpoint), e);
  s->count++;
  return e;
}

bool kg_epsample_decide(kg_epsample *s, const char *endpoint, bool picked,
                        uint64_t now_ns) {
  kg_epsample_entry *e = kg_epsample_get(s, endpoint, now_ns);
  bool stale = e->compared_ns == 0 ||
               now_ns - e->compared_ns >= (uint64_t)KG_EPSAMPLE_FLOOR_S * 1000000000u;
  if (s->rate > 0) {
    double burst = s->rate > 1 ? s->rate : 1;
    e->tokens += (double)(now_ns - e->refilled_ns) / 1e9 * s->rate;
    if (e->tokens > burst) e->tokens = burst;
    e->refilled_ns = now_ns;
  }
  if (!picked && !stale) return false;
  if (s->rate > 0) {
    if (e->tokens < 1) return false;
    e->tokens -= 1;
  }
  e->compared_ns = now_ns;
  return true;
}
