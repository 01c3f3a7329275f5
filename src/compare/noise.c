/* noise.c: per-endpoint noise statistics (see noise.h). */
#include "compare/noise.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>

#include "common/buf.h"
#include "common/common.h"
#include "common/log.h"
#include "compare/rules.h"

#undef uthash_malloc
#undef uthash_free
#define uthash_malloc(sz) kg_malloc(sz)
#define uthash_free(ptr, sz) free(ptr)

typedef struct kg_noise_pattern {
  char *pattern;       /* owned key: a concrete location */
  uint64_t differed;   /* pairs that differed here */
  double first_seen;   /* wall clock of the first and latest of those */
  double last_seen;
  bool logged;         /* its learning was logged */
  uint64_t fleet_differed;            /* the other instances' (kg_noise_set_fleet) */
  double fleet_first, fleet_last;
  UT_hash_handle hh;
} kg_noise_pattern;

typedef struct kg_noise_endpoint {
  char *endpoint;               /* owned key */
  uint64_t pairs;               /* noise pairs seen */
  double first_seen;            /* wall clock of the first and latest pair */
  double last_seen;
  kg_noise_pattern *patterns;   /* uthash table */
  size_t npatterns;
  uint64_t fleet_pairs;         /* the other instances' pairs */
  double fleet_first, fleet_last;
  UT_hash_handle hh;
} kg_noise_endpoint;

struct kg_noise {
  pthread_mutex_t lock;
  double threshold;             /* share of pairs, 0..1 */
  uint64_t min_pairs;
  kg_noise_endpoint *endpoints; /* uthash table */
  size_t nendpoints;
  size_t npatterns;             /* over every endpoint */
  bool full;                    /* a cap stopped something being learned */
  uint64_t seq;                 /* local pairs observed: a publisher's clock */
};

kg_noise *kg_noise_new(double threshold, uint64_t min_pairs) {
  kg_noise *n = kg_calloc(1, sizeof(*n));
  pthread_mutex_init(&n->lock, NULL);
  n->threshold = threshold;
  n->min_pairs = min_pairs ? min_pairs : 1;
  return n;
}

void kg_noise_free(kg_noise *n) {
  if (n == NULL) return;
  kg_noise_endpoint *e, *etmp;
  HASH_ITER(hh, n->endpoints, e, etmp) {
    kg_noise_pattern *p, *ptmp;
    HASH_ITER(hh, e->patterns, p, ptmp) {
      HASH_DEL(e->patterns, p);
      free(p->pattern);
      free(p);
    }
    HASH_DEL(n->endpoints, e);
    free(e->endpoint);
    free(e);
  }
  pthread_mutex_destroy(&n->lock);
  free(n);
}

/* Under the lock. Creates the entry unless the table is full. */
static kg_noise_endpoint *kg_noise_endpoint_get(kg_noise *n, const char *ep,
                                                bool create) {
  kg_noise_endpoint *e = NULL;
  HASH_FIND_STR(n->endpoints, ep, e);
  if (e || !create) return e;
  if (n->nendpoints >= KG_NOISE_MAX_ENDPOINTS) {
    n->full = true;
    return NULL;
  }
  e = kg_calloc(1, sizeof(*e));
  e->endpoint = kg_strdup(ep);
  HASH_ADD_KEYPTR(hh, n->endpoints, e->endpoint, strlen(e->endpoint), e);
  n->nendpoints++;
  return e;
}

/* Pairs and differed counts are this instance's plus, in a fleet, the
 * other instances' (kg_noise_set_fleet): one rule for both, so merged
 * evidence hides exactly what as many local pairs would. */
static uint64_t kg_noise_pairs(const kg_noise_endpoint *e) { return e->pairs + e->fleet_pairs; }
static uint64_t kg_noise_differed(const kg_noise_pattern *p) {
  return p->differed + p->fleet_differed;
}

/* Under the lock: whether p is noisy for e now. */
static bool kg_noise_is_noisy(const kg_noise *n, const kg_noise_endpoint *e,
                              const kg_noise_pattern *p) {
  return kg_noise_pairs(e) >= n->min_pairs &&
         (double)kg_noise_differed(p) >= n->threshold * (double)kg_noise_pairs(e);
}

/* Under the lock: adds p to the log line of what e learned just now, once
 * per pattern's life, so a person can see when noise starts being hidden. */
