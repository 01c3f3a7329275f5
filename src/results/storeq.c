/* storeq.c: read-only queries on the results store (see storeq.h).
 *
 * The report and the time series read the writer's per-minute aggregates
 * (store.c, storeagg.h): counts from agg_requests, latency histograms from
 * agg_backends, merged here, and top locations from agg_locations. Their
 * cost grows with endpoints x minutes, never with traffic. The result
 * list and single results read the results kept one by one. Each query
 * function runs in one read transaction, so its parts agree. */
#include "results/storeq.h"

#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#include "common/common.h"
#include "results/store.h"
#include "results/storeagg.h"

/* A stored body larger than this is not decompressed (only a hand-edited
 * database could claim one: the writer caps bodies at store_max_body_bytes). */
#define KG_STOREQ_MAX_BODY ((uLongf)256 << 20)
#define KG_STOREQ_BUSY_MS 2000
#define KG_STOREQ_LIST_LOCATIONS 3

struct kg_storeq {
  sqlite3 *db;     /* owned, read-only */
  char *path;      /* owned */
  int code;        /* KG_STOREQ_* of the last failure */
  char msg[600];   /* its message */
};

int kg_storeq_open(const char *path, kg_storeq **out, char *err,
                   size_t errlen) {
  *out = NULL;
  struct stat stb;
  if (stat(path, &stb) != 0) {
    snprintf(err, errlen, "store %s: no such file (kagami writes its store "
             "where the config's `store` says, by default kagami.db in the "
             "directory it runs in)", path);
    return -1;
  }
  if (kg_store_sniff(path, err, errlen) < 0) return -1;
  kg_storeq *q = kg_calloc(1, sizeof(*q));
  q->path = kg_strdup(path);
  int rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, KG_STOREQ_BUSY_MS);

  } else {
    kg_store_error(q->db, rc, path, "opening", err, errlen);
  }
  int r = rc == SQLITE_OK ? kg_store_check_schema(q->db, path, err, errlen) : -1;
  if (r == 1) /* no tables: an empty file, or kagami never wrote here */
    snprintf(err, errlen, "store %s: empty, not a kagami store yet", path);
  if (r != 0) {
    kg_storeq_close(q);
    return -1;
  }
  *out = q;
  return 0;
}

kg_storeq *kg_storeq_adopt(sqlite3 *db, const char *label) {
  kg_storeq *q = kg_calloc(1, sizeof(*q));
  q->db = db;
  q->path = kg_strdup(label);
  return q;
}

void kg_storeq_close(kg_storeq *q) {
  if (q == NULL) return;
  sqlite3_close(q->db);
  free(q->path);
  free(q);
}

int kg_storeq_errcode(const kg_storeq *q) { return q->code; }
const char *kg_storeq_errmsg(const kg_storeq *q) { return q->msg; }

/* --- helpers ------------------------------------------------------------------ */

static json_t *kg_q_fail(kg_storeq *q, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *kg_q_fail(kg_storeq *q, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(q->msg, sizeof(q->msg), fmt, ap);
  va_end(ap);
  q->code = code;
  return NULL;
}

static json_t *kg_q_sqlfail(kg_storeq *q, int rc, const char *what) {
  kg_store_error(q->db, rc, q->path, what, q->msg, sizeof(q->msg));
  q->code = KG_STOREQ_FAILED;
  return NULL;
}

static int kg_q_prepare(kg_storeq *q, const char *sql, sqlite3_stmt **st) {
  return sqlite3_prepare_v2(q->db, sql, -1, st, NULL);
}

/* Binds by name when the statement has that parameter. */
static void kg_q_bind_text(sqlite3_stmt *st, const char *name, const char *v) {
  int i = sqlite3_bind_parameter_index(st, name);
  if (i == 0) return;
  if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_null(st, i);
}

static void kg_q_bind_int(sqlite3_stmt *st, const char *name, long long v) {
  int i = sqlite3_bind_parameter_index(st, name);
  if (i) sqlite3_bind_int64(st, i, v);
}

static void kg_q_bind_double(sqlite3_stmt *st, const char *name, double v) {
  int i = sqlite3_bind_parameter_index(st, name);
  if (i) sqlite3_bind_double(st, i, v);
}

/* A text column as a JSON string (null for NULL). Invalid UTF-8, which only
 * a hand-edited database holds, is repaired rather than failing. */
static json_t *kg_col_text(sqlite3_stmt *st, int i) {
  const char *s = (const char *)sqlite3_column_text(st, i);
  if (s == NULL) return json_null();
  size_t n = (size_t)sqlite3_column_bytes(st, i);
  json_t *j = json_stringn(s, n);
  if (j) return j;
  kg_buf b = KG_BUF_INIT;
  kg_store_utf8_clean(s, n, &b);
  j = json_stringn(b.data ? b.data : "", b.len);
  kg_buf_free(&b);
  return j;
}

/* A C string as a JSON string, repaired like kg_col_text when needed. */
static json_t *kg_q_str(const char *s) {
  json_t *j = json_string(s);
  if (j) return j;
  kg_buf b = KG_BUF_INIT;
  kg_store_utf8_clean(s, strlen(s), &b);
  j = json_stringn(b.data ? b.data : "", b.len);
  kg_buf_free(&b);
  return j;
}

static json_t *kg_col_real(sqlite3_stmt *st, int i) {
  return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null()
                                                   : json_real(sqlite3_column_double(st, i));
}

static json_t *kg_col_int(sqlite3_stmt *st, int i) {
  return sqlite3_column_type(st, i) == SQLITE_NULL
             ? json_null()
             : json_integer((json_int_t)sqlite3_column_int64(st, i));
}

static json_t *kg_col_bool(sqlite3_stmt *st, int i) {
  return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null()
                                                   : json_boolean(sqlite3_column_int(st, i));
}

/* A JSON text column parsed (null for NULL or for text that does not parse). */
static json_t *kg_col_json(sqlite3_stmt *st, int i) {
  const char *s = (const char *)sqlite3_column_text(st, i);
  if (s == NULL) return json_null();
  json_t *j = json_loadb(s, (size_t)sqlite3_column_bytes(st, i), JSON_DECODE_ANY, NULL);
  return j ? j : json_null();
}

static const char *kg_col_str(sqlite3_stmt *st, int i) {
  const char *s = (const char *)sqlite3_column_text(st, i);
  return s ? s : "";
}

/* "2026-11-26T05:40:00.123Z" for Unix seconds ts. */
static json_t *kg_q_time(double ts) {
  long long ms = llround(ts * 1000.0);
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  char out[48];
  gmtime_r(&secs, &tm);
  snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, ms % 1000);
  return json_string(out);
}

