/* store.h: the results store, an SQLite database.
 *
 * Every compared request is counted here, for `kagami report`, `kagami
 * show` and the admin API and dashboard, for as long as store_max_days:
 * per endpoint, backend and minute, the counts (compared, differing,
 * errors), the latency histograms and the differing locations. Results
 * are kept one by one where a person looks: every differing or failed
 * one (bodies compressed, capped at store_max_body_bytes), and a sample
 * of the equal ones (the first store_keep_equal_per_minute per endpoint
 * per minute). Each endpoint keeps its own share (store_keep_differing,
 * store_keep_equal; the oldest of that endpoint go first), so one noisy
 * endpoint cannot push the others' examples out; store_max_rows bounds
 * them all together. An equal result that is not sampled costs a sum in
 * memory: sums are written (one row per aggregate key, not one per
 * result) with the next batch that keeps results anyway, or by a flusher
 * thread at most about a second after the first of them, and at close.
 *
 * Writes come from the thread pool in batches (one transaction per
 * batch); the database is in WAL mode so that readers (sqlite3, the
 * report command, the admin API) are never blocked by, nor block, the
 * writer. Header values named in redact_headers never reach the file.
 *
 * Schema (version 3):
 *   results(id TEXT PRIMARY KEY, ts REAL, method, url, endpoint, kind,
 *           equal INTEGER, truncated INTEGER, request_headers TEXT (JSON
 *           [[name, value], ...], redacted), differences TEXT (JSON, as in
 *           the diff log, each object also with "pattern": its concrete
 *           location), header_differences TEXT, suppressed TEXT, diff
 *           TEXT, latency_regression TEXT (JSON array or NULL))
 *   backends(result_id, pos (0 = master, then the result's order), name,
 *            role, status, error, elapsed_ms, bytes, equal, truncated
 *            (capture cut at max_capture_bytes), compare_error, headers
 *            TEXT (JSON, redacted), body BLOB (zlib), body_size (bytes
 *            before compression), body_truncated INTEGER, endpoint and ts
 *            (copies of the result's); headers and body only for results
 *            that differ; PRIMARY KEY (result_id, name))
 *   agg_requests(endpoint, minute (Unix seconds / 60), compared,
 *            differing, errors, first_ts, last_ts;
 *            PRIMARY KEY (endpoint, minute))
 *            -- differing: a shadow answered and differs (the master
 *               answered); errors: not equal otherwise, i.e. the master
 *               or a shadow failed (storeagg.h)
 *   agg_backends(endpoint, minute, backend, role (master | shadow), pos,
 *            errors, hist BLOB (answered latencies in us, storeagg.h);
 *            PRIMARY KEY (endpoint, minute, backend))
 *   agg_locations(endpoint, minute, loc, count (differing results at
 *            loc: their differences' patterns, "header:<name>", "status");
 *            PRIMARY KEY (endpoint, minute, loc))
 *   agg_requests_hour, agg_backends_hour, agg_locations_hour: the same
 *            per hour (column hour = Unix seconds / 3600 instead of
 *            minute), written in the same transactions, so that a report
 *            over days reads whole hours from them and only the minutes of
 *            its first hour from the minute tables
 *   meta(key PRIMARY KEY, value)      -- application = kagami,
 *                                        schema_version
 * Versions 1 and 2 kept every result and aggregated them when read;
 * kg_store_open upgrades such a store in place (once, in one
 * transaction), building the aggregates from the results it holds;
 * readers refuse it until then.
 * Text columns are valid UTF-8 (invalid bytes become U+FFFD), ts is Unix
 * seconds. Ids sort by arrival time, which is what "oldest" means.
 */
#ifndef KG_STORE_H
#define KG_STORE_H

#include <stddef.h>

#include "config/config.h"
#include "results/difflog.h"

typedef struct kg_store kg_store;

/* Opens or creates cfg->store_path (WAL mode), checks or creates the
 * schema. Fails with a clear message for a file that is not a kagami
 * database, is corrupt, or is locked by another writer. Called once at
 * start, on the main thread. */
int kg_store_open(const kg_config *cfg, kg_store **out, char *err,
                  size_t errlen);
/* Writes n results in one transaction and applies retention. Safe from
 * any thread (one writer at a time, a lock inside). Returns 0, or a
 * negative code after logging the error (the batch is lost, kagami goes
 * on). */
int kg_store_write(kg_store *s, const kg_result *const *results, size_t n);
/* Closes the database (checkpointing the WAL). NULL is fine. */
void kg_store_close(kg_store *s);

/* Applies retention now (total row cap and age), outside the write cadence.
 * Returns 0 or a negative code after logging. For tests and tools. */
int kg_store_maintain(kg_store *s);

/* --- shared with the readers (storeq.c) ------------------------------------ */

#define KG_STORE_SCHEMA_VERSION 3

struct sqlite3;
/* Fails (-1, message naming path) unless path is missing, empty, or starts
 * with the SQLite header: a file of some other kind must never be handed
 * to SQLite, whose own message ("file is not a database") is vague. */
int kg_store_sniff(const char *path, char *err, size_t errlen);
/* Checks that db holds a kagami store this build can read. Returns 0; 1
 * when the database is empty (no tables: a writer creates the schema);
 * -1 with a message for another application's database, a newer schema,
 * corruption or a lock. */
int kg_store_check_schema(struct sqlite3 *db, const char *path, char *err,
                          size_t errlen);
/* Writes "store PATH: ..." for SQLite error rc (corrupt, not a database,
 * locked, cannot open, or SQLite's own message), `what` being the step
 * that failed. */
void kg_store_error(struct sqlite3 *db, int rc, const char *path,
                    const char *what, char *err, size_t errlen);
/* Appends n bytes of s to out as valid UTF-8 without NUL bytes: each
 * invalid byte becomes U+FFFD. */
void kg_store_utf8_clean(const char *s, size_t n, kg_buf *out);

#endif
