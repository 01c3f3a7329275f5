/* storeq.h: read-only queries on the results store, as JSON.
 *
 * Used by `kagami report` / `kagami show` and by the admin HTTP API. A
 * kg_storeq is one read-only SQLite connection: open it, run any number
 * of queries, close it. One handle must not be used by two threads at
 * once; open one per thread (opening is cheap), or guard it. Readers never
 * block kagami's writer nor wait for it (the store is in WAL mode); each
 * query sees one consistent snapshot.
 *
 * Every query is bounded (the KG_STOREQ_MAX_* limits below) and every
 * value from outside (endpoint names, globs, ids) is a bound parameter.
 * The report and the time series read the per-minute aggregates (store.h),
 * so their cost grows with endpoints x backends x minutes, never with
 * traffic: 7 days of 50 endpoints x 2 backends take well under a second
 * (bench/store_report.py). Aggregates are per minute: `since` takes in the
 * whole minute it falls in when a request of that minute came at or after
 * it.
 *
 * Each query returns a new json_t (the caller json_decref()s it) or NULL
 * on failure, with kg_storeq_errcode/kg_storeq_errmsg saying why. Times
 * are Unix seconds (numbers) plus ISO-8601 UTC text where a person reads
 * them; latencies are milliseconds. Percentiles are by nearest rank over
 * the backends that answered (failures are counted apart, as errors),
 * read from log-linear histograms: never below the exact value, above it
 * by at most 1/128 (histogram.h). */
#ifndef KG_STOREQ_H
#define KG_STOREQ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct kg_storeq kg_storeq;

#define KG_STOREQ_MAX_ENDPOINTS 1000  /* endpoints per report */
#define KG_STOREQ_TOP_LOCATIONS 5     /* top differing locations per endpoint */
#define KG_STOREQ_MAX_RESULTS 1000    /* results per page */
#define KG_STOREQ_DEFAULT_RESULTS 50  /* when limit <= 0 */
#define KG_STOREQ_MAX_BUCKETS 1000    /* timeseries buckets (the newest) */
#define KG_STOREQ_MIN_SAMPLES 20      /* per side, before a regression flag */

/* Why the last query returned NULL. */
enum {
  KG_STOREQ_OK = 0,
  KG_STOREQ_NOT_FOUND = 1,  /* kg_storeq_result: no such id (or retention
                               removed it) */
  KG_STOREQ_INVALID = 2,    /* a bad argument (e.g. bucket_seconds <= 0) */
  KG_STOREQ_FAILED = 3,     /* SQLite failed (message says how) */
};

/* Opens `path` read-only and checks it is a kagami store this build reads.
 * Returns 0, or -1 with a message naming the path in err: no such file,
 * not an SQLite file, another application's database, a different schema
 * version, corrupt. Free with kg_storeq_close. */
int kg_storeq_open(const char *path, kg_storeq **out, char *err,
                   size_t errlen);
void kg_storeq_close(kg_storeq *q);  /* NULL is fine */

/* Wraps an open SQLite connection that holds the aggregate tables of
 * store.c (a copy made elsewhere: pgread.h builds one in memory from a
 * fleet's PostgreSQL store), so that the queries below read it. Takes
 * ownership of db; label names the store in messages. Only
 * kg_storeq_endpoints and kg_storeq_timeseries may be asked of it. */
struct sqlite3;
kg_storeq *kg_storeq_adopt(struct sqlite3 *db, const char *label);
int kg_storeq_errcode(const kg_storeq *q);
const char *kg_storeq_errmsg(const kg_storeq *q);

