/* store.c: the results store on SQLite (see store.h).
 *
 * Threads: the connection is opened with SQLITE_OPEN_NOMUTEX and guarded by
 * our own mutex. The unit that must not interleave is a whole batch (BEGIN,
 * many inserts through shared prepared statements, retention, COMMIT),
 * which SQLite's per-call locking (FULLMUTEX) cannot give; with our lock
 * held around every use of the connection, a second lock inside each
 * SQLite call would only cost time.
 *
 * One kagami per store: besides SQLite's own locks (which only last for a
 * transaction), the store file is flock()ed for as long as it is open, so a
 * second instance pointed at the same file fails at start with a clear
 * message instead of interleaving its rows. flock and SQLite's POSIX
 * locks are independent on Linux; the descriptor is closed only after
 * SQLite has closed the database, because closing any descriptor of a file
 * drops the process's POSIX locks on it. Readers (sqlite3, kagami report,
 * the admin API) take no flock and are never blocked. */
#include "results/store.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/common.h"
#include "common/log.h"
#include "results/sink.h"
#include "results/storeagg.h"

/* Busy timeouts: at start a lock held by someone else must fail fast and
 * clearly; later, a write waits a little for a reader's checkpoint or an
 * interactive sqlite3 write before the batch is given up. */
#define KG_STORE_OPEN_BUSY_MS 250
#define KG_STORE_WRITE_BUSY_MS 2000
/* Age retention and the re-count of rows run at most this often. */
#define KG_STORE_MAINTAIN_NS (10ULL * 1000000000ULL)
/* Sums of results kept only as counts are written at most this long after
 * the first of them (by the next batch that writes anyway, or the
 * flusher thread when traffic stops): a transaction of upserts per batch
 * cost more than the rest of the store. */
#define KG_STORE_AGG_NS (1000ULL * 1000000ULL)
/* Write errors are logged at most this often (a full disk fails every
 * batch). */
#define KG_STORE_ERROR_LOG_NS (10ULL * 1000000000ULL)
/* A WAL past this is truncated after a checkpoint. */
#define KG_STORE_WAL_LIMIT (64LL << 20)

static const char kg_sqlite_magic[16] = "SQLite format 3";  /* with its NUL */

/* Schema version 2 (see store.h). Besides the results and their backends,
 * the store keeps what the readers aggregate in a form they can read
 * without parsing JSON or joining per row: each backend row repeats its
 * result's endpoint and ts, so that latency percentiles come from one
 * index already in (endpoint, backend, elapsed) order; and `locations`
 * holds the distinct locations of each differing result, so that the top
 * differences per endpoint are a GROUP BY on an index. Both are written
 * in the result's own transaction, so they always agree with it. */
