/* pgstore.c: the PostgreSQL store, a sink with a writer thread (see
 * pgstore.h). */
#include "results/pgstore.h"

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "common/common.h"
#include "common/log.h"
#include "results/difflog.h"
#include "results/pgrollup.h"
#include "results/store.h"
#include "results/storeagg.h"

#undef uthash_malloc
#undef uthash_free
#define uthash_malloc(sz) kg_malloc(sz)
#define uthash_free(ptr, sz) free(ptr)

#define KG_PG_SCHEMA_VERSION KG_PGSTORE_SCHEMA_VERSION
#define KG_PG_QUEUE_MAX 20000     /* results summed and waiting for the writer */
#define KG_PG_QUEUE_BYTES ((size_t)64 << 20) /* ... and the records they keep */
#define KG_PG_FLUSH_MS 2000       /* aggregates written this often */
#define KG_PG_RETAIN_MS 60000     /* retention applied this often */
#define KG_PG_KEEP_MINUTES 10     /* unwritten sums kept while the database is away */
#define KG_PG_NOISE_MS 2000       /* a fleet's noise evidence exchanged this often */
#define KG_PG_NOISE_CHUNK 1000    /* evidence rows per insert */
#define KG_PG_BACKOFF_MIN_MS 500
#define KG_PG_BACKOFF_MAX_MS 30000

/* The schema, created once per database under an advisory lock (every
 * instance of a fleet may start at once), in a transaction the caller
 * ends (kg_pgstore_schema_up). Every table starts its key with
 * the instance, so instances never write the same row; `part` tells apart
 * the processes of one instance over time (a restart in mid-minute writes
 * a row of its own instead of replacing the earlier process's). Readers
 * sum over parts. */
static const char kg_pgstore_schema[] =
    "BEGIN;"
    "SELECT pg_advisory_xact_lock(726311547);"
    "CREATE TABLE IF NOT EXISTS kagami_meta (key text PRIMARY KEY, value text NOT NULL);"
    "CREATE TABLE IF NOT EXISTS results ("
    " instance text NOT NULL, id text NOT NULL, ts double precision NOT NULL,"
    " endpoint text NOT NULL, outcome smallint NOT NULL, record text NOT NULL,"
    " PRIMARY KEY (instance, id));"
    "CREATE INDEX IF NOT EXISTS results_ts ON results (ts);"
    "CREATE INDEX IF NOT EXISTS results_endpoint_ts ON results (endpoint, ts);"
    "CREATE TABLE IF NOT EXISTS agg_requests ("
    " instance text NOT NULL, part text NOT NULL, endpoint text NOT NULL,"
    " minute bigint NOT NULL, compared bigint NOT NULL, differing bigint NOT NULL,"
    " errors bigint NOT NULL, first_ts double precision, last_ts double precision,"
    " PRIMARY KEY (instance, endpoint, minute, part));"
    "CREATE INDEX IF NOT EXISTS agg_requests_minute ON agg_requests (minute, endpoint);"
    "CREATE TABLE IF NOT EXISTS agg_backends ("
    " instance text NOT NULL, part text NOT NULL, endpoint text NOT NULL,"
    " minute bigint NOT NULL, backend text NOT NULL, role text NOT NULL,"
    " pos integer NOT NULL, errors bigint NOT NULL, latency bytea NOT NULL,"
    " PRIMARY KEY (instance, endpoint, minute, backend, part));"
    "CREATE INDEX IF NOT EXISTS agg_backends_minute ON agg_backends (minute, endpoint);"
    "CREATE TABLE IF NOT EXISTS agg_locations ("
    " instance text NOT NULL, part text NOT NULL, endpoint text NOT NULL,"
    " minute bigint NOT NULL, location text NOT NULL, count bigint NOT NULL,"
    " PRIMARY KEY (instance, endpoint, minute, location, part));"
    "CREATE INDEX IF NOT EXISTS agg_locations_minute ON agg_locations (minute, endpoint);"
    /* learned-noise evidence per instance (noise.h): location '' holds the
     * endpoint's pairs, any other the pairs that differed there. Added
     * within version 1: a table a reader of version 1 never looks at. */
    "CREATE TABLE IF NOT EXISTS noise ("
    " instance text NOT NULL, endpoint text NOT NULL, location text NOT NULL,"
    " n bigint NOT NULL, first_seen double precision, last_seen double precision,"
    " PRIMARY KEY (instance, endpoint, location));"
    /* version 2: the same sums per hour (pgrollup.h), which each process
     * keeps up to date for its own minute rows as it writes them */
    "CREATE TABLE IF NOT EXISTS agg_requests_hour ("
    " instance text NOT NULL, part text NOT NULL, endpoint text NOT NULL,"
    " hour bigint NOT NULL, compared bigint NOT NULL, differing bigint NOT NULL,"
    " errors bigint NOT NULL, first_ts double precision, last_ts double precision,"
    " PRIMARY KEY (instance, endpoint, hour, part));"
    "CREATE INDEX IF NOT EXISTS agg_requests_hour_hour ON agg_requests_hour (hour, endpoint);"
    "CREATE TABLE IF NOT EXISTS agg_backends_hour ("
    " instance text NOT NULL, part text NOT NULL, endpoint text NOT NULL,"
    " hour bigint NOT NULL, backend text NOT NULL, role text NOT NULL,"
    " pos integer NOT NULL, errors bigint NOT NULL, latency bytea NOT NULL,"
    " PRIMARY KEY (instance, endpoint, hour, backend, part));"
    "CREATE INDEX IF NOT EXISTS agg_backends_hour_hour ON agg_backends_hour (hour, endpoint);"
    "CREATE TABLE IF NOT EXISTS agg_locations_hour ("
    " instance text NOT NULL, part text NOT NULL, endpoint text NOT NULL,"
    " hour bigint NOT NULL, location text NOT NULL, count bigint NOT NULL,"
    " PRIMARY KEY (instance, endpoint, hour, location, part));"
    "CREATE INDEX IF NOT EXISTS agg_locations_hour_hour ON agg_locations_hour (hour, endpoint);"
    /* a new store starts at version 2; one of version 1 keeps its '1' here
     * and is migrated by kg_pgstore_schema_up in the same transaction */
    "INSERT INTO kagami_meta VALUES ('schema_version', '2') ON CONFLICT (key) DO NOTHING;";

enum { KG_PG_REQ, KG_PG_BE, KG_PG_LOC };

/* One aggregate key's sums: (endpoint, minute) for requests, plus a
 * backend or a location. Strings owned. */
typedef struct kg_pg_sum {
  int kind;
  char *endpoint, *name;
  const char *role;      /* KG_PG_BE: "master" or "shadow" (static) */
  int64_t minute, pos;
  uint64_t compared, differing, errors, count;
  double first_ts, last_ts;
  kg_buf blob;           /* KG_PG_BE: latency histogram (storeagg.h) */
} kg_pg_sum;

