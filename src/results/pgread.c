/* pgread.c: copies what a query needs of a PostgreSQL store (aggregates,
 * or a page of kept results) into an in-memory SQLite database that
 * storeq.c's queries read (see pgread.h). */
#include "results/pgread.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "results/pgstore.h"
#include "results/storeagg.h"

/* store.c's aggregate tables, without their keys: several instances'
 * rows may share an endpoint, minute and backend here, and every query
 * sums or merges over rows anyway. */
static const char kg_pgread_schema[] =
    "CREATE TABLE agg_requests(endpoint TEXT, minute INTEGER, compared INTEGER,"
    " differing INTEGER, errors INTEGER, first_ts REAL, last_ts REAL);"
    "CREATE TABLE agg_requests_hour(endpoint TEXT, hour INTEGER, compared INTEGER,"
    " differing INTEGER, errors INTEGER, first_ts REAL, last_ts REAL);"
    "CREATE TABLE agg_backends(endpoint TEXT, minute INTEGER, backend TEXT, role TEXT,"
    " pos INTEGER, errors INTEGER, hist BLOB);"
    "CREATE TABLE agg_backends_hour(endpoint TEXT, hour INTEGER, backend TEXT, role TEXT,"
    " pos INTEGER, errors INTEGER, hist BLOB);"
    "CREATE TABLE agg_locations(endpoint TEXT, minute INTEGER, loc TEXT, count INTEGER);"
    "CREATE TABLE agg_locations_hour(endpoint TEXT, hour INTEGER, loc TEXT, count INTEGER);";

/* Indexes for the report's per-endpoint lookups, built after the copy
 * (cheaper than keeping them up to date row by row). */
static const char kg_pgread_indexes[] =
    "CREATE INDEX agg_requests_m ON agg_requests(minute);"
    "CREATE INDEX agg_requests_h ON agg_requests_hour(hour);"
    "CREATE INDEX agg_backends_e ON agg_backends(endpoint, minute);"
    "CREATE INDEX agg_backends_he ON agg_backends_hour(endpoint, hour);"
    "CREATE INDEX agg_locations_e ON agg_locations(endpoint, minute);"
    "CREATE INDEX agg_locations_he ON agg_locations_hour(endpoint, hour);";

/* What the report reads (storeq.c, kg_q_bind_split): minute rows for the
 * minutes of its first hour, hour rows for every whole hour after; the
 * time series with buckets under an hour reads minute rows throughout.
 * So minute rows are copied from the first minute up to `limit` only, and
 * hour rows, which the writers keep (pgrollup.h), from the first minute's
 * hour on, whole (as a SQLite store has them), summed over instances and
 * parts here rather than in SQLite: a day of a fleet is then endpoints x
 * backends x 24 hour rows in the copy, from endpoints x backends x
 * instances x 24 in PostgreSQL, not one per instance and minute. */

/* One copy. Parameters: $1 instance or NULL, $2 the first minute, and for
 * minute rows $3 the minute they stop at; for hour rows (hourly) $2 is the
 * first hour. */
typedef struct kg_pgread_copy {
  const char *select;
  const char *insert;
  int ncols, nparams;
  int blob_col; /* bytea column, or -1 */
  bool hourly;
} kg_pgread_copy;

#define KG_PGREAD_WHERE " WHERE ($1::text IS NULL OR instance = $1) AND minute >= $2"
#define KG_PGREAD_WHERE_HOUR " WHERE ($1::text IS NULL OR instance = $1) AND hour >= $2"