static const char kg_store_schema[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE results("
    " id TEXT PRIMARY KEY,"
    " ts REAL NOT NULL,"
    " method TEXT NOT NULL,"
    " url TEXT NOT NULL,"
    " endpoint TEXT NOT NULL,"
    " kind TEXT,"
    " equal INTEGER NOT NULL,"
    " truncated INTEGER NOT NULL DEFAULT 0,"
    " request_headers TEXT,"
    " differences TEXT,"
    " header_differences TEXT,"
    " suppressed TEXT,"
    " diff TEXT,"
    " latency_regression TEXT);"
    "CREATE TABLE backends("
    " result_id TEXT NOT NULL,"
    " pos INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " role TEXT NOT NULL,"
    " status INTEGER,"
    " error TEXT,"
    " elapsed_ms REAL,"
    " bytes INTEGER,"
    " equal INTEGER,"
    " truncated INTEGER NOT NULL DEFAULT 0,"
    " compare_error TEXT,"
    " headers TEXT,"
    " body BLOB,"
    " body_size INTEGER,"
    " body_truncated INTEGER NOT NULL DEFAULT 0,"
    /* last, where version 1's ALTER TABLE puts them: both layouts agree */
    " endpoint TEXT NOT NULL DEFAULT '',"
    " ts REAL NOT NULL DEFAULT 0,"
    " PRIMARY KEY (result_id, name));";

/* The indexes, and the table new in version 2: for a new store and an
 * upgraded one alike (an upgrade drops version 1's indexes first). */
static const char kg_store_schema_v2[] =
    "CREATE TABLE locations("
    " result_id TEXT NOT NULL,"
    " loc TEXT NOT NULL,"
    " endpoint TEXT NOT NULL,"
    " ts REAL NOT NULL,"
    " PRIMARY KEY (result_id, loc)) WITHOUT ROWID;"
    /* age retention, and the time series' counts without a table lookup */
    "CREATE INDEX results_ts ON results(ts, equal);"
    /* one endpoint's results, newest first, paged by id; with equal and ts
     * it also answers the per-endpoint counts on its own */
    "CREATE INDEX results_endpoint ON results(endpoint, id, equal, ts);"
    /* differing results only: a small index, most results are equal */
    "CREATE INDEX results_differing ON results(id) WHERE equal = 0;"
    /* latency per endpoint over a time range: each endpoint's samples in
     * time order, with everything the aggregation reads, so a range of
     * the index is all it touches (secondary and repeat rows are never
     * aggregated). Time order, not elapsed order: new rows then go at the
     * end of their endpoint's range instead of all over the index, which
     * keeps a batch's write to a few pages; the reader sorts. */
    "CREATE INDEX backends_latency ON backends(endpoint, ts, name, elapsed_ms,"
    " role, pos, error) WHERE role IN ('master', 'shadow');"
    /* the same for every endpoint at once (the time series) */
    "CREATE INDEX backends_ts ON backends(ts, role, elapsed_ms, error)"
    " WHERE role IN ('master', 'shadow');"
    /* the top locations of an endpoint over a time range */
    "CREATE INDEX locations_endpoint ON locations(endpoint, ts, loc);";

/* Upgrades a version 1 store in place, inside the caller's write
 * transaction: the copied columns and the locations are derived from what
 * version 1 kept (the locations exactly as version 1's readers computed
 * them from the JSON columns). Once per store: a few seconds for 100,000
 * results. */
static const char kg_store_upgrade_v1[] =
    "ALTER TABLE backends ADD COLUMN endpoint TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE backends ADD COLUMN ts REAL NOT NULL DEFAULT 0;"
    "UPDATE backends SET endpoint = r.endpoint, ts = r.ts"
    " FROM results r WHERE r.id = backends.result_id;"
    "DROP INDEX IF EXISTS results_ts;"
    "DROP INDEX IF EXISTS results_endpoint;"
    "DROP INDEX IF EXISTS results_differing;";
/* After kg_store_schema_v2 has created the new table and indexes. */
static const char kg_store_upgrade_v1_locations[] =
    "INSERT OR IGNORE INTO locations(result_id, loc, endpoint, ts)"
    " SELECT id, loc, endpoint, ts FROM ("
    "  SELECT r.id AS id, coalesce(json_extract(j.value, '$.pattern'),"
    "   json_extract(j.value, '$.where')) AS loc, r.endpoint AS endpoint, r.ts AS ts"
    "  FROM results r, json_each(r.differences) j WHERE r.equal = 0"
    "  UNION ALL"
    "  SELECT r.id, coalesce(json_extract(j.value, '$.pattern'),"
    "   'header:' || lower(json_extract(j.value, '$.name'))), r.endpoint, r.ts"
    "  FROM results r, json_each(r.header_differences) j WHERE r.equal = 0"
    "  UNION ALL"
    "  SELECT r.id, 'error: ' || k.error, r.endpoint, r.ts"
    "  FROM results r JOIN backends k ON k.result_id = r.id"
    "  WHERE r.equal = 0 AND k.error IS NOT NULL AND k.role IN ('master', 'shadow'))"
    " WHERE loc IS NOT NULL;"
    "UPDATE meta SET value = '2' WHERE key = 'schema_version';";

/* Version 3: every compared request is counted in per-minute aggregates
 * (storeagg.h), which is what the readers read; results are kept one by
 * one only when they differ or fail, plus a sample of the equal ones, each
 * endpoint within its own share. Version 2's per-result locations and
 * latency indexes are then what the aggregates replace: a new store
 * creates version 2's layout and drops them here too, so that both paths
 * end in the same schema. */
static const char kg_store_schema_v3[] =
    "CREATE TABLE agg_requests("
    " endpoint TEXT NOT NULL,"
    " minute INTEGER NOT NULL,"  /* Unix seconds / 60 */
    " compared INTEGER NOT NULL,"
    " differing INTEGER NOT NULL,"
    " errors INTEGER NOT NULL,"
    " first_ts REAL NOT NULL,"
    " last_ts REAL NOT NULL,"
    " PRIMARY KEY (endpoint, minute)) WITHOUT ROWID;"
    "CREATE TABLE agg_backends("
    " endpoint TEXT NOT NULL,"
    " minute INTEGER NOT NULL,"
    " backend TEXT NOT NULL,"
    " role TEXT NOT NULL,"        /* master or shadow */
    " pos INTEGER NOT NULL,"
    " errors INTEGER NOT NULL,"   /* failed answers */
    " hist BLOB NOT NULL,"        /* answered latencies, us (storeagg.h) */
    " PRIMARY KEY (endpoint, minute, backend)) WITHOUT ROWID;"
    "CREATE TABLE agg_locations("
    " endpoint TEXT NOT NULL,"
    " minute INTEGER NOT NULL,"
    " loc TEXT NOT NULL,"
    " count INTEGER NOT NULL,"    /* differing results at loc */
    " PRIMARY KEY (endpoint, minute, loc)) WITHOUT ROWID;"
    /* The same per hour, so that a report over days reads 60 times
     * fewer rows: whole hours from these, the minutes before the first
     * whole hour from the tables above. */
    "CREATE TABLE agg_requests_hour("
    " endpoint TEXT NOT NULL, hour INTEGER NOT NULL, compared INTEGER NOT NULL,"
    " differing INTEGER NOT NULL, errors INTEGER NOT NULL, first_ts REAL NOT NULL,"
    " last_ts REAL NOT NULL, PRIMARY KEY (endpoint, hour)) WITHOUT ROWID;"
    "CREATE TABLE agg_backends_hour("
    " endpoint TEXT NOT NULL, hour INTEGER NOT NULL, backend TEXT NOT NULL,"
    " role TEXT NOT NULL, pos INTEGER NOT NULL, errors INTEGER NOT NULL,"
    " hist BLOB NOT NULL, PRIMARY KEY (endpoint, hour, backend)) WITHOUT ROWID;"
    "CREATE TABLE agg_locations_hour("
    " endpoint TEXT NOT NULL, hour INTEGER NOT NULL, loc TEXT NOT NULL,"
    " count INTEGER NOT NULL, PRIMARY KEY (endpoint, hour, loc)) WITHOUT ROWID;"
    "CREATE INDEX agg_requests_hour_hour ON agg_requests_hour(hour);"
    "CREATE INDEX agg_backends_hour_hour ON agg_backends_hour(hour);"
    "CREATE INDEX agg_locations_hour_hour ON agg_locations_hour(hour);"
    /* age retention, and the time series over every endpoint */
    "CREATE INDEX agg_requests_minute ON agg_requests(minute);"
    "CREATE INDEX agg_backends_minute ON agg_backends(minute);"
    "CREATE INDEX agg_locations_minute ON agg_locations(minute);"
    /* each endpoint's share of kept results, oldest first */
    "CREATE INDEX results_share ON results(endpoint, equal, id);";

/* Upgrading version 2 (after kg_store_schema_v3 made the tables): the
 * request counts and locations from what version 2 kept; the latency
 * histograms are built in C (kg_store_upgrade_latency). A request counts
 * as differing when a shadow answered and differed and the master did not
 * fail, as an error when it is not equal otherwise (storeagg.h). */
#define KG_STORE_OUTCOME_SQL                                           \
  "CASE WHEN r.equal THEN 0"                                           \
  " WHEN EXISTS (SELECT 1 FROM backends b WHERE b.result_id = r.id"    \
  "   AND b.role = 'shadow' AND b.error IS NULL AND b.equal = 0)"      \
  "  AND NOT EXISTS (SELECT 1 FROM backends b WHERE b.result_id = r.id" \
  "   AND b.role = 'master' AND b.error IS NOT NULL) THEN 1"           \
  " ELSE 2 END"
static const char kg_store_upgrade_v2[] =
    "CREATE TEMP TABLE kg_outcomes AS SELECT r.id AS id, r.endpoint AS endpoint,"
    " r.ts AS ts, " KG_STORE_OUTCOME_SQL " AS o FROM results r;"
    "INSERT INTO agg_requests(endpoint, minute, compared, differing, errors,"
    " first_ts, last_ts)"
    " SELECT endpoint, CAST(ts / 60 AS INTEGER), count(*), sum(o = 1), sum(o = 2),"
    " min(ts), max(ts) FROM kg_outcomes GROUP BY 1, 2;"
    /* locations of the differing results only, as the writer counts them */
    "INSERT INTO agg_locations(endpoint, minute, loc, count)"
    " SELECT l.endpoint, CAST(l.ts / 60 AS INTEGER), l.loc, count(*) FROM locations l"
    " JOIN kg_outcomes k ON k.id = l.result_id"
    " WHERE k.o = 1 AND l.loc NOT LIKE 'error: %' GROUP BY 1, 2, 3;"
    "DROP TABLE kg_outcomes;"
    "INSERT INTO agg_requests_hour SELECT endpoint, minute / 60, sum(compared),"
    " sum(differing), sum(errors), min(first_ts), max(last_ts) FROM agg_requests"
    " GROUP BY 1, 2;"
    "INSERT INTO agg_locations_hour SELECT endpoint, minute / 60, loc, sum(count)"
    " FROM agg_locations GROUP BY 1, 2, 3;";

/* What the aggregates replace (see kg_store_schema_v3). */
static const char kg_store_drop_v2[] =
    "DROP TABLE IF EXISTS locations;"
    "DROP INDEX IF EXISTS backends_latency;"
    "DROP INDEX IF EXISTS backends_ts;"
    "UPDATE meta SET value = '3' WHERE key = 'schema_version';";

enum {
  KG_ST_BEGIN,
  KG_ST_COMMIT,
  KG_ST_ROLLBACK,
  KG_ST_INS_RESULT,
  KG_ST_INS_BACKEND,
  KG_ST_COUNT_ROWS,
  KG_ST_NTH_OLDEST,
  KG_ST_DEL_BACKENDS_UPTO,
  KG_ST_DEL_RESULTS_UPTO,
  KG_ST_DEL_BACKENDS_BEFORE,
  KG_ST_DEL_RESULTS_BEFORE,
  /* each aggregate per minute, then per hour (kg_store_write_agg) */
  KG_ST_UPS_REQUESTS,
  KG_ST_UPS_REQUESTS_HOUR,
  KG_ST_UPS_BACKENDS,
  KG_ST_UPS_BACKENDS_HOUR,
  KG_ST_UPS_LOCATIONS,
  KG_ST_UPS_LOCATIONS_HOUR,
  KG_ST_DEL_REQUESTS_BEFORE,
  KG_ST_DEL_AGG_BACKENDS_BEFORE,
  KG_ST_DEL_LOCATIONS_BEFORE,
  KG_ST_DEL_REQUESTS_HOUR_BEFORE,
  KG_ST_DEL_AGG_BACKENDS_HOUR_BEFORE,
  KG_ST_DEL_LOCATIONS_HOUR_BEFORE,
  KG_ST_SHARE_NTH,
  KG_ST_DEL_SHARE_BACKENDS,
  KG_ST_DEL_SHARE_RESULTS,
  KG_ST_N
};

/* The upserts of one aggregate table T keyed by time column K (minute or
 * hour): the same sums at either grain. */
#define KG_UPS_REQUESTS(T, K)                                                  \
  "INSERT INTO " T "(endpoint, " K ", compared, differing, errors, first_ts,"  \
  " last_ts) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"                               \
  " ON CONFLICT(endpoint, " K ") DO UPDATE SET"                                \
  " compared = compared + excluded.compared,"                                  \
  " differing = differing + excluded.differing,"                               \
  " errors = errors + excluded.errors,"                                        \
  " first_ts = min(first_ts, excluded.first_ts),"                              \
  " last_ts = max(last_ts, excluded.last_ts)"
#define KG_UPS_BACKENDS(T, K)                                                  \
  "INSERT INTO " T "(endpoint, " K ", backend, role, pos, errors, hist)"       \
  " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"                                        \
  " ON CONFLICT(endpoint, " K ", backend) DO UPDATE SET"                       \
  " role = CASE WHEN excluded.role = 'master' THEN 'master' ELSE role END,"    \
  " pos = min(pos, excluded.pos),"                                             \
  " errors = errors + excluded.errors,"                                        \
  " hist = kg_hist_merge(hist, excluded.hist)"
#define KG_UPS_LOCATIONS(T, K)                                                 \
  "INSERT INTO " T "(endpoint, " K ", loc, count) VALUES(?1, ?2, ?3, ?4)"      \
  " ON CONFLICT(endpoint, " K ", loc) DO UPDATE SET count = count + excluded.count"

static const char *const kg_store_sql[KG_ST_N] = {
    [KG_ST_BEGIN] = "BEGIN IMMEDIATE",
    [KG_ST_COMMIT] = "COMMIT",
    [KG_ST_ROLLBACK] = "ROLLBACK",
    [KG_ST_INS_RESULT] =
        "INSERT OR REPLACE INTO results(id, ts, method, url, endpoint, kind,"
        " equal, truncated, request_headers, differences, header_differences,"
        " suppressed, diff, latency_regression)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [KG_ST_INS_BACKEND] =
        "INSERT OR REPLACE INTO backends(result_id, pos, name, role, status,"
        " error, elapsed_ms, bytes, equal, truncated, compare_error, headers,"
        " body, body_size, body_truncated, endpoint, ts)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
        " ?16, ?17)",
    [KG_ST_COUNT_ROWS] = "SELECT count(*) FROM results",
    [KG_ST_NTH_OLDEST] = "SELECT id FROM results ORDER BY id LIMIT 1 OFFSET ?1",
    [KG_ST_DEL_BACKENDS_UPTO] = "DELETE FROM backends WHERE result_id <= ?1",
    [KG_ST_DEL_RESULTS_UPTO] = "DELETE FROM results WHERE id <= ?1",
    [KG_ST_DEL_BACKENDS_BEFORE] =
        "DELETE FROM backends WHERE result_id IN"
        " (SELECT id FROM results WHERE ts < ?1)",
    [KG_ST_DEL_RESULTS_BEFORE] = "DELETE FROM results WHERE ts < ?1",
    /* one row per key per batch: an equal result costs a sum in memory */
    [KG_ST_UPS_REQUESTS] = KG_UPS_REQUESTS("agg_requests", "minute"),
    [KG_ST_UPS_REQUESTS_HOUR] = KG_UPS_REQUESTS("agg_requests_hour", "hour"),
    [KG_ST_UPS_BACKENDS] = KG_UPS_BACKENDS("agg_backends", "minute"),
    [KG_ST_UPS_BACKENDS_HOUR] = KG_UPS_BACKENDS("agg_backends_hour", "hour"),
    [KG_ST_UPS_LOCATIONS] = KG_UPS_LOCATIONS("agg_locations", "minute"),
    [KG_ST_UPS_LOCATIONS_HOUR] = KG_UPS_LOCATIONS("agg_locations_hour", "hour"),
    [KG_ST_DEL_REQUESTS_BEFORE] = "DELETE FROM agg_requests WHERE minute < ?1",
    [KG_ST_DEL_AGG_BACKENDS_BEFORE] = "DELETE FROM agg_backends WHERE minute < ?1",
    [KG_ST_DEL_LOCATIONS_BEFORE] = "DELETE FROM agg_locations WHERE minute < ?1",
    [KG_ST_DEL_REQUESTS_HOUR_BEFORE] = "DELETE FROM agg_requests_hour WHERE hour < ?1",
    [KG_ST_DEL_AGG_BACKENDS_HOUR_BEFORE] = "DELETE FROM agg_backends_hour WHERE hour < ?1",
    [KG_ST_DEL_LOCATIONS_HOUR_BEFORE] = "DELETE FROM agg_locations_hour WHERE hour < ?1",
    /* the newest result of an endpoint's share (differing or equal) past
     * the share's size: it and everything older goes */
    [KG_ST_SHARE_NTH] =
        "SELECT id FROM results WHERE endpoint = ?1 AND equal = ?2"
        " ORDER BY id DESC LIMIT 1 OFFSET ?3",
    [KG_ST_DEL_SHARE_BACKENDS] =
        "DELETE FROM backends WHERE result_id IN (SELECT id FROM results"
        " WHERE endpoint = ?1 AND equal = ?2 AND id <= ?3)",
    [KG_ST_DEL_SHARE_RESULTS] =
        "DELETE FROM results WHERE endpoint = ?1 AND equal = ?2 AND id <= ?3",
};

/* Equal results sampled per endpoint in the current minute: an open
 * addressing table, cleared when it fills (endpoints are templated, so
 * few; a flood of distinct ones only resets the counts early). */
struct kg_store {
  sqlite3 *db;                /* owned; used only under lock */
  char *path;                 /* owned copy of cfg->store_path */
  int lock_fd;                /* owned: holds the flock; -1 when none */
  pthread_mutex_t lock;       /* one user of db at a time (see top) */
  sqlite3_stmt *st[KG_ST_N];  /* owned prepared statements */
  char **redact;              /* owned copies of cfg->redact_headers */
  size_t nredact;
  uint64_t max_rows;          /* cfg->store_max_rows */
  uint64_t keep_differing;    /* cfg->store_keep_differing, per endpoint */
  uint64_t keep_equal;        /* cfg->store_keep_equal, per endpoint */
  uint64_t keep_equal_minute; /* cfg->store_keep_equal_per_minute */
  kg_storeagg_sampler sampler; /* equal results kept, under lock */
  double max_days;            /* cfg->store_max_days */
  size_t max_body;            /* cfg->store_max_body_bytes */
  uint64_t rows;              /* rows in results as far as we know; re-counted
                                 at every maintenance pass, since sqlite3
                                 users may delete rows too */
  uint64_t last_maintain_ns;  /* monotonic; 0: never */
  uint64_t failed_batches;    /* batches lost to errors */
  uint64_t failed_logged;     /* failed_batches when last logged */
  uint64_t last_error_log_ns; /* monotonic time of that log line */
  z_stream z;                 /* deflate state, reused under lock: a fresh
                                 one per body costs ~256 KiB of allocation
                                 and page faults, more than compressing */
  bool z_ready;               /* z was initialised */
  kg_buf zout;                /* compressed body, reused under lock */
  kg_storeagg pending;        /* sums not yet written (own: names copied),
                                 under lock */
  uint64_t pending_ns;        /* monotonic time of its first sum; 0: none */
  pthread_t flusher;          /* writes `pending` when traffic stops */
  pthread_cond_t flush_cond;  /* wakes it to stop (with lock) */
  bool flusher_started, closing;
};

/* --- shared with readers ---------------------------------------------------- */

int kg_store_sniff(const char *path, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return 0;
    snprintf(err, errlen, "store %s: %s", path, strerror(errno));
    return -1;
  }
  char head[16];
  ssize_t n;
  do n = read(fd, head, sizeof(head));
  while (n < 0 && errno == EINTR);
  int e = errno;
  close(fd);
  if (n < 0) {
    snprintf(err, errlen, "store %s: %s", path, strerror(e));
    return -1;
  }
  if (n == 0) return 0; /* SQLite treats an empty file as a new database */
  if ((size_t)n < sizeof(head) || memcmp(head, kg_sqlite_magic, sizeof(head)) != 0) {
    snprintf(err, errlen,
             "store %s: file is not a database (not an SQLite file); move it "
             "away or set `store` to another path", path);
    return -1;
  }
  return 0;
}

void kg_store_error(sqlite3 *db, int rc, const char *path, const char *what,
                    char *err, size_t errlen) {
  const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
  case SQLITE_NOTADB:
    snprintf(err, errlen,
             "store %s: file is not a database (the SQLite header is there but "
             "the rest is not: corrupt?); move it away or set `store` to "
             "another path", path);
    break;
  case SQLITE_CORRUPT:
    snprintf(err, errlen,
             "store %s: the database is corrupt (%s); move it away or set "
             "`store` to another path", path, msg);
    break;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    snprintf(err, errlen,
             "store %s: locked by another process writing to it (another "
             "kagami, or an open sqlite3 transaction): %s", path, msg);
    break;
  case SQLITE_CANTOPEN: {
    int e = db ? sqlite3_system_errno(db) : 0;
    snprintf(err, errlen, "store %s: cannot open: %s", path,
             e ? strerror(e) : msg);
    break;
  }
  default:
    snprintf(err, errlen, "store %s: %s: %s", path, what, msg);
  }
}

