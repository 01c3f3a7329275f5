/* pgread.c: copies a PostgreSQL store's aggregates into an in-memory
 * SQLite database the report's queries read (see pgread.h). */
#include "results/pgread.h"

#include <libpq-fe.h>
#include <math.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "results/pgstore.h"

/* store.c's aggregate tables, without their keys: several instances'
 * rows share an endpoint, minute and backend here, and every query sums
 * or merges over rows anyway. Each row goes in twice, under its minute
 * and its hour, as the writer's rollup would have it: the report reads
 * the minutes of its first hour and whole hours after. */
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

/* One copy: a PostgreSQL query (parameters $1 instance or NULL, $2 first
 * minute) and the two SQLite inserts its rows feed, minute then hour.
 * The row's second column is the minute; the hour insert gets it / 60. */
typedef struct kg_pgread_copy {
  const char *select;
  const char *insert_minute, *insert_hour;
  int ncols;
  int blob_col; /* bytea column, or -1 */
} kg_pgread_copy;

static const kg_pgread_copy kg_pgread_copies[] = {
    {"SELECT endpoint, minute, sum(compared), sum(differing), sum(errors),"
     " min(first_ts), max(last_ts) FROM agg_requests"
     " WHERE ($1::text IS NULL OR instance = $1) AND minute >= $2 GROUP BY 1, 2",
     "INSERT INTO agg_requests VALUES (?, ?, ?, ?, ?, ?, ?)",
     "INSERT INTO agg_requests_hour VALUES (?, ?, ?, ?, ?, ?, ?)", 7, -1},
    {"SELECT endpoint, minute, backend, role, pos, errors, latency FROM agg_backends"
     " WHERE ($1::text IS NULL OR instance = $1) AND minute >= $2",
     "INSERT INTO agg_backends VALUES (?, ?, ?, ?, ?, ?, ?)",
     "INSERT INTO agg_backends_hour VALUES (?, ?, ?, ?, ?, ?, ?)", 7, 6},
    {"SELECT endpoint, minute, location, sum(count) FROM agg_locations"
     " WHERE ($1::text IS NULL OR instance = $1) AND minute >= $2 GROUP BY 1, 2, 3",
     "INSERT INTO agg_locations VALUES (?, ?, ?, ?)",
     "INSERT INTO agg_locations_hour VALUES (?, ?, ?, ?)", 4, -1},
};

static long long kg_pgread_hour(long long minute) {
  return minute >= 0 ? minute / 60 : -((-minute + 59) / 60);
}

/* Binds column c of row r of res to parameter c + 1 of st; column 1 (the
 * minute) as the hour when hour is true. A bytea arrives as text ("\x..."
 * hex) and is decoded. Returns false on a value no writer produces. */
