/* Unit tests: the results store (store.c) and its read side (storeq.c).
 *
 * Every check of what was written reads the file back with the SQLite
 * API (or its raw bytes), not through the code under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/common.h"
#include "compare/compare.h"
#include "config/config.h"
#include "results/difflog.h"
#include "cli/report.h"
#include "results/store.h"
#include "results/storeq.h"

/* --- fixtures --------------------------------------------------------------------- */

typedef struct fixture {
  char dir[64];
  char path[128];
  kg_config cfg;
  char *redact[5];
} fixture;

static int setup(void **state) {
  fixture *f = kg_calloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/kg_store_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/kagami.db", f->dir);
  f->cfg.store_path = f->path;
  f->cfg.store_max_rows = 100000;
  /* Keep every result one by one, as the tests of what a result holds
   * need; the tests of the shares and the sample lower these. */
  f->cfg.store_keep_differing = 100000;
  f->cfg.store_keep_equal = 100000;
  f->cfg.store_keep_equal_per_minute = 100000;
  f->cfg.store_max_days = 7;
  f->cfg.store_max_body_bytes = 256 * 1024;
  const char *names[] = {"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
                         "X-Api-Key"};
  for (size_t i = 0; i < 5; i++) f->redact[i] = (char *)names[i];
  f->cfg.redact_headers = f->redact;
  f->cfg.nredact_headers = 5;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  char p[200];
  const char *sfx[] = {"", "-wal", "-shm", "-journal"};
  for (size_t i = 0; i < 4; i++) {
    snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
    unlink(p);
  }
  rmdir(f->dir);
  free(f);
  return 0;
}

/* One record: a master and one shadow. */
typedef struct rec {
  kg_result r;
  kg_resp_view v[2];
  const char *roles[2];
  kg_pair_result pairs[2];
  kg_hdrs req, mh, sh;
  char id[40];
  const char *url;
  const char *endpoint;
} rec;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (double)t.tv_sec;
}

/* Ids sort like kagami's: by time first. */
static void rec_init(rec *x, int seq, double ts, const char *endpoint,
                     const char *mbody, size_t mlen, const char *sbody, size_t slen,
                     bool equal, double m_ms, double s_ms) {
  memset(x, 0, sizeof(*x));
  snprintf(x->id, sizeof(x->id), "%011llx00%07x", (unsigned long long)(ts * 1000), seq);
  kg_hdrs_add(&x->req, "Host", 4, "example", 7);
  kg_hdrs_add(&x->mh, "Content-Type", 12, "text/plain", 10);
  kg_hdrs_add(&x->sh, "Content-Type", 12, "text/plain", 10);
  x->roles[0] = "master";
  x->roles[1] = "shadow";
  x->v[0] = (kg_resp_view){.backend = "production", .status = 200, .hdrs = &x->mh,
                           .body = mbody, .body_len = mlen, .elapsed = m_ms / 1000,
                           .bytes = mlen};
  x->v[1] = (kg_resp_view){.backend = "newdb", .status = 200, .hdrs = &x->sh,
                           .body = sbody, .body_len = slen, .elapsed = s_ms / 1000,
                           .bytes = slen};
  x->pairs[1].equal = equal;
  if (!equal) {
    kg_diffs_add(&x->pairs[1].body, "line 3", "text:price: #.#", "price: 1.5", "price: 1.4");
    kg_buf_appends(&x->pairs[1].diff, "--- production\n+++ newdb\n@@ -3 +3 @@\n-price: 1.5\n+price: 1.4\n");
  }
  x->endpoint = endpoint;
  x->url = "/a?b=1";
  x->r = (kg_result){.id = x->id,
                     .ts = {.tv_sec = (time_t)ts, .tv_nsec = 0},
                     .method = "GET",
                     .url = x->url,
                     .endpoint = endpoint,
                     .req_hdrs = &x->req,
                     .resps = x->v,
                     .roles = x->roles,
                     .pairs = x->pairs,
                     .n = 2,
                     .equal = equal,
                     .kind = KG_KIND_TEXT};
}

static void rec_free(rec *x) {
  kg_hdrs_free(&x->req);
  kg_hdrs_free(&x->mh);
  kg_hdrs_free(&x->sh);
  kg_pair_result_free(&x->pairs[0]);
  kg_pair_result_free(&x->pairs[1]);
}

/* Writes n simple records (seq from `first`) at time ts, in one batch. */
static void write_simple(kg_store *s, int first, int n, double ts, const char *endpoint,
                         bool equal) {
  rec *v = kg_calloc((size_t)n, sizeof(rec));
  const kg_result **p = kg_calloc((size_t)n, sizeof(*p));
  for (int i = 0; i < n; i++) {
    rec_init(&v[i], first + i, ts, endpoint, "a\nb\nprice: 1.5\n", 15,
             equal ? "a\nb\nprice: 1.5\n" : "a\nb\nprice: 1.4\n", 15, equal,
             1.0 + i % 10, 2.0 + i % 10);
    p[i] = &v[i].r;
  }
  assert_int_equal(kg_store_write(s, p, (size_t)n), 0);
  for (int i = 0; i < n; i++) rec_free(&v[i]);
  free(v);
  free(p);
}

static sqlite3 *db_open(const char *path) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  return db;
}

static long long db_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  long long v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static char *db_text(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  const char *t = (const char *)sqlite3_column_text(st, 0);
  char *v = kg_strdup(t ? t : "(null)");
  sqlite3_finalize(st);
  return v;
}

static kg_store *open_ok(fixture *f) {
  kg_store *s = NULL;
  char err[512] = "";
  int rc = kg_store_open(&f->cfg, &s, err, sizeof(err));
  if (rc != 0) fprintf(stderr, "open failed: %s\n", err);
  assert_int_equal(rc, 0);
  assert_non_null(s);
  return s;
}

/* Opening must fail with a message naming the path and containing `word`. */
static void open_fails(fixture *f, const char *word) {
  kg_store *s = NULL;
  char err[512] = "";
  assert_int_equal(kg_store_open(&f->cfg, &s, err, sizeof(err)), -1);
  assert_null(s);
  if (strstr(err, f->path) == NULL || strstr(err, word) == NULL)
    fail_msg("message \"%s\" lacks the path or \"%s\"", err, word);
}

/* --- schema, WAL ------------------------------------------------------------------ */

static void test_creates_schema_in_wal_mode(void **state) {
  fixture *f = *state;
  kg_store *s = open_ok(f);
  write_simple(s, 0, 3, now_s(), "GET /a", true);
  /* Readable while open: a second connection sees WAL mode and the rows. */
  sqlite3 *db = db_open(f->path);
  char *mode = db_text(db, "PRAGMA journal_mode");
  assert_string_equal(mode, "wal");
  free(mode);
  char *v = db_text(db, "SELECT value FROM meta WHERE key = 'schema_version'");
  assert_string_equal(v, "3");
  free(v);
  assert_int_equal(db_int(db, "SELECT count(*) FROM results"), 3);
  assert_int_equal(db_int(db, "SELECT count(*) FROM backends"), 6);
  /* Equal results keep no bodies. */
  assert_int_equal(db_int(db, "SELECT count(*) FROM backends WHERE body IS NOT NULL"), 0);
  sqlite3_close(db);
  kg_store_close(s);
  /* Opening again keeps what is there. */
  s = open_ok(f);
  write_simple(s, 3, 1, now_s(), "GET /a", true);
  kg_store_close(s);
  db = db_open(f->path);
  assert_int_equal(db_int(db, "SELECT count(*) FROM results"), 4);
  sqlite3_close(db);
}

/* --- retention ------------------------------------------------------------------- */