/* A result kept one by one, as its diff log record. */
typedef struct kg_pg_row {
  char *id, *endpoint, *record;
  double ts;
  int outcome;
} kg_pg_row;

/* What the sink's write hands to the writer: one batch, summed. */
typedef struct kg_pg_batch {
  struct kg_pg_batch *next;
  kg_pg_sum *sums;
  size_t nsums;
  kg_pg_row *rows;
  size_t nrows;
  size_t nresults;
  size_t bytes;          /* of the kept records */
} kg_pg_batch;

/* The writer's running sums, by key; dirty until written. */
typedef struct kg_pg_agg {
  char *key;             /* owned: kind, minute, endpoint, name */
  kg_pg_sum s;
  uint64_t written;      /* KG_PG_REQ: s.compared as last written */
  bool dirty;
  UT_hash_handle hh;
} kg_pg_agg;

typedef struct kg_pgstore {
  char *url, *masked, *instance;
  char part[48];
  uint64_t keep_equal_minute;
  double max_days;
  pthread_t thread;
  pthread_mutex_t lock;  /* the queue, the sampler, stopping */
  pthread_cond_t cond;
  kg_pg_batch *head, *tail;
  size_t queued;         /* results in the queue */
  size_t queued_bytes;   /* their kept records */
  bool stopping;
  kg_storeagg_sampler sampler; /* equal results kept, under lock */
  kg_noise *noise;       /* under lock: the run's learned-noise model, shared
                            with the fleet (NULL: not learning) */
  atomic_uint_fast64_t written;      /* results counted into the database */
  atomic_uint_fast64_t dropped;      /* results lost from the counts */
  atomic_uint_fast64_t rows_dropped; /* kept results not written */
  atomic_uint_fast64_t depth;        /* results queued (a gauge) */
  atomic_int connected;
  /* writer thread only */
  PGconn *conn;
  kg_pg_agg *aggs;       /* minute sums */
  kg_pg_agg *base;       /* hour base_hour's sums of its minutes evicted from
                            aggs, as written (kg_pgstore_hours) */
  int64_t base_hour;
  int64_t horizon;       /* minutes below it have left aggs (INT64_MIN: none) */
  bool rebase;           /* base is to be read back from the database */
  uint64_t next_try_ms, backoff_ms, last_flush_ms, last_retain_ms;
  uint64_t down_since_ms, dropped_at_down;
  bool ever_connected, down_logged;
  uint64_t last_noise_ms, noise_sent_seq;
  bool noise_published;  /* this process's evidence replaced the instance's */
} kg_pgstore;

static uint64_t kg_pgstore_ms(void) { return kg_now_ns() / 1000000u; }

/* --- masking ------------------------------------------------------------------ */

void kg_pgstore_mask(const char *url, kg_buf *out) {
  const char *auth = strstr(url, "://");
  const char *start = auth ? auth + 3 : url;
  size_t alen = strcspn(start, "/?#");
  const char *at = NULL;
  for (const char *p = start; p < start + alen; p++)
    if (*p == '@') at = p;
  const char *colon = at ? memchr(start, ':', (size_t)(at - start)) : NULL;
  if (colon) {
    kg_buf_append(out, url, (size_t)(colon + 1 - url));
    kg_buf_appends(out, "***");
    url = at;
  }
  /* password=... in the parameters */
  for (const char *p = url; *p;) {
    const char *pw = strstr(p, "password=");
    if (pw == NULL || (pw != url && pw[-1] != '?' && pw[-1] != '&')) {
      if (pw == NULL) {
        kg_buf_appends(out, p);
        return;
      }
      kg_buf_append(out, p, (size_t)(pw + 9 - p));
      p = pw + 9;
      continue;
    }
    kg_buf_append(out, p, (size_t)(pw + 9 - p));
    kg_buf_appends(out, "***");
    p = pw + 9 + strcspn(pw + 9, "&#");
  }
}

/* --- the sink's write: sum the batch, queue it (thread pool) ----------------- */

/* The locations result r differed at, as the SQLite store counts them
 * (the pattern of a difference, or where it is). Owned array of borrowed
 * strings. */
static size_t kg_pgstore_locs(const kg_result *r, const char ***out) {
  size_t n = 0, cap = 0;
  const char **v = NULL;
  for (size_t i = 0; i < r->n; i++) {
    if (strcmp(r->roles[i], "shadow") != 0) continue;
    const kg_pair_result *p = &r->pairs[i];
    size_t need = n + p->body.n + p->headers.n + 1;
    if (need > cap) {
      cap = need * 2;
      v = kg_realloc(v, cap * sizeof(*v));
    }
    if (p->status_differs) v[n++] = "status";
    for (size_t k = 0; k < p->body.n; k++)
      v[n++] = p->body.v[k].pattern ? p->body.v[k].pattern : p->body.v[k].where;
    for (size_t k = 0; k < p->headers.n; k++)
      v[n++] = p->headers.v[k].pattern ? p->headers.v[k].pattern : p->headers.v[k].where;
  }
  *out = v;
  return n;
}

static char *kg_pgstore_clean(const char *s) {
  kg_buf b = KG_BUF_INIT;
  kg_store_utf8_clean(s ? s : "", s ? strlen(s) : 0, &b);
  kg_buf_append(&b, "", 0);
  return b.data ? kg_buf_steal(&b, NULL) : kg_strdup("");
}

/* The batch's sums as owned rows. */
static void kg_pgstore_take_sums(kg_pg_batch *b, const kg_storeagg *a) {
  b->sums = kg_calloc(a->nreq + a->nbe + a->nloc + 1, sizeof(kg_pg_sum));
  for (size_t i = 0; i < a->nreq; i++) {
    const kg_agg_req *q = &a->req[i];
    b->sums[b->nsums++] = (kg_pg_sum){.kind = KG_PG_REQ, .endpoint = kg_pgstore_clean(q->endpoint),
                                      .name = kg_strdup(""), .minute = q->minute,
                                      .compared = q->compared, .differing = q->differing,
                                      .errors = q->errors, .first_ts = q->first_ts,
                                      .last_ts = q->last_ts};
  }
  for (size_t i = 0; i < a->nbe; i++) {
    kg_agg_be *e = &a->be[i];
    kg_pg_sum *x = &b->sums[b->nsums++];
    *x = (kg_pg_sum){.kind = KG_PG_BE, .endpoint = kg_pgstore_clean(e->endpoint),
                     .name = kg_pgstore_clean(e->backend), .role = e->role ? e->role : "shadow",
                     .minute = e->minute, .pos = e->pos, .errors = e->errors,
                     .blob = KG_BUF_INIT};
    kg_storeagg_values_encode(e->us, e->nus, &x->blob);
  }
  for (size_t i = 0; i < a->nloc; i++) {
    const kg_agg_loc *l = &a->loc[i];
    b->sums[b->nsums++] = (kg_pg_sum){.kind = KG_PG_LOC, .endpoint = kg_pgstore_clean(l->endpoint),
                                      .name = kg_pgstore_clean(l->loc), .minute = l->minute,
                                      .count = l->count};
  }
}

