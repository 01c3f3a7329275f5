/* pgrollup.c: hour rows from minute rows (see pgrollup.h). */
#include "results/pgrollup.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "results/storeagg.h"

int64_t kg_pgrollup_hour(int64_t minute) {
  return minute >= 0 ? minute / 60 : -((-(minute + 1)) / 60) - 1;
}

/* One backend and part of the open group. */
struct kg_pgrollup_open {
  char *backend, *part;
  bool master;
  int64_t pos, errors;
  kg_buf blob;
};

void kg_pgrollup_init(kg_pgrollup *r, kg_pgrollup_emit emit, void *ctx) {
  *r = (kg_pgrollup){.emit = emit, .ctx = ctx, .key = KG_BUF_INIT};
}

static void kg_pgrollup_clear(kg_pgrollup *r) {
  for (size_t i = 0; i < r->nopen; i++) {
    free(r->open[i].backend);
    free(r->open[i].part);
    kg_buf_free(&r->open[i].blob);
  }
  r->nopen = 0;
}

/* Emits the open group's rows and empties it. */
static bool kg_pgrollup_flush(kg_pgrollup *r) {
  bool ok = true;
  if (r->key.len > 0) {
    const char *inst = r->key.data, *ep = inst + strlen(inst) + 1;
    for (size_t i = 0; ok && i < r->nopen; i++) {
      const kg_pgrollup_open *o = &r->open[i];
      kg_pgrollup_hour_row h = {.instance = inst, .part = o->part, .endpoint = ep,
                                .backend = o->backend,
                                .role = o->master ? "master" : "shadow", .hour = r->hour,
                                .pos = o->pos, .errors = o->errors,
                                .blob = o->blob.data ? o->blob.data : "\x01",
                                .len = o->blob.data ? o->blob.len : 1};
      ok = r->emit(r->ctx, &h);
    }
  }
  kg_pgrollup_clear(r);
  kg_buf_reset(&r->key);
  return ok;
}

bool kg_pgrollup_add(kg_pgrollup *r, const kg_pgrollup_row *row) {
  int64_t hour = kg_pgrollup_hour(row->minute);
  size_t li = strlen(row->instance), le = strlen(row->endpoint);
  bool same = r->key.len == li + le + 2 && r->hour == hour &&
              memcmp(r->key.data, row->instance, li + 1) == 0 &&
              memcmp(r->key.data + li + 1, row->endpoint, le + 1) == 0;
  if (!same) {
    if (!kg_pgrollup_flush(r)) return false;
    kg_buf_append(&r->key, row->instance, li + 1);
    kg_buf_append(&r->key, row->endpoint, le + 1);
    r->hour = hour;
  }
  /* a group holds a few backends x parts: a linear search is enough */
  kg_pgrollup_open *o = NULL;
  for (size_t i = 0; i < r->nopen && o == NULL; i++)
    if (strcmp(r->open[i].backend, row->backend) == 0 && strcmp(r->open[i].part, row->part) == 0)
      o = &r->open[i];
  if (o == NULL) {
    if (r->nopen == r->capopen) {
      r->capopen = r->capopen ? r->capopen * 2 : 8;
      r->open = kg_realloc(r->open, r->capopen * sizeof(*r->open));
    }
    o = &r->open[r->nopen++];
    *o = (kg_pgrollup_open){.backend = kg_strdup(row->backend), .part = kg_strdup(row->part),
                            .pos = row->pos, .blob = KG_BUF_INIT};
  }
  o->master |= row->role != NULL && strcmp(row->role, "master") == 0;
  if (row->pos < o->pos) o->pos = row->pos;
  o->errors += row->errors;
  kg_buf merged = KG_BUF_INIT;
  /* an empty o->blob is not a blob, which blob_merge counts as empty */
  if (kg_storeagg_blob_merge(o->blob.data, o->blob.len, row->blob, row->len, &merged) == 0) {
    kg_buf_free(&o->blob);
    o->blob = merged;
  } else {
    kg_buf_free(&merged);
    r->bad_blobs++;
  }
  return true;
}

bool kg_pgrollup_finish(kg_pgrollup *r) { return kg_pgrollup_flush(r); }

void kg_pgrollup_free(kg_pgrollup *r) {
  kg_pgrollup_clear(r);
  free(r->open);
  kg_buf_free(&r->key);
  *r = (kg_pgrollup){.key = KG_BUF_INIT};
}

/* --- the migration from schema version 1 ----------------------------------------- */

/* Counts and locations: sums, which PostgreSQL does itself. */
static const char *const kg_pgrollup_sums[] = {
    "INSERT INTO agg_requests_hour SELECT instance, part, endpoint,"
    " floor(minute / 60.0)::bigint, sum(compared), sum(differing), sum(errors),"
    " min(first_ts), max(last_ts) FROM agg_requests GROUP BY 1, 2, 3, 4",
    "INSERT INTO agg_locations_hour SELECT instance, part, endpoint,"
    " floor(minute / 60.0)::bigint, location, sum(count) FROM agg_locations"
    " GROUP BY 1, 2, 3, 4, 5",
};