/* Runs fn inside one read transaction, so that its queries see one
 * snapshot. */
static json_t *kg_q_in_txn(kg_storeq *q, json_t *(*fn)(kg_storeq *, void *), void *arg) {
  q->code = KG_STOREQ_OK;
  q->msg[0] = '\0';
  int rc = sqlite3_exec(q->db, "BEGIN", NULL, NULL, NULL);
  if (rc != SQLITE_OK) return kg_q_sqlfail(q, rc, "starting a read");
  json_t *out = fn(q, arg);
  sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
  return out;
}

/* --- percentiles ---------------------------------------------------------------- */

/* A latency percentile of h in ms, or null when it holds nothing. */
static json_t *kg_q_pct(const kg_hist *h, double p) {
  if (kg_hist_count(h) == 0) return json_null();
  return json_real((double)kg_hist_percentile(h, p) / 1000.0);
}

/* The first minute a `since` (Unix seconds) covers: the minute it falls
 * in, so that a report since now - 1h holds the whole last hour. */
static long long kg_q_minute(double since) {
  return since > 0 ? (long long)floor(since / 60.0) : LLONG_MIN;
}

/* --- endpoints ------------------------------------------------------------------ */

/* Every query below reads a range of one index and no table (see the
 * indexes in store.c): the per-endpoint counts scan results_endpoint once;
 * then each listed endpoint's latencies and locations are ranges of
 * backends_latency and locations_endpoint from `since` on. The glob is
 * tested once per endpoint (HAVING), not once per result. */
/* The aggregates are per minute: the minute `since` falls in counts,
 * whole, when a request of it came at or after since (its last_ts), so
 * that "--since 1h" holds the whole last hour and "--since 1s" nothing
 * when the last second was quiet. min(minute) is where each endpoint's
 * latencies and locations then start. */
static const char kg_q_ep_counts[] =
    "SELECT endpoint, sum(compared), sum(differing), min(first_ts), max(last_ts),"
    " sum(errors), min(m) FROM ("
    "  SELECT endpoint, minute AS m, compared, differing, errors, first_ts, last_ts"
    "  FROM agg_requests WHERE minute >= :since AND minute < :split"
    "  AND last_ts >= :since_ts"
    "  UNION ALL"
    "  SELECT endpoint, hour * 60, compared, differing, errors, first_ts, last_ts"
    "  FROM agg_requests_hour WHERE hour >= :hsplit)"
    " GROUP BY endpoint"
    " HAVING :glob IS NULL OR (CASE WHEN :pathonly THEN"
    "  substr(endpoint, instr(endpoint, ' ') + 1) ELSE endpoint END) GLOB :glob"
    " ORDER BY 3 DESC, 2 DESC, 1 LIMIT :limit";

static const char kg_q_ep_latency[] =
    "SELECT backend, role = 'master', pos, hist, errors FROM agg_backends"
    " WHERE endpoint = :ep AND minute >= :since AND minute < :split"
    " UNION ALL"
    " SELECT backend, role = 'master', pos, hist, errors FROM agg_backends_hour"
    " WHERE endpoint = :ep AND hour >= :hsplit";

/* The top locations, and (last column) how many distinct ones there are. */
static const char kg_q_ep_locations[] =
    "SELECT loc, sum(c) AS n, count(*) OVER () FROM ("
    "  SELECT loc, count AS c FROM agg_locations"
    "  WHERE endpoint = :ep AND minute >= :since AND minute < :split"
    "  UNION ALL"
    "  SELECT loc, count FROM agg_locations_hour WHERE endpoint = :ep AND hour >= :hsplit)"
    " GROUP BY loc ORDER BY n DESC, loc LIMIT :top";

/* Where a range from minute m0 on switches from the minute aggregates to
 * the hourly ones: the minutes of m0's own hour come from the minute
 * tables (so that m0's rule above holds), every later hour, whole, from
 * the hour tables: a week is 168 rows per key, not 10,080. m0 LLONG_MIN
 * (everything): all hours. */
