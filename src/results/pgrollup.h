/* pgrollup.h: hour rows of a fleet's PostgreSQL store, from its minute rows.
 *
 * A day's report of a fleet would otherwise read one latency histogram per
 * instance, endpoint, backend and minute; the hour tables (agg_requests_hour,
 * agg_backends_hour, agg_locations_hour, schema version 2) hold the same
 * sums per hour. PostgreSQL cannot merge kagami's histogram blobs
 * (storeagg.h), so hour histograms are merged in C: by each writer as it
 * writes (pgstore.c), and here, once, for the minute rows a store of
 * version 1 already holds.
 *
 * Hour rows are keyed like minute rows, with the writer's `part` (its
 * process): a process only ever replaces its own hour rows, with the sums
 * of its own minute rows of that hour, so a restart (a new part) never
 * has to read back or add to an earlier process's row, and two processes
 * of one instance never overwrite each other's. Readers sum over parts. */
#ifndef KG_PGROLLUP_H
#define KG_PGROLLUP_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* The hour minute m falls in (floor division: minute -1 is hour -1). */
int64_t kg_pgrollup_hour(int64_t minute);

/* One agg_backends row as it is read. */
typedef struct kg_pgrollup_row {
  const char *instance, *part, *endpoint, *backend, *role;
  int64_t minute, pos, errors;
  const void *blob; /* the latency histogram (storeagg.h), untrusted */
  size_t len;
} kg_pgrollup_row;

/* One agg_backends_hour row: every row of its instance, part, endpoint,
 * backend and hour merged. Borrowed for the call only. */
typedef struct kg_pgrollup_hour_row {
  const char *instance, *part, *endpoint, *backend;
  const char *role; /* "master" when any minute row says so */
  int64_t hour, pos, errors; /* least position, errors summed */
  const void *blob;
  size_t len;
} kg_pgrollup_hour_row;

/* Returns false to stop (the error is the callback's to keep). */
typedef bool (*kg_pgrollup_emit)(void *ctx, const kg_pgrollup_hour_row *h);

/* Merges backend rows into hour rows as they stream in. Rows must come
 * grouped by (instance, endpoint, hour), as agg_backends' primary key
 * (instance, endpoint, minute, backend, part) orders them; within a group
 * any order. Memory is one group's histograms (its backends x parts), not
 * the store's. */
typedef struct kg_pgrollup_open kg_pgrollup_open;
typedef struct kg_pgrollup {
  kg_pgrollup_emit emit;
  void *ctx;
  kg_buf key;             /* instance \0 endpoint \0 of the open group */
  int64_t hour;
  kg_pgrollup_open *open; /* owned: the group's rows per backend and part */
  size_t nopen, capopen;
  uint64_t bad_blobs;     /* rows whose histogram was not one: their
                             latencies left out, their errors counted (as the
                             report reads such a row) */
} kg_pgrollup;

void kg_pgrollup_init(kg_pgrollup *r, kg_pgrollup_emit emit, void *ctx);
/* Adds one row; emits the previous group when this one starts another.
 * Returns false when emit did. */
bool kg_pgrollup_add(kg_pgrollup *r, const kg_pgrollup_row *row);
/* Emits the last group. Returns false when emit did. */
bool kg_pgrollup_finish(kg_pgrollup *r);
void kg_pgrollup_free(kg_pgrollup *r);

/* Schema version 1 to 2, on conn, inside the caller's transaction (which
 * holds the schema's advisory lock, and has created the empty hour
 * tables): fills the hour tables from every minute row. Counts and
 * locations are summed by PostgreSQL; histograms stream through a cursor
 * KG_PGROLLUP_FETCH rows at a time, merged here. Sets *minute_rows to the
 * histogram rows read and *bad_blobs to those whose histogram was not one
 * (left out, as the report leaves them out). Returns 0, or -1 with the
 * reason in err (the caller rolls back: the store stays at version 1). */
#define KG_PGROLLUP_FETCH 5000
int kg_pgrollup_migrate(PGconn *conn, uint64_t *minute_rows, uint64_t *bad_blobs, char *err,
                        size_t errlen);

#endif