static void kg_pgstore_sum_free(kg_pg_sum *x) {
  free(x->endpoint);
  free(x->name);
  kg_buf_free(&x->blob);
}

static void kg_pgstore_batch_free(kg_pg_batch *b) {
  for (size_t i = 0; i < b->nsums; i++) kg_pgstore_sum_free(&b->sums[i]);
  for (size_t i = 0; i < b->nrows; i++) {
    free(b->rows[i].id);
    free(b->rows[i].endpoint);
    free(b->rows[i].record);
  }
  free(b->sums);
  free(b->rows);
  free(b);
}

static int kg_pgstore_write(void *state, const kg_result *const *results, size_t n) {
  kg_pgstore *s = state;
  if (n == 0) return 0;
  pthread_mutex_lock(&s->lock);
  bool full = s->queued + n > KG_PG_QUEUE_MAX || s->queued_bytes > KG_PG_QUEUE_BYTES;
  pthread_mutex_unlock(&s->lock);
  if (full) { /* the database is slow: drop and count, never wait */
    s->dropped += n;
    return 0;
  }
  kg_pg_batch *b = kg_calloc(1, sizeof(*b));
  b->nresults = n;
  b->rows = kg_calloc(n, sizeof(kg_pg_row));
  kg_storeagg agg = KG_STOREAGG_INIT;
  kg_buf rec = KG_BUF_INIT;
  for (size_t i = 0; i < n; i++) {
    const kg_result *r = results[i];
    kg_outcome o = kg_storeagg_outcome(r);
    const char **locs = NULL;
    size_t nlocs = o == KG_OUTCOME_DIFFERING ? kg_pgstore_locs(r, &locs) : 0;
    kg_storeagg_add(&agg, r, o, locs, nlocs);
    free(locs);
    bool keep = o != KG_OUTCOME_EQUAL;
    if (!keep) {
      pthread_mutex_lock(&s->lock);
      keep = kg_storeagg_sample(&s->sampler, r, s->keep_equal_minute);
      pthread_mutex_unlock(&s->lock);
    }
    if (!keep) continue;
    kg_buf_reset(&rec);
    kg_result_format(r, &rec);
    while (rec.len && rec.data[rec.len - 1] == '\n') rec.len--;
    kg_buf_append(&rec, "", 0);
    kg_pg_row *row = &b->rows[b->nrows++];
    row->id = kg_strdup(r->id);
    row->endpoint = kg_pgstore_clean(r->endpoint);
    row->record = kg_pgstore_clean(rec.data);
    b->bytes += strlen(row->record);
    row->ts = (double)r->ts.tv_sec + (double)(r->ts.tv_nsec / 1000000) / 1e3;
    row->outcome = (int)o;
  }
  kg_buf_free(&rec);
  kg_pgstore_take_sums(b, &agg);
  kg_storeagg_free(&agg);
  pthread_mutex_lock(&s->lock);
  if (s->tail) s->tail->next = b;
  else s->head = b;
  s->tail = b;
  s->queued += n;
  s->queued_bytes += b->bytes;
  s->depth = s->queued;
  pthread_cond_signal(&s->cond);
  pthread_mutex_unlock(&s->lock);
  return 0;
}

/* --- the writer thread --------------------------------------------------------- */

/* A failed call's message, one line. */
static void kg_pgstore_why(PGconn *c, char *out, size_t len) {
  snprintf(out, len, "%s", c ? PQerrorMessage(c) : "out of memory");
  out[strcspn(out, "\n")] = '\0';
  if (out[0] == '\0') snprintf(out, len, "unknown error");
}

static bool kg_pgstore_ok(PGresult *r) {
  ExecStatusType st = PQresultStatus(r);
  bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
  PQclear(r);
  return ok;
}

static bool kg_pgstore_exec(kg_pgstore *s, const char *sql) {
  return kg_pgstore_ok(PQexec(s->conn, sql));
}

/* sql with n text parameters p (lens and fmts NULL, or for binary ones). */
static bool kg_pgstore_run_sql(kg_pgstore *s, const char *sql, int n, const char *const *p,
                               const int *lens, const int *fmts) {
  return kg_pgstore_ok(PQexecParams(s->conn, sql, n, NULL, p, lens, fmts, 0));
}

static void kg_pgstore_lost(kg_pgstore *s) {
  char why[256];
  kg_pgstore_why(s->conn, why, sizeof(why));
  PQfinish(s->conn);
  s->conn = NULL;
  s->connected = 0;
  s->down_since_ms = kg_pgstore_ms();
  s->dropped_at_down = s->dropped + s->rows_dropped;
  s->backoff_ms = KG_PG_BACKOFF_MIN_MS;
  s->next_try_ms = s->down_since_ms + s->backoff_ms;
  s->down_logged = true;
  kg_log_warn("store %s: connection lost (%s); counts are kept in memory (%d minutes) and "
              "results dropped until it is back", s->masked, why, KG_PG_KEEP_MINUTES);
}

/* Creates the schema, or upgrades it from version 1 (pgrollup.h), in one
 * transaction under the schema's advisory lock: instances starting at
 * once wait for the first, which migrates, and then find version 2. A
 * failed migration rolls back and leaves the store at version 1 (the
 * connection is then retried like any other failure). */
static bool kg_pgstore_schema_up(kg_pgstore *s, char *why, size_t whylen) {
  if (!kg_pgstore_exec(s, kg_pgstore_schema)) return false;
  PGresult *r = PQexec(s->conn, "SELECT value FROM kagami_meta WHERE key = 'schema_version'");
  long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
               ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : -1;
  PQclear(r);
  bool ok = true;
  if (v == 1) {
    uint64_t t0 = kg_pgstore_ms(), rows = 0, bad = 0;
    char err[160] = "";
    ok = kg_pgrollup_migrate(s->conn, &rows, &bad, err, sizeof(err)) == 0 &&
         kg_pgstore_exec(s, "UPDATE kagami_meta SET value = '2' WHERE key = 'schema_version'");
    if (!ok) {
      if (err[0] == '\0') snprintf(err, sizeof(err), "%s", PQerrorMessage(s->conn));
      err[strcspn(err, "\n")] = '\0';
      snprintf(why, whylen, "upgrading the schema from version 1: %s", err);
    } else {
      kg_log_info("store %s: schema upgraded from version 1 to 2, hour rows built from %llu "
                  "minute histograms (%llu of them damaged, left out) in %.1f s", s->masked,
                  (unsigned long long)rows, (unsigned long long)bad,
                  (double)(kg_pgstore_ms() - t0) / 1e3);
    }
  } else if (v != KG_PG_SCHEMA_VERSION) {
    snprintf(why, whylen, "schema version %ld, this kagami knows %d", v, KG_PG_SCHEMA_VERSION);
    ok = false;
  }
  if (ok) return kg_pgstore_exec(s, "COMMIT");
  kg_pgstore_exec(s, "ROLLBACK");
  return false;
}