static void test_retention_by_rows(void **state) {
  fixture *f = *state;
  f->cfg.store_max_rows = 10;
  kg_store *s = open_ok(f);
  double t = now_s();
  for (int b = 0; b < 5; b++) write_simple(s, b * 5, 5, t, "GET /a", b % 2 == 0);
  write_simple(s, 25, 1, t, "GET /a", false);
  sqlite3 *db = db_open(f->path);
  assert_int_equal(db_int(db, "SELECT count(*) FROM results"), 10);
  /* The newest ten stay (seq 16..25), with their backends only. */
  assert_int_equal(db_int(db, "SELECT count(*) FROM results WHERE id < "
                              "(SELECT min(id) FROM results)"), 0);
  char *oldest = db_text(db, "SELECT substr(min(id), 14) FROM results");
  assert_string_equal(oldest, "0000010"); /* seq 16 in hex */
  free(oldest);
  assert_int_equal(db_int(db, "SELECT count(*) FROM backends"), 20);
  assert_int_equal(db_int(db, "SELECT count(*) FROM backends WHERE result_id NOT IN "
                              "(SELECT id FROM results)"), 0);
  sqlite3_close(db);
  kg_store_close(s);
}

static void test_retention_by_age(void **state) {
  fixture *f = *state;
  f->cfg.store_max_days = 1;
  kg_store *s = open_ok(f);
  double t = now_s();
  /* The first batch runs the age pass: the 3-day-old rows go at once. */
  write_simple(s, 0, 4, t - 3 * 86400, "GET /old", false);
  write_simple(s, 10, 3, t, "GET /new", false);
  sqlite3 *db = db_open(f->path);
  assert_int_equal(db_int(db, "SELECT count(*) FROM results"), 3);
  /* Within the cadence old rows may wait; maintenance removes them. */
  write_simple(s, 20, 2, t - 2 * 86400, "GET /old", false);
  assert_int_equal(kg_store_maintain(s), 0);
  assert_int_equal(db_int(db, "SELECT count(*) FROM results WHERE endpoint = 'GET /old'"), 0);
  assert_int_equal(db_int(db, "SELECT count(*) FROM results"), 3);
  assert_int_equal(db_int(db, "SELECT count(*) FROM backends"), 6);
  sqlite3_close(db);
  kg_store_close(s);
}

/* --- bodies ---------------------------------------------------------------------- */

static void test_body_cap_and_compression(void **state) {
  fixture *f = *state;
  f->cfg.store_max_body_bytes = 100;
  kg_store *s = open_ok(f);
  char big[1000];
  for (size_t i = 0; i < sizeof(big); i++) big[i] = (char)('a' + i % 26);
  rec x;
  rec_init(&x, 1, now_s(), "GET /b", "short body\n", 11, big, sizeof(big), false, 1, 2);
  const kg_result *p = &x.r;
  assert_int_equal(kg_store_write(s, &p, 1), 0);
  rec_free(&x);
  kg_store_close(s);

  sqlite3 *db = db_open(f->path);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT name, body, body_size, body_truncated, bytes"
                                          " FROM backends ORDER BY pos", -1, &st, NULL),
                   SQLITE_OK);
  const size_t want_len[2] = {11, 100};
  const int want_cut[2] = {0, 1};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 2), (long long)want_len[i]);
    assert_int_equal(sqlite3_column_int(st, 3), want_cut[i]);
    unsigned char raw[2000];
    uLongf n = sizeof(raw);
    assert_int_equal(uncompress(raw, &n, sqlite3_column_blob(st, 1),
                                (uLong)sqlite3_column_bytes(st, 1)), Z_OK);
    assert_int_equal(n, want_len[i]);
    assert_memory_equal(raw, i == 0 ? "short body\n" : big, n);
  }
  /* bytes is the whole body's size, whatever was kept. */
  sqlite3_reset(st);
  sqlite3_finalize(st);
  assert_int_equal(db_int(db, "SELECT bytes FROM backends WHERE name = 'newdb'"), 1000);
  sqlite3_close(db);
}

/* --- redaction ------------------------------------------------------------------- */

static bool file_contains(const char *path, const char *needle) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) return false;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *data = kg_malloc((size_t)n + 1);
  size_t got = fread(data, 1, (size_t)n, fp);
  fclose(fp);
  bool found = memmem(data, got, needle, strlen(needle)) != NULL;
  free(data);
  return found;
}

static void test_redaction(void **state) {
  fixture *f = *state;
  kg_store *s = open_ok(f);
  rec x;
  rec_init(&x, 1, now_s(), "GET /r", "m", 1, "s", 1, false, 1, 2);
  kg_hdrs_add(&x.req, "authorization", 13, "Bearer SECRET-TOKEN-1", 21);
  kg_hdrs_add(&x.req, "Cookie", 6, "sid=SECRET-COOKIE-2", 19);
  kg_hdrs_add(&x.req, "X-API-KEY", 9, "SECRET-KEY-3", 12);
  kg_hdrs_add(&x.req, "X-Plain", 7, "visible-4", 9);
  kg_hdrs_add(&x.mh, "Set-Cookie", 10, "sid=SECRET-SESSION-5; Path=/", 28);
  kg_hdrs_add(&x.sh, "x-api-key", 9, "SECRET-KEY-6", 12);
  kg_diffs_add(&x.pairs[1].headers, "header:x-api-key", "header:x-api-key", NULL,
               "SECRET-KEY-6");
  const kg_result *p = &x.r;
  assert_int_equal(kg_store_write(s, &p, 1), 0);
  rec_free(&x);
  kg_store_close(s);

  /* Not a byte of any secret anywhere in the file (WAL checkpointed at close). */
  const char *secrets[] = {"SECRET-TOKEN-1", "SECRET-COOKIE-2", "SECRET-KEY-3",
                           "SECRET-SESSION-5", "SECRET-KEY-6"};
  for (size_t i = 0; i < 5; i++)
    if (file_contains(f->path, secrets[i])) fail_msg("%s is in the file", secrets[i]);
  assert_true(file_contains(f->path, "visible-4"));

  sqlite3 *db = db_open(f->path);
  char *h = db_text(db, "SELECT request_headers FROM results");
  assert_non_null(strstr(h, "[\"authorization\",\"[redacted]\"]"));
  assert_non_null(strstr(h, "[\"Cookie\",\"[redacted]\"]"));
  assert_non_null(strstr(h, "[\"X-API-KEY\",\"[redacted]\"]"));
  assert_non_null(strstr(h, "[\"X-Plain\",\"visible-4\"]"));
  free(h);
  h = db_text(db, "SELECT headers FROM backends WHERE name = 'production'");
  assert_non_null(strstr(h, "[\"Set-Cookie\",\"[redacted]\"]"));
  free(h);
  h = db_text(db, "SELECT header_differences FROM results");
  assert_non_null(strstr(h, "\"shadow\":\"[redacted]\""));
  assert_non_null(strstr(h, "\"master\":null"));
  free(h);
  sqlite3_close(db);
}

/* --- clear errors at open ----------------------------------------------------------- */

static void write_file(const char *path, const void *data, size_t n) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(data, 1, n, fp), n);
  fclose(fp);
}

static void test_not_sqlite(void **state) {
  fixture *f = *state;
  const char text[] = "return { listen = \"127.0.0.1:8090\" }\n";
  write_file(f->path, text, sizeof(text) - 1);
  open_fails(f, "not a database");
  /* And the file is left as it was. */
  assert_true(file_contains(f->path, "return { listen"));
  char err[512];
  kg_storeq *q = NULL;
  assert_int_equal(kg_storeq_open(f->path, &q, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "not a database"));
}