static void kg_q_bind_split(sqlite3_stmt *st, long long m0) {
  long long h1 = m0 == LLONG_MIN ? LLONG_MIN / 60
                                 : (m0 >= 0 ? m0 / 60 : -((-m0 + 59) / 60)) + 1;
  kg_q_bind_int(st, ":split", m0 == LLONG_MIN ? LLONG_MIN : h1 * 60);
  kg_q_bind_int(st, ":hsplit", h1);
}

/* Backends per endpoint beyond this are not listed (they would be a
 * config with thousands of shadows, or a hand-edited store). */
#define KG_Q_MAX_BACKENDS 64

/* One backend of one endpoint, while its rows are read. */
typedef struct kg_q_be {
  char *name;          /* owned */
  bool master;         /* some row has role master: its role is then the
                          least seen, "master", else "shadow" */
  long long pos;       /* the least seen */
  long long errors;
  kg_hist *ms;         /* owned: answered latencies, us */
} kg_q_be;

static int kg_q_be_order(const void *a, const void *b) {
  const kg_q_be *x = a, *y = b;
  if (x->master != y->master) return x->master ? -1 : 1;
  if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
  return strcmp(x->name, y->name);
}

typedef struct kg_q_ep {
  const char *name;     /* borrowed from obj's "endpoint" (the stored name,
                           which only a hand-edited store has invalid) */
  json_t *obj;          /* owned until added to the output */
  json_t *backends;     /* borrowed from obj */
  json_t *tops;         /* borrowed from obj */
  long long compared, differing, errors;
  long long first_minute;  /* the first minute counted (see kg_q_ep_counts) */
  long long split_from;    /* the report's first minute (kg_q_bind_split) */
  double attention;
  bool regression;
} kg_q_ep;

