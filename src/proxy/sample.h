/* sample.h: per-request sampling decisions.
 *
 * A small, fast PRNG (splitmix64) owned by each worker: no locks, and a
 * fixed seed makes the unit tests deterministic. */
#ifndef KG_SAMPLE_H
#define KG_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct kg_rng {
  uint64_t state;
} kg_rng;

void kg_rng_seed(kg_rng *r, uint64_t seed);
uint64_t kg_rng_next(kg_rng *r);
/* Uniform in [0, 1). */
double kg_rng_double(kg_rng *r);
/* True with probability `share` (clamped to 0..1); 0 and 1 never consult the
 * generator, so "sample = 1" shadows every request exactly. */
bool kg_sample(kg_rng *r, double share);

#endif