/* Names of the tables in db, for a message ("a, b, c"); owned. */
static char *kg_store_table_names(sqlite3 *db) {
  kg_buf b = KG_BUF_INIT;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db,
                         "SELECT name FROM sqlite_master WHERE type = 'table'"
                         " ORDER BY name LIMIT 6", -1, &st, NULL) == SQLITE_OK) {
    for (int n = 0; sqlite3_step(st) == SQLITE_ROW; n++)
      kg_buf_appendf(&b, "%s%s", n ? ", " : "",
                     n < 5 ? (const char *)sqlite3_column_text(st, 0) : "...");
  }
  sqlite3_finalize(st);
  if (b.data == NULL) kg_buf_appends(&b, "none");
  return kg_buf_steal(&b, NULL);
}

/* Reads which kagami schema version db holds into *version. Returns 0; 1
 * when the database is empty (no tables); -1 with a message for another
 * application's database, an unreadable version, corruption or a lock. */
static int kg_store_read_version(sqlite3 *db, const char *path, long *version,
                                 char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  long long ntables = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) {
    kg_store_error(db, rc, path, "reading the schema", err, errlen);
    return -1;
  }
  if (ntables == 0) return 1;
  char app[64] = "", vtext[32] = "";
  rc = sqlite3_prepare_v2(db, "SELECT key, value FROM meta WHERE key IN"
                              " ('application', 'schema_version')", -1, &st, NULL);
  while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *k = (const char *)sqlite3_column_text(st, 0);
    const char *v = (const char *)sqlite3_column_text(st, 1);
    if (k && v && strcmp(k, "application") == 0) snprintf(app, sizeof(app), "%s", v);
    if (k && v && strcmp(k, "schema_version") == 0) snprintf(vtext, sizeof(vtext), "%s", v);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  int code = rc & 0xff;
  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB || code == SQLITE_BUSY ||
      code == SQLITE_LOCKED || code == SQLITE_IOERR) {
    kg_store_error(db, rc, path, "reading the schema", err, errlen);
    return -1;
  }
  if (strcmp(app, "kagami") != 0) {
    /* Another application's database (or a meta table of its own). */
    char *tables = kg_store_table_names(db);
    snprintf(err, errlen,
             "store %s: an SQLite database but not a kagami store (tables: %s); "
             "move it away or set `store` to another path", path, tables);
    free(tables);
    return -1;
  }
  char *end = NULL;
  long v = strtol(vtext, &end, 10);
  if (end == vtext || *end != '\0' || v < 1) {
    snprintf(err, errlen, "store %s: a kagami store with an unreadable schema "
             "version \"%s\"", path, vtext);
    return -1;
  }
  if (v > KG_STORE_SCHEMA_VERSION) {
    snprintf(err, errlen,
             "store %s: schema version %ld, but this kagami %s reads version %d "
             "(written by a newer kagami); use a matching kagami or another path",
             path, v, KG_VERSION, KG_STORE_SCHEMA_VERSION);
    return -1;
  }
  *version = v;
  return 0;
}