static void test_not_kagami(void **state) {
  fixture *f = *state;
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);"
                                    "INSERT INTO users(name) VALUES('ann');"
                                    "CREATE TABLE meta(key TEXT, value TEXT);",
                                NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  open_fails(f, "not a kagami store");
  /* Refused untouched: still in its own journal mode, data intact. */
  db = db_open(f->path);
  char *mode = db_text(db, "PRAGMA journal_mode");
  assert_string_equal(mode, "delete");
  free(mode);
  assert_int_equal(db_int(db, "SELECT count(*) FROM users"), 1);
  sqlite3_close(db);
  char err[512];
  kg_storeq *q = NULL;
  assert_int_equal(kg_storeq_open(f->path, &q, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "not a kagami store"));
}

static void test_corrupt(void **state) {
  fixture *f = *state;
  kg_store *s = open_ok(f);
  write_simple(s, 0, 5, now_s(), "GET /a", false);
  kg_store_close(s);
  /* Keep the 16-byte magic, scramble the rest of the header (page size,
   * format numbers): SQLite's "file is not a database". */
  FILE *fp = fopen(f->path, "r+b");
  assert_non_null(fp);
  fseek(fp, 16, SEEK_SET);
  unsigned char junk[84];
  memset(junk, 0xA5, sizeof(junk));
  fwrite(junk, 1, sizeof(junk), fp);
  fclose(fp);
  open_fails(f, "not a database");
  char err[512];
  kg_storeq *q = NULL;
  assert_int_equal(kg_storeq_open(f->path, &q, err, sizeof(err)), -1);
  assert_non_null(strstr(err, f->path));
}

static void test_corrupt_pages(void **state) {
  fixture *f = *state;
  kg_store *s = open_ok(f);
  write_simple(s, 0, 50, now_s(), "GET /a", false);
  kg_store_close(s);
  /* A valid header, garbage in the schema page: "malformed". */
  FILE *fp = fopen(f->path, "r+b");
  assert_non_null(fp);
  fseek(fp, 100, SEEK_SET);
  unsigned char junk[3000];
  for (size_t i = 0; i < sizeof(junk); i++) junk[i] = (unsigned char)(i * 131 + 7);
  fwrite(junk, 1, sizeof(junk), fp);
  fclose(fp);
  open_fails(f, "corrupt");
}

static void test_locked_by_another_kagami(void **state) {
  fixture *f = *state;
  kg_store *s = open_ok(f);
  open_fails(f, "another kagami");
  kg_store_close(s);
  s = open_ok(f); /* free again once the first is closed */
  kg_store_close(s);
}

static void test_locked_by_a_writer(void **state) {
  fixture *f = *state;
  kg_store *s = open_ok(f);
  kg_store_close(s);
  sqlite3 *db = db_open(f->path);
  assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  open_fails(f, "locked");
  assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  s = open_ok(f);
  kg_store_close(s);
}

static void test_newer_schema(void **state) {
  fixture *f = *state;
  kg_store *s = open_ok(f);
  kg_store_close(s);
  sqlite3 *db = db_open(f->path);
  assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value = '7' WHERE key = 'schema_version'",
                                NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  open_fails(f, "newer");
}

static void test_missing_directory(void **state) {
  fixture *f = *state;
  snprintf(f->path, sizeof(f->path), "%s/no/such/dir.db", f->dir);
  open_fails(f, "No such file");
  snprintf(f->path, sizeof(f->path), "%s/kagami.db", f->dir);
}

/* --- concurrency ------------------------------------------------------------------ */

typedef struct writer_arg {
  kg_store *s;
  int base;
} writer_arg;

static void *writer(void *p) {
  writer_arg *a = p;
  double t = now_s();
  for (int b = 0; b < 20; b++)
    write_simple(a->s, a->base + b * 10, 10, t, a->base ? "GET /two" : "GET /one", b % 3 == 0);
  return NULL;
}

static void test_concurrent_writes(void **state) {
  fixture *f = *state;
  kg_store *s = open_ok(f);
  pthread_t t1, t2;
  writer_arg a1 = {s, 0}, a2 = {s, 1 << 20};
  pthread_create(&t1, NULL, writer, &a1);
  pthread_create(&t2, NULL, writer, &a2);
  /* A reader meanwhile is never blocked and sees whole batches. */
  char err[512];
  kg_storeq *q = NULL;
  assert_int_equal(kg_storeq_open(f->path, &q, err, sizeof(err)), 0);
  for (int i = 0; i < 20; i++) {
    json_t *r = kg_storeq_endpoints(q, 0, NULL, 1.5);
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(r, "compared")) % 10, 0);
    json_decref(r);
  }
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  kg_storeq_close(q);
  kg_store_close(s);
  sqlite3 *db = db_open(f->path);
  assert_int_equal(db_int(db, "SELECT count(*) FROM results"), 400);
  assert_int_equal(db_int(db, "SELECT count(*) FROM backends"), 800);
  assert_int_equal(db_int(db, "SELECT count(*) FROM results WHERE endpoint = 'GET /one'"), 200);
  char *ok = db_text(db, "PRAGMA integrity_check");
  assert_string_equal(ok, "ok");
  free(ok);
  sqlite3_close(db);
}

/* --- queries (storeq) -------------------------------------------------------------- */

static kg_storeq *q_open(fixture *f) {
  char err[512] = "";
  kg_storeq *q = NULL;
  int rc = kg_storeq_open(f->path, &q, err, sizeof(err));
  if (rc) fprintf(stderr, "%s\n", err);
  assert_int_equal(rc, 0);
  return q;
}

/* got is want read back from a histogram: never below, at most 1/128 above. */
static bool near(double got, double want) {
  return got >= want - 1e-9 && got <= want * (1 + 1.0 / 128) + 1e-9;
}

static json_t *find_endpoint(json_t *r, const char *name) {
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(r, "endpoints"), i, e)
    if (strcmp(json_string_value(json_object_get(e, "endpoint")), name) == 0) return e;
  return NULL;
}

