/* sample.c: splitmix64 and the sampling decision (see sample.h). */
#include "proxy/sample.h"

void kg_rng_seed(kg_rng *r, uint64_t seed) { r->state = seed; }

uint64_t kg_rng_next(kg_rng *r) {
  uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double kg_rng_double(kg_rng *r) {
  /* 53 random bits: every double in [0,1) with that spacing is equally
   * likely. */
  return (double)(kg_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

bool kg_sample(kg_rng *r, double share) {
  if (share >= 1.0) return true;
  if (!(share > 0.0)) return false; /* also catches NaN */
  return kg_rng_double(r) < share;
}