static const kg_pgread_copy kg_pgread_copies[] = {
    {"SELECT endpoint, minute, sum(compared), sum(differing), sum(errors),"
     " min(first_ts), max(last_ts) FROM agg_requests" KG_PGREAD_WHERE
     " AND minute < $3 GROUP BY 1, 2",
     "INSERT INTO agg_requests VALUES (?, ?, ?, ?, ?, ?, ?)", 7, 3, -1, false},
    {"SELECT endpoint, hour, sum(compared), sum(differing), sum(errors), min(first_ts),"
     " max(last_ts) FROM agg_requests_hour" KG_PGREAD_WHERE_HOUR " GROUP BY 1, 2",
     "INSERT INTO agg_requests_hour VALUES (?, ?, ?, ?, ?, ?, ?)", 7, 2, -1, true},
    {"SELECT endpoint, minute, backend, role, pos, errors, latency FROM agg_backends"
     KG_PGREAD_WHERE " AND minute < $3",
     "INSERT INTO agg_backends VALUES (?, ?, ?, ?, ?, ?, ?)", 7, 3, 6, false},
    {"SELECT endpoint, minute, location, sum(count) FROM agg_locations" KG_PGREAD_WHERE
     " AND minute < $3 GROUP BY 1, 2, 3",
     "INSERT INTO agg_locations VALUES (?, ?, ?, ?)", 4, 3, -1, false},
    {"SELECT endpoint, hour, location, sum(count) FROM agg_locations_hour"
     KG_PGREAD_WHERE_HOUR " GROUP BY 1, 2, 3",
     "INSERT INTO agg_locations_hour VALUES (?, ?, ?, ?)", 4, 2, -1, true},
};

/* The latency histograms per endpoint, backend and hour: PostgreSQL cannot
 * merge kagami's blobs, so the hour rows of every instance and part
 * stream in, sorted, and are merged here. */
static const char kg_pgread_backends_hours[] =
    "SELECT endpoint, backend, hour, role, pos, errors, latency"
    " FROM agg_backends_hour" KG_PGREAD_WHERE_HOUR " ORDER BY 1, 2, 3";

static long long kg_pgread_hour(long long minute) {
  return minute >= 0 ? minute / 60 : -((-minute + 59) / 60);
}

/* Binds column c of the row in res to parameter c + 1 of st. A bytea
 * arrives as text ("\x..." hex) and is decoded. Returns false on a value
 * no writer produces. */
static bool kg_pgread_bind(sqlite3_stmt *st, const PGresult *res, int c, bool blob) {
  if (PQgetisnull(res, 0, c)) return sqlite3_bind_null(st, c + 1) == SQLITE_OK;
  const char *v = PQgetvalue(res, 0, c);
  if (blob) {
    size_t n = 0;
    unsigned char *b = PQunescapeBytea((const unsigned char *)v, &n);
    if (b == NULL) return false;
    int rc = sqlite3_bind_blob(st, c + 1, b, (int)n, SQLITE_TRANSIENT);
    PQfreemem(b);
    return rc == SQLITE_OK;
  }
  /* numbers go in as text: the table's column affinity makes them numbers */
  return sqlite3_bind_text(st, c + 1, v, -1, SQLITE_TRANSIENT) == SQLITE_OK;
}

/* Runs select with params in libpq's single-row mode (memory stays one
 * row whatever the fleet's size), calling row for each; row returns false
 * to fail the copy (message in err). */
typedef bool (*kg_pgread_row_fn)(void *ctx, const PGresult *row, char *err, size_t errlen);

static int kg_pgread_stream(PGconn *pg, const char *select, int nparams,
                            const char *const *params, int ncols, int binary,
                            kg_pgread_row_fn row, void *ctx, char *err, size_t errlen) {
  int rc = 0;
  if (!PQsendQueryParams(pg, select, nparams, NULL, params, NULL, NULL, binary) ||
      !PQsetSingleRowMode(pg)) {
    snprintf(err, errlen, "%s", PQerrorMessage(pg));
    rc = -1;
  }
  PGresult *res;
  while ((res = PQgetResult(pg)) != NULL) {
    ExecStatusType s = PQresultStatus(res);
    if (rc == 0 && s == PGRES_SINGLE_TUPLE) {
      if (PQnfields(res) != ncols) {
        snprintf(err, errlen, "unexpected columns in the store's tables");
        rc = -1;
      } else if (!row(ctx, res, err, errlen)) {
        rc = -1;
      }
    } else if (rc == 0 && s != PGRES_TUPLES_OK) {
      snprintf(err, errlen, "%s", PQresultErrorMessage(res));
      rc = -1;
    }
    PQclear(res); /* every result is read to the end, even after a failure */
  }
  return rc;
}

typedef struct kg_pgread_insert {
  sqlite3 *db;
  sqlite3_stmt *st;
  const kg_pgread_copy *cp;
} kg_pgread_insert;

