/* storeagg.h: the store's aggregates of one batch, and their encoding.
 *
 * Every compared request is counted in the store, for as long as
 * store_max_days, while only some are kept one by one (store.c). The
 * counts live in three tables keyed by endpoint and minute: the requests
 * (compared, differing, errors), each backend's latency histogram, and the
 * locations differing results differed at. A batch of results is first
 * summed here, in memory, so that the store writes one row per key per
 * batch (an upsert) instead of one row per result.
 *
 * A histogram is stored as a compact blob of its non-empty buckets (see
 * kg_storeagg_hist_encode); readers merge blobs into a kg_hist. */
#ifndef KG_STOREAGG_H
#define KG_STOREAGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/histogram.h"
#include "compare/result.h"

/* What one compared request counts as. A failed master, or shadows that
 * all failed or matched, is an error, never a difference: a dead shadow
 * says nothing about how the new version behaves. */
typedef enum kg_outcome {
  KG_OUTCOME_EQUAL = 0,
  KG_OUTCOME_DIFFERING, /* some shadow answered and differs from the master */
  KG_OUTCOME_ERROR,     /* no difference, but the master or a shadow failed */
} kg_outcome;

kg_outcome kg_storeagg_outcome(const kg_result *r);

/* The minute a result counts in (Unix seconds / 60). */
int64_t kg_storeagg_minute(const kg_result *r);

/* Per (endpoint, minute): the requests. */
typedef struct kg_agg_req {
  const char *endpoint;   /* borrowed from a result of the batch */
  int64_t minute;
  uint64_t compared, differing, errors;
  double first_ts, last_ts;
} kg_agg_req;

/* Per (endpoint, minute, backend): master and shadow latencies. */
typedef struct kg_agg_be {
  const char *endpoint, *backend;  /* borrowed */
  const char *role;                /* "master" or "shadow" (static) */
  int64_t minute;
  int64_t pos;                     /* least position seen */
  uint64_t errors;                 /* failed answers */
  uint64_t *us;                    /* owned: answered latencies, us (a
                                      batch holds few: no 26 KiB kg_hist) */
  size_t nus, capus;
} kg_agg_be;

/* Per (endpoint, minute, location): differing results at it. */
typedef struct kg_agg_loc {
  const char *endpoint;  /* borrowed */
  char *loc;             /* owned */
  int64_t minute;
  uint64_t count;        /* distinct results */
  uint64_t seq;          /* the last result counted (a result's repeats of a
                            location count once) */
} kg_agg_loc;

/* One batch's sums. Keys are few per batch (endpoints x backends), so a
 * linear search behind a hash compare is all a lookup needs. */
typedef struct kg_storeagg {
  kg_agg_req *req;
  size_t nreq, capreq;
  kg_agg_be *be;
  size_t nbe, capbe;
  kg_agg_loc *loc;
  size_t nloc, caploc;
  uint64_t *req_hash, *be_hash, *loc_hash; /* parallel to the arrays */
  uint64_t seq;          /* results added */
  bool own;              /* set before the first add: endpoint and backend
                            names are copied (the sums may outlive the
                            batch's results), and freed with the sums */
} kg_storeagg;

#define KG_STOREAGG_INIT {0}

/* Counts r (borrowed until kg_storeagg_free: its endpoint and backend
 * names are kept by pointer, unless a->own) with its outcome o; locs (nlocs, copied) are
 * the locations of a differing result (repeats count once), none
 * otherwise. */
void kg_storeagg_add(kg_storeagg *a, const kg_result *r, kg_outcome o,
                     const char *const *locs, size_t nlocs);
void kg_storeagg_free(kg_storeagg *a);

/* Which equal results a store keeps one by one: the first `keep` of each
 * endpoint in each minute, enough to browse examples; the rest are only
 * counted. Bounded: an open-addressed table of KG_STOREAGG_SAMPLER_SLOTS
 * endpoints, emptied (counts start again: a few more samples) when 3/4
 * full. Not locked: the caller's lock. */
#define KG_STOREAGG_SAMPLER_SLOTS 4096u
typedef struct kg_storeagg_slot {
  char *endpoint;   /* owned; NULL: free */
  uint64_t hash;
  int64_t minute;   /* the minute counted */
  uint64_t n;       /* equal results kept in it */
} kg_storeagg_slot;
typedef struct kg_storeagg_sampler {
  kg_storeagg_slot *slots; /* owned, KG_STOREAGG_SAMPLER_SLOTS; NULL until used */
  size_t used;
} kg_storeagg_sampler;
/* Whether to keep equal result r one by one. */
bool kg_storeagg_sample(kg_storeagg_sampler *s, const kg_result *r, uint64_t keep);
void kg_storeagg_sampler_free(kg_storeagg_sampler *s);

/* Appends h to out as a blob: byte 1 (the format), then varints min, max,
 * sum, then for each non-empty bucket the gap in bucket index since the
 * previous one and its count. An empty histogram is the byte alone. */
void kg_storeagg_hist_encode(const kg_hist *h, kg_buf *out);

/* The blob of the histogram of n values v (reordered: sorted), as
 * kg_storeagg_hist_encode would write it, without a kg_hist. */
void kg_storeagg_values_encode(uint64_t *v, size_t n, kg_buf *out);

/* Adds the histogram in blob p (n bytes) to dst. Returns 0, or -1 when the
 * blob is not one (a hand-edited or damaged store): dst is then unchanged. */
int kg_storeagg_hist_merge(kg_hist *dst, const void *p, size_t n);

/* Appends to out the blob of the two blobs' histograms together, bucket
 * lists merged in one pass. Returns 0; or -1 when b is not a blob (out
 * untouched); a that is not one counts as empty (a damaged row heals with
 * the next batch instead of failing every one). */
int kg_storeagg_blob_merge(const void *a, size_t na, const void *b, size_t nb, kg_buf *out);

#endif
