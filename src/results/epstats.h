/* epstats.h: per-endpoint statistics: how many requests were compared,
 * how many differed, and each backend's latency histogram, so that "does
 * it get slower on the new database" has an answer per page.
 *
 * Shared by every worker and updated from the thread pool after each
 * comparison: one lock inside. Bounded: past KG_EPSTATS_MAX endpoints,
 * new ones are counted under the endpoint "(other)". */
#ifndef KG_EPSTATS_H
#define KG_EPSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/histogram.h"

#define KG_EPSTATS_MAX 1000
#define KG_EPSTATS_MIN_SAMPLES 20 /* per side before a regression is flagged */

typedef struct kg_epstats kg_epstats;

/* A copy of one endpoint's numbers (see kg_epstats_snapshot). */
typedef struct kg_epstat_copy {
  char *endpoint;            /* owned */
  uint64_t compared, differing;
  uint64_t errors[64];       /* per backend index: failed requests */
  kg_hist *lat;              /* owned array, one per backend (microseconds) */
  size_t nbackends;
  bool regression[64];       /* per shadow: p90 over the configured factor */
} kg_epstat_copy;

kg_epstats *kg_epstats_new(size_t nbackends, double regression_factor);
void kg_epstats_free(kg_epstats *s);

/* Records one compared request: elapsed_us[i] for backend i, or a failure
 * when failed[i]; present[i] says whether backend i took part. Returns a
 * bit mask of shadows whose latency regression flag was just raised (for a
 * log line), and sets *flagged to the current mask of flagged shadows. */
uint64_t kg_epstats_record(kg_epstats *s, const char *endpoint, bool equal,
                           const bool *present, const bool *failed,
                           const uint64_t *elapsed_us, uint64_t *flagged);

/* Copies every endpoint's numbers (caller frees with
 * kg_epstats_snapshot_free). */
size_t kg_epstats_snapshot(kg_epstats *s, kg_epstat_copy **out);
void kg_epstats_snapshot_free(kg_epstat_copy *v, size_t n);

#endif