static void test_query_endpoints(void **state) {
  fixture *f = *state;
  kg_store *s = open_ok(f);
  double t = now_s();
  /* /quiet: 4 requests, all differ. /busy: 100 requests, 10 differ, and
   * the shadow is 3x slower. /same: equal. */
  write_simple(s, 0, 4, t, "GET /quiet", false);
  write_simple(s, 100, 90, t, "GET /busy", true);
  write_simple(s, 200, 10, t, "GET /busy", false);
  write_simple(s, 300, 5, t - 7200, "GET /same", true);
  rec x;
  rec_init(&x, 400, t, "GET /busy", "m", 1, "s", 1, false, 1, 2);
  x.v[1].error = "timeout";
  x.v[1].status = 0;
  const kg_result *p = &x.r;
  assert_int_equal(kg_store_write(s, &p, 1), 0);
  rec_free(&x);
  kg_store_close(s);

  kg_storeq *q = q_open(f);
  json_t *r = kg_storeq_endpoints(q, 0, NULL, 1.5);
  assert_non_null(r);
  assert_int_equal(json_integer_value(json_object_get(r, "compared")), 110);
  json_t *eps = json_object_get(r, "endpoints");
  assert_int_equal(json_array_size(eps), 3);
  /* The shadow's p90 (2+8=10 ms... see write_simple: master 1..10, shadow
   * 2..11) is not 1.5x the master's: no regression. Attention: /quiet
   * 4 x 1.0 = 4 beats /busy 11 x 11/101 = 1.2. */
  assert_string_equal(json_string_value(json_object_get(json_array_get(eps, 0), "endpoint")),
                      "GET /quiet");
  assert_string_equal(json_string_value(json_object_get(json_array_get(eps, 1), "endpoint")),
                      "GET /busy");
  json_t *busy = find_endpoint(r, "GET /busy");
  assert_int_equal(json_integer_value(json_object_get(busy, "compared")), 101);
  /* The request whose only shadow timed out is an error, not a difference. */
  assert_int_equal(json_integer_value(json_object_get(busy, "differing")), 10);
  assert_int_equal(json_integer_value(json_object_get(busy, "errors")), 1);
  assert_true(json_real_value(json_object_get(busy, "error_rate")) == 0.009901);
  json_t *bes = json_object_get(busy, "backends");
  assert_int_equal(json_array_size(bes), 2);
  json_t *m = json_array_get(bes, 0), *sh = json_array_get(bes, 1);
  assert_string_equal(json_string_value(json_object_get(m, "role")), "master");
  assert_int_equal(json_integer_value(json_object_get(m, "samples")), 101);
  assert_int_equal(json_integer_value(json_object_get(sh, "samples")), 100);
  assert_int_equal(json_integer_value(json_object_get(sh, "errors")), 1);
  /* master: 1..10 ms ten times each (+1 ms): p50 = 5, p90 = 9, p99 = 10,
   * each read back from the histogram within 1/128 above. */
  assert_true(near(json_real_value(json_object_get(m, "p50_ms")), 5.0));
  assert_true(near(json_real_value(json_object_get(m, "p90_ms")), 9.0));
  assert_true(near(json_real_value(json_object_get(m, "p99_ms")), 10.0));
  assert_true(json_is_false(json_object_get(sh, "regression")));
  /* Top locations: the text pattern in the 10 differing results; the
   * failed shadow is an error, counted apart, not a location. */
  json_t *tops = json_object_get(busy, "top_differences");
  assert_int_equal(json_array_size(tops), 1);
  assert_int_equal(json_integer_value(json_object_get(busy, "locations")), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(tops, 0), "location")),
                      "text:price: #.#");
  assert_int_equal(json_integer_value(json_object_get(json_array_get(tops, 0), "count")), 10);
  json_decref(r);

  /* A lower factor flags /busy's shadow, which then comes first. */
  r = kg_storeq_endpoints(q, 0, NULL, 1.1);
  eps = json_object_get(r, "endpoints");
  assert_string_equal(json_string_value(json_object_get(json_array_get(eps, 0), "endpoint")),
                      "GET /busy");
  assert_true(json_is_true(json_object_get(json_array_get(eps, 0), "regression")));
  json_decref(r);

  /* since and glob (path-only and whole name). */
  r = kg_storeq_endpoints(q, t - 60, NULL, 1.5);
  assert_null(find_endpoint(r, "GET /same"));
  json_decref(r);
  r = kg_storeq_endpoints(q, 0, "/b*", 1.5);
  assert_int_equal(json_array_size(json_object_get(r, "endpoints")), 1);
  json_decref(r);
  r = kg_storeq_endpoints(q, 0, "GET /[qs]*", 1.5);
  assert_int_equal(json_array_size(json_object_get(r, "endpoints")), 2);
  json_decref(r);
  r = kg_storeq_endpoints(q, 0, "' OR 1=1 --", 1.5); /* just a pattern */
  assert_int_equal(json_array_size(json_object_get(r, "endpoints")), 0);
  json_decref(r);
  kg_storeq_close(q);
}

static void test_query_results_and_result(void **state) {
  fixture *f = *state;
  kg_store *s = open_ok(f);
  double t = now_s();
  write_simple(s, 0, 5, t, "GET /a", true);
  write_simple(s, 5, 5, t, "GET /a", false);
  unsigned char bin[299]; /* 299 = 3 x 99 + 2: one '=' of padding */
  for (size_t i = 0; i < sizeof(bin); i++) bin[i] = (unsigned char)i;
  rec x;
  rec_init(&x, 10, t, "GET /b", "caf\xc3\xa9\n", 6, (const char *)bin, sizeof(bin), false, 1, 2);
  const kg_result *p = &x.r;
  assert_int_equal(kg_store_write(s, &p, 1), 0);
  char id[40];
  snprintf(id, sizeof(id), "%s", x.id);
  rec_free(&x);
  kg_store_close(s);

  kg_storeq *q = q_open(f);
  /* Pages of 4 differing results: 4, then 2, newest first. */
  json_t *r = kg_storeq_results(q, NULL, true, 4, NULL);
  assert_non_null(r);
  json_t *list = json_object_get(r, "results");
  assert_int_equal(json_array_size(list), 4);
  assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), id);
  const char *next = json_string_value(json_object_get(r, "next_before"));
  assert_non_null(next);
  json_t *r2 = kg_storeq_results(q, NULL, true, 4, next);
  assert_int_equal(json_array_size(json_object_get(r2, "results")), 2);
  assert_true(json_is_null(json_object_get(r2, "next_before")));
  json_t *row = json_array_get(json_object_get(r2, "results"), 0);
  assert_int_equal(json_integer_value(json_object_get(row, "differences")), 1);
  assert_string_equal(json_string_value(json_array_get(json_object_get(row, "locations"), 0)),
                      "line 3");
  assert_int_equal(json_array_size(json_object_get(row, "backends")), 2);
  json_decref(r);
  json_decref(r2);
  r = kg_storeq_results(q, "GET /a", false, 0, NULL);
  assert_int_equal(json_array_size(json_object_get(r, "results")), 10);
  json_decref(r);

  /* One result: bodies as text when UTF-8, base64 otherwise. */
  r = kg_storeq_result(q, id);
  assert_non_null(r);
  json_t *bes = json_object_get(r, "backends");
  json_t *m = json_array_get(bes, 0), *sh = json_array_get(bes, 1);
  assert_string_equal(json_string_value(json_object_get(m, "body")), "caf\xc3\xa9\n");
  assert_string_equal(json_string_value(json_object_get(m, "body_encoding")), "utf-8");
  assert_string_equal(json_string_value(json_object_get(sh, "body_encoding")), "base64");
  const char *b64 = json_string_value(json_object_get(sh, "body"));
  assert_int_equal(strlen(b64), 400);
  assert_memory_equal(b64, "AAECAwQFBgcICQoL", 16);
  assert_string_equal(b64 + 396, "KSo=");
  assert_string_equal(json_string_value(json_object_get(r, "diff")),
                      "--- production\n+++ newdb\n@@ -3 +3 @@\n-price: 1.5\n+price: 1.4\n");
  json_decref(r);
  assert_null(kg_storeq_result(q, "nope"));
  assert_int_equal(kg_storeq_errcode(q), KG_STOREQ_NOT_FOUND);
  kg_storeq_close(q);
}

static void test_query_timeseries(void **state) {
  fixture *f = *state;
  kg_store *s = open_ok(f);
  double t = floor(now_s() / 60) * 60;
  write_simple(s, 0, 10, t - 120, "GET /a", true);
  write_simple(s, 10, 20, t, "GET /a", false);
  write_simple(s, 30, 5, t, "GET /b", false);
  kg_store_close(s);
  kg_storeq *q = q_open(f);
  json_t *r = kg_storeq_timeseries(q, NULL, 60, 0);
  assert_non_null(r);
  json_t *b = json_object_get(r, "buckets");
  assert_int_equal(json_array_size(b), 2);
  json_t *b0 = json_array_get(b, 0), *b1 = json_array_get(b, 1);
  assert_true(json_real_value(json_object_get(b0, "t")) == t - 120);
  assert_int_equal(json_integer_value(json_object_get(b0, "compared")), 10);
  assert_int_equal(json_integer_value(json_object_get(b0, "differing")), 0);
  assert_int_equal(json_integer_value(json_object_get(b1, "compared")), 25);
  assert_int_equal(json_integer_value(json_object_get(b1, "differing")), 25);
  /* master 1..10 ms once each in the first bucket: p50 5, p90 9. */
  assert_true(near(json_real_value(json_object_get(b0, "master_p50_ms")), 5.0));
  assert_true(near(json_real_value(json_object_get(b0, "master_p90_ms")), 9.0));
  assert_true(near(json_real_value(json_object_get(b0, "shadow_p90_ms")), 10.0));
  json_decref(r);
  r = kg_storeq_timeseries(q, "GET /b", 60, 0);
  assert_int_equal(json_array_size(json_object_get(r, "buckets")), 1);
  json_decref(r);
  assert_null(kg_storeq_timeseries(q, NULL, 0, 0));
  assert_int_equal(kg_storeq_errcode(q), KG_STOREQ_INVALID);
  kg_storeq_close(q);
}