static bool kg_pgread_insert_row(void *ctx, const PGresult *res, char *err, size_t errlen) {
  kg_pgread_insert *in = ctx;
  bool ok = true;
  for (int c = 0; c < in->cp->ncols && ok; c++)
    ok = kg_pgread_bind(in->st, res, c, c == in->cp->blob_col);
  if (!ok) snprintf(err, errlen, "a value no kagami writes, in the store's tables");
  else if (sqlite3_step(in->st) != SQLITE_DONE) {
    snprintf(err, errlen, "copying: %s", sqlite3_errmsg(in->db));
    ok = false;
  }
  sqlite3_reset(in->st);
  return ok;
}

static int kg_pgread_run(PGconn *pg, sqlite3 *db, const kg_pgread_copy *cp,
                         const char *const *params, char *err, size_t errlen) {
  kg_pgread_insert in = {.db = db, .cp = cp};
  if (sqlite3_prepare_v2(db, cp->insert, -1, &in.st, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "preparing the copy: %s", sqlite3_errmsg(db));
    return -1;
  }
  int rc = kg_pgread_stream(pg, cp->select, cp->nparams, params, cp->ncols, 0,
                            kg_pgread_insert_row, &in, err, errlen);
  sqlite3_finalize(in.st);
  return rc;
}

/* The endpoint, backend and hour whose rows are streaming in (they come
 * sorted: one histogram in memory whatever the fleet's size). */
typedef struct kg_pgread_groups {
  sqlite3 *db;
  sqlite3_stmt *ins;  /* INSERT INTO agg_backends_hour */
  kg_buf key;         /* endpoint \0 backend \0 hour of the current group */
  bool open;
  long long hour, pos, errors;
  bool master;        /* some row says master: the report's rule */
  kg_hist *hist;      /* owned: the group's latencies */
  kg_buf blob;
} kg_pgread_groups;

/* Writes the current group's row. */
static bool kg_pgread_group_flush(kg_pgread_groups *gs, char *err, size_t errlen) {
  if (!gs->open) return true;
  gs->open = false;
  const char *ep = gs->key.data, *be = ep + strlen(ep) + 1;
  kg_buf_reset(&gs->blob);
  kg_storeagg_hist_encode(gs->hist, &gs->blob);
  sqlite3_stmt *st = gs->ins;
  sqlite3_bind_text(st, 1, ep, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, gs->hour);
  sqlite3_bind_text(st, 3, be, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, gs->master ? "master" : "shadow", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, gs->pos);
  sqlite3_bind_int64(st, 6, gs->errors);
  sqlite3_bind_blob(st, 7, gs->blob.data, (int)gs->blob.len, SQLITE_STATIC);
  bool ok = sqlite3_step(st) == SQLITE_DONE;
  if (!ok) snprintf(err, errlen, "copying: %s", sqlite3_errmsg(gs->db));
  sqlite3_reset(st);
  return ok;
}

/* A whole number in binary format (network order, 2, 4 or 8 bytes), or
 * false for anything else. */
static bool kg_pgread_int(const PGresult *res, int col, long long *out) {
  const unsigned char *p = (const unsigned char *)PQgetvalue(res, 0, col);
  int n = PQgetlength(res, 0, col);
  if (PQgetisnull(res, 0, col) || (n != 2 && n != 4 && n != 8)) return false;
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = (v << 8) | p[i];
  if (n < 8 && (p[0] & 0x80)) v |= ~(uint64_t)0 << (8 * n); /* sign */
  *out = (long long)v;
  return true;
}

/* One row in binary format (no hex to decode: histograms are most of what
 * a day of a fleet sends). */