int kg_store_check_schema(sqlite3 *db, const char *path, char *err,
                          size_t errlen) {
  long v = 0;
  int r = kg_store_read_version(db, path, &v, err, errlen);
  if (r != 0) return r;
  if (v != KG_STORE_SCHEMA_VERSION) {
    /* Only a writer upgrades (readers open read-only, and an upgrade
     * takes the write lock for seconds). */
    snprintf(err, errlen,
             "store %s: schema version %ld (written by an older kagami), but "
             "this kagami %s reads version %d; `kagami run` with this store "
             "upgrades it once at start", path, v, KG_VERSION,
             KG_STORE_SCHEMA_VERSION);
    return -1;
  }
  return 0;
}

/* --- open and close ----------------------------------------------------------- */

static int kg_store_exec(kg_store *s, const char *sql, const char *what,
                         char *err, size_t errlen) {
  int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) kg_store_error(s->db, rc, s->path, what, err, errlen);
  return rc == SQLITE_OK ? 0 : -1;
}

/* Counts results; 0 or -1 (the caller reports). */
static int kg_store_count(kg_store *s) {
  sqlite3_stmt *st = s->st[KG_ST_COUNT_ROWS];
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) s->rows = (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : -1;
}

/* The key of minute m at grain g: the minute (0) or its hour (1). */
static int64_t kg_store_grain(int64_t m, size_t g) {
  if (g == 0) return m;
  return m >= 0 ? m / 60 : -((-m + 59) / 60);
}

/* Adds one (endpoint, minute, backend)'s latencies to agg_backends and
 * to its hour's row in agg_backends_hour (ins[0], ins[1]: the writer's
 * upserts). */
static int kg_store_put_latency(sqlite3_stmt *const ins[2], const char *ep, int64_t minute,
                                const char *backend, bool master, int64_t pos,
                                uint64_t errors, const kg_hist *h) {
  kg_buf blob = KG_BUF_INIT;
  kg_storeagg_hist_encode(h, &blob);
  int rc = SQLITE_OK;
  for (size_t g = 0; g < 2 && rc == SQLITE_OK; g++) {
    sqlite3_bind_text(ins[g], 1, ep, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins[g], 2, kg_store_grain(minute, g));
    sqlite3_bind_text(ins[g], 3, backend, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins[g], 4, master ? "master" : "shadow", -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins[g], 5, pos);
    sqlite3_bind_int64(ins[g], 6, (sqlite3_int64)errors);
    sqlite3_bind_blob64(ins[g], 7, blob.data ? blob.data : "", blob.len, SQLITE_STATIC);
    rc = sqlite3_step(ins[g]);
    sqlite3_reset(ins[g]);
    rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
  }
  kg_buf_free(&blob);
  return rc;
}

/* Builds version 3's latency histograms from version 2's backend rows: one
 * pass in key order, one histogram at a time. */
static int kg_store_upgrade_latency(kg_store *s, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL, *ins[2] = {NULL, NULL};
  kg_hist *h = kg_malloc(sizeof(*h));
  kg_hist_init(h);
  char *ep = NULL, *backend = NULL;
  int64_t minute = 0, pos = 0;
  uint64_t errors = 0;
  bool master = false;
  int rc = sqlite3_prepare_v2(
      s->db,
      "SELECT endpoint, CAST(ts / 60 AS INTEGER), name, role = 'master', pos,"
      " elapsed_ms, error IS NOT NULL FROM backends"
      " WHERE role IN ('master', 'shadow') ORDER BY 1, 2, 3", -1, &st, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(s->db, kg_store_sql[KG_ST_UPS_BACKENDS], -1, &ins[0], NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(s->db, kg_store_sql[KG_ST_UPS_BACKENDS_HOUR], -1, &ins[1], NULL);
  while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    rc = SQLITE_OK; /* (for the loop's test) */
    const char *e = (const char *)sqlite3_column_text(st, 0);
    const char *b = (const char *)sqlite3_column_text(st, 2);
    int64_t m = sqlite3_column_int64(st, 1);
    e = e ? e : "";
    b = b ? b : "";
    if (ep == NULL || m != minute || strcmp(e, ep) != 0 || strcmp(b, backend) != 0) {
      if (ep && (rc = kg_store_put_latency(ins, ep, minute, backend, master, pos, errors,
                                           h)) != SQLITE_OK)
        break;
      free(ep);
      free(backend);
      ep = kg_strdup(e);
      backend = kg_strdup(b);
      minute = m;
      pos = sqlite3_column_int64(st, 4);
      errors = 0;
      master = false;
      kg_hist_init(h);
    }
    master = master || sqlite3_column_int(st, 3);
    pos = KG_MIN(pos, (int64_t)sqlite3_column_int64(st, 4));
    if (sqlite3_column_int(st, 6)) {
      errors++;
    } else {
      double us = sqlite3_column_double(st, 5) * 1e3 + 0.5;
      kg_hist_add(h, us <= 0 ? 0 : us >= (double)KG_HIST_MAX_VALUE ? KG_HIST_MAX_VALUE
                                                                   : (uint64_t)us);
    }
  }
  if (rc == SQLITE_DONE || rc == SQLITE_OK)
    rc = ep ? kg_store_put_latency(ins, ep, minute, backend, master, pos, errors, h)
            : SQLITE_OK;
  if (rc != SQLITE_OK) kg_store_error(s->db, rc, s->path, "upgrading the schema", err, errlen);
  sqlite3_finalize(st);
  sqlite3_finalize(ins[0]);
  sqlite3_finalize(ins[1]);
  free(ep);
  free(backend);
  free(h);
  return rc == SQLITE_OK ? 0 : -1;
}

/* Version 2 to 3, inside the caller's transaction (see kg_store_schema_v3). */
static int kg_store_upgrade_to_v3(kg_store *s, char *err, size_t errlen) {
  if (kg_store_exec(s, kg_store_schema_v3, "upgrading the schema", err, errlen) < 0 ||
      kg_store_exec(s, kg_store_upgrade_v2, "upgrading the schema", err, errlen) < 0 ||
      kg_store_upgrade_latency(s, err, errlen) < 0 ||
      kg_store_exec(s, kg_store_drop_v2, "upgrading the schema", err, errlen) < 0)
    return -1;
  return 0;
}

/* Creates the schema in an empty database, or upgrades an older one,
 * inside the caller's write transaction, after checking again under the
 * write lock (two starts may race). */
static int kg_store_create(kg_store *s, char *err, size_t errlen) {
  long v = 0;
  int r = kg_store_read_version(s->db, s->path, &v, err, errlen);
  if (r < 0) return r;
  if (r == 0 && v == KG_STORE_SCHEMA_VERSION) return 0;
  if (r == 0) { /* versions 1 and 2, one step at a time */
    kg_log_info("store %s: upgrading the schema from version %ld to %d (once)",
                s->path, v, KG_STORE_SCHEMA_VERSION);
    if (v == 1 &&
        (kg_store_exec(s, kg_store_upgrade_v1, "upgrading the schema", err, errlen) < 0 ||
         kg_store_exec(s, kg_store_schema_v2, "upgrading the schema", err, errlen) < 0 ||
         kg_store_exec(s, kg_store_upgrade_v1_locations, "upgrading the schema", err,
                       errlen) < 0))
      return -1;
    return kg_store_upgrade_to_v3(s, err, errlen);
  }
  char meta[256];
  snprintf(meta, sizeof(meta),
           "INSERT INTO meta VALUES('application', 'kagami'),"
           " ('schema_version', '2'), ('created_by', 'kagami %s');"
           /* 'kagm': lets file(1) and others tell what this is */
           "PRAGMA application_id = 1801545581;",
           KG_VERSION);
  /* Version 2's layout, then the same step an upgrade takes (cheap on an
   * empty database), so that new and upgraded stores cannot drift apart. */
  if (kg_store_exec(s, kg_store_schema, "creating the schema", err, errlen) < 0 ||
      kg_store_exec(s, kg_store_schema_v2, "creating the schema", err, errlen) < 0 ||
      kg_store_exec(s, meta, "creating the schema", err, errlen) < 0 ||
      kg_store_exec(s, kg_store_schema_v3, "creating the schema", err, errlen) < 0 ||
      kg_store_exec(s, kg_store_drop_v2, "creating the schema", err, errlen) < 0)
    return -1;
  return 0;
}

/* SQL kg_hist_merge(old, new): the two histogram blobs as one, for the
 * batch upserts. A damaged old blob (a hand-edited store) is replaced by
 * the new one rather than failing every later batch. */
static void kg_store_sql_hist_merge(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const void *a = sqlite3_value_blob(argv[0]), *b = sqlite3_value_blob(argv[1]);
  kg_buf out = KG_BUF_INIT;
  if (kg_storeagg_blob_merge(a ? a : "", (size_t)sqlite3_value_bytes(argv[0]), b ? b : "",
                             (size_t)sqlite3_value_bytes(argv[1]), &out) < 0) {
    sqlite3_result_error(ctx, "kg_hist_merge: not a histogram", -1);
    return;
  }
  sqlite3_result_blob64(ctx, out.data, out.len, free);
}

static int kg_store_setup(kg_store *s, char *err, size_t errlen) {
  int rc = sqlite3_open_v2(s->path, &s->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                               SQLITE_OPEN_NOMUTEX,
                           NULL);
  if (rc != SQLITE_OK) {
    kg_store_error(s->db, rc, s->path, "opening", err, errlen);
    return -1;
  }
  sqlite3_extended_result_codes(s->db, 1);
  sqlite3_busy_timeout(s->db, KG_STORE_OPEN_BUSY_MS);
  rc = sqlite3_create_function_v2(s->db, "kg_hist_merge", 2,
                                  SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                  kg_store_sql_hist_merge, NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    kg_store_error(s->db, rc, s->path, "registering functions", err, errlen);
    return -1;
  }
  /* Read before anything is written: another application's database must
   * be refused untouched (not even switched to WAL). */
  long version = 0;
  if (kg_store_read_version(s->db, s->path, &version, err, errlen) < 0) return -1;
  sqlite3_stmt *st = NULL;
  rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  bool wal = rc == SQLITE_ROW &&
             strcasecmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) {
    kg_store_error(s->db, rc, s->path, "switching to WAL mode", err, errlen);
    return -1;
  }
  if (!wal) {
    snprintf(err, errlen, "store %s: cannot use WAL mode here (a file system "
             "without shared memory?), so readers would block kagami", s->path);
    return -1;
  }
  char pragmas[200];
  snprintf(pragmas, sizeof(pragmas),
           /* WAL + NORMAL: durable across crashes of kagami, may lose the
            * last batches on power loss; no fsync per batch. */
           "PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = %lld;",
           (long long)KG_STORE_WAL_LIMIT);
  if (kg_store_exec(s, pragmas, "setting pragmas", err, errlen) < 0) return -1;
  /* A write lock now, briefly: if someone else holds one, we say so at
   * start rather than losing batches later. */
  if (kg_store_exec(s, "BEGIN IMMEDIATE", "taking the write lock", err, errlen) < 0)
    return -1;
  if (kg_store_create(s, err, errlen) < 0) {
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
  }
  if (kg_store_exec(s, "COMMIT", "creating the schema", err, errlen) < 0) return -1;
  for (int i = 0; i < KG_ST_N; i++) {
    rc = sqlite3_prepare_v3(s->db, kg_store_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                            &s->st[i], NULL);
    if (rc != SQLITE_OK) {
      /* Our meta but not our columns: an edited or foreign schema. */
      snprintf(err, errlen, "store %s: not the kagami schema version %d (%s); "
               "move it away or set `store` to another path", s->path,
               KG_STORE_SCHEMA_VERSION, sqlite3_errmsg(s->db));
      return -1;
    }
  }
  if (kg_store_count(s) < 0) {
    kg_store_error(s->db, sqlite3_errcode(s->db), s->path, "counting rows", err, errlen);
    return -1;
  }
  sqlite3_busy_timeout(s->db, KG_STORE_WRITE_BUSY_MS);
  return 0;
}