/* Connects and makes sure the schema is there. */
static void kg_pgstore_connect(kg_pgstore *s) {
  const char *const keys[] = {"dbname", "connect_timeout", "application_name", NULL};
  const char *const vals[] = {s->url, "5", "kagami", NULL};
  char why[256] = "";
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  bool ok = c && PQstatus(c) == CONNECTION_OK;
  if (ok) {
    s->conn = c;
    ok = kg_pgstore_schema_up(s, why, sizeof(why));
    if (!ok && why[0] == '\0') kg_pgstore_why(c, why, sizeof(why));
    if (!ok) s->conn = NULL;
  } else {
    kg_pgstore_why(c, why, sizeof(why));
  }
  uint64_t now = kg_pgstore_ms();
  if (!ok) {
    PQfinish(c);
    if (!s->down_logged) {
      kg_log_warn("store %s: cannot connect (%s); retrying, counts kept in memory meanwhile",
                  s->masked, why);
      s->down_logged = true;
      s->down_since_ms = now;
      s->dropped_at_down = s->dropped + s->rows_dropped;
    }
    s->backoff_ms = s->backoff_ms ? KG_MIN(s->backoff_ms * 2, (uint64_t)KG_PG_BACKOFF_MAX_MS)
                                  : KG_PG_BACKOFF_MIN_MS;
    s->next_try_ms = now + s->backoff_ms;
    return;
  }
  s->connected = 1;
  if (s->down_logged && s->ever_connected)
    kg_log_info("store %s: back after %.0f s, %llu results dropped meanwhile", s->masked,
                (double)(now - s->down_since_ms) / 1e3,
                (unsigned long long)(s->dropped + s->rows_dropped - s->dropped_at_down));
  else
    kg_log_info("store %s: connected, writing as instance %s", s->masked, s->instance);
  s->ever_connected = true;
  s->down_logged = false;
  s->backoff_ms = 0;
  /* everything in memory goes out again on this connection, with its hour
   * rows, over the evicted minutes' sums as the database has them */
  for (kg_pg_agg *a = s->aggs; a; a = a->hh.next) a->dirty = true;
  s->rebase = true;
}

/* The hash key of a sum: its kind, minute or hour (slot), endpoint and
 * name. Owned; its length in *len. */
static char *kg_pgstore_key(const kg_pg_sum *x, int64_t slot, size_t *len) {
  size_t kl = (size_t)snprintf(NULL, 0, "%d\x1f%lld\x1f%s\x1f%s", x->kind, (long long)slot,
                               x->endpoint, x->name);
  char *key = kg_malloc(kl + 1);
  snprintf(key, kl + 1, "%d\x1f%lld\x1f%s\x1f%s", x->kind, (long long)slot, x->endpoint,
           x->name);
  *len = kl;
  return key;
}

/* Adds x into t (same key). */
static void kg_pgstore_sum_add(kg_pg_sum *t, const kg_pg_sum *x) {
  if (t->compared == 0 || x->first_ts < t->first_ts) t->first_ts = x->first_ts;
  if (x->last_ts > t->last_ts) t->last_ts = x->last_ts;
  t->compared += x->compared;
  t->differing += x->differing;
  t->errors += x->errors;
  t->count += x->count;
  if (x->pos < t->pos) t->pos = x->pos;
  if (x->kind == KG_PG_BE) {
    if (x->role && strcmp(x->role, "master") == 0) t->role = "master";
    kg_buf merged = KG_BUF_INIT;
    if (kg_storeagg_blob_merge(t->blob.data, t->blob.len, x->blob.data, x->blob.len,
                               &merged) == 0) {
      kg_buf_free(&t->blob);
      t->blob = merged;
    } else {
      kg_buf_free(&merged);
    }
  }
}

/* The entry of table for x's key at slot; when there is none, a new one
 * that takes x's strings and blob (take) or starts empty. */
static kg_pg_agg *kg_pgstore_entry(kg_pg_agg **table, kg_pg_sum *x, int64_t slot, bool take,
                                   bool *created) {
  size_t kl;
  char *key = kg_pgstore_key(x, slot, &kl);
  kg_pg_agg *a = NULL;
  HASH_FIND(hh, *table, key, kl, a);
  *created = a == NULL;
  if (a != NULL) {
    free(key);
    return a;
  }
  a = kg_calloc(1, sizeof(*a));
  a->key = key;
  if (take) {
    a->s = *x;
    *x = (kg_pg_sum){0};
  } else {
    a->s = (kg_pg_sum){.kind = x->kind, .endpoint = kg_strdup(x->endpoint),
                       .name = kg_strdup(x->name), .role = x->role ? "shadow" : NULL,
                       .pos = INT64_MAX, .blob = KG_BUF_INIT};
  }
  a->s.minute = slot;
  HASH_ADD_KEYPTR(hh, *table, a->key, kl, a);
  return a;
}

/* Adds one batch sum into the running sums. A sum of a minute already
 * evicted (a result that took over KG_PG_KEEP_MINUTES) is dropped: its
 * row would replace the minute's written one with a part of it. */
static void kg_pgstore_merge(kg_pgstore *s, kg_pg_sum *x) {
  if (x->minute < s->horizon) {
    if (x->kind == KG_PG_REQ) s->dropped += x->compared;
    return;
  }
  bool created;
  kg_pg_agg *a = kg_pgstore_entry(&s->aggs, x, x->minute, true, &created);
  if (!created) kg_pgstore_sum_add(&a->s, x);
  a->dirty = true;
}

/* --- hour rows (pgrollup.h) ---------------------------------------------------------- */

/* Frees a table of sums. */
static void kg_pgstore_table_free(kg_pg_agg **table) {
  kg_pg_agg *a, *tmp;
  HASH_ITER(hh, *table, a, tmp) {
    HASH_DEL(*table, a);
    kg_pgstore_sum_free(&a->s);
    free(a->key);
    free(a);
  }
}

/* The hour rows this flush writes: for every key with a minute changed
 * since the last flush, its hour's sum over this process's minute rows,
 * which are the minutes in memory (written in the same transaction) plus
 * those evicted (s->base, as they were written). The hour rows and the
 * minute rows then always agree, in whichever transaction last
 * committed. */
