/* result.h: the types a comparison reads and writes, shared by every stage
 * after it.
 *
 * A request and each backend's response are seen through borrowed views
 * (kg_req_view, kg_resp_view): live shadowing builds them from an
 * exchange's legs, replay from a recording and the replayed answer, and
 * the Lua hooks push them to the user. One shadow compared with the master
 * is a kg_pair_result (owned by whoever asked for the comparison); one
 * compared request as a whole is a kg_result, which the results pipeline
 * hands to every sink (diff log, store, ...).
 *
 * This header sits in compare/, the lowest stage that needs these types,
 * so that neither the comparison engine nor the sinks depend on the proxy
 * or its hooks. */
#ifndef KG_RESULT_H
#define KG_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"
#include "compare/differences.h"
#include "http/hdrs.h"

/* What a hook sees of a request. All pointers are borrowed for the call. */
typedef struct kg_req_view {
  const char *method;   /* "GET" */
  const char *url;      /* request target as received: "/a/b?c=1" */
  const char *path;     /* url without the query: "/a/b" */
  const kg_hdrs *hdrs;  /* request header fields as received */
  const char *body;     /* request body (de-chunked), may be NULL */
  size_t body_len;
  uint64_t conn_id;     /* the client connection, unique in the process
                           (1, 2, ...); 0 when there is none (replay) */
  uint64_t conn_seq;    /* this request's number on it, from 1 */
} kg_req_view;

/* One backend's outcome: what is compared, logged, stored and shown to
 * on_backends_finished. All pointers are borrowed. */
typedef struct kg_resp_view {
  const char *backend;   /* backend name */
  int status;            /* HTTP status, or 0 when the backend failed */
  const char *error;     /* NULL, or why it failed ("timeout", ...) */
  const kg_hdrs *hdrs;   /* response header fields (NULL when failed) */
  const char *body;      /* decoded from chunked framing; may be truncated */
  size_t body_len;
  double elapsed;        /* seconds */
  unsigned long long bytes; /* decoded body bytes received (>= body_len) */
  int truncated;         /* body holds only the first max_capture_bytes */
} kg_resp_view;

/* How the bodies were compared: the differ that took them (see
 * compare/differ.h; NULL reads as text). */
typedef struct kg_differ kg_differ;
typedef const kg_differ *kg_kind;
extern const kg_differ kg_differ_json, kg_differ_html, kg_differ_text, kg_differ_binary;
#define KG_KIND_TEXT (&kg_differ_text)
#define KG_KIND_JSON (&kg_differ_json)
#define KG_KIND_HTML (&kg_differ_html)
#define KG_KIND_BINARY (&kg_differ_binary)

/* "text", "json", "html", "binary", ...: the differ's name, as the diff
 * log, the store and the hooks use it (compare.c). */
const char *kg_kind_name(kg_kind k);

/* One shadow compared with the master (kg_compare_pair fills it, and
 * kg_pair_result_free frees what it owns). Header differences use the same
 * shape as body differences: where is "header:Name", master/shadow the
 * values (several fields joined by ", "). */
typedef struct kg_pair_result {
  bool equal;            /* nothing differs (after noise) */
  bool status_differs;
  kg_kind kind;          /* how the bodies were compared */
  const char *error;     /* static: why the comparison could not be made
                            (a failed backend, an undecodable body) */
  kg_diffs body;         /* body differences */
  kg_diffs headers;      /* header differences */
  kg_buf diff;           /* human-readable unified diff of the bodies */
} kg_pair_result;

/* One compared request: what a sink writes (one diff log line, one store
 * row). Everything is borrowed from whoever made the comparison, for as
 * long as the sinks' write call runs. Index i of resps, roles and pairs is
 * the same backend; resps[0] is the master. */
typedef struct kg_result {
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
} kg_result;

#endif