static void *kg_store_flusher(void *arg);

static void kg_store_free(kg_store *s) {
  for (int i = 0; i < KG_ST_N; i++) sqlite3_finalize(s->st[i]);
  if (s->db) sqlite3_close(s->db);
  if (s->lock_fd >= 0) close(s->lock_fd); /* after SQLite's: see the top */
  if (s->z_ready) deflateEnd(&s->z);
  kg_buf_free(&s->zout);
  kg_storeagg_free(&s->pending);
  pthread_cond_destroy(&s->flush_cond);
  kg_storeagg_sampler_free(&s->sampler);
  for (size_t i = 0; i < s->nredact; i++) free(s->redact[i]);
  free(s->redact);
  free(s->path);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

int kg_store_open(const kg_config *cfg, kg_store **out, char *err,
                  size_t errlen) {
  const char *path = cfg->store_path;
  *out = NULL;
  if (!sqlite3_threadsafe()) {
    snprintf(err, errlen, "store %s: this SQLite library was built without "
             "thread support", path);
    return -1;
  }
  if (kg_store_sniff(path, err, errlen) < 0) return -1;
  kg_store *s = kg_calloc(1, sizeof(*s));
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->flush_cond, NULL);
  s->pending.own = true;
  s->path = kg_strdup(path);
  s->max_rows = cfg->store_max_rows;
  s->keep_differing = cfg->store_keep_differing;
  s->keep_equal = cfg->store_keep_equal;
  s->keep_equal_minute = cfg->store_keep_equal_per_minute;
  s->max_days = cfg->store_max_days;
  s->max_body = cfg->store_max_body_bytes;
  s->nredact = cfg->nredact_headers;
  s->redact = kg_calloc(s->nredact, sizeof(char *));
  for (size_t i = 0; i < s->nredact; i++) s->redact[i] = kg_strdup(cfg->redact_headers[i]);
  s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s->lock_fd < 0) {
    snprintf(err, errlen, "store %s: %s", path, strerror(errno));
    kg_store_free(s);
    return -1;
  }
  if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
    if (errno == EWOULDBLOCK)
      snprintf(err, errlen, "store %s: locked: another kagami is using this "
               "store; give each instance its own `store` path", path);
    else
      snprintf(err, errlen, "store %s: cannot lock: %s", path, strerror(errno));
    kg_store_free(s);
    return -1;
  }
  if (kg_store_setup(s, err, errlen) < 0) {
    kg_store_free(s);
    return -1;
  }
  int r = pthread_create(&s->flusher, NULL, kg_store_flusher, s);
  if (r != 0) {
    snprintf(err, errlen, "store %s: cannot start a thread: %s", path, strerror(r));
    kg_store_free(s);
    return -1;
  }
  s->flusher_started = true;
  *out = s;
  return 0;
}

void kg_store_close(kg_store *s) {
  if (s == NULL) return;
  if (s->flusher_started) {
    pthread_mutex_lock(&s->lock);
    s->closing = true;
    pthread_cond_signal(&s->flush_cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->flusher, NULL);
  }
  kg_store_maintain(s); /* the last sums */
  pthread_mutex_lock(&s->lock);
  /* Keeps the query planner's statistics fresh for the readers; cheap. */
  sqlite3_exec(s->db, "PRAGMA optimize", NULL, NULL, NULL);
  pthread_mutex_unlock(&s->lock);
  kg_store_free(s); /* the last close checkpoints the WAL into the file */
}

/* --- encoding a result ---------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t kg_utf8_seq(const unsigned char *p, size_t n) {
  unsigned c = p[0];
  if (c < 0x80) return c == 0 ? 0 : 1; /* NUL too: C readers stop there */
  size_t len;
  uint32_t min;
  if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
  else return 0;
  if (n < len) return 0;
  uint32_t cp = c & (0x7Fu >> len);
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

/* Appends s (n bytes) to out as valid UTF-8 without NULs: every invalid
 * byte becomes U+FFFD. Text columns and JSON must be UTF-8 for sqlite3's
 * JSON functions and for jansson on the reading side. */
void kg_store_utf8_clean(const char *s, size_t n, kg_buf *out) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, run = 0;
  while (i < n) {
    size_t k = kg_utf8_seq(p + i, n - i);
    if (k) {
      i += k;
      continue;
    }
    kg_buf_append(out, s + run, i - run);
    kg_buf_appends(out, "\xEF\xBF\xBD");
    run = ++i;
  }
  kg_buf_append(out, s + run, n - run);
}

static json_t *kg_json_str(const char *s, size_t n) {
  kg_buf b = KG_BUF_INIT;
  kg_store_utf8_clean(s, n, &b);
  json_t *j = json_stringn(b.data ? b.data : "", b.len);
  kg_buf_free(&b);
  return j;
}