static kg_pg_agg *kg_pgstore_hours(kg_pgstore *s) {
  kg_pg_agg *hours = NULL;
  bool created;
  for (kg_pg_agg *a = s->aggs; a; a = a->hh.next)
    if (a->dirty) kg_pgstore_entry(&hours, &a->s, kg_pgrollup_hour(a->s.minute), false, &created);
  if (hours == NULL) return NULL;
  for (kg_pg_agg *a = s->aggs; a; a = a->hh.next) {
    size_t kl;
    char *key = kg_pgstore_key(&a->s, kg_pgrollup_hour(a->s.minute), &kl);
    kg_pg_agg *h = NULL;
    HASH_FIND(hh, hours, key, kl, h);
    free(key);
    if (h) kg_pgstore_sum_add(&h->s, &a->s);
  }
  for (kg_pg_agg *b = s->base; b; b = b->hh.next) {
    kg_pg_agg *h = NULL;
    HASH_FIND(hh, hours, b->key, strlen(b->key), h);
    if (h) kg_pgstore_sum_add(&h->s, &b->s);
  }
  return hours;
}

/* A minute sum leaving memory: one of base_hour goes into s->base as it
 * was written; one with unwritten counts makes s->base unknown (its
 * written row is an older sum), to be read back from the database. */
static void kg_pgstore_to_base(kg_pgstore *s, kg_pg_agg *a) {
  if (kg_pgrollup_hour(a->s.minute) != s->base_hour) return;
  if (a->dirty) {
    s->rebase = true;
    return;
  }
  bool created;
  kg_pg_agg *b = kg_pgstore_entry(&s->base, &a->s, s->base_hour, false, &created);
  kg_pgstore_sum_add(&b->s, &a->s);
}

/* Text value c of row i of r as a number. */
static uint64_t kg_pgstore_u64(const PGresult *r, int i, int c) {
  return strtoull(PQgetvalue(r, i, c), NULL, 10);
}

/* Reads s->base back from this process's minute rows of base_hour below
 * the horizon (after a reconnect, or when counts of it were dropped): so
 * the hour rows stay the sums of the minute rows whatever was lost. */
static bool kg_pgstore_rebase(kg_pgstore *s) {
  kg_pgstore_table_free(&s->base);
  if (s->horizon == INT64_MIN) return true;
  static const char *const sql[] = {
      "SELECT endpoint, '', compared, differing, errors, first_ts, last_ts FROM agg_requests"
      " WHERE instance = $1 AND part = $2 AND minute >= $3 AND minute < $4",
      "SELECT endpoint, backend, role, pos, errors, latency FROM agg_backends"
      " WHERE instance = $1 AND part = $2 AND minute >= $3 AND minute < $4",
      "SELECT endpoint, location, count FROM agg_locations"
      " WHERE instance = $1 AND part = $2 AND minute >= $3 AND minute < $4",
  };
  char from[24], upto[24];
  snprintf(from, sizeof(from), "%lld", (long long)s->base_hour * 60);
  snprintf(upto, sizeof(upto), "%lld", (long long)s->horizon);
  const char *p[4] = {s->instance, s->part, from, upto};
  for (int kind = KG_PG_REQ; kind <= KG_PG_LOC; kind++) {
    PGresult *r = PQexecParams(s->conn, sql[kind], 4, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      PQclear(r);
      return false;
    }
    for (int i = 0; i < PQntuples(r); i++) {
      kg_pg_sum x = {.kind = kind, .endpoint = PQgetvalue(r, i, 0), .name = PQgetvalue(r, i, 1),
                     .blob = KG_BUF_INIT};
      if (kind == KG_PG_REQ) {
        x.compared = kg_pgstore_u64(r, i, 2);
        x.differing = kg_pgstore_u64(r, i, 3);
        x.errors = kg_pgstore_u64(r, i, 4);
        x.first_ts = strtod(PQgetvalue(r, i, 5), NULL);
        x.last_ts = strtod(PQgetvalue(r, i, 6), NULL);
      } else if (kind == KG_PG_BE) {
        x.role = strcmp(PQgetvalue(r, i, 2), "master") == 0 ? "master" : "shadow";
        x.pos = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        x.errors = kg_pgstore_u64(r, i, 4);
        size_t n = 0;
        unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 5), &n);
        if (b) kg_buf_append(&x.blob, b, n); /* a damaged one merges as nothing */
        PQfreemem(b);
      } else {
        x.count = kg_pgstore_u64(r, i, 2);
      }
      bool created;
      kg_pg_agg *b = kg_pgstore_entry(&s->base, &x, s->base_hour, false, &created);
      kg_pgstore_sum_add(&b->s, &x);
      kg_buf_free(&x.blob);
    }
    PQclear(r);
  }
  return true;
}

static bool kg_pgstore_insert_rows(kg_pgstore *s, const kg_pg_batch *b) {
  for (size_t i = 0; i < b->nrows; i++) {
    const kg_pg_row *r = &b->rows[i];
    char ts[32], oc[8];
    snprintf(ts, sizeof(ts), "%.3f", r->ts);
    snprintf(oc, sizeof(oc), "%d", r->outcome);
    const char *p[6] = {s->instance, r->id, ts, r->endpoint, oc, r->record};
    if (!kg_pgstore_run_sql(s,
                            "INSERT INTO results (instance, id, ts, endpoint, outcome, record) "
                            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (instance, id) DO NOTHING",
                            6, p, NULL, NULL))
      return false;
  }
  return true;
}

#define KG_PG_REQ_SET                                                                 \
  "compared = EXCLUDED.compared, differing = EXCLUDED.differing, errors = EXCLUDED.errors, " \
  "first_ts = EXCLUDED.first_ts, last_ts = EXCLUDED.last_ts"
#define KG_PG_BE_SET \
  "errors = EXCLUDED.errors, latency = EXCLUDED.latency, pos = EXCLUDED.pos, role = EXCLUDED.role"

/* One aggregate row, replacing what this process wrote for its key: a
 * minute row, or (hour) an hour row, whose x->minute is the hour. */