/* What needs a person's eye first (see storeq.h). */
static int kg_q_ep_by_attention(const void *a, const void *b) {
  const kg_q_ep *x = a, *y = b;
  if (x->regression != y->regression) return x->regression ? -1 : 1;
  if (x->attention != y->attention) return x->attention > y->attention ? -1 : 1;
  if (x->compared != y->compared) return x->compared > y->compared ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* Raises the regression flags once every backend's percentiles are in. */
static void kg_q_ep_flag(kg_q_ep *e, double factor) {
  json_t *master = NULL, *b;
  size_t i;
  json_array_foreach(e->backends, i, b)
    if (strcmp(json_string_value(json_object_get(b, "role")), "master") == 0) master = b;
  if (master == NULL) return;
  json_t *mp = json_object_get(master, "p90_ms");
  long long mn = json_integer_value(json_object_get(master, "samples"));
  json_array_foreach(e->backends, i, b) {
    if (b == master) continue;
    json_t *sp = json_object_get(b, "p90_ms");
    long long sn = json_integer_value(json_object_get(b, "samples"));
    if (!json_is_number(mp) || !json_is_number(sp)) continue;
    /* A floor of 1 us, as the proxy's own flag, so that a master answering
     * in no measurable time does not make every shadow "infinitely" slower. */
    double m = KG_MAX(json_number_value(mp), 0.001), s = json_number_value(sp);
    json_object_set_new(b, "p90_ratio", json_real(round(s / m * 1000) / 1000));
    bool flagged = mn >= KG_STOREQ_MIN_SAMPLES && sn >= KG_STOREQ_MIN_SAMPLES && s > factor * m;
    json_object_set_new(b, "regression", json_boolean(flagged));
    if (flagged) e->regression = true;
  }
}

/* Prepares *st on first use, else resets it for another endpoint. */
static int kg_q_reuse(kg_storeq *q, const char *sql, sqlite3_stmt **st) {
  if (*st == NULL) return kg_q_prepare(q, sql, st);
  sqlite3_reset(*st);
  sqlite3_clear_bindings(*st);
  return SQLITE_OK;
}

/* Fills e->backends: per backend, samples, errors and nearest-rank
 * percentiles of the successful samples from e->first_minute on (read
 * back from the merged histograms), master first, then
 * by position and name. */
static int kg_q_ep_backends(kg_storeq *q, kg_q_ep *e, sqlite3_stmt **st) {
  int rc = kg_q_reuse(q, kg_q_ep_latency, st);
  if (rc != SQLITE_OK) return rc;
  kg_q_bind_text(*st, ":ep", e->name);
  kg_q_bind_int(*st, ":since", e->first_minute);
  kg_q_bind_split(*st, e->split_from);
  kg_q_be be[KG_Q_MAX_BACKENDS];
  size_t nbe = 0;
  /* The hot loop of the report: one row per backend per minute, each a
   * histogram blob merged into the backend's. A blob that does not decode
   * (only a damaged store has one) leaves that minute's latencies out. */
  while ((rc = sqlite3_step(*st)) == SQLITE_ROW) {
    const char *name = kg_col_str(*st, 0);
    kg_q_be *b = NULL;
    for (size_t i = 0; i < nbe && b == NULL; i++)
      if (strcmp(be[i].name, name) == 0) b = &be[i];
    if (b == NULL) {
      if (nbe == KG_Q_MAX_BACKENDS) continue;
      b = &be[nbe++];
      *b = (kg_q_be){.name = kg_strdup(name), .pos = sqlite3_column_int64(*st, 2),
                     .ms = kg_malloc(sizeof(kg_hist))};
      kg_hist_init(b->ms);
    }
    if (sqlite3_column_int(*st, 1)) b->master = true;
    b->pos = KG_MIN(b->pos, (long long)sqlite3_column_int64(*st, 2));
    b->errors += sqlite3_column_int64(*st, 4);
    const void *blob = sqlite3_column_blob(*st, 3);
    (void)kg_storeagg_hist_merge(b->ms, blob ? blob : "", (size_t)sqlite3_column_bytes(*st, 3));
  }
  qsort(be, nbe, sizeof(*be), kg_q_be_order);
  for (size_t i = 0; i < nbe; i++) {
    kg_q_be *b = &be[i];
    if (rc == SQLITE_DONE) {
      json_t *o = json_object();
      json_object_set_new(o, "name", kg_q_str(b->name));
      json_object_set_new(o, "role", json_string(b->master ? "master" : "shadow"));
      json_object_set_new(o, "samples", json_integer((json_int_t)kg_hist_count(b->ms)));
      json_object_set_new(o, "errors", json_integer(b->errors));
      long long all = (long long)kg_hist_count(b->ms) + b->errors;
      json_object_set_new(o, "error_rate",
                          json_real(all ? round((double)b->errors / (double)all * 1e6) / 1e6 : 0));
      json_object_set_new(o, "p50_ms", kg_q_pct(b->ms, 50));
      json_object_set_new(o, "p90_ms", kg_q_pct(b->ms, 90));
      json_object_set_new(o, "p99_ms", kg_q_pct(b->ms, 99));
      json_array_append_new(e->backends, o);
    }
    free(b->name);
    free(b->ms);
  }
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Fills e->tops: the locations most results of the endpoint differed at
 * from e->first_minute on, most first; and e's "locations", how many
 * distinct ones there are. */
static int kg_q_ep_tops(kg_storeq *q, kg_q_ep *e, sqlite3_stmt **st) {
  int rc = kg_q_reuse(q, kg_q_ep_locations, st);
  if (rc != SQLITE_OK) return rc;
  kg_q_bind_text(*st, ":ep", e->name);
  kg_q_bind_int(*st, ":since", e->first_minute);
  kg_q_bind_split(*st, e->split_from);
  kg_q_bind_int(*st, ":top", KG_STOREQ_TOP_LOCATIONS);
  long long distinct = 0;
  while ((rc = sqlite3_step(*st)) == SQLITE_ROW) {
    distinct = sqlite3_column_int64(*st, 2);
    json_t *t = json_object();
    json_object_set_new(t, "location", kg_col_text(*st, 0));
    json_object_set_new(t, "count", kg_col_int(*st, 1));
    json_array_append_new(e->tops, t);
  }
  json_object_set_new(e->obj, "locations", json_integer(distinct));
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

typedef struct kg_q_ep_args {
  double since;
  const char *glob;
  double factor;
} kg_q_ep_args;

static json_t *kg_q_endpoints(kg_storeq *q, void *arg) {
  const kg_q_ep_args *a = arg;
  sqlite3_stmt *st = NULL, *lat = NULL, *loc = NULL;
  kg_q_ep *eps = NULL;
  size_t n = 0;
  long long total = 0, differing = 0, errors = 0;
  json_t *out = NULL;
  int rc = kg_q_prepare(q, kg_q_ep_counts, &st);
  if (rc != SQLITE_OK) goto fail;
  kg_q_bind_int(st, ":since", kg_q_minute(a->since));
  kg_q_bind_double(st, ":since_ts", a->since);
  kg_q_bind_split(st, kg_q_minute(a->since));
  kg_q_bind_text(st, ":glob", a->glob);
  kg_q_bind_int(st, ":pathonly", a->glob && strchr(a->glob, ' ') == NULL);
  kg_q_bind_int(st, ":limit", KG_STOREQ_MAX_ENDPOINTS);
  eps = kg_calloc(KG_STOREQ_MAX_ENDPOINTS, sizeof(*eps));
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    kg_q_ep *e = &eps[n++];
    e->obj = json_object();
    json_object_set_new(e->obj, "endpoint", kg_col_text(st, 0));
    e->name = json_string_value(json_object_get(e->obj, "endpoint"));
    e->compared = sqlite3_column_int64(st, 1);
    e->differing = sqlite3_column_int64(st, 2);
    e->errors = sqlite3_column_int64(st, 5);
    e->first_minute = sqlite3_column_int64(st, 6);
    e->split_from = kg_q_minute(a->since);
    double rate = e->compared ? (double)e->differing / (double)e->compared : 0;
    double erate = e->compared ? (double)e->errors / (double)e->compared : 0;
    e->attention = (double)e->differing * rate;
    total += e->compared;
    differing += e->differing;
    errors += e->errors;
    json_object_set_new(e->obj, "compared", json_integer(e->compared));
    json_object_set_new(e->obj, "differing", json_integer(e->differing));
    json_object_set_new(e->obj, "difference_rate", json_real(round(rate * 1e6) / 1e6));
    json_object_set_new(e->obj, "errors", json_integer(e->errors));
    json_object_set_new(e->obj, "error_rate", json_real(round(erate * 1e6) / 1e6));
    json_object_set_new(e->obj, "first_ts", kg_col_real(st, 3));
    json_object_set_new(e->obj, "last_ts", kg_col_real(st, 4));
    e->tops = json_array();
    json_object_set_new(e->obj, "top_differences", e->tops);
    e->backends = json_array();
    json_object_set_new(e->obj, "backends", e->backends);
  }
  if (rc != SQLITE_DONE) goto fail;
  sqlite3_finalize(st);
  st = NULL;

  for (size_t i = 0; i < n; i++) {
    rc = kg_q_ep_backends(q, &eps[i], &lat);
    if (rc == SQLITE_OK) rc = kg_q_ep_tops(q, &eps[i], &loc);
    if (rc != SQLITE_OK) goto fail;
  }
  sqlite3_finalize(lat);
  sqlite3_finalize(loc);
  lat = loc = NULL;

  for (size_t i = 0; i < n; i++) {
    kg_q_ep_flag(&eps[i], a->factor);
    json_object_set_new(eps[i].obj, "regression", json_boolean(eps[i].regression));
    json_object_set_new(eps[i].obj, "attention",
                        json_real(round(eps[i].attention * 1000) / 1000));
  }
  qsort(eps, n, sizeof(*eps), kg_q_ep_by_attention);
  out = json_object();
  json_object_set_new(out, "since", json_real(a->since));
  json_object_set_new(out, "compared", json_integer(total));
  json_object_set_new(out, "differing", json_integer(differing));
  json_object_set_new(out, "errors", json_integer(errors));
  json_object_set_new(out, "regression_factor", json_real(a->factor));
  json_t *list = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(list, eps[i].obj);
  json_object_set_new(out, "endpoints", list);
  free(eps);
  return out;
fail:
  kg_q_sqlfail(q, rc, "querying endpoints");
  sqlite3_finalize(st);
  sqlite3_finalize(lat);
  sqlite3_finalize(loc);
  for (size_t i = 0; i < n; i++) json_decref(eps[i].obj);
  free(eps);
  return NULL;
}

json_t *kg_storeq_endpoints(kg_storeq *q, double since_ts,
                            const char *endpoint_glob,
                            double regression_factor) {
  kg_q_ep_args a = {.since = since_ts, .glob = endpoint_glob,
                    .factor = regression_factor};
  return kg_q_in_txn(q, kg_q_endpoints, &a);
}

/* --- results -------------------------------------------------------------------- */

/* The backends of one result, in the record's order; with_bodies adds
 * headers and bodies. */
static const char kg_q_backends_sql[] =
    "SELECT name, role, status, error, elapsed_ms, equal, bytes, truncated,"
    " compare_error, headers, body, body_size, body_truncated"
    " FROM backends WHERE result_id = :id ORDER BY pos LIMIT 64";

static const char kg_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding. No library kagami already links offers
 * one, and it is too small to be worth a new dependency. */
static json_t *kg_q_base64(const unsigned char *p, size_t n) {
  kg_buf b = KG_BUF_INIT;
  kg_buf_reserve(&b, (n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < n) v |= p[i + 2];
    char quad[4] = {kg_b64[(v >> 18) & 63], kg_b64[(v >> 12) & 63],
                    i + 1 < n ? kg_b64[(v >> 6) & 63] : '=',
                    i + 2 < n ? kg_b64[v & 63] : '='};
    kg_buf_append(&b, quad, 4);
  }
  json_t *j = json_stringn(b.data ? b.data : "", b.len);
  kg_buf_free(&b);
  return j;
}

/* Decompresses a stored body into o's "body" and "body_encoding". */
static void kg_q_body(sqlite3_stmt *st, json_t *o) {
  const void *z = sqlite3_column_blob(st, 10);
  sqlite3_int64 size = sqlite3_column_int64(st, 11);
  if (sqlite3_column_type(st, 10) == SQLITE_NULL || size < 0 ||
      (uLongf)size > KG_STOREQ_MAX_BODY) {
    json_object_set_new(o, "body", json_null());
    json_object_set_new(o, "body_encoding", json_null());
    return;
  }
  uLongf n = (uLongf)size;
  unsigned char *raw = kg_malloc(n + 1);
  int zrc = uncompress(raw, &n, z ? z : (const void *)"", (uLong)sqlite3_column_bytes(st, 10));
  json_t *text = zrc == Z_OK ? json_stringn((const char *)raw, n) : NULL;
  if (zrc != Z_OK) {
    json_object_set_new(o, "body", json_null());
    json_object_set_new(o, "body_encoding", json_null());
    json_object_set_new(o, "body_error", json_string("stored body does not decompress"));
  } else if (text) {
    json_object_set_new(o, "body", text);
    json_object_set_new(o, "body_encoding", json_string("utf-8"));
  } else {
    json_object_set_new(o, "body", kg_q_base64(raw, n));
    json_object_set_new(o, "body_encoding", json_string("base64"));
  }
  free(raw);
}

static int kg_q_backends(kg_storeq *q, sqlite3_stmt *st, const char *id,
                         bool full, json_t *list) {
  (void)q;
  kg_q_bind_text(st, ":id", id);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    json_t *b = json_object();
    json_object_set_new(b, "name", kg_col_text(st, 0));
    json_object_set_new(b, "role", kg_col_text(st, 1));
    json_object_set_new(b, "status", kg_col_int(st, 2));
    json_object_set_new(b, "error", kg_col_text(st, 3));
    json_object_set_new(b, "elapsed_ms", kg_col_real(st, 4));
    json_object_set_new(b, "equal", kg_col_bool(st, 5));
    if (full) {
      json_object_set_new(b, "bytes", kg_col_int(st, 6));
      json_object_set_new(b, "truncated", json_boolean(sqlite3_column_int(st, 7)));
      json_object_set_new(b, "compare_error", kg_col_text(st, 8));
      json_object_set_new(b, "headers", kg_col_json(st, 9));
      kg_q_body(st, b);
      json_object_set_new(b, "body_size", kg_col_int(st, 11));
      json_object_set_new(b, "body_truncated", json_boolean(sqlite3_column_int(st, 12)));
    }
    json_array_append_new(list, b);
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The first few locations of a result, for a list row. */
static json_t *kg_q_locations(sqlite3_stmt *st, int diffs_col, int hdiffs_col) {
  json_t *out = json_array();
  json_t *d = kg_col_json(st, diffs_col), *h = kg_col_json(st, hdiffs_col), *x;
  size_t i;
  json_array_foreach(d, i, x) {
    if (json_array_size(out) >= KG_STOREQ_LIST_LOCATIONS) break;
    const char *w = json_string_value(json_object_get(x, "where"));
    if (w) json_array_append_new(out, json_string(w));
  }
  json_array_foreach(h, i, x) {
    if (json_array_size(out) >= KG_STOREQ_LIST_LOCATIONS) break;
    const char *nm = json_string_value(json_object_get(x, "name"));
    if (nm) json_array_append_new(out, json_sprintf("header:%s", nm));
  }
  json_decref(d);
  json_decref(h);
  return out;
}

typedef struct kg_q_list_args {
  const char *endpoint;
  bool differing;
  int limit;
  const char *before;
} kg_q_list_args;

/* The columns every result query starts with (id, ts, method, url,
 * endpoint, kind, equal, truncated), into o. */
static void kg_q_result_head(sqlite3_stmt *st, json_t *o) {
  json_object_set_new(o, "id", kg_col_text(st, 0));
  json_object_set_new(o, "ts", kg_col_real(st, 1));
  json_object_set_new(o, "time", kg_q_time(sqlite3_column_double(st, 1)));
  json_object_set_new(o, "method", kg_col_text(st, 2));
  json_object_set_new(o, "url", kg_col_text(st, 3));
  json_object_set_new(o, "endpoint", kg_col_text(st, 4));
  json_object_set_new(o, "kind", kg_col_text(st, 5));
  json_object_set_new(o, "equal", kg_col_bool(st, 6));
  json_object_set_new(o, "truncated", kg_col_bool(st, 7));
}

static json_t *kg_q_results(kg_storeq *q, void *arg) {
  const kg_q_list_args *a = arg;
  /* Only constant fragments are joined, so each combination gets the plan
   * that uses its index (endpoint, differing, or the primary key). */
  kg_buf sql = KG_BUF_INIT;
  kg_buf_appends(&sql,
                 "SELECT id, ts, method, url, endpoint, kind, equal, truncated,"
                 " json_array_length(differences) + json_array_length(header_differences),"
                 " differences, header_differences, latency_regression"
                 " FROM results WHERE 1");
  if (a->endpoint) kg_buf_appends(&sql, " AND endpoint = :endpoint");
  if (a->differing) kg_buf_appends(&sql, " AND equal = 0");
  if (a->before) kg_buf_appends(&sql, " AND id < :before");
  kg_buf_appends(&sql, " ORDER BY id DESC LIMIT :limit");
  sqlite3_stmt *st = NULL, *bst = NULL;
  json_t *list = json_array(), *out = NULL;
  int rc = kg_q_prepare(q, sql.data, &st);
  kg_buf_free(&sql);
  if (rc == SQLITE_OK) rc = kg_q_prepare(q, kg_q_backends_sql, &bst);
  if (rc != SQLITE_OK) goto done;
  kg_q_bind_text(st, ":endpoint", a->endpoint);
  kg_q_bind_text(st, ":before", a->before);
  kg_q_bind_int(st, ":limit", a->limit + 1); /* one more: is there a next page? */
  int k = 0;
  char *last = NULL;
  bool more = false;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (k++ == a->limit) {
      more = true;
      break;
    }
    json_t *o = json_object();
    free(last);
    last = kg_strdup(kg_col_str(st, 0));
    kg_q_result_head(st, o);
    json_object_set_new(o, "differences", kg_col_int(st, 8));
    json_object_set_new(o, "locations", kg_q_locations(st, 9, 10));
    json_object_set_new(o, "latency_regression", kg_col_json(st, 11));
    json_t *bes = json_array();
    json_object_set_new(o, "backends", bes);
    json_array_append_new(list, o);
    rc = kg_q_backends(q, bst, last, false, bes);
    if (rc != SQLITE_OK) break;
  }
  if (rc == SQLITE_DONE || (rc == SQLITE_ROW && more)) {
    out = json_object();
    json_object_set_new(out, "results", json_incref(list));
    json_object_set_new(out, "next_before", more && last ? json_string(last) : json_null());
  }
  free(last);
done:
  if (out == NULL) kg_q_sqlfail(q, rc, "querying results");
  sqlite3_finalize(st);
  sqlite3_finalize(bst);
  json_decref(list);
  return out;
}

json_t *kg_storeq_results(kg_storeq *q, const char *endpoint,
                          bool differing_only, int limit,
                          const char *before_id) {
  kg_q_list_args a = {
      .endpoint = endpoint,
      .differing = differing_only,
      .limit = limit <= 0 ? KG_STOREQ_DEFAULT_RESULTS : KG_MIN(limit, KG_STOREQ_MAX_RESULTS),
      .before = before_id};
  return kg_q_in_txn(q, kg_q_results, &a);
}

static json_t *kg_q_result(kg_storeq *q, void *arg) {
  const char *id = arg;
  sqlite3_stmt *st = NULL, *bst = NULL;
  json_t *o = NULL;
  int rc = kg_q_prepare(q,
                        "SELECT id, ts, method, url, endpoint, kind, equal, truncated,"
                        " request_headers, differences, header_differences,"
                        " suppressed, diff, latency_regression"
                        " FROM results WHERE id = :id",
                        &st);
  if (rc == SQLITE_OK) rc = kg_q_prepare(q, kg_q_backends_sql, &bst);
  if (rc != SQLITE_OK) goto fail;
  kg_q_bind_text(st, ":id", id);
  rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    sqlite3_finalize(st);
    sqlite3_finalize(bst);
    return kg_q_fail(q, KG_STOREQ_NOT_FOUND, "no result %s in %s (never stored, "
                     "or removed by retention)", id, q->path);
  }
  if (rc != SQLITE_ROW) goto fail;
  o = json_object();
  kg_q_result_head(st, o);
  json_object_set_new(o, "request_headers", kg_col_json(st, 8));
  json_object_set_new(o, "differences", kg_col_json(st, 9));
  json_object_set_new(o, "header_differences", kg_col_json(st, 10));
  json_object_set_new(o, "suppressed", kg_col_json(st, 11));
  json_object_set_new(o, "diff", kg_col_text(st, 12));
  json_object_set_new(o, "latency_regression", kg_col_json(st, 13));
  json_t *bes = json_array();
  json_object_set_new(o, "backends", bes);
  rc = kg_q_backends(q, bst, id, true, bes);
  if (rc != SQLITE_OK) goto fail;
  sqlite3_finalize(st);
  sqlite3_finalize(bst);
  return o;
fail:
  kg_q_sqlfail(q, rc, "reading a result");
  sqlite3_finalize(st);
  sqlite3_finalize(bst);
  json_decref(o);
  return NULL;
}

json_t *kg_storeq_result(kg_storeq *q, const char *id) {
  return kg_q_in_txn(q, kg_q_result, (void *)id);
}

/* --- timeseries ----------------------------------------------------------------- */

typedef struct kg_q_ts_args {
  const char *endpoint;
  double bucket, since;
} kg_q_ts_args;

/* Minutes per time bucket: bucket seconds rounded up to whole minutes. */
static long long kg_q_bucket_minutes(double bucket) {
  double bm = ceil(bucket / 60.0);
  return bm < 1 ? 1 : bm > 1e9 ? 1000000000LL : (long long)bm;
}

bool kg_storeq_timeseries_hourly(double bucket_seconds) {
  return kg_q_bucket_minutes(bucket_seconds) % 60 == 0;
}

/* One time bucket while rows are read. */
typedef struct kg_q_slot {
  long long compared, differing, errors;
  json_t *pct[4];   /* owned until output: master p50, p90, shadow p50, p90 */
} kg_q_slot;

/* Puts the percentiles of the histograms m and sh into slot (when it has
 * none yet) and empties them. */
static void kg_q_slot_close(kg_q_slot *slot, kg_hist *m, kg_hist *sh) {
  if (slot && slot->pct[0] == NULL) {
    slot->pct[0] = kg_q_pct(m, 50);
    slot->pct[1] = kg_q_pct(m, 90);
    slot->pct[2] = kg_q_pct(sh, 50);
    slot->pct[3] = kg_q_pct(sh, 90);
  }
  kg_hist_init(m);
  kg_hist_init(sh);
}

/* Buckets are whole minutes, the aggregates' grain, and at most the
 * newest KG_STOREQ_MAX_BUCKETS of them. The counts are a GROUP BY; the
 * latency rows come in minute order, so only the current bucket's two
 * histograms (master, every shadow pooled) are ever in memory. */
static json_t *kg_q_timeseries(kg_storeq *q, void *arg) {
  const kg_q_ts_args *a = arg;
  sqlite3_stmt *st = NULL;
  kg_q_slot *slots = NULL;
  kg_hist *m = kg_malloc(sizeof(kg_hist)), *sh = kg_malloc(sizeof(kg_hist));
  kg_hist_init(m);
  kg_hist_init(sh);
  const size_t nslots = KG_STOREQ_MAX_BUCKETS;
  long long per = kg_q_bucket_minutes(a->bucket);
  double bucket = (double)per * 60.0;
  long long lo = 0, since = kg_q_minute(a->since);
  /* Buckets of whole hours read the hourly aggregates (60 times fewer
   * rows); since then starts at its hour. */
  bool hourly = kg_storeq_timeseries_hourly(a->bucket);
  if (hourly && since != LLONG_MIN) since = (since >= 0 ? since / 60 : -((-since + 59) / 60)) * 60;
  char sql[400];
  const char *grain = hourly ? "hour * 60" : "minute";
  const char *sfx = hourly ? "_hour" : "";
  const char *key = hourly ? "hour >= :since / 60" : "minute >= :since";
  json_t *list = json_array(), *out = NULL;
  snprintf(sql, sizeof(sql), "SELECT max(%s) FROM agg_requests%s%s", grain, sfx,
           a->endpoint ? " WHERE endpoint = :endpoint" : "");
  int rc = kg_q_prepare(q, sql, &st);
  if (rc != SQLITE_OK) goto fail;
  kg_q_bind_text(st, ":endpoint", a->endpoint);
  rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) goto fail;
  bool empty = sqlite3_column_type(st, 0) == SQLITE_NULL;
  if (!empty) {
    long long newest = sqlite3_column_int64(st, 0);
    /* floor division: minutes are never negative in practice, but a
     * hand-edited store may say anything */
    long long nb = newest >= 0 ? newest / per : -((-newest + per - 1) / per);
    lo = nb - (long long)nslots + 1;
    if (since == LLONG_MIN || since < lo * per) since = lo * per;
  }
  sqlite3_finalize(st);
  st = NULL;
  if (empty) goto done;
  slots = kg_calloc(nslots, sizeof(*slots));

  snprintf(sql, sizeof(sql),
           "SELECT %s AS m, sum(compared), sum(differing), sum(errors) FROM agg_requests%s"
           " WHERE %s%s GROUP BY m", grain, sfx, key,
           a->endpoint ? " AND endpoint = :endpoint" : "");
  rc = kg_q_prepare(q, sql, &st);
  if (rc != SQLITE_OK) goto fail;
  kg_q_bind_int(st, ":since", since);
  kg_q_bind_text(st, ":endpoint", a->endpoint);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    long long k = sqlite3_column_int64(st, 0) / per - lo;
    if (k < 0 || (size_t)k >= nslots) continue; /* newer than max: never */
    slots[k].compared += sqlite3_column_int64(st, 1);
    slots[k].differing += sqlite3_column_int64(st, 2);
    slots[k].errors += sqlite3_column_int64(st, 3);
  }
  if (rc != SQLITE_DONE) goto fail;
  sqlite3_finalize(st);
  st = NULL;

  snprintf(sql, sizeof(sql),
           "SELECT %s AS m, role = 'master', hist FROM agg_backends%s WHERE %s%s ORDER BY m",
           grain, sfx, key, a->endpoint ? " AND endpoint = :endpoint" : "");
  rc = kg_q_prepare(q, sql, &st);
  if (rc != SQLITE_OK) goto fail;
  kg_q_bind_int(st, ":since", since);
  kg_q_bind_text(st, ":endpoint", a->endpoint);
  long long cur = -1;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    long long k = sqlite3_column_int64(st, 0) / per - lo;
    if (k < 0 || (size_t)k >= nslots) continue;
    if (k != cur) {
      kg_q_slot_close(cur >= 0 ? &slots[cur] : NULL, m, sh);
      cur = k;
    }
    const void *blob = sqlite3_column_blob(st, 2);
    (void)kg_storeagg_hist_merge(sqlite3_column_int(st, 1) ? m : sh, blob ? blob : "",
                                 (size_t)sqlite3_column_bytes(st, 2));
  }
  if (rc != SQLITE_DONE) goto fail;
  kg_q_slot_close(cur >= 0 ? &slots[cur] : NULL, m, sh);
  sqlite3_finalize(st);
  st = NULL;

  for (size_t k = 0; k < nslots; k++) {
    kg_q_slot *sl = &slots[k];
    if (sl->compared == 0) continue; /* only buckets with results */
    static const char *const names[4] = {"master_p50_ms", "master_p90_ms",
                                         "shadow_p50_ms", "shadow_p90_ms"};
    json_t *b = json_object();
    json_object_set_new(b, "t", json_real((double)(lo + (long long)k) * bucket));
    json_object_set_new(b, "compared", json_integer(sl->compared));
    json_object_set_new(b, "differing", json_integer(sl->differing));
    json_object_set_new(b, "errors", json_integer(sl->errors));
    for (size_t i = 0; i < 4; i++) {
      json_object_set_new(b, names[i], sl->pct[i] ? sl->pct[i] : json_null());
      sl->pct[i] = NULL;
    }
    json_array_append_new(list, b);
  }
