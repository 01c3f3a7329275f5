/* histogram.c: log-linear latency histogram (see histogram.h). */
#include "common/histogram.h"

#include <math.h>
#include <string.h>

/* Bucket of a value already clamped to KG_HIST_MAX_VALUE. For v >= 256
 * with highest set bit k, the top 8 bits of v (128..255) pick the
 * sub-bucket, so the width there is 2^(k-7). */
static unsigned kg_hist_bucket_of(uint64_t v) {
  if (v < KG_HIST_LINEAR_MAX) return (unsigned)v;
  unsigned k = 63u - (unsigned)__builtin_clzll(v);
  unsigned shift = k - 7u;
  unsigned sub = (unsigned)(v >> shift) - KG_HIST_SUB_BUCKETS;
  return KG_HIST_LINEAR_MAX + (k - 8u) * KG_HIST_SUB_BUCKETS + sub;
}

unsigned kg_hist_bucket(uint64_t v) {
  return kg_hist_bucket_of(v > KG_HIST_MAX_VALUE ? KG_HIST_MAX_VALUE : v);
}

/* Highest value that lands in bucket i (the inverse of kg_hist_bucket_of). */
static uint64_t kg_hist_bucket_top(unsigned i) {
  if (i < KG_HIST_LINEAR_MAX) return i;
  unsigned rel = i - KG_HIST_LINEAR_MAX;
  unsigned k = rel / KG_HIST_SUB_BUCKETS + 8u;
  unsigned sub = rel % KG_HIST_SUB_BUCKETS;
  unsigned shift = k - 7u;
  uint64_t low = (uint64_t)(KG_HIST_SUB_BUCKETS + sub) << shift;
  return low + (UINT64_C(1) << shift) - 1;
}

void kg_hist_init(kg_hist *h) {
  memset(h, 0, sizeof(*h));
  h->min = UINT64_MAX;
}

void kg_hist_reset(kg_hist *h) { kg_hist_init(h); }

void kg_hist_add(kg_hist *h, uint64_t v) {
  if (v > KG_HIST_MAX_VALUE) v = KG_HIST_MAX_VALUE;
  h->counts[kg_hist_bucket_of(v)]++;
  h->count++;
  h->sum += v;
  if (v < h->min) h->min = v;
  if (v > h->max) h->max = v;
}

uint64_t kg_hist_count(const kg_hist *h) { return h->count; }

uint64_t kg_hist_min(const kg_hist *h) { return h->count ? h->min : 0; }

uint64_t kg_hist_max(const kg_hist *h) { return h->count ? h->max : 0; }

double kg_hist_mean(const kg_hist *h) {
  return h->count ? (double)h->sum / (double)h->count : 0.0;
}

uint64_t kg_hist_percentile(const kg_hist *h, double q) {
  if (h->count == 0) return 0;
  if (!(q > 0.0)) return h->min; /* also catches NaN */
  if (q >= 100.0) return h->max;
  /* Nearest rank, 1-based. The product is rounded up, but a q that is
   * "exactly" k/count in decimal may come out a hair above k in binary;
   * trimming a tiny epsilon first keeps p50 of {1,2} at 1, not 2. */
  double r = ceil(q / 100.0 * (double)h->count - 1e-9);
  uint64_t rank = r < 1.0 ? 1 : (uint64_t)r;
  if (rank > h->count) rank = h->count;
  uint64_t seen = 0;
  for (unsigned i = 0; i < KG_HIST_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= rank) {
      /* The bucket top may exceed anything recorded (the max lives in the
       * last non-empty bucket) and the first bucket's top may be below
       * nothing, so clamp to what is known exactly. */
      uint64_t v = kg_hist_bucket_top(i);
      if (v > h->max) v = h->max;
      if (v < h->min) v = h->min;
      return v;
    }
  }
  return h->max; /* unreachable while counts add up to count */
}

uint64_t kg_hist_count_le(const kg_hist *h, uint64_t v) {
  if (h->count == 0 || v < h->min) return 0;
  if (v >= h->max) return h->count;
  /* min <= v < max <= KG_HIST_MAX_VALUE, so v has a bucket. Everything in
   * the buckets below v's has a top below v; v's own bucket counts only
   * when v is its top. */
  unsigned b = kg_hist_bucket_of(v);
  uint64_t n = 0;
  for (unsigned i = 0; i < b; i++) n += h->counts[i];
  if (kg_hist_bucket_top(b) == v) n += h->counts[b];
  return n;
}

void kg_hist_merge(kg_hist *dst, const kg_hist *src) {
  if (src->count == 0) return;
  for (unsigned i = 0; i < KG_HIST_BUCKETS; i++) dst->counts[i] += src->counts[i];
  dst->count += src->count;
  dst->sum += src->sum;
  if (src->min < dst->min) dst->min = src->min;
  if (src->max > dst->max) dst->max = src->max;
}
