/* epstats.h: per-endpoint statistics: how many requests were compared,
 * how many differed, and each backend's latency histogram, so that "does
 * it get slower on the new database" has an answer per page.
 *
 * Shared by every worker and updated from the thread pool after each
 * comparison: one lock inside. Bounded: past max_endpoints (the config's
 * `max_endpoints`, default KG_EPSTATS_MAX), new endpoints are counted
 * under the endpoint "(other)".
 *
 * Memory: an endpoint costs about 0.7 KiB plus one latency histogram (a
 * kg_hist, about 26 KiB) per backend that has answered it: histograms
 * are made at a backend's first answer, so a shadow that never gets an
 * endpoint's requests costs nothing there. */
#ifndef KG_EPSTATS_H
#define KG_EPSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/histogram.h"

#define KG_EPSTATS_MAX 1000
#define KG_EPSTATS_MIN_SAMPLES 20 /* per side before a regression is flagged */

typedef struct kg_epstats kg_epstats;

kg_epstats *kg_epstats_new(size_t nbackends, double regression_factor,
                           size_t max_endpoints);
void kg_epstats_free(kg_epstats *s);

/* Records one compared request: elapsed_us[i] for backend i, or a failure
 * when failed[i]; present[i] says whether backend i took part. Returns a
 * bit mask of shadows whose latency regression flag was just raised (for a
 * log line), and sets *flagged to the current mask of flagged shadows. */
uint64_t kg_epstats_record(kg_epstats *s, const char *endpoint, bool equal,
                           const bool *present, const bool *failed,
                           const uint64_t *elapsed_us, uint64_t *flagged);

/* Adds every endpoint's latency histograms of backends 0..nb-1 into
 * merged[0..nb) (the caller's, initialised), and counts in flagged[i] the
 * endpoints on which shadow i is flagged slower. Returns the number of
 * endpoints tracked. Merges under the lock instead of copying: a copy of
 * 1,000 endpoints' histograms would be ~50 MiB per /metrics scrape. */
size_t kg_epstats_totals(kg_epstats *s, kg_hist *merged, size_t nb, uint64_t *flagged);

#endif