static void test_storeq_open_errors(void **state) {
  fixture *f = *state;
  char err[512];
  kg_storeq *q = NULL;
  assert_int_equal(kg_storeq_open(f->path, &q, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "no such file"));
  write_file(f->path, "", 0);
  assert_int_equal(kg_storeq_open(f->path, &q, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "empty"));
}

/* --- the fast queries agree with the plain SQL over the raw columns --------------- */

/* A mixed, deterministic dataset: 7 endpoints of uneven volume, a master
 * and two shadows (plus a secondary on some requests, never aggregated),
 * body, status and header differences, failed shadows and masters, many
 * equal latencies, spread over three hours. */
typedef struct mixrec {
  kg_result r;
  kg_resp_view v[4];
  const char *roles[4];
  kg_pair_result pairs[4];
  kg_hdrs req;
  char id[40], endpoint[40];
} mixrec;

static unsigned mix_next(unsigned *x) {
  *x = *x * 1103515245u + 12345u;
  return (*x >> 16) & 0x7fff;
}

static void write_mixed(kg_store *s, int n, double t0) {
  static const char *const eps[] = {"GET /a", "GET /a/:id", "POST /a", "GET /b",
                                    "GET /c/:id/x", "PUT /d", "GET /e"};
  static const char *const names[] = {"production", "newdb", "cache", "twin"};
  unsigned seed = 7;
  const int batch = 50;
  mixrec *v = kg_calloc((size_t)batch, sizeof(mixrec));
  const kg_result **p = kg_calloc((size_t)batch, sizeof(*p));
  for (int base = 0; base < n; base += batch) {
    int k = KG_MIN(batch, n - base);
    for (int j = 0; j < k; j++) {
      mixrec *x = &v[j];
      memset(x, 0, sizeof(*x));
      int seq = base + j;
      double ts = t0 + seq * (3 * 3600.0 / n);
      unsigned e = mix_next(&seed) % 16;
      e = e < 6 ? 0 : e < 9 ? 1 : e < 11 ? 2 : e < 13 ? 3 : e < 14 ? 4 : e < 15 ? 5 : 6;
      snprintf(x->endpoint, sizeof(x->endpoint), "%s", eps[e]);
      snprintf(x->id, sizeof(x->id), "%011llx00%07x", (unsigned long long)(ts * 1000), seq);
      kg_hdrs_add(&x->req, "Host", 4, "example", 7);
      size_t nb = mix_next(&seed) % 5 == 0 ? 4 : 3;
      bool equal = true;
      for (size_t i = 0; i < nb; i++) {
        x->roles[i] = i == 0 ? "master" : i == 3 ? "secondary" : "shadow";
        /* whole milliseconds, often equal, and per-backend skew */
        double ms = 1 + mix_next(&seed) % (20 + 10 * (unsigned)i) + (i == 2 ? 0.5 : 0);
        x->v[i] = (kg_resp_view){.backend = names[i], .status = 200, .body = "x",
                                 .body_len = 1, .elapsed = ms / 1000, .bytes = 1};
        if (i == 0) continue;
        kg_pair_result *pr = &x->pairs[i];
        pr->equal = true;
        unsigned roll = mix_next(&seed) % 100;
        if (roll < 3) {
          x->v[i].error = roll % 2 ? "timeout" : "connection reset";
          x->v[i].status = 0;
          pr->equal = false;
          pr->error = x->v[i].error;
        } else if (roll < 20 + 5 * e) {
          pr->equal = false;
          kg_diffs_add(&pr->body, "$.items[2].price", "$.items[*].price", "1", "2");
          if (roll % 3 == 0) kg_diffs_add(&pr->body, "$.total", NULL, "3", "4");
          if (roll % 4 == 0)
            kg_diffs_add(&pr->headers, "header:etag", "header:etag", "\"a\"", "\"b\"");
          if (roll % 7 == 0) pr->status_differs = true;
        }
        if (strcmp(x->roles[i], "shadow") == 0 && !pr->equal) equal = false;
      }
      /* A failed master, now and then: the result differs. */
      if (mix_next(&seed) % 50 == 0) {
        x->v[0].error = "timeout";
        x->v[0].status = 0;
        equal = false;
      }
      x->r = (kg_result){.id = x->id, .ts = {.tv_sec = (time_t)ts,
                                             .tv_nsec = (long)((ts - floor(ts)) * 1e9)},
                         .method = "GET", .url = "/", .endpoint = x->endpoint,
                         .req_hdrs = &x->req, .resps = x->v, .roles = x->roles,
                         .pairs = x->pairs, .n = nb, .equal = equal, .kind = KG_KIND_JSON};
      p[j] = &x->r;
    }
    assert_int_equal(kg_store_write(s, p, (size_t)k), 0);
    for (int j = 0; j < k; j++) {
      kg_hdrs_free(&v[j].req);
      for (size_t i = 0; i < 4; i++) kg_pair_result_free(&v[j].pairs[i]);
    }
  }
  free(v);
  free(p);
}

/* The queries kagami's readers ran before the store kept aggregates
 * (schema version 1): straightforward SQL over the results' and backends'
 * columns, JSON parsed per row, with every result kept (the fixture's
 * shares are unbounded). The oracle for the aggregates. Since the
 * aggregates are per minute, `since` takes in the whole minute it falls
 * in when a request of that minute came at or after it; a request differs when an answering shadow differs and the master
 * answered, and is an error when it is not equal otherwise. */
#define ORACLE_FILTER                                                      \
  " CAST(r.ts / 60 AS INTEGER) >= (SELECT min(CAST(x.ts / 60 AS INTEGER))"  \
  " FROM results x WHERE x.endpoint = r.endpoint AND x.ts >= ?1)"          \
  " AND (?2 IS NULL OR (CASE WHEN ?3 THEN"                                 \
  " substr(r.endpoint, instr(r.endpoint, ' ') + 1) ELSE r.endpoint END)"   \
  " GLOB ?2) "
#define ORACLE_RANK(p) "((" #p " * n + 99) / 100)"
#define ORACLE_OUTCOME(r)                                                   \
  "(CASE WHEN " r ".equal THEN 0 WHEN EXISTS (SELECT 1 FROM backends o"     \
  " WHERE o.result_id = " r ".id AND o.role = 'shadow' AND o.error IS NULL" \
  " AND o.equal = 0) AND NOT EXISTS (SELECT 1 FROM backends o WHERE"        \
  " o.result_id = " r ".id AND o.role = 'master' AND o.error IS NOT NULL)"  \
  " THEN 1 ELSE 2 END)"

static const char oracle_counts[] =
    "SELECT r.endpoint, count(*), sum(" ORACLE_OUTCOME("r") " = 1), min(r.ts), max(r.ts),"
    " sum(" ORACLE_OUTCOME("r") " = 2)"
    " FROM results r WHERE" ORACLE_FILTER
    "GROUP BY r.endpoint ORDER BY 1";

