/* pgread.h: a fleet's PostgreSQL store, read for `kagami report`.
 *
 * The report's queries (storeq.h) are SQLite's. Rather than write them
 * twice, the reader copies the aggregates it needs out of PostgreSQL
 * into an in-memory SQLite database of store.c's aggregate tables and
 * hands that to kg_storeq_adopt: counts and locations summed over the
 * instances by PostgreSQL (one row per endpoint and minute), latency
 * histograms row by row (they are merged by the report, as from one
 * store). What is read is bounded by `since` and, optionally, one
 * instance; a week of a fleet is endpoints x backends x instances x
 * 10,080 minutes of histogram rows, so a narrower --since is the way to
 * a faster report on a big fleet.
 *
 * Results kept one by one (results.record, diff log records) are not
 * copied: `kagami show` and the dashboard read SQLite stores only. */
#ifndef KG_PGREAD_H
#define KG_PGREAD_H

#include <stddef.h>

#include "results/storeq.h"

/* Connects to url (libpq: a postgresql:// URL or conninfo; a password may
 * come from PGPASSWORD or ~/.pgpass), checks it holds a kagami store of
 * KG_PGSTORE_SCHEMA_VERSION, and copies the aggregates from since_ts on
 * (0: all) of instance (NULL: every instance). Returns 0 and *out, or -1
 * with a message in err that names the store with its password masked. */
int kg_pgread_open(const char *url, const char *instance, double since_ts,
                   kg_storeq **out, char *err, size_t errlen);

#endif
