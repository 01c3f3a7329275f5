/* epsample.h: fair sampling per endpoint.
 *
 * Two rules on top of the plain `sample` share, each kept per endpoint:
 *   - a cap: at most max_per_endpoint_per_s comparisons per second (a token
 *     bucket), so hot endpoints cannot crowd out rare ones;
 *   - a floor: an endpoint not compared for KG_EPSAMPLE_FLOOR_S seconds is
 *     compared at its next request even if the share said no, so every
 *     endpoint seen is looked at about once a minute.
 * One table per worker (loop thread only, no lock); the cap is divided by
 * the number of workers. Bounded at KG_EPSAMPLE_MAX endpoints: further ones
 * share one entry. */
#ifndef KG_EPSAMPLE_H
#define KG_EPSAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#define KG_EPSAMPLE_FLOOR_S 60
#define KG_EPSAMPLE_MAX 4096

typedef struct kg_epsample_entry kg_epsample_entry;

typedef struct kg_epsample {
  double rate;                  /* tokens per second; 0 = no cap */
  kg_epsample_entry *table;     /* uthash, owned */
  unsigned count;
} kg_epsample;

void kg_epsample_init(kg_epsample *s, double rate_per_s);
void kg_epsample_free(kg_epsample *s);

/* Decides for one eligible request of `endpoint` at time now_ns, given
 * what the share said (`picked`). Returns true to compare it. */
bool kg_epsample_decide(kg_epsample *s, const char *endpoint, bool picked,
                        uint64_t now_ns);

#endif