static void kg_noise_note_learned(const kg_noise *n, const kg_noise_endpoint *e,
                                  kg_noise_pattern *p, kg_buf *line, size_t *count) {
  if (p->logged || !kg_noise_is_noisy(n, e, p)) return;
  p->logged = true;
  if ((*count)++ < 5) {
    kg_buf_appends(line, *count > 1 ? ", " : "");
    kg_buf_appends(line, p->pattern);
  }
}

/* Wall-clock Unix seconds: evidence is read by people, next to logs. */
static double kg_noise_wallclock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void kg_noise_observe(kg_noise *n, const char *endpoint,
                      const char *const *patterns, size_t count) {
  kg_buf learned = KG_BUF_INIT;
  size_t nlearned = 0;
  double now = kg_noise_wallclock();
  pthread_mutex_lock(&n->lock);
  kg_noise_endpoint *e = kg_noise_endpoint_get(n, endpoint, true);
  if (e) {
    n->seq++;
    if (e->pairs++ == 0) e->first_seen = now;
    e->last_seen = now;
    for (size_t i = 0; i < count; i++) {
      bool dup = false;
      for (size_t j = 0; j < i && !dup; j++)
        dup = strcmp(patterns[i], patterns[j]) == 0;
      if (dup) continue;
      kg_noise_pattern *p = NULL;
      HASH_FIND_STR(e->patterns, patterns[i], p);
      if (p == NULL) {
        if (e->npatterns >= KG_NOISE_MAX_PATTERNS ||
            n->npatterns >= KG_NOISE_MAX_TOTAL_PATTERNS) {
          n->full = true;
          continue;
        }
        p = kg_calloc(1, sizeof(*p));
        p->pattern = kg_strdup(patterns[i]);
        p->first_seen = now;
        HASH_ADD_KEYPTR(hh, e->patterns, p->pattern, strlen(p->pattern), p);
        e->npatterns++;
        n->npatterns++;
      }
      p->differed++;
      p->last_seen = now;
      kg_noise_note_learned(n, e, p, &learned, &nlearned);
    }
    /* The pair that reaches min_pairs can make patterns seen earlier noisy. */
    if (kg_noise_pairs(e) == n->min_pairs) {
      kg_noise_pattern *p, *tmp;
      HASH_ITER(hh, e->patterns, p, tmp) kg_noise_note_learned(n, e, p, &learned, &nlearned);
    }
  }
  uint64_t pairs = e ? e->pairs : 0;
  pthread_mutex_unlock(&n->lock);
  if (nlearned)
    kg_log_info("noise learned for %s after %llu pairs: %s%s", endpoint,
                (unsigned long long)pairs, learned.data,
                nlearned > 5 ? " (and more: see the results' suppressed lists)" : "");
  kg_buf_free(&learned);
}

