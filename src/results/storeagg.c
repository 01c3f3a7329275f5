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
  a->req[a->nreq] = (kg_agg_req){.endpoint = a->own ? kg_strdup(ep) : ep, .minute = minute};
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
  *b = (kg_agg_be){.endpoint = a->own ? kg_strdup(ep) : ep,
                   .backend = a->own ? kg_strdup(backend) : backend, .minute = minute,
                   .pos = INT64_MAX};
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
  a->loc[a->nloc++] = (kg_agg_loc){.endpoint = a->own ? kg_strdup(ep) : ep,
                                   .loc = kg_strdup(loc), .minute = minute,
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
      if (b->nus == b->capus) {
        b->capus = b->capus ? b->capus * 2 : 16;
        b->us = kg_realloc(b->us, b->capus * sizeof(uint64_t));
      }
      b->us[b->nus++] = us >= (double)KG_HIST_MAX_VALUE ? KG_HIST_MAX_VALUE : (uint64_t)us;
    }
  }
  if (o != KG_OUTCOME_DIFFERING) return;
  for (size_t i = 0; i < nlocs; i++) kg_storeagg_loc(a, ep, minute, locs[i]);
}

void kg_storeagg_free(kg_storeagg *a) {
  bool own = a->own;
  for (size_t i = 0; own && i < a->nreq; i++) free((char *)a->req[i].endpoint);
  for (size_t i = 0; i < a->nbe; i++) {
    free(a->be[i].us);
    if (own) {
      free((char *)a->be[i].endpoint);
      free((char *)a->be[i].backend);
    }
  }
  for (size_t i = 0; i < a->nloc; i++) {
    free(a->loc[i].loc);
    if (own) free((char *)a->loc[i].endpoint);
  }
  free(a->req);
  free(a->be);
  free(a->loc);
  free(a->req_hash);
  free(a->be_hash);
  free(a->loc_hash);
  *a = (kg_storeagg)KG_STOREAGG_INIT;
  a->own = own;
}

/* --- the equal-result sampler ------------------------------------------------------ */

bool kg_storeagg_sample(kg_storeagg_sampler *s, const kg_result *r, uint64_t keep) {
  if (s->slots == NULL) s->slots = kg_calloc(KG_STOREAGG_SAMPLER_SLOTS, sizeof(*s->slots));
  const char *ep = r->endpoint ? r->endpoint : "";
  int64_t minute = kg_storeagg_minute(r);
  uint64_t h = kg_storeagg_hash(ep, 0);
  size_t i = (size_t)(h % KG_STOREAGG_SAMPLER_SLOTS);
  while (s->slots[i].endpoint &&
         (s->slots[i].hash != h || strcmp(s->slots[i].endpoint, ep) != 0))
    i = (i + 1) % KG_STOREAGG_SAMPLER_SLOTS;
  kg_storeagg_slot *slot = &s->slots[i];
  if (slot->endpoint == NULL) {
    if (s->used >= KG_STOREAGG_SAMPLER_SLOTS * 3 / 4) {
      /* full: start again (counts restart, so a few more samples) */
      kg_storeagg_sampler_free(s);
      return kg_storeagg_sample(s, r, keep);
    }
    *slot = (kg_storeagg_slot){.endpoint = kg_strdup(ep), .hash = h, .minute = minute};
    s->used++;
  }
  if (slot->minute != minute) {
    slot->minute = minute;
    slot->n = 0;
  }
  if (slot->n >= keep) return false;
  slot->n++;
  return true;
}

