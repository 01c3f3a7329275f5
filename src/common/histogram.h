/* histogram.h: a fixed-size log-linear latency histogram.
 *
 * kagami keeps one histogram per endpoint per backend for weeks, so a record
 * must cost a few instructions and no allocation, and the struct must stay
 * small. Layout, in the manner of HdrHistogram: values 0..255 each have
 * their own bucket; above that, every power-of-two range [2^k, 2^(k+1)) is
 * split into 128 equal sub-buckets. A bucket's width is then at most 1/128
 * of its lowest value, so any value read back is within 0.79% of a value
 * that was recorded.
 *
 * Units are whatever the caller records; kagami records microseconds. The
 * tracked range is 0 .. KG_HIST_MAX_VALUE (2^32 - 1 us, about 71 minutes,
 * well past the 1000 s that matters); larger values are clamped to
 * KG_HIST_MAX_VALUE when recorded, so count, min, max, mean and percentiles
 * always agree with each other.
 *
 * A kg_hist is plain data (about 26 KiB): embed it or allocate it, copy it
 * with memcpy. It holds no locks; the caller serialises access to one
 * histogram (different histograms are independent). */
#ifndef KG_HISTOGRAM_H
#define KG_HISTOGRAM_H

#include <stdint.h>

#define KG_HIST_SUB_BUCKETS 128u  /* linear sub-buckets per power of two */
#define KG_HIST_LINEAR_MAX 256u   /* values below this are exact */
#define KG_HIST_MAX_BITS 32u      /* values below 2^32 are tracked */
#define KG_HIST_MAX_VALUE ((UINT64_C(1) << KG_HIST_MAX_BITS) - 1)
/* 256 exact buckets + 128 per power of two from 2^8 to 2^31. */
#define KG_HIST_BUCKETS \
  (KG_HIST_LINEAR_MAX + (KG_HIST_MAX_BITS - 8u) * KG_HIST_SUB_BUCKETS)

typedef struct kg_hist {
  uint64_t count;                     /* values recorded */
  uint64_t sum;                       /* their (clamped) sum, for the mean;
                                         cannot overflow before 2^32 records
                                         of the maximum value */
  uint64_t min;                       /* smallest recorded; UINT64_MAX when
                                         empty */
  uint64_t max;                       /* largest recorded (exact) */
  uint64_t counts[KG_HIST_BUCKETS];   /* records per bucket */
} kg_hist;

/* Makes h empty. Also the way to reset one; there is nothing to free. */
void kg_hist_init(kg_hist *h);
void kg_hist_reset(kg_hist *h);

/* Records one value; values over KG_HIST_MAX_VALUE count as that value. */
void kg_hist_add(kg_hist *h, uint64_t v);

/* Number of values recorded. */
uint64_t kg_hist_count(const kg_hist *h);
/* Exact smallest / largest recorded value (after clamping); 0 when empty. */
uint64_t kg_hist_min(const kg_hist *h);
uint64_t kg_hist_max(const kg_hist *h);
/* Exact arithmetic mean of the recorded values; 0.0 when empty. */
double kg_hist_mean(const kg_hist *h);

/* The value at percentile q (0..100, clamped; NaN counts as 0) by nearest
 * rank: the smallest recorded value v such that at least q% of the records
 * are <= v, reported as the highest value of v's bucket, so it may be high
 * by at most 1/128 of v and is never below it. q = 0 gives the exact min,
 * q = 100 the exact max; an empty histogram gives 0. */
uint64_t kg_hist_percentile(const kg_hist *h, double q);

/* Number of recorded values known to be <= v, for cumulative buckets such
 * as Prometheus's `le`: every record below min or above max is placed
 * exactly, and otherwise a record counts when the highest value of its
 * bucket is <= v. So the answer is exact when v is a bucket top (every
 * v < 256 is, and every v >= max), may leave out records of v's own
 * bucket otherwise (off by at most one bucket, 1/128 of v), never counts a
 * record above v, and never decreases as v grows. */
uint64_t kg_hist_count_le(const kg_hist *h, uint64_t v);

/* The bucket v (clamped to KG_HIST_MAX_VALUE) is counted in, 0 ..
 * KG_HIST_BUCKETS - 1: for compact encodings of a histogram's buckets. */
unsigned kg_hist_bucket(uint64_t v);

/* Adds everything recorded in src to dst (src unchanged; may not alias). */
void kg_hist_merge(kg_hist *dst, const kg_hist *src);

#endif
