/* storeagg.c: a batch's aggregates and the histogram blob (storeagg.h). */
#include "results/storeagg.h"

#include <stdlib.h>
#include <string.h>

#include "common/common.h"

kg_outcome kg_storeagg_outcome(const kg_result *r) {
  if (r->equal) return KG_OUTCOME_EQUAL;
  if (r->n == 0 || r->resps[0].error) return KG_OUTCOME_ERROR;
  for (size_t i = 1; i < r->n; i++)
    if (strcmp(r->roles[i], "shadow") == 0 && r->resps[i].error == NULL &&
        !r->pairs[i].equal)
      return KG_OUTCOME_DIFFERING;
  return KG_OUTCOME_ERROR;
}

int64_t kg_storeagg_minute(const kg_result *r) {
  int64_t s = (int64_t)r->ts.tv_sec;
  return s >= 0 ? s / 60 : -((-s + 59) / 60); /* floor, for any clock */
}

/* FNV-1a of s mixed with n: a quick filter before strcmp. */
static uint64_t kg_storeagg_hash(const char *s, int64_t n) {
  uint64_t h = 1469598103934665603ULL ^ (uint64_t)n;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static void *kg_storeagg_grow(void *v, size_t *cap, size_t n, size_t size,
                              uint64_t **hash) {
  if (n < *cap) return v;
  *cap = *cap ? *cap * 2 : 8;
  *hash = kg_realloc(*hash, *cap * sizeof(uint64_t));
  return kg_realloc(v, *cap * size);
}

static kg_agg_req *kg_storeagg_req(kg_storeagg *a, const char *ep, int64_t minute) {
  uint64_t h = kg_storeagg_hash(ep, minute);
  for (size_t i = 0; i < a->nreq; i++)
    if (a->req_hash[i] == h && a->req[i].minute == minute && strcmp(a->req[i].endpoint, ep) == 0)
      return &a->req[i];
  a->req = kg_storeagg_grow(a->req, &a->capreq, a->nreq, sizeof(*a->req), &a->req_hash);
  a->req_hash[a->nreq] = h;
  a->req[a->nreq] = (kg_agg_req){.endpoint = ep, .minute = minute};
  return &a->req[a->nreq++];
}

static kg_agg_be *kg_storeagg_be(kg_storeagg *a, const char *ep, int64_t minute,
                                 const char *backend) {
  uint64_t h = kg_storeagg_hash(backend, minute) ^ kg_storeagg_hash(ep, 0);
  for (size_t i = 0; i < a->nbe; i++)
    if (a->be_hash[i] == h && a->be[i].minute == minute &&
        strcmp(a->be[i].backend, backend) == 0 && strcmp(a->be[i].endpoint, ep) == 0)
      return &a->be[i];
  a->be = kg_storeagg_grow(a->be, &a->capbe, a->nbe, sizeof(*a->be), &a->be_hash);
  a->be_hash[a->nbe] = h;
  kg_agg_be *b = &a->be[a->nbe++];
  *b = (kg_agg_be){.endpoint = ep, .backend = backend, .minute = minute,
                   .pos = INT64_MAX, .hist = kg_malloc(sizeof(kg_hist))};
  kg_hist_init(b->hist);
  return b;
}

static void kg_storeagg_loc(kg_storeagg *a, const char *ep, int64_t minute, const char *loc) {
  uint64_t h = kg_storeagg_hash(loc, minute) ^ kg_storeagg_hash(ep, 0);
  for (size_t i = 0; i < a->nloc; i++)
    if (a->loc_hash[i] == h && a->loc[i].minute == minute &&
        strcmp(a->loc[i].loc, loc) == 0 && strcmp(a->loc[i].endpoint, ep) == 0) {
      if (a->loc[i].seq != a->seq) a->loc[i].count++;
      a->loc[i].seq = a->seq;
      return;
    }
  a->loc = kg_storeagg_grow(a->loc, &a->caploc, a->nloc, sizeof(*a->loc), &a->loc_hash);
  a->loc_hash[a->nloc] = h;
  a->loc[a->nloc++] = (kg_agg_loc){.endpoint = ep, .loc = kg_strdup(loc), .minute = minute,
                                   .count = 1, .seq = a->seq};
}

void kg_storeagg_add(kg_storeagg *a, const kg_result *r, kg_outcome o,
                     const char *const *locs, size_t nlocs) {
  const char *ep = r->endpoint ? r->endpoint : "";
  int64_t minute = kg_storeagg_minute(r);
  a->seq++;
  double ts = (double)r->ts.tv_sec + (double)(r->ts.tv_nsec / 1000000) / 1e3;
  kg_agg_req *q = kg_storeagg_req(a, ep, minute);
  if (q->compared == 0 || ts < q->first_ts) q->first_ts = ts;
  if (q->compared == 0 || ts > q->last_ts) q->last_ts = ts;
  q->compared++;
  if (o == KG_OUTCOME_DIFFERING) q->differing++;
  if (o == KG_OUTCOME_ERROR) q->errors++;
  /* Secondary and repeat answers are for noise learning, never latency. */
  for (size_t i = 0; i < r->n; i++) {
    bool master = strcmp(r->roles[i], "master") == 0;
    if (!master && strcmp(r->roles[i], "shadow") != 0) continue;
    const kg_resp_view *v = &r->resps[i];
    kg_agg_be *b = kg_storeagg_be(a, ep, minute, v->backend ? v->backend : "");
    if (master || b->role == NULL) b->role = master ? "master" : "shadow";
    b->pos = KG_MIN(b->pos, (int64_t)i);
    if (v->error) {
      b->errors++;
    } else {
      /* whole microseconds, cut as the stored elapsed_ms is */
      double us = v->elapsed > 0 ? v->elapsed * 1e6 : 0;
      kg_hist_add(b->hist, us >= (double)KG_HIST_MAX_VALUE ? KG_HIST_MAX_VALUE : (uint64_t)us);
    }
  }
  if (o != KG_OUTCOME_DIFFERING) return;
  for (size_t i = 0; i < nlocs; i++) kg_storeagg_loc(a, ep, minute, locs[i]);
}

void kg_storeagg_free(kg_storeagg *a) {
  for (size_t i = 0; i < a->nbe; i++) free(a->be[i].hist);
  for (size_t i = 0; i < a->nloc; i++) free(a->loc[i].loc);
  free(a->req);
  free(a->be);
  free(a->loc);
  free(a->req_hash);
  free(a->be_hash);
  free(a->loc_hash);
  *a = (kg_storeagg)KG_STOREAGG_INIT;
}

/* --- the histogram blob ----------------------------------------------------------- */

#define KG_HIST_BLOB_FORMAT 1

static void kg_varint_put(kg_buf *out, uint64_t v) {
  unsigned char b[10];
  size_t n = 0;
  do {
    b[n] = (unsigned char)(v & 0x7f);
    v >>= 7;
    if (v) b[n] |= 0x80;
    n++;
  } while (v);
  kg_buf_append(out, (const char *)b, n);
}

/* Reads a varint at *p (< end); -1 when cut short or over 64 bits. */
static int kg_varint_get(const unsigned char **p, const unsigned char *end, uint64_t *v) {
  uint64_t x = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (*p >= end) return -1;
    unsigned char c = *(*p)++;
    if (shift == 63 && (c & 0x7e)) return -1;
    x |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

void kg_storeagg_hist_encode(const kg_hist *h, kg_buf *out) {
  kg_buf_append(out, "\x01", 1);
  if (h->count == 0) return;
  kg_varint_put(out, h->min);
  kg_varint_put(out, h->max);
  kg_varint_put(out, h->sum);
  unsigned prev = 0;
  for (unsigned i = 0; i < KG_HIST_BUCKETS; i++) {
    if (h->counts[i] == 0) continue;
    kg_varint_put(out, i - prev);
    kg_varint_put(out, h->counts[i]);
    prev = i;
  }
}

int kg_storeagg_hist_merge(kg_hist *dst, const void *blob, size_t n) {
  const unsigned char *p = blob, *end = p + n;
  if (n == 0 || p[0] != KG_HIST_BLOB_FORMAT) return -1;
  p++;
  if (p == end) return 0; /* empty */
  uint64_t min, max, sum, idx = 0, count = 0;
  if (kg_varint_get(&p, end, &min) < 0 || kg_varint_get(&p, end, &max) < 0 ||
      kg_varint_get(&p, end, &sum) < 0 || min > max || max > KG_HIST_MAX_VALUE)
    return -1;
  /* Validate first, so that a bad blob leaves dst as it was. */
  const unsigned char *start = p;
  for (bool first = true; p < end; first = false) {
    uint64_t gap, c;
    if (kg_varint_get(&p, end, &gap) < 0 || kg_varint_get(&p, end, &c) < 0) return -1;
    if ((!first && gap == 0) || gap >= KG_HIST_BUCKETS || idx + gap >= KG_HIST_BUCKETS ||
        c == 0 || count + c < count)
      return -1;
    idx += gap;
    count += c;
  }
  if (count == 0 || dst->count + count < dst->count || dst->sum + sum < dst->sum) return -1;
  p = start;
  idx = 0;
  while (p < end) {
    uint64_t gap, c;
    kg_varint_get(&p, end, &gap);
    kg_varint_get(&p, end, &c);
    idx += gap;
    dst->counts[idx] += c;
  }
  if (dst->count == 0 || min < dst->min) dst->min = min;
  if (dst->count == 0 || max > dst->max) dst->max = max;
  dst->count += count;
  dst->sum += sum;
  return 0;
}