static bool kg_pgstore_put_agg(kg_pgstore *s, const kg_pg_sum *x, bool hour) {
  char m[24], a1[24], a2[24], a3[24], f1[40], f2[40];
  snprintf(m, sizeof(m), "%lld", (long long)x->minute);
  if (x->kind == KG_PG_REQ) {
    snprintf(a1, sizeof(a1), "%llu", (unsigned long long)x->compared);
    snprintf(a2, sizeof(a2), "%llu", (unsigned long long)x->differing);
    snprintf(a3, sizeof(a3), "%llu", (unsigned long long)x->errors);
    snprintf(f1, sizeof(f1), "%.3f", x->first_ts);
    snprintf(f2, sizeof(f2), "%.3f", x->last_ts);
    const char *p[9] = {s->instance, s->part, x->endpoint, m, a1, a2, a3, f1, f2};
    return kg_pgstore_run_sql(s,
                              hour ? "INSERT INTO agg_requests_hour VALUES ($1, $2, $3, $4, $5, "
                                     "$6, $7, $8, $9) ON CONFLICT (instance, endpoint, hour, part) "
                                     "DO UPDATE SET " KG_PG_REQ_SET
                                   : "INSERT INTO agg_requests VALUES ($1, $2, $3, $4, $5, $6, "
                                     "$7, $8, $9) ON CONFLICT (instance, endpoint, minute, part) "
                                     "DO UPDATE SET " KG_PG_REQ_SET,
                              9, p, NULL, NULL);
  }
  if (x->kind == KG_PG_BE) {
    snprintf(a1, sizeof(a1), "%lld", (long long)x->pos);
    snprintf(a2, sizeof(a2), "%llu", (unsigned long long)x->errors);
    const char *p[9] = {s->instance, s->part, x->endpoint, m, x->name, x->role, a1, a2,
                        x->blob.data ? x->blob.data : ""};
    int lens[9] = {0, 0, 0, 0, 0, 0, 0, 0, (int)x->blob.len};
    int fmts[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1};
    return kg_pgstore_run_sql(s,
                              hour ? "INSERT INTO agg_backends_hour VALUES ($1, $2, $3, $4, $5, "
                                     "$6, $7, $8, $9) ON CONFLICT (instance, endpoint, hour, "
                                     "backend, part) DO UPDATE SET " KG_PG_BE_SET
                                   : "INSERT INTO agg_backends VALUES ($1, $2, $3, $4, $5, $6, "
                                     "$7, $8, $9) ON CONFLICT (instance, endpoint, minute, "
                                     "backend, part) DO UPDATE SET " KG_PG_BE_SET,
                              9, p, lens, fmts);
  }
  snprintf(a1, sizeof(a1), "%llu", (unsigned long long)x->count);
  const char *p[6] = {s->instance, s->part, x->endpoint, m, x->name, a1};
  return kg_pgstore_run_sql(s,
                            hour ? "INSERT INTO agg_locations_hour VALUES ($1, $2, $3, $4, $5, $6)"
                                   " ON CONFLICT (instance, endpoint, hour, location, part) DO "
                                   "UPDATE SET count = EXCLUDED.count"
                                 : "INSERT INTO agg_locations VALUES ($1, $2, $3, $4, $5, $6)"
                                   " ON CONFLICT (instance, endpoint, minute, location, part) DO "
                                   "UPDATE SET count = EXCLUDED.count",
                            6, p, NULL, NULL);
}

/* Writes every dirty sum, and the hour rows they are in, in one
 * transaction. */
static bool kg_pgstore_flush(kg_pgstore *s) {
  if (s->rebase && !kg_pgstore_rebase(s)) return false;
  s->rebase = false;
  kg_pg_agg *hours = kg_pgstore_hours(s);
  bool ok = kg_pgstore_exec(s, "BEGIN");
  for (kg_pg_agg *a = s->aggs; ok && a; a = a->hh.next)
    if (a->dirty) ok = kg_pgstore_put_agg(s, &a->s, false);
  for (kg_pg_agg *h = hours; ok && h; h = h->hh.next) ok = kg_pgstore_put_agg(s, &h->s, true);
  kg_pgstore_table_free(&hours);
  if (!ok) {
    kg_pgstore_exec(s, "ROLLBACK");
    return false;
  }
  if (!kg_pgstore_exec(s, "COMMIT")) return false;
  for (kg_pg_agg *a = s->aggs; a; a = a->hh.next) {
    if (a->dirty && a->s.kind == KG_PG_REQ) {
      s->written += a->s.compared - a->written;
      a->written = a->s.compared;
    }
    a->dirty = false;
  }
  return true;
}

/* --- a fleet's noise model --------------------------------------------------------- */

/* Appends v to a PostgreSQL array literal being built in a ("{" first). */
static void kg_pgstore_array_add(kg_buf *a, const char *v) {
  kg_buf_appends(a, a->len > 1 ? ",\"" : "\"");
  for (const char *p = v; *p; p++) {
    if (*p == '"' || *p == '\\') kg_buf_append(a, "\\", 1);
    kg_buf_append(a, p, 1);
  }
  kg_buf_appends(a, "\"");
}

/* Whether s is valid UTF-8 as it is: only such names are published, so
 * that two locations never merge into one after cleaning (which could let
 * one's evidence hide the other's differences). */
static bool kg_pgstore_utf8_exact(const char *s) {
  kg_buf b = KG_BUF_INIT;
  size_t n = strlen(s);
  kg_store_utf8_clean(s, n, &b);
  bool same = b.len == n && (n == 0 || memcmp(b.data, s, n) == 0);
  kg_buf_free(&b);
  return same;
}

/* Replaces this instance's published evidence with the model's local
 * rows, in one transaction (the first time in a process, the instance's
 * earlier rows go: its evidence starts again with the process, as the
 * local model does). */
static bool kg_pgstore_noise_publish(kg_pgstore *s, kg_noise *noise) {
  kg_noise_row *rows;
  size_t nrows;
  uint64_t seq = kg_noise_local_rows(noise, &rows, &nrows);
  bool ok = kg_pgstore_exec(s, "BEGIN");
  if (ok && !s->noise_published) {
    const char *p[1] = {s->instance};
    ok = kg_pgstore_run_sql(s, "DELETE FROM noise WHERE instance = $1", 1, p, NULL, NULL);
  }
  kg_buf eps = KG_BUF_INIT, locs = KG_BUF_INIT, ns = KG_BUF_INIT, fs = KG_BUF_INIT,
         ls = KG_BUF_INIT;
  for (size_t i = 0; ok && i < nrows;) {
    kg_buf *cols[5] = {&eps, &locs, &ns, &fs, &ls};
    for (size_t c = 0; c < 5; c++) {
      kg_buf_reset(cols[c]);
      kg_buf_appends(cols[c], "{");
    }
    for (size_t k = 0; k < KG_PG_NOISE_CHUNK && i < nrows; i++) {
      const kg_noise_row *r = &rows[i];
      if (!kg_pgstore_utf8_exact(r->endpoint) ||
          (r->location && !kg_pgstore_utf8_exact(r->location)))
        continue;
      char num[40];
      kg_pgstore_array_add(&eps, r->endpoint);
      kg_pgstore_array_add(&locs, r->location ? r->location : "");
      snprintf(num, sizeof(num), "%llu", (unsigned long long)r->count);
      kg_pgstore_array_add(&ns, num);
      snprintf(num, sizeof(num), "%.3f", r->first_seen);
      kg_pgstore_array_add(&fs, num);
      snprintf(num, sizeof(num), "%.3f", r->last_seen);
      kg_pgstore_array_add(&ls, num);
      k++;
    }
    for (size_t c = 0; c < 5; c++) kg_buf_appends(cols[c], "}");
    const char *p[6] = {s->instance, eps.data, locs.data, ns.data, fs.data, ls.data};
    ok = kg_pgstore_run_sql(
        s,
        "INSERT INTO noise SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[], "
        "$5::float8[], $6::float8[]) ON CONFLICT (instance, endpoint, location) DO UPDATE "
        "SET n = EXCLUDED.n, first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen",
        6, p, NULL, NULL);
  }
  kg_buf_free(&eps);
  kg_buf_free(&locs);
  kg_buf_free(&ns);
  kg_buf_free(&fs);
  kg_buf_free(&ls);
  kg_noise_rows_free(rows, nrows);
  if (ok) ok = kg_pgstore_exec(s, "COMMIT");
  else kg_pgstore_exec(s, "ROLLBACK");
  if (ok) {
    s->noise_published = true;
    s->noise_sent_seq = seq;
  }
  return ok;
}