static json_t *kg_json_opt(const char *s) {
  return s ? kg_json_str(s, strlen(s)) : json_null();
}

static bool kg_store_redacted(const kg_store *s, const char *name) {
  for (size_t i = 0; i < s->nredact; i++)
    if (strcasecmp(s->redact[i], name) == 0) return true;
  return false;
}

/* [[name, value], ...] with redacted values replaced; NULL for no list. */
static char *kg_store_headers(const kg_store *s, const kg_hdrs *h) {
  if (h == NULL) return NULL;
  json_t *a = json_array();
  for (size_t i = 0; i < h->n; i++) {
    const char *name = kg_hdrs_name(h, i);
    json_t *pair = json_array();
    json_array_append_new(pair, kg_json_str(name, h->v[i].name_len));
    json_array_append_new(pair, kg_store_redacted(s, name)
                                    ? json_string("[redacted]")
                                    : kg_json_str(kg_hdrs_value(h, i), h->v[i].value_len));
    json_array_append_new(a, pair);
  }
  char *out = json_dumps(a, JSON_COMPACT);
  json_decref(a);
  return out;
}

/* The JSON columns of a result (owned strings, freed by kg_encoded_free). */
typedef struct kg_encoded {
  char *req_headers, *differences, *header_differences, *suppressed, *slower;
  kg_buf url, diff;
  char **locs;     /* owned: the result's locations, for the aggregates
                      (repeats allowed: they count once) */
  size_t nlocs;
  size_t ndifflocs; /* the first ndifflocs are differences' locations; the
                       rest "error: <why>", which count as errors, apart */
} kg_encoded;

/* Adds prefix + s, as valid UTF-8 like the JSON columns hold it, to e's
 * locations. */
static void kg_add_loc(kg_encoded *e, const char *prefix, const char *s) {
  kg_buf b = KG_BUF_INIT;
  kg_buf_appends(&b, prefix);
  kg_store_utf8_clean(s, strlen(s), &b);
  e->locs = kg_realloc(e->locs, (e->nlocs + 1) * sizeof(char *));
  e->locs[e->nlocs++] = kg_buf_steal(&b, NULL);
}

/* Appends one difference to list, and its location (the pattern, or where
 * it is when no pattern was made) to e's. */
static void kg_add_diff(kg_encoded *e, json_t *list, const char *backend,
                        const char *key, const char *where, const char *pattern,
                        const char *m, const char *sh) {
  json_t *d = json_object();
  json_object_set_new(d, "backend", kg_json_opt(backend));
  json_object_set_new(d, key, kg_json_opt(where));
  json_object_set_new(d, "pattern", kg_json_opt(pattern ? pattern : where));
  json_object_set_new(d, "master", kg_json_opt(m));
  json_object_set_new(d, "shadow", kg_json_opt(sh));
  json_array_append_new(list, d);
  if (pattern || where) kg_add_loc(e, "", pattern ? pattern : where);
}

static void kg_encode(const kg_store *s, const kg_result *r, kg_encoded *e) {
  json_t *diffs = json_array(), *hdiffs = json_array(), *sup = json_array();
  json_t *slower = json_array();
  for (size_t i = 0; i < r->n; i++) {
    const kg_resp_view *v = &r->resps[i];
    if ((r->regression >> i) & 1) json_array_append_new(slower, kg_json_opt(v->backend));
    if (strcmp(r->roles[i], "shadow") != 0) continue;
    const kg_pair_result *p = &r->pairs[i];
    if (p->status_differs) {
      char ms[16], ss[16];
      snprintf(ms, sizeof(ms), "%d", r->resps[0].status);
      snprintf(ss, sizeof(ss), "%d", v->status);
      kg_add_diff(e, diffs, v->backend, "where", "status", "status", ms, ss);
    }
    for (size_t k = 0; k < p->body.n; k++)
      kg_add_diff(e, diffs, v->backend, "where", p->body.v[k].where,
                  p->body.v[k].pattern, p->body.v[k].master, p->body.v[k].shadow);
    for (size_t k = 0; k < p->headers.n; k++) {
      const kg_difference *d = &p->headers.v[k];
      const char *name = d->where + strlen("header:");
      /* Set-Cookie differences already hold cookie names only (compare.c
       * drops the values), which say which cookie differs and are no
       * secret; other redacted headers lose their values here too. */
      bool hide = kg_store_redacted(s, name) && strcasecmp(name, "set-cookie") != 0;
      kg_add_diff(e, hdiffs, v->backend, "name", name, d->pattern,
                  hide && d->master ? "[redacted]" : d->master,
                  hide && d->shadow ? "[redacted]" : d->shadow);
    }
    kg_buf_append(&e->diff, p->diff.data, p->diff.len);
  }
  for (size_t i = 0; i < r->nsuppressed; i++)
    json_array_append_new(sup, kg_json_opt(r->suppressed[i]));
  e->ndifflocs = e->nlocs;
  /* A failed master or shadow is a location too ("error: timeout"). */
  for (size_t i = 0; i < r->n; i++)
    if (r->resps[i].error && (strcmp(r->roles[i], "master") == 0 ||
                              strcmp(r->roles[i], "shadow") == 0))
      kg_add_loc(e, "error: ", r->resps[i].error);
  e->req_headers = kg_store_headers(s, r->req_hdrs);
  /* Most results are equal: their empty lists need no encoder. */
  e->differences = json_array_size(diffs) ? json_dumps(diffs, JSON_COMPACT) : kg_strdup("[]");
  e->header_differences =
      json_array_size(hdiffs) ? json_dumps(hdiffs, JSON_COMPACT) : kg_strdup("[]");
  e->suppressed = json_array_size(sup) ? json_dumps(sup, JSON_COMPACT) : kg_strdup("[]");
  e->slower = json_array_size(slower) ? json_dumps(slower, JSON_COMPACT) : NULL;
  json_decref(diffs);
  json_decref(hdiffs);
  json_decref(sup);
  json_decref(slower);
  /* Bodies need not be UTF-8, nor their diff; the URL neither. */
  kg_buf raw = e->diff;
  e->diff = (kg_buf)KG_BUF_INIT;
  kg_store_utf8_clean(raw.data ? raw.data : "", raw.len, &e->diff);
  kg_buf_free(&raw);
  kg_store_utf8_clean(r->url, strlen(r->url), &e->url);
}

static void kg_encoded_free(kg_encoded *e) {
  free(e->req_headers);
  free(e->differences);
  free(e->header_differences);
  free(e->suppressed);
  free(e->slower);
  kg_buf_free(&e->url);
  kg_buf_free(&e->diff);
  for (size_t i = 0; i < e->nlocs; i++) free(e->locs[i]);
  free(e->locs);
}

/* --- writing -------------------------------------------------------------------- */

static void kg_bind_text(sqlite3_stmt *st, int i, const char *s, size_t n) {
  if (s == NULL) sqlite3_bind_null(st, i);
  else sqlite3_bind_text64(st, i, s, n, SQLITE_STATIC, SQLITE_UTF8);
}

static void kg_bind_str(sqlite3_stmt *st, int i, const char *s) {
  kg_bind_text(st, i, s, s ? strlen(s) : 0);
}

