/* epstats.c: per-endpoint counters and latency histograms (see epstats.h). */
#include "results/epstats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "common/common.h"

#undef uthash_malloc
#undef uthash_free
#define uthash_malloc(sz) kg_malloc(sz)
#define uthash_free(ptr, sz) free(ptr)

typedef struct kg_epstat {
  char *endpoint;        /* owned key */
  uint64_t compared, differing;
  uint64_t errors[64];
  uint64_t flagged;      /* shadows whose regression flag is up */
  kg_hist **lat;         /* owned, one per backend: each NULL until that
                            backend's first answer (26 KiB apiece) */
  UT_hash_handle hh;
} kg_epstat;

struct kg_epstats {
  pthread_mutex_t lock;
  size_t nbackends;
  double factor;
  kg_epstat *table;      /* uthash */
  size_t n;
  size_t max;            /* endpoints tracked apart; then "(other)" */
};

kg_epstats *kg_epstats_new(size_t nbackends, double regression_factor,
                           size_t max_endpoints) {
  kg_epstats *s = kg_calloc(1, sizeof(*s));
  s->max = max_endpoints ? max_endpoints : KG_EPSTATS_MAX;
  pthread_mutex_init(&s->lock, NULL);
  s->nbackends = KG_MIN(nbackends, (size_t)64);
  s->factor = regression_factor;
  return s;
}

void kg_epstats_free(kg_epstats *s) {
  if (s == NULL) return;
  kg_epstat *e, *tmp;
  HASH_ITER(hh, s->table, e, tmp) {
    HASH_DEL(s->table, e);
    free(e->endpoint);
    for (size_t i = 0; i < s->nbackends; i++) free(e->lat[i]);
    free(e->lat);
    free(e);
  }
  pthread_mutex_destroy(&s->lock);
  free(s);
}

static kg_epstat *kg_epstats_get(kg_epstats *s, const char *endpoint) {
  kg_epstat *e = NULL;
  HASH_FIND_STR(s->table, endpoint, e);
  if (e) return e;
  if (s->n >= s->max) {
    endpoint = "(other)";
    HASH_FIND_STR(s->table, endpoint, e);
    if (e) return e;
  }
  e = kg_calloc(1, sizeof(*e));
  e->endpoint = kg_strdup(endpoint);
  e->lat = kg_calloc(s->nbackends ? s->nbackends : 1, sizeof(kg_hist *));
  HASH_ADD_KEYPTR(hh, s->table, e->endpoint, strlen(e->endpoint), e);
  s->n++;
  return e;
}

uint64_t kg_epstats_record(kg_epstats *s, const char *endpoint, bool equal,
                           const bool *present, const bool *failed,
                           const uint64_t *elapsed_us, uint64_t *flagged) {
  pthread_mutex_lock(&s->lock);
  kg_epstat *e = kg_epstats_get(s, endpoint);
  e->compared++;
  if (!equal) e->differing++;
  for (size_t i = 0; i < s->nbackends; i++) {
    if (!present[i]) continue;
    if (failed[i]) {
      e->errors[i]++;
      continue;
    }
    if (e->lat[i] == NULL) {
      e->lat[i] = kg_malloc(sizeof(kg_hist));
      kg_hist_init(e->lat[i]);
    }
    kg_hist_add(e->lat[i], elapsed_us[i]);
  }
  /* p90 of each shadow against the master's, once both have enough
   * samples to mean something. */
  uint64_t before = e->flagged;
  const kg_hist *m = e->lat[0];
  /* Percentiles walk the histogram: re-judged every 16th result (and the
   * first time there are enough samples), which is plenty for a flag. */
  bool judge = e->compared % 16 == 0 || e->compared == KG_EPSTATS_MIN_SAMPLES;
  for (size_t i = 1; judge && i < s->nbackends; i++) {
    const kg_hist *h = e->lat[i];
    if (m == NULL || h == NULL || kg_hist_count(m) < KG_EPSTATS_MIN_SAMPLES ||
        kg_hist_count(h) < KG_EPSTATS_MIN_SAMPLES)
      continue;
    double mp = (double)kg_hist_percentile(m, 90), sp = (double)kg_hist_percentile(h, 90);
    if (sp > s->factor * (mp > 1 ? mp : 1)) e->flagged |= 1ULL << i;
    else e->flagged &= ~(1ULL << i);
  }
  uint64_t raised = e->flagged & ~before;
  if (flagged) *flagged = e->flagged;
  pthread_mutex_unlock(&s->lock);
  return raised;
}

size_t kg_epstats_totals(kg_epstats *s, kg_hist *merged, size_t nb, uint64_t *flagged) {
  pthread_mutex_lock(&s->lock);
  nb = KG_MIN(nb, s->nbackends);
  kg_epstat *e, *tmp;
  HASH_ITER(hh, s->table, e, tmp) {
    for (size_t i = 0; i < nb; i++) {
      if (e->lat[i]) kg_hist_merge(&merged[i], e->lat[i]);
      if ((e->flagged >> i) & 1) flagged[i]++;
    }
  }
  size_t n = s->n;
  pthread_mutex_unlock(&s->lock);
  return n;
}