static int kg_noise_strp_cmp(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

void kg_noise_view_get(kg_noise *n, const char *endpoint, kg_noise_view *out) {
  memset(out, 0, sizeof(*out));
  size_t cap = 0;
  pthread_mutex_lock(&n->lock);
  kg_noise_endpoint *e = kg_noise_endpoint_get(n, endpoint, false);
  if (e && kg_noise_pairs(e) >= n->min_pairs) {
    kg_noise_pattern *p, *tmp;
    HASH_ITER(hh, e->patterns, p, tmp) {
      if (!kg_noise_is_noisy(n, e, p)) continue;
      if (out->n == cap) {
        cap = cap ? 2 * cap : 16;
        out->patterns = kg_realloc(out->patterns, cap * sizeof(char *));
      }
      out->patterns[out->n++] = kg_strdup(p->pattern);
    }
  }
  pthread_mutex_unlock(&n->lock);
  /* Sorted outside the lock: the copies are ours. */
  if (out->n > 1) qsort(out->patterns, out->n, sizeof(char *), kg_noise_strp_cmp);
}

bool kg_noise_view_has(const kg_noise_view *v, const char *pattern) {
  return v->n > 0 && bsearch(&pattern, v->patterns, v->n, sizeof(char *),
                             kg_noise_strp_cmp) != NULL;
}

void kg_noise_view_free(kg_noise_view *v) {
  for (size_t i = 0; i < v->n; i++) free(v->patterns[i]);
  free(v->patterns);
  memset(v, 0, sizeof(*v));
}

void kg_noise_stats(kg_noise *n, const char *endpoint, const char *pattern,
                    uint64_t *pairs, uint64_t *differed) {
  *pairs = *differed = 0;
  pthread_mutex_lock(&n->lock);
  kg_noise_endpoint *e = kg_noise_endpoint_get(n, endpoint, false);
  if (e) {
    *pairs = kg_noise_pairs(e);
    kg_noise_pattern *p = NULL;
    HASH_FIND_STR(e->patterns, pattern, p);
    if (p) *differed = kg_noise_differed(p);
  }
  pthread_mutex_unlock(&n->lock);
}

static int kg_noise_cmp_ep(const void *a, const void *b) {
  return strcmp(((const kg_noise_ep_info *)a)->endpoint,
                ((const kg_noise_ep_info *)b)->endpoint);
}

static int kg_noise_cmp_loc(const void *a, const void *b) {
  return strcmp(((const kg_noise_loc_info *)a)->location,
                ((const kg_noise_loc_info *)b)->location);
}

/* The earlier of two first-seen times and the later of two last-seen
 * ones, where 0 means never. */
static double kg_noise_first(double a, double b) { return a == 0 ? b : b == 0 ? a : KG_MIN(a, b); }
static double kg_noise_last(double a, double b) { return KG_MAX(a, b); }

/* Under the lock: copies e into out. */
static void kg_noise_copy_ep(const kg_noise *n, const kg_noise_endpoint *e,
                             kg_noise_ep_info *out) {
  *out = (kg_noise_ep_info){.endpoint = kg_strdup(e->endpoint), .pairs = kg_noise_pairs(e),
                            .fleet_pairs = e->fleet_pairs,
                            .first_seen = kg_noise_first(e->first_seen, e->fleet_first),
                            .last_seen = kg_noise_last(e->last_seen, e->fleet_last)};
  out->locs = kg_calloc(e->npatterns ? e->npatterns : 1, sizeof(*out->locs));
  const kg_noise_pattern *p, *tmp;
  HASH_ITER(hh, e->patterns, p, tmp) {
    kg_noise_loc_info *l = &out->locs[out->nlocs++];
    *l = (kg_noise_loc_info){.location = kg_strdup(p->pattern),
                             .differed = kg_noise_differed(p),
                             .fleet_differed = p->fleet_differed,
                             .first_seen = kg_noise_first(p->first_seen, p->fleet_first),
                             .last_seen = kg_noise_last(p->last_seen, p->fleet_last),
                             .noisy = kg_noise_is_noisy(n, e, p)};
    out->nnoisy += l->noisy;
  }
}

void kg_noise_snapshot_get(kg_noise *n, const char *glob, kg_noise_snapshot *out) {
  memset(out, 0, sizeof(*out));
  /* The same matching as a rule's endpoint, so that a glob that shows
   * noise here selects the same endpoints when pasted into a rule. */
  kg_rule filter = {.endpoint = (char *)glob};
  pthread_mutex_lock(&n->lock);
  out->threshold = n->threshold;
  out->min_pairs = n->min_pairs;
  out->full = n->full;
  out->eps = kg_calloc(n->nendpoints ? n->nendpoints : 1, sizeof(*out->eps));
  const kg_noise_endpoint *e, *etmp;
  HASH_ITER(hh, n->endpoints, e, etmp) {
    if (glob && !kg_rule_matches(&filter, e->endpoint)) continue;
    kg_noise_copy_ep(n, e, &out->eps[out->neps++]);
  }
  pthread_mutex_unlock(&n->lock);
  qsort(out->eps, out->neps, sizeof(*out->eps), kg_noise_cmp_ep);
  for (size_t i = 0; i < out->neps; i++)
    qsort(out->eps[i].locs, out->eps[i].nlocs, sizeof(*out->eps[i].locs), kg_noise_cmp_loc);
}

void kg_noise_snapshot_free(kg_noise_snapshot *s) {
  for (size_t i = 0; i < s->neps; i++) {
    for (size_t k = 0; k < s->eps[i].nlocs; k++) free(s->eps[i].locs[k].location);
    free(s->eps[i].locs);
    free(s->eps[i].endpoint);
  }
  free(s->eps);
  memset(s, 0, sizeof(*s));
}

/* --- a fleet's evidence -------------------------------------------------------------- */

static void kg_noise_rows_push(kg_noise_row **rows, size_t *n, size_t *cap, kg_noise_row r) {
  if (*n == *cap) {
    *cap = *cap ? 2 * *cap : 64;
    *rows = kg_realloc(*rows, *cap * sizeof(**rows));
  }
  (*rows)[(*n)++] = r;
}

uint64_t kg_noise_local_rows(kg_noise *n, kg_noise_row **rows, size_t *nrows) {
  *rows = NULL;
  *nrows = 0;
  size_t cap = 0;
  pthread_mutex_lock(&n->lock);
  uint64_t seq = n->seq;
  kg_noise_endpoint *e, *etmp;
  HASH_ITER(hh, n->endpoints, e, etmp) {
    if (e->pairs == 0) continue; /* only the fleet's: not ours to publish */
    kg_noise_rows_push(rows, nrows, &cap,
                       (kg_noise_row){.endpoint = kg_strdup(e->endpoint), .count = e->pairs,
                                      .first_seen = e->first_seen, .last_seen = e->last_seen});
    kg_noise_pattern *p, *ptmp;
    HASH_ITER(hh, e->patterns, p, ptmp) {
      if (p->differed == 0) continue;
      kg_noise_rows_push(rows, nrows, &cap,
                         (kg_noise_row){.endpoint = kg_strdup(e->endpoint),
                                        .location = kg_strdup(p->pattern),
                                        .count = p->differed, .first_seen = p->first_seen,
                                        .last_seen = p->last_seen});
    }
  }
  pthread_mutex_unlock(&n->lock);
  return seq;
}

uint64_t kg_noise_seq(kg_noise *n) {
  pthread_mutex_lock(&n->lock);
  uint64_t seq = n->seq;
  pthread_mutex_unlock(&n->lock);
  return seq;
}

void kg_noise_rows_free(kg_noise_row *rows, size_t nrows) {
  for (size_t i = 0; i < nrows; i++) {
    free(rows[i].endpoint);
    free(rows[i].location);
  }
  free(rows);
}

void kg_noise_set_fleet(kg_noise *n, const kg_noise_row *rows, size_t nrows) {
  kg_buf lines = KG_BUF_INIT; /* one log line per endpoint that learned */
  pthread_mutex_lock(&n->lock);
  kg_noise_endpoint *e, *etmp;
  HASH_ITER(hh, n->endpoints, e, etmp) {
    e->fleet_pairs = 0;
    e->fleet_first = e->fleet_last = 0;
    kg_noise_pattern *p, *ptmp;
    HASH_ITER(hh, e->patterns, p, ptmp) {
      p->fleet_differed = 0;
      p->fleet_first = p->fleet_last = 0;
    }
  }
  for (size_t i = 0; i < nrows; i++) {
    const kg_noise_row *r = &rows[i];
    if (r->endpoint == NULL || r->count == 0) continue;
    e = kg_noise_endpoint_get(n, r->endpoint, true);
    if (e == NULL) continue;
    if (r->location == NULL) {
      e->fleet_pairs = r->count;
      e->fleet_first = r->first_seen;
      e->fleet_last = r->last_seen;
      continue;
    }
    kg_noise_pattern *p = NULL;
    HASH_FIND_STR(e->patterns, r->location, p);
    if (p == NULL) {
      if (e->npatterns >= KG_NOISE_MAX_PATTERNS || n->npatterns >= KG_NOISE_MAX_TOTAL_PATTERNS) {
        n->full = true;
        continue;
      }
      p = kg_calloc(1, sizeof(*p));
      p->pattern = kg_strdup(r->location);
      HASH_ADD_KEYPTR(hh, e->patterns, p->pattern, strlen(p->pattern), p);
      e->npatterns++;
      n->npatterns++;
    }
    p->fleet_differed = r->count;
    p->fleet_first = r->first_seen;
    p->fleet_last = r->last_seen;
  }
  /* what the fleet's evidence makes noisy here is logged once, as local
   * learning is */
  HASH_ITER(hh, n->endpoints, e, etmp) {
    kg_buf learned = KG_BUF_INIT;
    size_t nlearned = 0;
    kg_noise_pattern *p, *ptmp;
    HASH_ITER(hh, e->patterns, p, ptmp) kg_noise_note_learned(n, e, p, &learned, &nlearned);
    if (nlearned)
      kg_buf_appendf(&lines, "%snoise learned for %s from the fleet's %llu pairs: %s%s",
                     lines.len ? "\n" : "", e->endpoint,
                     (unsigned long long)kg_noise_pairs(e), learned.data,
                     nlearned > 5 ? " (and more)" : "");
    kg_buf_free(&learned);
  }
  pthread_mutex_unlock(&n->lock);
  /* logged outside the lock, a line each */
  for (char *line = lines.data, *end; line && *line; line = end ? end + 1 : NULL) {
    end = strchr(line, '\n');
    if (end) *end = '\0';
    kg_log_info("%s", line);
  }
  kg_buf_free(&lines);
}