/* Reads the other instances' evidence, summed, into the model. Bounded by
 * the model's caps (noise.h); beyond them nothing more is learned, as
 * locally. */
static bool kg_pgstore_noise_fetch(kg_pgstore *s, kg_noise *noise) {
  char limit[32];
  snprintf(limit, sizeof(limit), "%d", KG_NOISE_MAX_TOTAL_PATTERNS + KG_NOISE_MAX_ENDPOINTS);
  const char *p[2] = {s->instance, limit};
  PGresult *r = PQexecParams(s->conn,
                             "SELECT endpoint, location, sum(n), min(first_seen), max(last_seen) "
                             "FROM noise WHERE instance <> $1 GROUP BY 1, 2 LIMIT $2",
                             2, NULL, p, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    PQclear(r);
    return false;
  }
  int n = PQntuples(r);
  kg_noise_row *rows = kg_calloc(n > 0 ? (size_t)n : 1, sizeof(*rows));
  for (int i = 0; i < n; i++) {
    const char *loc = PQgetvalue(r, i, 1);
    rows[i] = (kg_noise_row){.endpoint = kg_strdup(PQgetvalue(r, i, 0)),
                             .location = loc[0] ? kg_strdup(loc) : NULL,
                             .count = strtoull(PQgetvalue(r, i, 2), NULL, 10),
                             .first_seen = strtod(PQgetvalue(r, i, 3), NULL),
                             .last_seen = strtod(PQgetvalue(r, i, 4), NULL)};
  }
  PQclear(r);
  kg_noise_set_fleet(noise, rows, (size_t)n);
  kg_noise_rows_free(rows, (size_t)n);
  return true;
}

/* Publishes what changed since the last time, then reads the fleet's. */
static bool kg_pgstore_noise_sync(kg_pgstore *s, kg_noise *noise, bool fetch) {
  if ((!s->noise_published || kg_noise_seq(noise) != s->noise_sent_seq) &&
      !kg_pgstore_noise_publish(s, noise))
    return false;
  return !fetch || kg_pgstore_noise_fetch(s, noise);
}

/* Frees one running sum; unwritten counts are lost, and counted. */
static void kg_pgstore_agg_drop(kg_pgstore *s, kg_pg_agg *a) {
  if (a->dirty && a->s.kind == KG_PG_REQ) s->dropped += a->s.compared - a->written;
  HASH_DEL(s->aggs, a);
  kg_pgstore_sum_free(&a->s);
  free(a->key);
  free(a);
}

/* Forgets the sums of minutes over KG_PG_KEEP_MINUTES ago, written or
 * not (unwritten ones, while the database is away, count as dropped).
 * Rows are replaced with the process's whole sums, so a minute must stay
 * in memory as long as late results may still arrive for it: a result
 * counts in the minute its request arrived, and a request lasts at most
 * a few backend timeouts. */
static void kg_pgstore_evict(kg_pgstore *s) {
  int64_t horizon = (int64_t)(time(NULL) / 60) - KG_PG_KEEP_MINUTES;
  if (horizon <= s->horizon) return;
  s->horizon = horizon;
  if (kg_pgrollup_hour(horizon) != s->base_hour) {
    /* the hours before are wholly written (or lost) */
    kg_pgstore_table_free(&s->base);
    s->base_hour = kg_pgrollup_hour(horizon);
  }
  kg_pg_agg *a, *tmp;
  HASH_ITER(hh, s->aggs, a, tmp) {
    if (a->s.minute < horizon) {
      kg_pgstore_to_base(s, a);
      kg_pgstore_agg_drop(s, a);
    }
  }
}

/* Deletes this instance's rows older than store_max_days. */
static bool kg_pgstore_retain(kg_pgstore *s) {
  static const char *const sql[] = {
      "DELETE FROM results WHERE instance = $1 AND ts < $2",
      "DELETE FROM agg_requests WHERE instance = $1 AND minute < $2",
      "DELETE FROM agg_backends WHERE instance = $1 AND minute < $2",
      "DELETE FROM agg_locations WHERE instance = $1 AND minute < $2",
      /* hours whose every minute is gone */
      "DELETE FROM agg_requests_hour WHERE instance = $1 AND hour < $2",
      "DELETE FROM agg_backends_hour WHERE instance = $1 AND hour < $2",
      "DELETE FROM agg_locations_hour WHERE instance = $1 AND hour < $2",
  };
  char cut[40], cutm[32], cuth[32];
  double t = (double)time(NULL) - s->max_days * 86400;
  snprintf(cut, sizeof(cut), "%.3f", t);
  snprintf(cutm, sizeof(cutm), "%lld", (long long)(t / 60));
  snprintf(cuth, sizeof(cuth), "%lld", (long long)kg_pgrollup_hour((int64_t)(t / 60)));
  for (size_t i = 0; i < KG_ARRAY_SIZE(sql); i++) {
    const char *p[2] = {s->instance, i == 0 ? cut : i < 4 ? cutm : cuth};
    if (!kg_pgstore_run_sql(s, sql[i], 2, p, NULL, NULL)) return false;
  }
  return true;
}

/* Takes the queued batches: counts merged into the running sums (also
 * while the database is away), kept results written (or dropped). */
