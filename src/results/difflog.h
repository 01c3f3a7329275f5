/* difflog.h: the diff log, one JSON object per compared request.
 *
 * Shared by every worker and written only from the thread pool. Each record
 * is formatted completely first and then appended with one write(2) on an
 * O_APPEND descriptor under a lock, so a reader (or a kill -9) never sees
 * half a line from us, and records from different threads never interleave. */
#ifndef KG_DIFFLOG_H
#define KG_DIFFLOG_H

#include <stddef.h>
#include <time.h>

#include "common/buf.h"
#include "compare/compare.h"
#include "proxy/hooks.h"

typedef struct kg_difflog kg_difflog;

/* What one line says. Everything is borrowed for the call. Index i of
 * resps, roles and pairs is the same backend; resps[0] is the master. */
typedef struct kg_record {
  const char *id;
  struct timespec ts;          /* wall clock when the request arrived */
  const char *method;
  const char *url;
  const char *endpoint;        /* "GET /users/:id" */
  const kg_hdrs *req_hdrs;     /* the request's header fields */
  const kg_resp_view *resps;
  const char *const *roles;    /* "master", "shadow", "secondary", "repeat" */
  const kg_pair_result *pairs; /* shadows' results (others unused) */
  size_t n;
  bool equal;                  /* every shadow matched */
  bool truncated;              /* some body was cut at max_capture_bytes */
  kg_kind kind;                /* of the master's body */
  const char *const *suppressed; /* noise that was hidden, all shadows */
  size_t nsuppressed;
  uint64_t regression;         /* bit i: backend i is flagged slower */
} kg_record;

/* Opens (creating, appending) `path`. Returns 0 or a negative errno. */
int kg_difflog_open(const char *path, kg_difflog **out);
/* Opens `path` again and writes there from now on (after logrotate has
 * renamed the file). Returns 0, or a negative errno with the old file
 * still in use. Safe while other threads write. */
int kg_difflog_reopen(kg_difflog *d, const char *path);
/* Appends one line. Returns 0 or a negative errno (the line is lost). */
int kg_difflog_append(kg_difflog *d, const char *line, size_t len);
/* Formats the n records and appends them with one write (a batch of
 * results, from the thread pool). Returns 0 or a negative errno, after
 * logging it. */
int kg_difflog_write(kg_difflog *d, const kg_record *const *recs, size_t n);
/* fsyncs and closes. */
void kg_difflog_close(kg_difflog *d);

/* Formats r as one JSON line (with the trailing newline) into out. */
void kg_record_format(const kg_record *r, kg_buf *out);

#endif