static bool kg_pgread_group_row(void *ctx, const PGresult *res, char *err, size_t errlen) {
  kg_pgread_groups *gs = ctx;
  const char *ep = PQgetvalue(res, 0, 0), *be = PQgetvalue(res, 0, 1);
  long long hour, pos, errors;
  if (PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1) || PQgetisnull(res, 0, 6) ||
      !kg_pgread_int(res, 2, &hour) || !kg_pgread_int(res, 4, &pos) ||
      !kg_pgread_int(res, 5, &errors)) {
    snprintf(err, errlen, "a value no kagami writes, in the store's tables");
    return false;
  }
  /* libpq ends every value with a NUL, text in binary format too */
  size_t le = strlen(ep), lb = strlen(be);
  bool same = gs->open && gs->hour == hour && gs->key.len == le + lb + 2 &&
              memcmp(gs->key.data, ep, le + 1) == 0 &&
              memcmp(gs->key.data + le + 1, be, lb + 1) == 0;
  if (!same) {
    if (!kg_pgread_group_flush(gs, err, errlen)) return false;
    kg_buf_reset(&gs->key);
    kg_buf_append(&gs->key, ep, le + 1);
    kg_buf_append(&gs->key, be, lb + 1);
    kg_hist_reset(gs->hist);
    gs->open = true;
    gs->hour = hour;
    gs->pos = LLONG_MAX;
    gs->errors = 0;
    gs->master = false;
  }
  gs->master |= strcmp(PQgetvalue(res, 0, 3), "master") == 0;
  if (pos < gs->pos) gs->pos = pos;
  gs->errors += errors;
  /* a blob that is not one is skipped, as the report skips it */
  (void)kg_storeagg_hist_merge(gs->hist, PQgetvalue(res, 0, 6),
                               (size_t)PQgetlength(res, 0, 6));
  return true;
}

/* Streams every backend hour row from the first hour on into one row per
 * endpoint, backend and hour. */
static int kg_pgread_backend_hours(PGconn *pg, sqlite3 *db, const char *const *params,
                                   char *err, size_t errlen) {
  kg_pgread_groups gs = {.db = db, .key = KG_BUF_INIT, .blob = KG_BUF_INIT};
  if (sqlite3_prepare_v2(db, "INSERT INTO agg_backends_hour VALUES (?, ?, ?, ?, ?, ?, ?)", -1,
                         &gs.ins, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "preparing the copy: %s", sqlite3_errmsg(db));
    return -1;
  }
  gs.hist = kg_malloc(sizeof(*gs.hist));
  kg_hist_init(gs.hist);
  int rc = kg_pgread_stream(pg, kg_pgread_backends_hours, 2, params, 7, 1,
                            kg_pgread_group_row, &gs, err, errlen);
  if (rc == 0 && !kg_pgread_group_flush(&gs, err, errlen)) rc = -1;
  sqlite3_finalize(gs.ins);
  free(gs.hist);
  kg_buf_free(&gs.key);
  kg_buf_free(&gs.blob);
  return rc;
}

/* The schema version of the kagami store at pg, or -1 (message in err). */
static long kg_pgread_version(PGconn *pg, char *err, size_t errlen) {
  PGresult *r = PQexec(pg, "SELECT value FROM kagami_meta WHERE key = 'schema_version'");
  long v = -1;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (state && strcmp(state, "42P01") == 0) /* undefined_table */
      snprintf(err, errlen, "not a kagami store (no kagami_meta table; kagami creates "
               "it when it first writes there)");
    else
      snprintf(err, errlen, "%s", PQresultErrorMessage(r));
  } else if (PQntuples(r) != 1) {
    snprintf(err, errlen, "not a kagami store (kagami_meta holds no schema_version)");
  } else {
    v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
  }
  PQclear(r);
  return v;
}

/* Strips libpq's trailing newline from a message. */
static void kg_pgread_trim(char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ')) s[--n] = '\0';
}

/* Connects to url and checks its schema version. Returns the connection,
 * or NULL with why. Every transaction on it is read-only (PostgreSQL
 * refuses a write): readers of a fleet's store, the report and `kagami
 * admin --db` among them, never change it. */
static PGconn *kg_pgread_connect(const char *url, char *why, size_t whylen) {
  const char *const keys[] = {"dbname", "connect_timeout", "application_name", "options",
                              NULL};
  const char *const vals[] = {url, "10", "kagami report",
                              "-c default_transaction_read_only=on", NULL};
  PGconn *pg = PQconnectdbParams(keys, vals, 1);
  if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
    snprintf(why, whylen, "cannot connect: %s", pg ? PQerrorMessage(pg) : "out of memory");
    PQfinish(pg);
    return NULL;
  }
  long v = kg_pgread_version(pg, why, whylen);
  if (v >= 0 && v < KG_PGSTORE_SCHEMA_VERSION)
    snprintf(why, whylen, "schema version %ld; this kagami reads version %d (a kagami of "
             "this version writing to it upgrades it)", v, KG_PGSTORE_SCHEMA_VERSION);
  else if (v > KG_PGSTORE_SCHEMA_VERSION)
    snprintf(why, whylen, "schema version %ld; this kagami reads version %d", v,
             KG_PGSTORE_SCHEMA_VERSION);
  if (v != KG_PGSTORE_SCHEMA_VERSION) {
    PQfinish(pg);
    return NULL;
  }
  return pg;
}