static void kg_pgstore_apply(kg_pgstore *s, kg_pg_batch *list) {
  bool rows_ok = s->conn != NULL && kg_pgstore_exec(s, "BEGIN");
  for (kg_pg_batch *b = list; b; b = b->next) {
    for (size_t i = 0; i < b->nsums; i++) kg_pgstore_merge(s, &b->sums[i]);
    if (rows_ok && !kg_pgstore_insert_rows(s, b)) rows_ok = false;
    if (!rows_ok) s->rows_dropped += b->nrows;
  }
  if (rows_ok && !kg_pgstore_exec(s, "COMMIT")) rows_ok = false;
  if (s->conn && !rows_ok) kg_pgstore_lost(s);
}

static void *kg_pgstore_run(void *arg) {
  kg_pgstore *s = arg;
  kg_thread_name("kg-pgstore");
  for (;;) {
    pthread_mutex_lock(&s->lock);
    if (s->head == NULL && !s->stopping) {
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_nsec += 500 * 1000000L;
      if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&s->cond, &s->lock, &until);
    }
    kg_pg_batch *list = s->head;
    kg_noise *noise = s->noise;
    s->head = s->tail = NULL;
    s->queued = 0;
    s->queued_bytes = 0;
    s->depth = 0;
    bool stopping = s->stopping;
    pthread_mutex_unlock(&s->lock);

    uint64_t now = kg_pgstore_ms();
    if (s->conn == NULL && (now >= s->next_try_ms || stopping)) kg_pgstore_connect(s);
    kg_pgstore_apply(s, list);
    while (list) {
      kg_pg_batch *next = list->next;
      kg_pgstore_batch_free(list);
      list = next;
    }
    if (s->conn && (stopping || now - s->last_flush_ms >= KG_PG_FLUSH_MS)) {
      if (kg_pgstore_flush(s)) s->last_flush_ms = now;
      else kg_pgstore_lost(s);
    }
    if (s->conn && noise && (stopping || now - s->last_noise_ms >= KG_PG_NOISE_MS)) {
      if (kg_pgstore_noise_sync(s, noise, !stopping)) s->last_noise_ms = now;
      else kg_pgstore_lost(s);
    }
    if (s->conn && now - s->last_retain_ms >= KG_PG_RETAIN_MS) {
      if (kg_pgstore_retain(s)) s->last_retain_ms = now;
      else kg_pgstore_lost(s);
    }
    kg_pgstore_evict(s);
    if (stopping) break;
  }
  /* what could not be written at the end is lost */
  kg_pg_agg *a, *tmp;
  HASH_ITER(hh, s->aggs, a, tmp) kg_pgstore_agg_drop(s, a);
  kg_pgstore_table_free(&s->base);
  return NULL;
}

/* --- the sink ---------------------------------------------------------------------- */

/* Frees s itself (the writer has stopped or never started). */
static void kg_pgstore_free(kg_pgstore *s) {
  pthread_cond_destroy(&s->cond);
  pthread_mutex_destroy(&s->lock);
  free(s->url);
  free(s->masked);
  free(s->instance);
  free(s);
}

static int kg_pgstore_open(const kg_config *cfg, void **state, char *err, size_t errlen) {
  *state = NULL;
  if (cfg->store_url == NULL) return 0;
  kg_pgstore *s = kg_calloc(1, sizeof(*s));
  s->url = kg_strdup(cfg->store_url);
  kg_buf m = KG_BUF_INIT;
  kg_pgstore_mask(cfg->store_url, &m);
  s->masked = kg_buf_steal(&m, NULL);
  s->instance = kg_strdup(cfg->instance ? cfg->instance : "kagami");
  snprintf(s->part, sizeof(s->part), "%llx-%ld", (unsigned long long)kg_pgstore_ms(),
           (long)getpid());
  s->keep_equal_minute = cfg->store_keep_equal_per_minute;
  s->max_days = cfg->store_max_days;
  s->horizon = INT64_MIN;
  s->base_hour = INT64_MIN;
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->cond, NULL);
  int r = pthread_create(&s->thread, NULL, kg_pgstore_run, s);
  if (r != 0) {
    snprintf(err, errlen, "store %s: cannot start its writer: %s", s->masked, strerror(r));
    kg_pgstore_free(s);
    return -1;
  }
  *state = s;
  return 0;
}

/* Writes what is queued (one last try if the database is away) and stops. */
static void kg_pgstore_close(void *state) {
  kg_pgstore *s = state;
  pthread_mutex_lock(&s->lock);
  s->stopping = true;
  pthread_cond_signal(&s->cond);
  pthread_mutex_unlock(&s->lock);
  pthread_join(s->thread, NULL);
  if (s->conn) PQfinish(s->conn);
  kg_pg_batch *b = s->head;
  while (b) {
    kg_pg_batch *next = b->next;
    kg_pgstore_batch_free(b);
    b = next;
  }
  kg_storeagg_sampler_free(&s->sampler);
  kg_log_info("store %s: %llu results counted in the database, %llu dropped, %llu kept "
              "results not written", s->masked, (unsigned long long)s->written,
              (unsigned long long)s->dropped, (unsigned long long)s->rows_dropped);
  kg_pgstore_free(s);
}

static void kg_pgstore_metrics(void *state, kg_buf *o) {
  kg_pgstore *s = state;
  kg_buf_appendf(o,
                 "# HELP kagami_store_written_total Compared requests counted in the "
                 "PostgreSQL store.\n# TYPE kagami_store_written_total counter\n"
                 "kagami_store_written_total %llu\n"
                 "# HELP kagami_store_dropped_total Compared requests lost to the PostgreSQL "
                 "store (queue full, or away too long).\n"
                 "# TYPE kagami_store_dropped_total counter\nkagami_store_dropped_total %llu\n"
                 "# HELP kagami_store_rows_dropped_total Results to keep one by one that "
                 "were not written (the database was away).\n"
                 "# TYPE kagami_store_rows_dropped_total counter\n"
                 "kagami_store_rows_dropped_total %llu\n"
                 "# HELP kagami_store_queue Compared requests waiting for the store's writer.\n"
                 "# TYPE kagami_store_queue gauge\nkagami_store_queue %llu\n"
                 "# HELP kagami_store_connected 1 while the PostgreSQL store is reachable.\n"
                 "# TYPE kagami_store_connected gauge\nkagami_store_connected %d\n",
                 (unsigned long long)s->written, (unsigned long long)s->dropped,
                 (unsigned long long)s->rows_dropped, (unsigned long long)s->depth,
                 (int)s->connected);
}

static void kg_pgstore_share_noise(void *state, kg_noise *noise) {
  kg_pgstore *s = state;
  pthread_mutex_lock(&s->lock);
  s->noise = noise;
  pthread_mutex_unlock(&s->lock);
}

const kg_sink_ops kg_pgstore_sink = {
    .open = kg_pgstore_open,
    .write = kg_pgstore_write,
    .close = kg_pgstore_close,
    .metrics = kg_pgstore_metrics,
    .share_noise = kg_pgstore_share_noise,
};