/* Per endpoint since since_ts (0: everything), optionally only endpoints
 * matching endpoint_glob (NULL: all). The glob is SQLite's GLOB ('*', '?',
 * [...]; case-sensitive) on the whole name ("GET /api/" then '*'), or on
 * the path alone when it holds no space ("/api/" then '*' matches every
 * method; written apart here only because C comments cannot hold them).
 *
 *   {"since": 0, "compared": N, "differing": N, "errors": N,
 *    "regression_factor": 1.5,
 *    "endpoints": [
 *     {"endpoint": "GET /users/:id", "compared": 120, "differing": 30,
 *      "difference_rate": 0.25, "errors": 2, "error_rate": 0.016667,
 *      "first_ts": 1.7e9, "last_ts": 1.7e9,
 *      "top_differences": [{"location": "$.items[3].price", "count": 28},
 *                          {"location": "header:etag", "count": 3}, ...],
 *      "locations": 7,   (distinct locations, of which the top 5 are listed)
 *      "backends": [
 *        {"name": "production", "role": "master", "samples": 120,
 *         "errors": 0, "error_rate": 0, "p50_ms": 1.9, "p90_ms": 3.1,
 *         "p99_ms": 8.2},
 *        {"name": "newdb", "role": "shadow", "samples": 118, "errors": 2,
 *         "error_rate": 0.016667, "p50_ms": 2.3, "p90_ms": 5.9,
 *         "p99_ms": 11.0, "p90_ratio": 1.9, "regression": true}],
 *      "regression": true, "attention": 7.5}, ...]}
 *
 * A request is differing when a shadow answered and differs from the
 * master's answer; it is an error, not a difference, when the master or
 * its shadows failed (a dead shadow says nothing about the new version).
 * Locations are the differing results' differences' patterns, concrete
 * (JSON paths and XPaths with their indices: p[1] and p[2] are two),
 * "text:<line and shapes>" for text, "header:<name>", "status"; counts
 * are of results. The percentiles are null when a
 * backend has no successful sample. A shadow is flagged ("regression")
 * when its p90 is over regression_factor times the master's, with at
 * least KG_STOREQ_MIN_SAMPLES samples each (the proxy's own rule).
 *
 * Order, what most needs a person's eye first: endpoints with a latency
 * regression; then by "attention" = differing x difference_rate, so that
 * an endpoint that always differs outranks one that differs as often in
 * absolute numbers but rarely for its volume, and a rare difference on a
 * busy endpoint does not hide a broken quiet one; then by requests
 * compared; then by name. */
json_t *kg_storeq_endpoints(kg_storeq *q, double since_ts,
                            const char *endpoint_glob,
                            double regression_factor);

/* A page of results, newest first: of one endpoint (exact name; NULL:
 * all), only the differing ones when differing_only, at most limit
 * (<= 0: KG_STOREQ_DEFAULT_RESULTS; capped at KG_STOREQ_MAX_RESULTS),
 * with an id below before_id (NULL: from the newest).
 *
 *   {"results": [
 *     {"id": "...", "ts": 1.7e9, "time": "2026-11-26T05:40:00.123Z",
 *      "method": "GET", "url": "/a?b=1", "endpoint": "GET /a", "kind":
 *      "text", "equal": false, "truncated": false, "differences": 2,
 *      "locations": ["line 3", "header:etag"],          (the first 3)
 *      "latency_regression": ["newdb"] or null,
 *      "backends": [{"name", "role", "status" (null on error), "error",
 *                    "elapsed_ms", "equal" (shadows)}, ...]}, ...],
 *    "next_before": "<id to pass as before_id for the next page>" or null} */
json_t *kg_storeq_results(kg_storeq *q, const char *endpoint,
                          bool differing_only, int limit,
                          const char *before_id);

/* Everything about one result, or NULL with KG_STOREQ_NOT_FOUND:
 *
 *   {"id", "ts", "time", "method", "url", "endpoint", "kind", "equal",
 *    "truncated", "request_headers": [[name, value], ...] (redacted),
 *    "differences": [{"backend", "where", "pattern", "master",
 *                     "shadow"}, ...],
 *    "header_differences": [{"backend", "name", "pattern", "master",
 *                            "shadow"}, ...],
 *    "suppressed": [...], "diff": "unified diff text",
 *    "latency_regression": [...] or null,
 *    "backends": [{"name", "role", "status", "error", "elapsed_ms",
 *                  "bytes", "equal", "truncated", "compare_error",
 *                  "headers": [[name, value], ...] or null,
 *                  "body": "..." or null, "body_encoding": "utf-8" |
 *                  "base64" | null, "body_size": raw bytes stored,
 *                  "body_truncated": bool}, ...]}   (master first)
 *
 * Bodies are kept only for differing results. A body is given as text
 * when it is valid UTF-8 (JSON, HTML and text nearly always are), else
 * base64, so that any body survives JSON intact. */
json_t *kg_storeq_result(kg_storeq *q, const char *id);

/* Results per time bucket since since_ts, for one endpoint (NULL: all):
 *
 *   {"bucket_seconds": 60, "endpoint": null, "since": ...,
 *    "buckets": [{"t": <bucket start>, "compared": 10, "differing": 2,
 *                 "errors": 0, "master_p50_ms", "master_p90_ms",
 *                 "shadow_p50_ms", "shadow_p90_ms"}, ...]}
 *
 * in time order; only buckets with results appear; at most the newest
 * KG_STOREQ_MAX_BUCKETS. Buckets are whole minutes (bucket_seconds is
 * rounded up to one, and says what was used); since starts at its
 * minute. Shadow percentiles pool every shadow. */
json_t *kg_storeq_timeseries(kg_storeq *q, const char *endpoint,
                             double bucket_seconds, double since_ts);
/* Whether a time series in buckets of bucket_seconds reads the hourly
 * aggregates (whole hours) rather than the minute ones. */
bool kg_storeq_timeseries_hourly(double bucket_seconds);

#endif