/* Connects to url (kg_pgread_connect) and opens an empty in-memory SQLite
 * database with `schema`, in a transaction. Returns 0, or -1 with why
 * (everything closed). */
static int kg_pgread_begin(const char *url, const char *schema, PGconn **pgp, sqlite3 **dbp,
                           char *why, size_t whylen) {
  *pgp = NULL;
  *dbp = NULL;
  PGconn *pg = kg_pgread_connect(url, why, whylen);
  sqlite3 *db = NULL;
  if (pg == NULL) return -1;
  if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
          SQLITE_OK ||
      sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
    snprintf(why, whylen, "an in-memory copy: %s", db ? sqlite3_errmsg(db) : "no memory");
    sqlite3_close(db);
    PQfinish(pg);
    return -1;
  }
  *pgp = pg;
  *dbp = db;
  return 0;
}

/* Ends a copy: commits db and wraps it, or reports why it failed. */
static int kg_pgread_end(int rc, PGconn *pg, sqlite3 *db, const kg_buf *masked, char *why,
                         size_t whylen, kg_storeq **out, char *err, size_t errlen) {
  if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    snprintf(why, whylen, "the copy: %s", sqlite3_errmsg(db));
    rc = -1;
  }
  PQfinish(pg);
  if (rc == 0) {
    *out = kg_storeq_adopt(db, masked->data);
    return 0;
  }
  kg_pgread_trim(why);
  snprintf(err, errlen, "store %s: %s", masked->data, why);
  sqlite3_close(db);
  return -1;
}

int kg_pgread_open(const char *url, const char *instance, double since_ts, unsigned flags,
                   kg_storeq **out, char *err, size_t errlen) {
  *out = NULL;
  kg_buf masked = KG_BUF_INIT;
  kg_pgstore_mask(url, &masked);
  char why[512] = "";
  PGconn *pg = NULL;
  sqlite3 *db = NULL;
  int rc = kg_pgread_begin(url, kg_pgread_schema, &pg, &db, why, sizeof(why));
  if (rc == 0) {
    /* one snapshot of the store for every query below */
    PGresult *r = PQexec(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      snprintf(why, sizeof(why), "%s", PQerrorMessage(pg));
      rc = -1;
    }
    PQclear(r);
  }
  /* the range as the report splits it (storeq.c, kg_q_bind_split) */
  long long m0 = since_ts > 0 ? (long long)floor(since_ts / 60.0) : LLONG_MIN;
  long long limit = (flags & KG_PGREAD_MINUTES) ? LLONG_MAX
                    : m0 == LLONG_MIN          ? LLONG_MIN
                                               : (kg_pgread_hour(m0) + 1) * 60;
  long long h0 = m0 == LLONG_MIN ? LLONG_MIN : kg_pgread_hour(m0);
  char first[32], upto[32], hfirst[32];
  snprintf(first, sizeof(first), "%lld", m0);
  snprintf(upto, sizeof(upto), "%lld", limit);
  snprintf(hfirst, sizeof(hfirst), "%lld", h0);
  const char *params[3] = {instance, first, upto};
  const char *hparams[2] = {instance, hfirst};
  for (size_t i = 0; rc == 0 && i < KG_ARRAY_SIZE(kg_pgread_copies); i++)
    rc = kg_pgread_run(pg, db, &kg_pgread_copies[i],
                       kg_pgread_copies[i].hourly ? hparams : params, why, sizeof(why));
  if (rc == 0) rc = kg_pgread_backend_hours(pg, db, hparams, why, sizeof(why));
  if (rc == 0 && sqlite3_exec(db, kg_pgread_indexes, NULL, NULL, NULL) != SQLITE_OK) {
    snprintf(why, sizeof(why), "indexing the copy: %s", sqlite3_errmsg(db));
    rc = -1;
  }
  if (pg == NULL) { /* begin failed: nothing to end */
    kg_pgread_trim(why);
    snprintf(err, errlen, "store %s: %s", masked.data, why);
    kg_buf_free(&masked);
    return -1;
  }
  rc = kg_pgread_end(rc, pg, db, &masked, why, sizeof(why), out, err, errlen);
  kg_buf_free(&masked);
  return rc;
}