/* Runs a statement that returns no rows; returns the SQLite code. */
static int kg_step_done(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Compresses n bytes of p into s->zout (a zlib stream, what uncompress()
 * reads). Returns 0, or -1 when zlib fails (only out of memory). */
static int kg_store_deflate(kg_store *s, const char *p, size_t n) {
  if (!s->z_ready) {
    if (deflateInit(&s->z, Z_DEFAULT_COMPRESSION) != Z_OK) return -1;
    s->z_ready = true;
  } else if (deflateReset(&s->z) != Z_OK) {
    return -1;
  }
  kg_buf_reset(&s->zout);
  kg_buf_reserve(&s->zout, deflateBound(&s->z, (uLong)n));
  s->z.next_in = (Bytef *)p;
  s->z.avail_in = (uInt)n;
  s->z.next_out = (Bytef *)s->zout.data;
  s->z.avail_out = (uInt)(s->zout.cap);
  /* deflateBound room: one call finishes the stream */
  if (deflate(&s->z, Z_FINISH) != Z_STREAM_END) return -1;
  s->zout.len = s->z.total_out;
  return 0;
}

/* The result's arrival as stored: Unix seconds, to the millisecond. */
static double kg_result_ts(const kg_result *r) {
  return (double)r->ts.tv_sec + (double)(r->ts.tv_nsec / 1000000) / 1e3;
}

/* One backend row. The body and the response headers are stored only for
 * results a person opens: those that differ, and equal ones where a rule or
 * learned noise hid something (to check what it hid). Keeping them for
 * every equal result would multiply the file and the cost of a write for
 * nothing (status, size and latency are kept for all); equal results are
 * kept only a few per endpoint and minute, so this stays bounded. */
static int kg_store_backend(kg_store *s, const kg_result *r, size_t i) {
  const kg_resp_view *v = &r->resps[i];
  bool shadow = strcmp(r->roles[i], "shadow") == 0;
  bool look = !r->equal || r->nsuppressed > 0;
  sqlite3_stmt *st = s->st[KG_ST_INS_BACKEND];
  char *hdrs = look ? kg_store_headers(s, v->error ? NULL : v->hdrs) : NULL;
  const Bytef *z = NULL;
  size_t zlen = 0, raw = 0;
  bool cut = false;
  if (look && !v->error) {
    raw = KG_MIN(v->body_len, s->max_body);
    cut = raw < v->body_len || v->truncated;
    if (kg_store_deflate(s, v->body ? v->body : "", raw) == 0) {
      z = (const Bytef *)s->zout.data;
      zlen = s->zout.len;
    } /* else keep the row without its body */
  }
  sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
  kg_bind_str(st, 3, v->backend);
  kg_bind_str(st, 4, r->roles[i]);
  if (v->error) sqlite3_bind_null(st, 5);
  else sqlite3_bind_int(st, 5, v->status);
  kg_bind_str(st, 6, v->error);
  /* Rounded to microseconds, as in the diff log. */
  sqlite3_bind_double(st, 7, (double)(long long)(v->elapsed * 1e6) / 1e3);
  if (v->error) sqlite3_bind_null(st, 8);
  else sqlite3_bind_int64(st, 8, (sqlite3_int64)v->bytes);
  if (shadow) sqlite3_bind_int(st, 9, r->pairs[i].equal);
  else sqlite3_bind_null(st, 9);
  sqlite3_bind_int(st, 10, v->truncated ? 1 : 0);
  kg_bind_str(st, 11, shadow && !v->error ? r->pairs[i].error : NULL);
  kg_bind_str(st, 12, hdrs);
  if (z) {
    sqlite3_bind_blob64(st, 13, z, zlen, SQLITE_STATIC);
    sqlite3_bind_int64(st, 14, (sqlite3_int64)raw);
  } else {
    sqlite3_bind_null(st, 13);
    sqlite3_bind_null(st, 14);
  }
  sqlite3_bind_int(st, 15, z && cut ? 1 : 0);
  kg_bind_str(st, 16, r->endpoint ? r->endpoint : "");
  sqlite3_bind_double(st, 17, kg_result_ts(r));
  int rc = kg_step_done(st);
  free(hdrs);
  return rc;
}

/* Stores r and counts it in agg with outcome o. */
static int kg_store_result(kg_store *s, const kg_result *r, kg_outcome o, kg_storeagg *agg) {
  kg_encoded e = {.url = KG_BUF_INIT, .diff = KG_BUF_INIT};
  kg_encode(s, r, &e);
  sqlite3_stmt *st = s->st[KG_ST_INS_RESULT];
  sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 2, kg_result_ts(r));
  kg_bind_str(st, 3, r->method);
  kg_bind_text(st, 4, e.url.data ? e.url.data : "", e.url.len);
  kg_bind_str(st, 5, r->endpoint ? r->endpoint : "");
  kg_bind_str(st, 6, kg_kind_name(r->kind));
  sqlite3_bind_int(st, 7, r->equal ? 1 : 0);
  sqlite3_bind_int(st, 8, r->truncated ? 1 : 0);
  kg_bind_str(st, 9, e.req_headers);
  kg_bind_str(st, 10, e.differences);
  kg_bind_str(st, 11, e.header_differences);
  kg_bind_str(st, 12, e.suppressed);
  kg_bind_text(st, 13, e.diff.data ? e.diff.data : "", e.diff.len);
  kg_bind_str(st, 14, e.slower);
  int rc = kg_step_done(st);
  for (size_t i = 0; rc == SQLITE_OK && i < r->n; i++) rc = kg_store_backend(s, r, i);
  kg_storeagg_add(agg, r, o, (const char *const *)e.locs, e.ndifflocs);
  kg_encoded_free(&e);
  return rc;
}

static bool kg_store_sample_equal(kg_store *s, const kg_result *r) {
  return kg_storeagg_sample(&s->sampler, r, s->keep_equal_minute);
}

/* Keeps endpoint ep's newest `keep` results of one kind (equal or not),
 * deleting the older ones: each endpoint has its own share, so a noisy
 * one cannot evict the others'. One index seek when nothing goes. */
static int kg_store_trim_share(kg_store *s, const char *ep, bool equal, uint64_t keep) {
  sqlite3_stmt *st = s->st[KG_ST_SHARE_NTH];
  sqlite3_bind_text(st, 1, ep, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, equal);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)KG_MIN(keep, (uint64_t)INT64_MAX));
  int rc = sqlite3_step(st);
  char *cut = rc == SQLITE_ROW ? kg_strdup((const char *)sqlite3_column_text(st, 0)) : NULL;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (rc == SQLITE_DONE) return SQLITE_OK;
  if (rc != SQLITE_ROW) return rc;
  rc = SQLITE_OK;
  /* backends first: they are found through their results */
  const int del[2] = {KG_ST_DEL_SHARE_BACKENDS, KG_ST_DEL_SHARE_RESULTS};
  for (size_t k = 0; k < 2 && rc == SQLITE_OK; k++) {
    sqlite3_stmt *d = s->st[del[k]];
    sqlite3_bind_text(d, 1, ep, -1, SQLITE_STATIC);
    sqlite3_bind_int(d, 2, equal);
    sqlite3_bind_text(d, 3, cut, -1, SQLITE_STATIC);
    rc = kg_step_done(d);
  }
  if (rc == SQLITE_OK) s->rows -= KG_MIN(s->rows, (uint64_t)sqlite3_changes64(s->db));
  free(cut);
  return rc;
}

/* An endpoint's share of kept results that a batch added to. */
typedef struct kg_store_share {
  const char *ep;  /* borrowed from the batch */
  bool equal;      /* the equal share, or the differing/failed one */
} kg_store_share;

/* Writes one row per key of agg and grain (upserts). */
static int kg_store_write_agg(kg_store *s, kg_storeagg *agg) {
  int rc = SQLITE_OK;
  /* g = 0: per minute, 1: per hour; the next statement is the hour's */
  for (size_t k = 0; rc == SQLITE_OK && k < 2 * agg->nreq; k++) {
    const kg_agg_req *q = &agg->req[k / 2];
    sqlite3_stmt *st = s->st[KG_ST_UPS_REQUESTS + k % 2];
    kg_bind_str(st, 1, q->endpoint);
    sqlite3_bind_int64(st, 2, kg_store_grain(q->minute, k % 2));
    sqlite3_bind_int64(st, 3, (sqlite3_int64)q->compared);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)q->differing);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)q->errors);
    sqlite3_bind_double(st, 6, q->first_ts);
    sqlite3_bind_double(st, 7, q->last_ts);
    rc = kg_step_done(st);
  }
  kg_buf blob = KG_BUF_INIT;
  for (size_t k = 0; rc == SQLITE_OK && k < 2 * agg->nbe; k++) {
    kg_agg_be *b = &agg->be[k / 2];
    sqlite3_stmt *st = s->st[KG_ST_UPS_BACKENDS + k % 2];
    if (k % 2 == 0) {
      kg_buf_reset(&blob);
      kg_storeagg_values_encode(b->us, b->nus, &blob);
    }
    kg_bind_str(st, 1, b->endpoint);
    sqlite3_bind_int64(st, 2, kg_store_grain(b->minute, k % 2));
    kg_bind_str(st, 3, b->backend);
    kg_bind_str(st, 4, b->role);
    sqlite3_bind_int64(st, 5, b->pos);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)b->errors);
    sqlite3_bind_blob64(st, 7, blob.data, blob.len, SQLITE_STATIC);
    rc = kg_step_done(st);
  }
  kg_buf_free(&blob);
  for (size_t k = 0; rc == SQLITE_OK && k < 2 * agg->nloc; k++) {
    const kg_agg_loc *l = &agg->loc[k / 2];
    sqlite3_stmt *st = s->st[KG_ST_UPS_LOCATIONS + k % 2];
    kg_bind_str(st, 1, l->endpoint);
    sqlite3_bind_int64(st, 2, kg_store_grain(l->minute, k % 2));
    kg_bind_str(st, 3, l->loc);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)l->count);
    rc = kg_step_done(st);
  }
  return rc;
}

/* Deletes the oldest results beyond max_rows. The cost is one index seek
 * plus the rows deleted, i.e. in step with what was inserted. */