/* In the primary key's order, so that PostgreSQL walks the index instead
 * of sorting every histogram of the store; binary, so that blobs come as
 * they are. */
static const char kg_pgrollup_cursor[] =
    "DECLARE kg_rollup NO SCROLL CURSOR FOR SELECT instance, part, endpoint, backend,"
    " minute, role, pos::bigint, errors, latency FROM agg_backends"
    " ORDER BY instance, endpoint, minute, backend, part";

typedef struct kg_pgrollup_mig {
  PGconn *conn;
  char *err;
  size_t errlen;
} kg_pgrollup_mig;

static bool kg_pgrollup_insert(void *ctx, const kg_pgrollup_hour_row *h) {
  kg_pgrollup_mig *m = ctx;
  char hour[24], pos[24], errors[24];
  snprintf(hour, sizeof(hour), "%" PRId64, h->hour);
  snprintf(pos, sizeof(pos), "%" PRId64, h->pos);
  snprintf(errors, sizeof(errors), "%" PRId64, h->errors);
  const char *p[9] = {h->instance, h->part, h->endpoint, hour, h->backend, h->role, pos,
                      errors, h->blob};
  int lens[9] = {0, 0, 0, 0, 0, 0, 0, 0, (int)h->len};
  int fmts[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1};
  PGresult *r = PQexecParams(m->conn,
                             "INSERT INTO agg_backends_hour VALUES ($1, $2, $3, $4, $5, $6, $7,"
                             " $8, $9)", 9, NULL, p, lens, fmts, 0);
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) snprintf(m->err, m->errlen, "%s", PQresultErrorMessage(r));
  PQclear(r);
  return ok;
}

/* A bigint in binary format (network order), or false. */
static bool kg_pgrollup_int8(const PGresult *res, int row, int col, int64_t *out) {
  if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8) return false;
  const unsigned char *p = (const unsigned char *)PQgetvalue(res, row, col);
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
  *out = (int64_t)v;
  return true;
}

/* Feeds one fetched page to r. Returns the rows read, or -1. */
static int kg_pgrollup_page(kg_pgrollup *r, const PGresult *res, kg_pgrollup_mig *m) {
  int n = PQntuples(res);
  if (PQnfields(res) != 9) {
    snprintf(m->err, m->errlen, "unexpected columns in agg_backends");
    return -1;
  }
  for (int i = 0; i < n; i++) {
    kg_pgrollup_row row = {.instance = PQgetvalue(res, i, 0), .part = PQgetvalue(res, i, 1),
                           .endpoint = PQgetvalue(res, i, 2), .backend = PQgetvalue(res, i, 3),
                           .role = PQgetvalue(res, i, 5), .blob = PQgetvalue(res, i, 8),
                           .len = (size_t)PQgetlength(res, i, 8)};
    if (!kg_pgrollup_int8(res, i, 4, &row.minute) || !kg_pgrollup_int8(res, i, 6, &row.pos) ||
        !kg_pgrollup_int8(res, i, 7, &row.errors)) {
      snprintf(m->err, m->errlen, "a value no kagami writes, in agg_backends");
      return -1;
    }
    if (!kg_pgrollup_add(r, &row)) return -1;
  }
  return n;
}

static bool kg_pgrollup_exec(PGconn *c, const char *sql, char *err, size_t errlen) {
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
  if (!ok) snprintf(err, errlen, "%s", PQresultErrorMessage(r));
  PQclear(r);
  return ok;
}

int kg_pgrollup_migrate(PGconn *conn, uint64_t *minute_rows, uint64_t *bad_blobs, char *err,
                        size_t errlen) {
  *minute_rows = 0;
  *bad_blobs = 0;
  for (size_t i = 0; i < KG_ARRAY_SIZE(kg_pgrollup_sums); i++)
    if (!kg_pgrollup_exec(conn, kg_pgrollup_sums[i], err, errlen)) return -1;
  if (!kg_pgrollup_exec(conn, kg_pgrollup_cursor, err, errlen)) return -1;
  kg_pgrollup_mig m = {.conn = conn, .err = err, .errlen = errlen};
  kg_pgrollup r;
  kg_pgrollup_init(&r, kg_pgrollup_insert, &m);
  char fetch[48];
  snprintf(fetch, sizeof(fetch), "FETCH %d FROM kg_rollup", KG_PGROLLUP_FETCH);
  int rc = 0;
  for (;;) {
    PGresult *res = PQexecParams(conn, fetch, 0, NULL, NULL, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
      snprintf(err, errlen, "%s", PQresultErrorMessage(res));
      PQclear(res);
      rc = -1;
      break;
    }
    int n = kg_pgrollup_page(&r, res, &m);
    PQclear(res);
    if (n < 0) {
      rc = -1;
      break;
    }
    *minute_rows += (uint64_t)n;
    if (n < KG_PGROLLUP_FETCH) break;
  }
  if (rc == 0 && !kg_pgrollup_finish(&r)) rc = -1;
  *bad_blobs = r.bad_blobs;
  kg_pgrollup_free(&r);
  if (rc == 0 && !kg_pgrollup_exec(conn, "CLOSE kg_rollup", err, errlen)) rc = -1;
  return rc;
}