/* --- results kept one by one --------------------------------------------------------- */

/* store.c's results and backends, the columns storeq reads. */
static const char kg_pgread_results_schema[] =
    "CREATE TABLE results(id TEXT, ts REAL, method TEXT, url TEXT, endpoint TEXT, kind TEXT,"
    " equal INTEGER, truncated INTEGER, request_headers TEXT, differences TEXT,"
    " header_differences TEXT, suppressed TEXT, diff TEXT, latency_regression TEXT);"
    "CREATE TABLE backends(result_id TEXT, pos INTEGER, name TEXT, role TEXT, status INTEGER,"
    " error TEXT, elapsed_ms REAL, bytes INTEGER, equal INTEGER, truncated INTEGER,"
    " compare_error TEXT, headers TEXT, body BLOB, body_size INTEGER,"
    " body_truncated INTEGER);"
    "CREATE INDEX results_id ON results(id);"
    "CREATE INDEX backends_result ON backends(result_id, pos);";

/* Binds v (a JSON value, NULL or null: SQL NULL) as its compact text. */
static void kg_pgread_bind_json(sqlite3_stmt *st, int col, const json_t *v) {
  char *text = v && !json_is_null(v) ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  if (text) sqlite3_bind_text(st, col, text, -1, free);
  else sqlite3_bind_null(st, col);
}