static int kg_store_trim_rows(kg_store *s) {
  if (s->rows <= s->max_rows) return SQLITE_OK;
  sqlite3_stmt *st = s->st[KG_ST_NTH_OLDEST];
  sqlite3_bind_int64(st, 1, (sqlite3_int64)(s->rows - s->max_rows - 1));
  int rc = sqlite3_step(st);
  char *cut = rc == SQLITE_ROW ? kg_strdup((const char *)sqlite3_column_text(st, 0)) : NULL;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (rc == SQLITE_DONE) return kg_store_count(s) == 0 ? SQLITE_OK : sqlite3_errcode(s->db);
  if (rc != SQLITE_ROW) return rc;
  sqlite3_bind_text(s->st[KG_ST_DEL_BACKENDS_UPTO], 1, cut, -1, SQLITE_STATIC);
  rc = kg_step_done(s->st[KG_ST_DEL_BACKENDS_UPTO]);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(s->st[KG_ST_DEL_RESULTS_UPTO], 1, cut, -1, SQLITE_STATIC);
    rc = kg_step_done(s->st[KG_ST_DEL_RESULTS_UPTO]);
    if (rc == SQLITE_OK) s->rows -= KG_MIN(s->rows, (uint64_t)sqlite3_changes64(s->db));
  }
  free(cut);
  return rc;
}

/* Deletes results and aggregates older than max_days (by their time
 * indexes) and re-counts. An aggregate minute goes once all of it is past
 * the cutoff. */
static int kg_store_trim_age(kg_store *s) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  double cutoff = (double)now.tv_sec - s->max_days * 86400.0;
  sqlite3_bind_double(s->st[KG_ST_DEL_BACKENDS_BEFORE], 1, cutoff);
  int rc = kg_step_done(s->st[KG_ST_DEL_BACKENDS_BEFORE]);
  for (int k = KG_ST_DEL_REQUESTS_BEFORE; rc == SQLITE_OK && k <= KG_ST_DEL_LOCATIONS_HOUR_BEFORE;
       k++) {
    /* minutes (hours) that end at or before the cutoff: m + 1 <= cutoff / 60 */
    double grain = k >= KG_ST_DEL_REQUESTS_HOUR_BEFORE ? 3600.0 : 60.0;
    sqlite3_bind_int64(s->st[k], 1, (sqlite3_int64)floor(cutoff / grain));
    rc = kg_step_done(s->st[k]);
  }
  if (rc != SQLITE_OK) return rc;
  sqlite3_bind_double(s->st[KG_ST_DEL_RESULTS_BEFORE], 1, cutoff);
  rc = kg_step_done(s->st[KG_ST_DEL_RESULTS_BEFORE]);
  if (rc != SQLITE_OK) return rc;
  return kg_store_count(s) == 0 ? SQLITE_OK : sqlite3_errcode(s->db);
}

/* Retention inside the caller's transaction: rows always (it is cheap and
 * keeps the bound exact), age every KG_STORE_MAINTAIN_NS. */
static int kg_store_retain(kg_store *s, bool force) {
  uint64_t now = kg_now_ns();
  int rc = SQLITE_OK;
  if (force || s->last_maintain_ns == 0 || now - s->last_maintain_ns >= KG_STORE_MAINTAIN_NS) {
    rc = kg_store_trim_age(s);
    if (rc == SQLITE_OK) s->last_maintain_ns = now;
  }
  if (rc == SQLITE_OK) rc = kg_store_trim_rows(s);
  return rc;
}

static void kg_store_log_failure(kg_store *s, int rc, const char *what) {
  s->failed_batches++;
  uint64_t now = kg_now_ns();
  if (s->last_error_log_ns && now - s->last_error_log_ns < KG_STORE_ERROR_LOG_NS) return;
  char err[512];
  kg_store_error(s->db, rc, s->path, what, err, sizeof(err));
  kg_log_error("%s (%llu batch%s of results lost since the last message)", err,
               (unsigned long long)(s->failed_batches - s->failed_logged),
               s->failed_batches - s->failed_logged == 1 ? "" : "es");
  s->failed_logged = s->failed_batches;
  s->last_error_log_ns = now;
}

/* Runs body (inserts and/or retention) in one transaction under the lock.
 * A batch with nothing to keep one by one only adds to the pending sums,
 * unless they are due (KG_STORE_AGG_NS) or force says so. */
static int kg_store_txn(kg_store *s, const kg_result *const *records, size_t n,
                        bool force_retention) {
  pthread_mutex_lock(&s->lock);
  uint64_t rows = s->rows, now = kg_now_ns();
  const char *what = "starting a write";
  kg_storeagg *agg = &s->pending;
  size_t nshares = 0;
  kg_store_share *shares = kg_calloc(n ? n : 1, sizeof(*shares));
  kg_outcome *oc = kg_calloc(n ? n : 1, sizeof(*oc));
  bool *keep = kg_calloc(n ? n : 1, sizeof(*keep)), any = false;
  for (size_t i = 0; i < n; i++) {
    oc[i] = kg_storeagg_outcome(records[i]);
    keep[i] = oc[i] != KG_OUTCOME_EQUAL || kg_store_sample_equal(s, records[i]);
    any |= keep[i];
  }
  bool due = force_retention ||
             (s->pending_ns && now - s->pending_ns >= KG_STORE_AGG_NS);
  if (!any && !due) { /* the common case: sums in memory */
    for (size_t i = 0; i < n; i++) kg_storeagg_add(agg, records[i], oc[i], NULL, 0);
    if (n && !s->pending_ns) s->pending_ns = now;
    pthread_mutex_unlock(&s->lock);
    free(shares);
    free(oc);
    free(keep);
    return 0;
  }
  int rc = kg_step_done(s->st[KG_ST_BEGIN]);
  if (rc == SQLITE_OK) {
    what = "writing results";
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
      const kg_result *r = records[i];
      kg_outcome o = oc[i];
      if (!keep[i]) {
        kg_storeagg_add(agg, r, o, NULL, 0);
        continue;
      }
      rc = kg_store_result(s, r, o, agg);
      if (rc != SQLITE_OK) break;
      s->rows++;
      const char *ep = r->endpoint ? r->endpoint : "";
      size_t k = 0;
      while (k < nshares && (shares[k].equal != r->equal || strcmp(shares[k].ep, ep) != 0)) k++;
      if (k == nshares) shares[nshares++] = (kg_store_share){ep, r->equal};
    }
  }
  if (rc == SQLITE_OK) {
    what = "writing aggregates";
    rc = kg_store_write_agg(s, agg);
  }
  if (rc == SQLITE_OK) what = "applying retention";
  for (size_t k = 0; k < nshares && rc == SQLITE_OK; k++)
    rc = kg_store_trim_share(s, shares[k].ep, shares[k].equal,
                             shares[k].equal ? s->keep_equal : s->keep_differing);
  if (rc == SQLITE_OK) rc = kg_store_retain(s, force_retention);
  /* written, or lost with the batch (the failure is logged and counted) */
  kg_storeagg_free(agg);
  s->pending_ns = 0;
  free(shares);
  free(oc);
  free(keep);
  if (rc == SQLITE_OK) {
    what = "committing";
    rc = kg_step_done(s->st[KG_ST_COMMIT]);
  }
  if (rc != SQLITE_OK) {
    /* errmsg belongs to the failed step; log before ROLLBACK replaces it */
    kg_store_log_failure(s, rc, what);
    if (!sqlite3_get_autocommit(s->db)) kg_step_done(s->st[KG_ST_ROLLBACK]);
    s->rows = rows;
    s->last_maintain_ns = 0; /* re-count at the next batch */
  }
  pthread_mutex_unlock(&s->lock);
  return rc == SQLITE_OK ? 0 : -EIO;
}

int kg_store_write(kg_store *s, const kg_result *const *results, size_t n) {
  if (n == 0) return 0;
  return kg_store_txn(s, results, n, false);
}

int kg_store_maintain(kg_store *s) { return kg_store_txn(s, NULL, 0, true); }

/* Writes the pending sums once they are due, when no batch comes to do it
 * (traffic stopped): readers see every request within about a second. */
static void *kg_store_flusher(void *arg) {
  kg_store *s = arg;
  kg_thread_name("kg-store");
  pthread_mutex_lock(&s->lock);
  while (!s->closing) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    pthread_cond_timedwait(&s->flush_cond, &s->lock, &until);
    if (s->closing) break;
    bool due = s->pending_ns && kg_now_ns() - s->pending_ns >= KG_STORE_AGG_NS;
    pthread_mutex_unlock(&s->lock);
    if (due) kg_store_txn(s, NULL, 0, false);
    pthread_mutex_lock(&s->lock);
  }
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

/* --- the store as a sink (sink.h) ----------------------------------------------- */

static int kg_store_sink_open(const kg_config *cfg, void **state, char *err,
                              size_t errlen) {
  *state = NULL;
  if (cfg->store_path == NULL) return 0; /* store = false */
  kg_store *s = NULL;
  if (kg_store_open(cfg, &s, err, errlen) < 0) return -1;
  *state = s;
  return 0;
}

static int kg_store_sink_write(void *state, const kg_result *const *results, size_t n) {
  return kg_store_write(state, results, n);
}

static void kg_store_sink_close(void *state) { kg_store_close(state); }

const kg_sink_ops kg_store_sink = {
    .open = kg_store_sink_open,
    .write = kg_store_sink_write,
    .close = kg_store_sink_close,
};