static bool kg_pgread_bind(sqlite3_stmt *st, const PGresult *res, int c, bool blob,
                           bool hour) {
  if (PQgetisnull(res, 0, c)) return sqlite3_bind_null(st, c + 1) == SQLITE_OK;
  const char *v = PQgetvalue(res, 0, c);
  if (c == 1) {
    char *end;
    long long m = strtoll(v, &end, 10);
    if (*end != '\0') return false;
    return sqlite3_bind_int64(st, c + 1, hour ? kg_pgread_hour(m) : m) == SQLITE_OK;
  }
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

/* Streams one query's rows (libpq's single-row mode: memory stays one row
 * whatever the fleet's size) into its two tables. */
static int kg_pgread_run(PGconn *pg, sqlite3 *db, const kg_pgread_copy *cp,
                         const char *instance, const char *first_minute, char *err,
                         size_t errlen) {
  sqlite3_stmt *ins[2] = {NULL, NULL};
  if (sqlite3_prepare_v2(db, cp->insert_minute, -1, &ins[0], NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, cp->insert_hour, -1, &ins[1], NULL) != SQLITE_OK) {
    snprintf(err, errlen, "preparing the copy: %s", sqlite3_errmsg(db));
    sqlite3_finalize(ins[0]);
    sqlite3_finalize(ins[1]);
    return -1;
  }
  const char *params[2] = {instance, first_minute};
  int rc = 0;
  if (!PQsendQueryParams(pg, cp->select, 2, NULL, params, NULL, NULL, 0) ||
      !PQsetSingleRowMode(pg)) {
    snprintf(err, errlen, "%s", PQerrorMessage(pg));
    rc = -1;
  }
  PGresult *res;
  while ((res = PQgetResult(pg)) != NULL) {
    ExecStatusType s = PQresultStatus(res);
    if (rc == 0 && s == PGRES_SINGLE_TUPLE) {
      if (PQnfields(res) != cp->ncols) {
        snprintf(err, errlen, "unexpected columns in the store's tables");
        rc = -1;
      }
      for (int h = 0; h < 2 && rc == 0; h++) {
        for (int c = 0; c < cp->ncols && rc == 0; c++) {
          if (!kg_pgread_bind(ins[h], res, c, c == cp->blob_col, h == 1)) {
            snprintf(err, errlen, "a value no kagami writes, in the store's tables");
            rc = -1;
          }
        }
        if (rc == 0 && sqlite3_step(ins[h]) != SQLITE_DONE) {
          snprintf(err, errlen, "copying: %s", sqlite3_errmsg(db));
          rc = -1;
        }
        sqlite3_reset(ins[h]);
      }
    } else if (rc == 0 && s != PGRES_TUPLES_OK) {
      snprintf(err, errlen, "%s", PQresultErrorMessage(res));
      rc = -1;
    }
    PQclear(res); /* every result is read to the end, even after a failure */
  }
  sqlite3_finalize(ins[0]);
  sqlite3_finalize(ins[1]);
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

int kg_pgread_open(const char *url, const char *instance, double since_ts,
                   kg_storeq **out, char *err, size_t errlen) {
  *out = NULL;
  kg_buf masked = KG_BUF_INIT;
  kg_pgstore_mask(url, &masked);
  char why[512] = "";
  sqlite3 *db = NULL;
  const char *const keys[] = {"dbname", "connect_timeout", "application_name", NULL};
  const char *const vals[] = {url, "10", "kagami report", NULL};
  PGconn *pg = PQconnectdbParams(keys, vals, 1);
  if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
    snprintf(why, sizeof(why), "cannot connect: %s", pg ? PQerrorMessage(pg) : "out of memory");
    goto fail;
  }
  long v = kg_pgread_version(pg, why, sizeof(why));
  if (v < 0) goto fail;
  if (v != KG_PGSTORE_SCHEMA_VERSION) {
    snprintf(why, sizeof(why), "schema version %ld; this kagami reads version %d", v,
             KG_PGSTORE_SCHEMA_VERSION);
    goto fail;
  }
  if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
          SQLITE_OK ||
      sqlite3_exec(db, kg_pgread_schema, NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
    snprintf(why, sizeof(why), "an in-memory copy: %s", db ? sqlite3_errmsg(db) : "no memory");
    goto fail;
  }
  /* one snapshot of the store for all three tables */
  PGresult *r = PQexec(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  bool began = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  if (!began) {
    snprintf(why, sizeof(why), "%s", PQerrorMessage(pg));
    goto fail;
  }
  char first[32];
  snprintf(first, sizeof(first), "%lld",
           since_ts > 0 ? (long long)floor(since_ts / 60.0) : (long long)INT64_MIN);
  for (size_t i = 0; i < KG_ARRAY_SIZE(kg_pgread_copies); i++) {
    if (kg_pgread_run(pg, db, &kg_pgread_copies[i], instance, first, why, sizeof(why)) < 0)
      goto fail;
  }
  if (sqlite3_exec(db, kg_pgread_indexes, NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    snprintf(why, sizeof(why), "indexing the copy: %s", sqlite3_errmsg(db));
    goto fail;
  }
  PQfinish(pg);
  *out = kg_storeq_adopt(db, masked.data);
  kg_buf_free(&masked);
  return 0;

fail:
  kg_pgread_trim(why);
  snprintf(err, errlen, "store %s: %s", masked.data, why);
  sqlite3_close(db);
  PQfinish(pg);
  kg_buf_free(&masked);
  return -1;
}
