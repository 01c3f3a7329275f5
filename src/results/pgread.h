/* pgread.h: a fleet's PostgreSQL store, read for the report, show and the API.
 *
 * The report's queries (storeq.h) are SQLite's. Rather than write them
 * twice, the reader copies the aggregates it needs out of PostgreSQL
 * into an in-memory SQLite database of store.c's aggregate tables and
 * hands that to kg_storeq_adopt: minute rows only where the query reads
 * minutes, and the hour rows the writers keep (pgrollup.h) otherwise;
 * counts and locations summed over the instances and their processes by
 * PostgreSQL, latency histograms merged here per endpoint, backend and
 * hour as they stream in (PostgreSQL cannot merge kagami's blobs). What is
 * read is bounded by `since` and, optionally, one instance: a week of a
 * fleet is endpoints x backends x instances x 168 hour rows of histograms,
 * plus the minutes of its first hour.
 *
 * Results kept one by one are read the same way, a page at a time
 * (kg_pgread_open_results): the rows asked for are turned from their diff
 * log records back into store.c's results and backends rows, so that
 * kg_storeq_results and kg_storeq_result answer as for a SQLite store,
 * except for what a diff log record does not hold: request headers,
 * response headers and bodies (null), and the patterns of text and header
 * differences (null; a JSON or HTML difference's pattern is its where). */
#ifndef KG_PGREAD_H
#define KG_PGREAD_H

#include <stdbool.h>
#include <stddef.h>

#include "results/storeq.h"

/* Connects to url (libpq: a postgresql:// URL or conninfo; a password may
 * come from PGPASSWORD or ~/.pgpass), checks it holds a kagami store of
 * KG_PGSTORE_SCHEMA_VERSION, and copies the aggregates from since_ts on
 * (0: all) of instance (NULL: every instance). Returns 0 and *out, or -1
 * with a message in err that names the store with its password masked. */
#define KG_PGREAD_MINUTES 1u /* minute rows for the whole range (a time series
                                 with buckets under an hour), not only for
                                 the first hour's minutes (the report) */
int kg_pgread_open(const char *url, const char *instance, double since_ts, unsigned flags,
                   kg_storeq **out, char *err, size_t errlen);

/* Which kept results to copy: one (id), or a page as kg_storeq_results
 * takes it (endpoint NULL: all; only differing ones; at most limit; ids
 * below before). instance NULL: every instance's. */
typedef struct kg_pgread_pick {
  const char *instance;
  const char *id;
  const char *endpoint;
  bool differing;
  int limit;
  const char *before;
} kg_pgread_pick;

/* Like kg_pgread_open, for the kept results pick names; ask the returned
 * store with the same arguments. */
int kg_pgread_open_results(const char *url, const kg_pgread_pick *pick, kg_storeq **out,
                           char *err, size_t errlen);

/* The same copy from records already at hand (n diff log records with
 * their arrival times): for tests and the fuzz target. Returns 0, or -1
 * when SQLite fails. */
int kg_pgread_from_records(const char *const *records, const double *ts, size_t n,
                           const char *label, kg_storeq **out);

/* The names of the instances that wrote aggregates to the store at url
 * (at most KG_PGREAD_MAX_INSTANCES, in name order), as a JSON array of
 * strings, or NULL with a message in err (password masked) when the store
 * cannot be read. Also the cheapest check that url is a kagami store this
 * build reads. */
#define KG_PGREAD_MAX_INSTANCES 1000
json_t *kg_pgread_instances(const char *url, char *err, size_t errlen);

#endif