static const char oracle_latency[] =
    "WITH b AS (SELECT r.endpoint AS ep, k.name AS name, k.role AS role,"
    "   k.pos AS pos, k.elapsed_ms AS ms, k.error IS NOT NULL AS failed"
    "   FROM results r JOIN backends k ON k.result_id = r.id"
    "   WHERE" ORACLE_FILTER "AND k.role IN ('master', 'shadow')),"
    " ranked AS (SELECT ep, name, ms,"
    "   row_number() OVER (PARTITION BY ep, name ORDER BY ms) AS rn,"
    "   count(*) OVER (PARTITION BY ep, name) AS n FROM b WHERE NOT failed),"
    " pct AS (SELECT ep, name,"
    "   max(CASE WHEN rn = " ORACLE_RANK(50) " THEN ms END) AS p50,"
    "   max(CASE WHEN rn = " ORACLE_RANK(90) " THEN ms END) AS p90,"
    "   max(CASE WHEN rn = " ORACLE_RANK(99) " THEN ms END) AS p99"
    "   FROM ranked GROUP BY ep, name),"
    " cnt AS (SELECT ep, name, min(role) AS role, min(pos) AS pos,"
    "   sum(NOT failed) AS samples, sum(failed) AS errors FROM b GROUP BY ep, name)"
    " SELECT cnt.ep, cnt.name, cnt.role, cnt.samples, cnt.errors,"
    "   pct.p50, pct.p90, pct.p99"
    " FROM cnt LEFT JOIN pct ON pct.ep = cnt.ep AND pct.name = cnt.name"
    " ORDER BY cnt.ep, cnt.role <> 'master', cnt.pos, cnt.name";

static const char oracle_locations[] =
    "WITH locs AS ("
    "  SELECT r.endpoint AS ep, r.id AS id, coalesce(json_extract(j.value,"
    "    '$.pattern'), json_extract(j.value, '$.where')) AS loc"
    "  FROM results r, json_each(r.differences) j"
    "  WHERE " ORACLE_OUTCOME("r") " = 1 AND" ORACLE_FILTER
    "  UNION ALL"
    "  SELECT r.endpoint, r.id, coalesce(json_extract(j.value, '$.pattern'),"
    "    'header:' || lower(json_extract(j.value, '$.name')))"
    "  FROM results r, json_each(r.header_differences) j"
    "  WHERE " ORACLE_OUTCOME("r") " = 1 AND" ORACLE_FILTER "),"
    " counted AS (SELECT ep, loc, count(DISTINCT id) AS c FROM locs"
    "   WHERE loc IS NOT NULL GROUP BY ep, loc),"
    " ranked AS (SELECT ep, loc, c, row_number() OVER"
    "   (PARTITION BY ep ORDER BY c DESC, loc) AS rk FROM counted)"
    " SELECT ep, loc, c FROM ranked WHERE rk <= 5 ORDER BY ep, rk";

static const char oracle_timeseries[] =
    "WITH r AS (SELECT id, CAST(ts / ?1 AS INTEGER) AS b,"
    "   " ORACLE_OUTCOME("results") " AS o"
    "   FROM results WHERE ts >= ?2 AND (?3 IS NULL OR endpoint = ?3)),"
    " counts AS (SELECT b, count(*) AS compared, sum(o = 1) AS differing,"
    "   sum(o = 2) AS errors FROM r GROUP BY b),"
    " lat AS (SELECT r.b AS b, k.role = 'master' AS m, k.elapsed_ms AS ms,"
    "   row_number() OVER (PARTITION BY r.b, k.role = 'master' ORDER BY k.elapsed_ms) AS rn,"
    "   count(*) OVER (PARTITION BY r.b, k.role = 'master') AS n"
    "   FROM r JOIN backends k ON k.result_id = r.id"
    "   WHERE k.error IS NULL AND k.role IN ('master', 'shadow')),"
    " pct AS (SELECT b, m,"
    "   max(CASE WHEN rn = " ORACLE_RANK(50) " THEN ms END) AS p50,"
    "   max(CASE WHEN rn = " ORACLE_RANK(90) " THEN ms END) AS p90"
    "   FROM lat GROUP BY b, m)"
    " SELECT c.b, c.compared, c.differing, pm.p50, pm.p90, ps.p50, ps.p90, c.errors"
    " FROM counts c LEFT JOIN pct pm ON pm.b = c.b AND pm.m = 1"
    " LEFT JOIN pct ps ON ps.b = c.b AND ps.m = 0 ORDER BY c.b";

static sqlite3_stmt *oracle(sqlite3 *db, const char *sql, double since, const char *glob) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    fail_msg("oracle: %s", sqlite3_errmsg(db));
  sqlite3_bind_double(st, 1, since);
  if (glob) sqlite3_bind_text(st, 2, glob, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 3, glob && strchr(glob, ' ') == NULL);
  return st;
}

/* A latency percentile from the histograms and the exact one (a REAL
 * column, ms) must agree as histogram.h promises: never below, above by
 * at most 1/128. */
static void near_pct(sqlite3_stmt *st, int col, json_t *j, const char *what) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) {
    if (!json_is_null(j)) fail_msg("%s: want null", what);
    return;
  }
  double want = sqlite3_column_double(st, col), got = json_number_value(j);
  if (!json_is_number(j) || got < want - 1e-9 || got > want * (1 + 1.0 / 128) + 1e-9)
    fail_msg("%s: want %.17g, got %.17g", what, want, got);
}

/* A REAL column and a JSON number or null must agree exactly. */
static void same_real(sqlite3_stmt *st, int col, json_t *j, const char *what) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) {
    if (!json_is_null(j)) fail_msg("%s: want null", what);
    return;
  }
  if (!json_is_number(j) || json_number_value(j) != sqlite3_column_double(st, col))
    fail_msg("%s: want %.17g, got %.17g", what, sqlite3_column_double(st, col),
             json_number_value(j));
}

/* Checks kg_storeq_endpoints(since, glob) against the oracle, number by
 * number; returns how many endpoints it listed. */
static size_t check_endpoints(sqlite3 *db, kg_storeq *q, double since, const char *glob) {
  json_t *r = kg_storeq_endpoints(q, since, glob, 1.5);
  assert_non_null(r);
  sqlite3_stmt *st = oracle(db, oracle_counts, since, glob);
  size_t n = 0;
  long long total = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *ep = (const char *)sqlite3_column_text(st, 0);
    json_t *e = find_endpoint(r, ep);
    if (e == NULL) fail_msg("endpoint %s missing", ep);
    assert_int_equal(json_integer_value(json_object_get(e, "compared")),
                     sqlite3_column_int64(st, 1));
    assert_int_equal(json_integer_value(json_object_get(e, "differing")),
                     sqlite3_column_int64(st, 2));
    assert_int_equal(json_integer_value(json_object_get(e, "errors")),
                     sqlite3_column_int64(st, 5));
    same_real(st, 3, json_object_get(e, "first_ts"), "first_ts");
    same_real(st, 4, json_object_get(e, "last_ts"), "last_ts");
    total += sqlite3_column_int64(st, 1);
    n++;
  }
  sqlite3_finalize(st);
  assert_int_equal(json_array_size(json_object_get(r, "endpoints")), n);
  assert_int_equal(json_integer_value(json_object_get(r, "compared")), total);

  st = oracle(db, oracle_latency, since, glob);
  const char *cur = NULL;
  size_t k = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *ep = (const char *)sqlite3_column_text(st, 0);
    if (cur == NULL || strcmp(cur, ep) != 0) k = 0;
    json_t *e = find_endpoint(r, ep);
    cur = json_string_value(json_object_get(e, "endpoint"));
    json_t *b = json_array_get(json_object_get(e, "backends"), k++);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(b, "name")),
                        (const char *)sqlite3_column_text(st, 1));
    assert_string_equal(json_string_value(json_object_get(b, "role")),
                        (const char *)sqlite3_column_text(st, 2));
    assert_int_equal(json_integer_value(json_object_get(b, "samples")),
                     sqlite3_column_int64(st, 3));
    assert_int_equal(json_integer_value(json_object_get(b, "errors")),
                     sqlite3_column_int64(st, 4));
    near_pct(st, 5, json_object_get(b, "p50_ms"), "p50");
    near_pct(st, 6, json_object_get(b, "p90_ms"), "p90");
    near_pct(st, 7, json_object_get(b, "p99_ms"), "p99");
    if (k == json_array_size(json_object_get(e, "backends"))) cur = NULL;
  }
  sqlite3_finalize(st);

  st = oracle(db, oracle_locations, since, glob);
  cur = NULL;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *ep = (const char *)sqlite3_column_text(st, 0);
    if (cur == NULL || strcmp(cur, ep) != 0) k = 0;
    json_t *e = find_endpoint(r, ep);
    cur = json_string_value(json_object_get(e, "endpoint"));
    json_t *t = json_array_get(json_object_get(e, "top_differences"), k++);
    assert_non_null(t);
    assert_string_equal(json_string_value(json_object_get(t, "location")),
                        (const char *)sqlite3_column_text(st, 1));
    assert_int_equal(json_integer_value(json_object_get(t, "count")),
                     sqlite3_column_int64(st, 2));
  }
  sqlite3_finalize(st);
  json_decref(r);
  return n;
}