static void kg_pgread_bind_str(sqlite3_stmt *st, int col, const json_t *v) {
  const char *s = json_string_value(v);
  if (s) sqlite3_bind_text(st, col, s, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_null(st, col);
}

/* The record's differences as store.c keeps them: each with a pattern,
 * which a JSON or HTML difference's where is (jsondiff.h, htmldiff.h);
 * the record does not hold a text or header difference's (null). */
static json_t *kg_pgread_with_patterns(const json_t *list, bool where_is_pattern,
                                       const char *key) {
  json_t *out = json_array(), *x;
  size_t i;
  json_array_foreach(list, i, x) {
    if (!json_is_object(x)) continue;
    json_t *c = json_deep_copy(x);
    json_t *w = json_object_get(x, key);
    json_object_set_new(c, "pattern", where_is_pattern && json_is_string(w) ? json_copy(w)
                                                                           : json_null());
    json_array_append_new(out, c);
  }
  return out;
}

/* One diff log record into the two tables. Returns false for a record no
 * kagami writes (it is skipped). */
static bool kg_pgread_put_result(sqlite3_stmt *ins_r, sqlite3_stmt *ins_b, double ts,
                                 const char *record) {
  json_t *r = json_loads(record, 0, NULL);
  const char *id = json_string_value(json_object_get(r, "id"));
  json_t *bes = json_object_get(r, "backends");
  if (id == NULL || !json_is_object(bes)) {
    json_decref(r);
    return false;
  }
  const char *kind = json_string_value(json_object_get(r, "kind"));
  bool tree = kind && (strcmp(kind, "json") == 0 || strcmp(kind, "html") == 0);
  sqlite3_bind_text(ins_r, 1, id, -1, SQLITE_TRANSIENT);
  sqlite3_bind_double(ins_r, 2, ts);
  kg_pgread_bind_str(ins_r, 3, json_object_get(r, "method"));
  kg_pgread_bind_str(ins_r, 4, json_object_get(r, "url"));
  kg_pgread_bind_str(ins_r, 5, json_object_get(r, "endpoint"));
  kg_pgread_bind_str(ins_r, 6, json_object_get(r, "kind"));
  sqlite3_bind_int(ins_r, 7, json_is_true(json_object_get(r, "equal")));
  sqlite3_bind_int(ins_r, 8, json_is_true(json_object_get(r, "truncated")));
  sqlite3_bind_null(ins_r, 9); /* request headers: not in a diff log record */
  json_t *d = kg_pgread_with_patterns(json_object_get(r, "differences"), tree, "where");
  json_t *h = kg_pgread_with_patterns(json_object_get(r, "header_differences"), false, "name");
  kg_pgread_bind_json(ins_r, 10, d);
  kg_pgread_bind_json(ins_r, 11, h);
  json_decref(d);
  json_decref(h);
  kg_pgread_bind_json(ins_r, 12, json_object_get(r, "suppressed"));
  kg_pgread_bind_str(ins_r, 13, json_object_get(r, "diff"));
  kg_pgread_bind_json(ins_r, 14, json_object_get(r, "latency_regression"));
  bool ok = sqlite3_step(ins_r) == SQLITE_DONE;
  sqlite3_reset(ins_r);
  const char *name;
  json_t *b;
  int pos = 0;
  json_object_foreach(bes, name, b) {
    /* the master first, as written; a secondary or repeat says its role */
    const char *role = json_string_value(json_object_get(b, "role"));
    sqlite3_bind_text(ins_b, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(ins_b, 2, pos);
    sqlite3_bind_text(ins_b, 3, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins_b, 4, pos == 0 ? "master" : role ? role : "shadow", -1,
                      SQLITE_TRANSIENT);
    json_t *st = json_object_get(b, "status");
    if (json_is_integer(st)) sqlite3_bind_int64(ins_b, 5, json_integer_value(st));
    else sqlite3_bind_null(ins_b, 5);
    kg_pgread_bind_str(ins_b, 6, json_object_get(b, "error"));
    sqlite3_bind_double(ins_b, 7, json_number_value(json_object_get(b, "elapsed_ms")));
    json_t *by = json_object_get(b, "bytes");
    if (json_is_integer(by)) sqlite3_bind_int64(ins_b, 8, json_integer_value(by));
    else sqlite3_bind_null(ins_b, 8);
    json_t *eq = json_object_get(b, "equal");
    if (json_is_boolean(eq)) sqlite3_bind_int(ins_b, 9, json_is_true(eq));
    else sqlite3_bind_null(ins_b, 9);
    sqlite3_bind_int(ins_b, 10, json_is_true(json_object_get(b, "truncated")));
    kg_pgread_bind_str(ins_b, 11, json_object_get(b, "compare_error"));
    for (int c = 12; c <= 14; c++) sqlite3_bind_null(ins_b, c); /* headers, body */
    sqlite3_bind_int(ins_b, 15, 0);
    ok = sqlite3_step(ins_b) == SQLITE_DONE && ok;
    sqlite3_reset(ins_b);
    pos++;
  }
  json_decref(r);
  return ok;
}

/* Puts n records into db's results and backends tables (a record no
 * kagami writes, e.g. a hand-edited row, is left out). Returns 0, or -1
 * when SQLite fails. */
static int kg_pgread_put_all(sqlite3 *db, const char *const *records, const double *ts,
                             size_t n) {
  sqlite3_stmt *ins_r = NULL, *ins_b = NULL;
  int rc = 0;
  if (sqlite3_prepare_v2(db, "INSERT INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1,
                         &ins_r, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "INSERT INTO backends VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1,
                         &ins_b, NULL) != SQLITE_OK)
    rc = -1;
  for (size_t i = 0; rc == 0 && i < n; i++)
    (void)kg_pgread_put_result(ins_r, ins_b, ts[i], records[i]);
  sqlite3_finalize(ins_r);
  sqlite3_finalize(ins_b);
  return rc;
}

int kg_pgread_from_records(const char *const *records, const double *ts, size_t n,
                           const char *label, kg_storeq **out) {
  *out = NULL;
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
          SQLITE_OK ||
      sqlite3_exec(db, kg_pgread_results_schema, NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
      kg_pgread_put_all(db, records, ts, n) < 0 ||
      sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    return -1;
  }
  *out = kg_storeq_adopt(db, label);
  return 0;
}

int kg_pgread_open_results(const char *url, const kg_pgread_pick *pick, kg_storeq **out,
                           char *err, size_t errlen) {
  *out = NULL;
  kg_buf masked = KG_BUF_INIT;
  kg_pgstore_mask(url, &masked);
  char why[512] = "";
  PGconn *pg = NULL;
  sqlite3 *db = NULL;
  if (kg_pgread_begin(url, kg_pgread_results_schema, &pg, &db, why, sizeof(why)) < 0) {
    kg_pgread_trim(why);
    snprintf(err, errlen, "store %s: %s", masked.data, why);
    kg_buf_free(&masked);
    return -1;
  }
  int limit = pick->limit <= 0 ? KG_STOREQ_DEFAULT_RESULTS
                               : KG_MIN(pick->limit, KG_STOREQ_MAX_RESULTS);
  char lim[16];
  snprintf(lim, sizeof(lim), "%d", limit + 1); /* storeq asks one more, for next_before */
  PGresult *res;
  if (pick->id) {
    const char *p[2] = {pick->id, pick->instance};
    res = PQexecParams(pg,
                       "SELECT ts, record FROM results WHERE id = $1"
                       " AND ($2::text IS NULL OR instance = $2) ORDER BY instance LIMIT 1",
                       2, NULL, p, NULL, NULL, 0);
  } else {
    const char *p[5] = {pick->instance, pick->endpoint, pick->differing ? "t" : "f",
                        pick->before, lim};
    res = PQexecParams(pg,
                       "SELECT ts, record FROM results WHERE ($1::text IS NULL OR instance = $1)"
                       " AND ($2::text IS NULL OR endpoint = $2)"
                       " AND (NOT $3::boolean OR outcome <> 0)"
                       " AND ($4::text IS NULL OR id < $4) ORDER BY id DESC LIMIT $5",
                       5, NULL, p, NULL, NULL, 0);
  }
  int rc = 0;
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    snprintf(why, sizeof(why), "%s", PQresultErrorMessage(res));
    rc = -1;
  }
  if (rc == 0) {
    int n = PQntuples(res);
    const char **recs = kg_calloc(n > 0 ? (size_t)n : 1, sizeof(*recs));
    double *ts = kg_calloc(n > 0 ? (size_t)n : 1, sizeof(*ts));
    for (int i = 0; i < n; i++) {
      ts[i] = strtod(PQgetvalue(res, i, 0), NULL);
      recs[i] = PQgetvalue(res, i, 1);
    }
    if (kg_pgread_put_all(db, recs, ts, (size_t)n) < 0) {
      snprintf(why, sizeof(why), "copying: %s", sqlite3_errmsg(db));
      rc = -1;
    }
    free(recs);
    free(ts);
  }
  PQclear(res);
  rc = kg_pgread_end(rc, pg, db, &masked, why, sizeof(why), out, err, errlen);
  kg_buf_free(&masked);
  return rc;
}

/* --- the fleet's instances ------------------------------------------------------------ */

/* Every instance with aggregates in the store, in name order. DISTINCT
 * over agg_requests would read every row of it; this walks its primary
 * key (which starts with the instance) one name at a time instead, so it
 * costs an index probe per instance whatever the store's size. */
static const char kg_pgread_instances_sql[] =
    "WITH RECURSIVE i(name) AS ("
    " SELECT min(instance) FROM agg_requests"
    " UNION ALL"
    " SELECT (SELECT min(instance) FROM agg_requests WHERE instance > i.name)"
    " FROM i WHERE i.name IS NOT NULL)"
    " SELECT name FROM i WHERE name IS NOT NULL LIMIT $1";

json_t *kg_pgread_instances(const char *url, char *err, size_t errlen) {
  kg_buf masked = KG_BUF_INIT;
  kg_pgstore_mask(url, &masked);
  char why[512] = "", lim[16];
  json_t *names = NULL;
  PGconn *pg = kg_pgread_connect(url, why, sizeof(why));
  if (pg != NULL) {
    snprintf(lim, sizeof(lim), "%d", KG_PGREAD_MAX_INSTANCES);
    const char *p[1] = {lim};
    PGresult *r = PQexecParams(pg, kg_pgread_instances_sql, 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
      names = json_array();
      for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(names, json_string(PQgetvalue(r, i, 0)));
    } else {
      snprintf(why, sizeof(why), "%s", PQresultErrorMessage(r));
    }
    PQclear(r);
    PQfinish(pg);
  }
  if (names == NULL) {
    kg_pgread_trim(why);
    snprintf(err, errlen, "store %s: %s", masked.data, why);
  }
  kg_buf_free(&masked);
  return names;
}