done:
  out = json_object();
  json_object_set_new(out, "bucket_seconds", json_real(bucket));
  json_object_set_new(out, "endpoint", a->endpoint ? json_string(a->endpoint) : json_null());
  json_object_set_new(out, "since", json_real(since == LLONG_MIN ? 0 : (double)since * 60.0));
  json_object_set_new(out, "buckets", list);
  list = NULL;
  rc = SQLITE_OK;
fail:
  if (rc != SQLITE_OK) {
    kg_q_sqlfail(q, rc, "querying the time series");
    out = NULL;
  }
  sqlite3_finalize(st);
  for (size_t k = 0; slots && k < nslots; k++)
    for (size_t i = 0; i < 4; i++) json_decref(slots[k].pct[i]);
  free(slots);
  free(m);
  free(sh);
  json_decref(list);
  return out;
}

json_t *kg_storeq_timeseries(kg_storeq *q, const char *endpoint,
                             double bucket_seconds, double since_ts) {
  if (!(bucket_seconds >= 0.001) || !isfinite(bucket_seconds))
    return kg_q_fail(q, KG_STOREQ_INVALID, "bucket_seconds must be a positive "
                     "number, got %g", bucket_seconds);
  kg_q_ts_args a = {.endpoint = endpoint, .bucket = bucket_seconds, .since = since_ts};
  return kg_q_in_txn(q, kg_q_timeseries, &a);
}