static void check_timeseries(sqlite3 *db, kg_storeq *q, double bucket, double since,
                             const char *endpoint) {
  json_t *r = kg_storeq_timeseries(q, endpoint, bucket, since);
  assert_non_null(r);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, oracle_timeseries, -1, &st, NULL), SQLITE_OK);
  /* whole minutes: the aggregates' grain */
  assert_true(json_real_value(json_object_get(r, "bucket_seconds")) == ceil(bucket / 60) * 60);
  bucket = json_real_value(json_object_get(r, "bucket_seconds"));
  sqlite3_bind_double(st, 1, bucket);
  sqlite3_bind_double(st, 2, json_real_value(json_object_get(r, "since")));
  if (endpoint) sqlite3_bind_text(st, 3, endpoint, -1, SQLITE_STATIC);
  json_t *list = json_object_get(r, "buckets");
  size_t i = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    json_t *b = json_array_get(list, i++);
    assert_non_null(b);
    assert_true(json_real_value(json_object_get(b, "t")) ==
                (double)sqlite3_column_int64(st, 0) * bucket);
    assert_int_equal(json_integer_value(json_object_get(b, "compared")),
                     sqlite3_column_int64(st, 1));
    assert_int_equal(json_integer_value(json_object_get(b, "differing")),
                     sqlite3_column_int64(st, 2));
    assert_int_equal(json_integer_value(json_object_get(b, "errors")),
                     sqlite3_column_int64(st, 7));
    near_pct(st, 3, json_object_get(b, "master_p50_ms"), "master p50");
    near_pct(st, 4, json_object_get(b, "master_p90_ms"), "master p90");
    near_pct(st, 5, json_object_get(b, "shadow_p50_ms"), "shadow p50");
    near_pct(st, 6, json_object_get(b, "shadow_p90_ms"), "shadow p90");
  }
  sqlite3_finalize(st);
  assert_int_equal(json_array_size(list), i);
  assert_true(i > 0);
  json_decref(r);
}

/* Every query's answer as text, to compare two stores. */
static char *all_answers(kg_storeq *q, double t0) {
  json_t *a = json_pack("[o,o,o,o,o]", kg_storeq_endpoints(q, 0, NULL, 1.5),
                        kg_storeq_endpoints(q, t0 + 3600, "/a*", 1.5),
                        kg_storeq_timeseries(q, NULL, 60, 0),
                        kg_storeq_timeseries(q, "GET /a", 300, t0 + 600),
                        kg_storeq_results(q, "GET /b", true, 20, NULL));
  assert_non_null(a);
  char *text = json_dumps(a, JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
  json_decref(a);
  return text;
}

static void test_fast_queries_match_plain_sql(void **state) {
  fixture *f = *state;
  kg_store *s = open_ok(f);
  double t0 = floor(now_s()) - 3 * 3600;
  write_mixed(s, 3000, t0);
  kg_store_close(s);
  sqlite3 *db = db_open(f->path);
  kg_storeq *q = q_open(f);
  const double sinces[] = {0, t0 + 3600.5, t0 + 3 * 3600 - 60, t0 + 4 * 3600};
  for (size_t i = 0; i < KG_ARRAY_SIZE(sinces); i++) {
    size_t n = check_endpoints(db, q, sinces[i], NULL);
    assert_true(i == 3 ? n == 0 : n > 3);
  }
  assert_int_equal(check_endpoints(db, q, 0, "/a*"), 3);
  assert_int_equal(check_endpoints(db, q, t0 + 600, "GET /[bc]*"), 2);
  assert_int_equal(check_endpoints(db, q, 0, "no match"), 0);
  check_timeseries(db, q, 60, 0, NULL);
  check_timeseries(db, q, 7, t0 + 7000, NULL);
  check_timeseries(db, q, 900, 0, "GET /a/:id");
  check_timeseries(db, q, 1, t0 + 3 * 3600 - 200, "GET /a"); /* a minute at least */
  /* The secondary's rows are stored, never aggregated. */
  assert_true(db_int(db, "SELECT count(*) FROM backends WHERE role = 'secondary'") > 0);
  kg_storeq_close(q);
  sqlite3_close(db);
}

/* A version 1 store (what kagami wrote before any aggregates) is upgraded
 * in place by the writer, through version 2 to 3, to the same answers as
 * a store written by this version (the aggregates rebuilt from the kept
 * results); readers refuse it with a message that says how to upgrade. */
static void test_upgrade_from_version_1(void **state) {
  fixture *f = *state;
  kg_store *s = open_ok(f);
  double t0 = floor(now_s()) - 3 * 3600;
  write_mixed(s, 600, t0);
  kg_store_close(s);
  kg_storeq *q = q_open(f);
  char *want = all_answers(q, t0);
  kg_storeq_close(q);

  /* Back to version 1's layout. */
  sqlite3 *db = db_open(f->path);
  assert_int_equal(
      sqlite3_exec(db,
                   "DROP TABLE agg_requests; DROP TABLE agg_backends;"
                   " DROP TABLE agg_locations; DROP INDEX results_share;"
                   " DROP TABLE agg_requests_hour; DROP TABLE agg_backends_hour;"
                   " DROP TABLE agg_locations_hour;"
                   " ALTER TABLE backends DROP COLUMN endpoint;"
                   " ALTER TABLE backends DROP COLUMN ts; DROP INDEX results_ts;"
                   " DROP INDEX results_endpoint; DROP INDEX results_differing;"
                   " CREATE INDEX results_ts ON results(ts);"
                   " CREATE INDEX results_endpoint ON results(endpoint, id);"
                   " CREATE INDEX results_differing ON results(id) WHERE equal = 0;"
                   " UPDATE meta SET value = '1' WHERE key = 'schema_version';",
                   NULL, NULL, NULL),
      SQLITE_OK);
  sqlite3_close(db);
  char err[512];
  assert_int_equal(kg_storeq_open(f->path, &q, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "schema version 1"));
  assert_non_null(strstr(err, "upgrades it"));

  s = open_ok(f);
  kg_store_close(s);
  db = db_open(f->path);
  char *v = db_text(db, "SELECT value FROM meta WHERE key = 'schema_version'");
  assert_string_equal(v, "3");
  free(v);
  /* what version 2 added and version 3 replaced is gone */
  assert_int_equal(db_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN"
                              " ('locations', 'backends_latency', 'backends_ts')"), 0);
  sqlite3_close(db);
  q = q_open(f);
  char *got = all_answers(q, t0);
  kg_storeq_close(q);
  assert_string_equal(got, want);
  free(want);
  free(got);
  /* And it takes new results as any store. */
  s = open_ok(f);
  write_simple(s, 1 << 20, 5, now_s(), "GET /new", false);
  kg_store_close(s);
  q = q_open(f);
  json_t *r = kg_storeq_endpoints(q, 0, "GET /new", 1.5);
  json_t *e = find_endpoint(r, "GET /new");
  assert_non_null(e);
  assert_int_equal(json_integer_value(json_object_get(e, "differing")), 5);
  json_decref(r);
  kg_storeq_close(q);
}