void kg_storeagg_sampler_free(kg_storeagg_sampler *s) {
  for (size_t i = 0; s->slots && i < KG_STOREAGG_SAMPLER_SLOTS; i++) free(s->slots[i].endpoint);
  free(s->slots);
  *s = (kg_storeagg_sampler){0};
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

/* A blob's bucket list, read one (index, count) at a time. */
typedef struct kg_blob_it {
  const unsigned char *p, *end;
  uint64_t idx;    /* the last bucket read */
  bool first;      /* none read yet (a gap of 0 is then allowed) */
} kg_blob_it;

/* Reads a blob's head: 1 for an empty histogram, 0 with min, max and sum
 * and *it at the first bucket, -1 when it is not a blob. */
static int kg_blob_open(const void *blob, size_t n, uint64_t hd[3], kg_blob_it *it) {
  const unsigned char *p = blob, *end = p + n;
  if (n == 0 || p[0] != KG_HIST_BLOB_FORMAT) return -1;
  if (++p == end) return 1;
  for (int i = 0; i < 3; i++)
    if (kg_varint_get(&p, end, &hd[i]) < 0) return -1;
  if (hd[0] > hd[1] || hd[1] > KG_HIST_MAX_VALUE || p == end) return -1;
  *it = (kg_blob_it){.p = p, .end = end, .first = true};
  return 0;
}

/* The next bucket: 1 with its index and count, 0 at the end, -1 when the
 * list is not one (cut, repeated or out-of-range buckets, empty counts). */
static int kg_blob_next(kg_blob_it *it, uint64_t *idx, uint64_t *count) {
  if (it->p == it->end) return 0;
  uint64_t gap;
  if (kg_varint_get(&it->p, it->end, &gap) < 0 || kg_varint_get(&it->p, it->end, count) < 0)
    return -1;
  if ((!it->first && gap == 0) || gap >= KG_HIST_BUCKETS || it->idx + gap >= KG_HIST_BUCKETS ||
      *count == 0)
    return -1;
  it->idx += gap;
  it->first = false;
  *idx = it->idx;
  return 1;
}

/* Checks a whole blob; its total count in *count. 1 empty, 0 fine, -1 bad. */
static int kg_blob_check(const void *blob, size_t n, uint64_t hd[3], uint64_t *count) {
  kg_blob_it it;
  int r = kg_blob_open(blob, n, hd, &it);
  *count = 0;
  if (r != 0) return r;
  uint64_t idx, c;
  while ((r = kg_blob_next(&it, &idx, &c)) == 1) {
    if (*count + c < *count) return -1;
    *count += c;
  }
  return r;
}

static void kg_blob_head(kg_buf *out, uint64_t min, uint64_t max, uint64_t sum) {
  kg_buf_append(out, "\x01", 1);
  kg_varint_put(out, min);
  kg_varint_put(out, max);
  kg_varint_put(out, sum);
}

void kg_storeagg_hist_encode(const kg_hist *h, kg_buf *out) {
  if (h->count == 0) {
    kg_buf_append(out, "\x01", 1);
    return;
  }
  kg_blob_head(out, h->min, h->max, h->sum);
  unsigned prev = 0;
  for (unsigned i = 0; i < KG_HIST_BUCKETS; i++) {
    if (h->counts[i] == 0) continue;
    kg_varint_put(out, i - prev);
    kg_varint_put(out, h->counts[i]);
    prev = i;
  }
}

static int kg_storeagg_cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

void kg_storeagg_values_encode(uint64_t *v, size_t n, kg_buf *out) {
  if (n == 0) {
    kg_buf_append(out, "\x01", 1);
    return;
  }
  qsort(v, n, sizeof(*v), kg_storeagg_cmp_u64);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++) sum += v[i];
  kg_blob_head(out, v[0], v[n - 1], sum);
  unsigned prev = 0;
  for (size_t i = 0; i < n;) {
    unsigned b = kg_hist_bucket(v[i]);
    uint64_t c = 0;
    while (i < n && kg_hist_bucket(v[i]) == b) i++, c++;
    kg_varint_put(out, b - prev);
    kg_varint_put(out, c);
    prev = b;
  }
}

int kg_storeagg_hist_merge(kg_hist *dst, const void *blob, size_t n) {
  uint64_t hd[3], count;
  /* Validate first, so that a bad blob leaves dst as it was. */
  int r = kg_blob_check(blob, n, hd, &count);
  if (r != 0) return r > 0 ? 0 : -1;
  if (dst->count + count < dst->count || dst->sum + hd[2] < dst->sum) return -1;
  kg_blob_it it;
  kg_blob_open(blob, n, hd, &it);
  uint64_t idx, c;
  while (kg_blob_next(&it, &idx, &c) == 1) dst->counts[idx] += c;
  if (dst->count == 0 || hd[0] < dst->min) dst->min = hd[0];
  if (dst->count == 0 || hd[1] > dst->max) dst->max = hd[1];
  dst->count += count;
  dst->sum += hd[2];
  return 0;
}

int kg_storeagg_blob_merge(const void *a, size_t na, const void *b, size_t nb, kg_buf *out) {
  uint64_t ha[3], hb[3], ca, cb;
  int rb = kg_blob_check(b, nb, hb, &cb);
  if (rb < 0) return -1;
  int ra = kg_blob_check(a, na, ha, &ca);
  if (ra < 0 || (ra == 0 && rb == 0 && (ca + cb < ca || ha[2] + hb[2] < ha[2]))) ra = 1;
  if (ra != 0 || rb != 0) { /* one side empty (or damaged): the other */
    kg_buf_append(out, ra != 0 ? b : a, ra != 0 ? nb : na);
    return 0;
  }
  kg_blob_head(out, KG_MIN(ha[0], hb[0]), KG_MAX(ha[1], hb[1]), ha[2] + hb[2]);
  kg_blob_it ia, ib;
  kg_blob_open(a, na, ha, &ia);
  kg_blob_open(b, nb, hb, &ib);
  uint64_t xa = 0, xb = 0, na_c = 0, nb_c = 0, prev = 0;
  int ga = kg_blob_next(&ia, &xa, &na_c), gb = kg_blob_next(&ib, &xb, &nb_c);
  while (ga == 1 || gb == 1) {
    uint64_t idx, c;
    if (gb != 1 || (ga == 1 && xa < xb)) {
      idx = xa, c = na_c;
      ga = kg_blob_next(&ia, &xa, &na_c);
    } else if (ga != 1 || xb < xa) {
      idx = xb, c = nb_c;
      gb = kg_blob_next(&ib, &xb, &nb_c);
    } else {
      idx = xa, c = na_c + nb_c; /* cannot wrap: the totals did not */
      ga = kg_blob_next(&ia, &xa, &na_c);
      gb = kg_blob_next(&ib, &xb, &nb_c);
    }
    kg_varint_put(out, idx - prev);
    kg_varint_put(out, c);
    prev = idx;
  }
  return 0;
}