/* Retention of results one by one never takes anything from the
 * aggregates: every result stays counted, with its latency and locations. */
static void test_retention_keeps_aggregates_whole(void **state) {
  fixture *f = *state;
  f->cfg.store_max_rows = 10;
  kg_store *s = open_ok(f);
  write_simple(s, 0, 8, now_s(), "GET /a", false);
  write_simple(s, 8, 8, now_s(), "GET /a", false);
  write_simple(s, 16, 30, now_s(), "GET /a", true);
  kg_store_close(s);
  sqlite3 *db = db_open(f->path);
  assert_int_equal(db_int(db, "SELECT count(*) FROM results"), 10);
  assert_int_equal(db_int(db, "SELECT count(*) FROM backends WHERE result_id NOT IN"
                              " (SELECT id FROM results)"), 0);
  sqlite3_close(db);
  kg_storeq *q = q_open(f);
  json_t *r = kg_storeq_endpoints(q, 0, NULL, 1.5);
  json_t *e = find_endpoint(r, "GET /a");
  assert_int_equal(json_integer_value(json_object_get(e, "compared")), 46);
  assert_int_equal(json_integer_value(json_object_get(e, "differing")), 16);
  json_t *m = json_array_get(json_object_get(e, "backends"), 0);
  assert_int_equal(json_integer_value(json_object_get(m, "samples")), 46);
  json_t *top = json_array_get(json_object_get(e, "top_differences"), 0);
  assert_int_equal(json_integer_value(json_object_get(top, "count")), 16);
  json_decref(r);
  kg_storeq_close(q);
}

/* Equal results kept only as counts are summed in memory and written
 * with the next batch that keeps results, by kg_store_maintain, or at
 * close: never lost, never one transaction per batch. */
static void test_sums_are_held_then_written(void **state) {
  fixture *f = *state;
  f->cfg.store_keep_equal_per_minute = 0; /* no equal result kept one by one */
  kg_store *s = open_ok(f);
  double t = now_s();
  write_simple(s, 0, 20, t, "GET /held", true);
  sqlite3 *db = db_open(f->path);
  /* a batch with nothing to keep wrote nothing yet (the flusher waits a
   * second; this runs well within it under any load that passes tests) */
  long long seen = db_int(db, "SELECT coalesce(sum(compared), 0) FROM agg_requests "
                              "WHERE endpoint = 'GET /held'");
  assert_true(seen == 0 || seen == 20); /* 20 only if the flusher ran */
  /* a differing result's batch writes the held sums with its own */
  write_simple(s, 20, 1, t, "GET /held", false);
  assert_int_equal(db_int(db, "SELECT sum(compared) FROM agg_requests WHERE "
                              "endpoint = 'GET /held'"), 21);
  write_simple(s, 21, 5, t, "GET /held", true);
  assert_int_equal(kg_store_maintain(s), 0);
  assert_int_equal(db_int(db, "SELECT sum(compared) FROM agg_requests WHERE "
                              "endpoint = 'GET /held'"), 26);
  write_simple(s, 26, 4, t, "GET /held", true);
  kg_store_close(s);
  assert_int_equal(db_int(db, "SELECT sum(compared) FROM agg_requests WHERE "
                              "endpoint = 'GET /held'"), 30);
  assert_int_equal(db_int(db, "SELECT sum(compared) FROM agg_requests_hour WHERE "
                              "endpoint = 'GET /held'"), 30);
  sqlite3_close(db);
}

/* Results are kept one by one when they differ or fail, and for a
 * sample of the equal ones (the first store_keep_equal_per_minute per
 * endpoint per minute), each endpoint within its own share: a noisy
 * endpoint cannot evict a quiet one's results, and every result is
 * counted in the aggregates all the same. */
static void test_sample_and_shares(void **state) {
  fixture *f = *state;
  f->cfg.store_keep_differing = 5;
  f->cfg.store_keep_equal = 3;
  f->cfg.store_keep_equal_per_minute = 2;
  kg_store *s = open_ok(f);
  double t = floor(now_s() / 60) * 60 - 600;
  write_simple(s, 0, 3, t, "GET /quiet", false);
  write_simple(s, 10, 100, t, "GET /noisy", true);
  write_simple(s, 200, 50, t + 1, "GET /noisy", false);
  write_simple(s, 300, 40, t + 60, "GET /noisy", true);
  write_simple(s, 400, 40, t + 120, "GET /noisy", true);
  kg_store_close(s);
  sqlite3 *db = db_open(f->path);
  assert_int_equal(db_int(db, "SELECT count(*) FROM results WHERE endpoint = 'GET /quiet'"), 3);
  assert_int_equal(db_int(db, "SELECT count(*) FROM results WHERE endpoint = 'GET /noisy'"
                              " AND equal = 0"), 5);
  /* two a minute, three minutes, a share of three: the newest three */
  assert_int_equal(db_int(db, "SELECT count(*) FROM results WHERE endpoint = 'GET /noisy'"
                              " AND equal = 1"), 3);
  assert_int_equal(db_int(db, "SELECT min(ts) FROM results WHERE endpoint = 'GET /noisy'"
                              " AND equal = 1") >= (long long)t + 60, 1);
  /* the kept differing ones are the newest (seq 245..249), with their bodies */
  assert_int_equal(db_int(db, "SELECT min(substr(id, 14)) = '00000f5' FROM results"
                              " WHERE endpoint = 'GET /noisy' AND equal = 0"), 1);
  assert_int_equal(db_int(db, "SELECT count(*) FROM backends WHERE body IS NOT NULL"), 16);
  assert_int_equal(db_int(db, "SELECT count(*) FROM backends WHERE result_id NOT IN"
                              " (SELECT id FROM results)"), 0);
  sqlite3_close(db);
  kg_storeq *q = q_open(f);
  json_t *r = kg_storeq_endpoints(q, 0, NULL, 1.5);
  json_t *e = find_endpoint(r, "GET /noisy");
  assert_int_equal(json_integer_value(json_object_get(e, "compared")), 230);
  assert_int_equal(json_integer_value(json_object_get(e, "differing")), 50);
  json_decref(r);
  r = kg_storeq_timeseries(q, "GET /noisy", 60, 0);
  assert_int_equal(json_array_size(json_object_get(r, "buckets")), 3);
  json_decref(r);
  kg_storeq_close(q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_creates_schema_in_wal_mode, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retention_by_rows, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sums_are_held_then_written, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retention_by_age, setup, teardown),
      cmocka_unit_test_setup_teardown(test_body_cap_and_compression, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redaction, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_sqlite, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_kagami, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_pages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_locked_by_another_kagami, setup, teardown),
      cmocka_unit_test_setup_teardown(test_locked_by_a_writer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_newer_schema, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_directory, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_writes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_endpoints, setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_results_and_result, setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_timeseries, setup, teardown),
      cmocka_unit_test_setup_teardown(test_storeq_open_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fast_queries_match_plain_sql, setup, teardown),
      cmocka_unit_test_setup_teardown(test_upgrade_from_version_1, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sample_and_shares, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retention_keeps_aggregates_whole, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
