/* admin_int.h: what the admin listener's files share (not for others).
 *
 *   admin.c          listener, connections, routing, token, static files
 *   admin_metrics.c  the Prometheus exposition
 *   admin_api.c      the JSON API over the results store
 *   admin_cache.c    its answers from a fleet's store, kept for a moment
 *
 * A handler gets a parsed request and fills a response; admin.c frames it
 * (status line, Content-Length, security headers, keep-alive), so handlers
 * never see the connection. */
#ifndef KG_ADMIN_INT_H
#define KG_ADMIN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin/admin.h"
#include "common/buf.h"
#include "http/hdrs.h"

typedef struct kg_admin_req {
  const char *path;      /* NUL-terminated, before any '?', not decoded */
  const char *query;     /* after the '?' (not decoded), or "" */
  const kg_hdrs *hdrs;
  bool head;             /* HEAD: the framing admin.c writes omits the body */
} kg_admin_req;

typedef struct kg_admin_resp {
  int status;
  const char *content_type;  /* static string */
  const char *cache;         /* Cache-Control value, static; default no-store */
  const char *etag;          /* static quoted validator, or NULL */
  kg_buf body;               /* owned by the response */
  const char *allow;         /* Allow field for 405, static, or NULL */
  bool challenge;            /* 401: add WWW-Authenticate */
  int retry_after;           /* 503: seconds for Retry-After; 0 for none */
} kg_admin_resp;

/* Sets a short text/plain answer (errors, /healthz). */
void kg_admin_resp_text(kg_admin_resp *r, int status, const char *text);

/* Percent-decodes n bytes into out (reset first), and '+' into a space
 * when plus_is_space (query strings). False on a bad escape or an encoded
 * NUL, which nothing downstream wants. */
bool kg_admin_decode(const char *p, size_t n, bool plus_is_space, kg_buf *out);

/* True when every escape in the query string decodes (and none to NUL). */
bool kg_admin_query_valid(const char *query);

/* Finds parameter `name` in a query string (a=1&b=x%20y), percent- and
 * '+'-decoded into out (reset first). Returns false when absent; a value
 * that decodes to a NUL or is badly escaped reads as absent too. */
bool kg_admin_query(const char *query, const char *name, kg_buf *out);

/* Renders /metrics (Prometheus text exposition format 0.0.4) into out. */
void kg_admin_metrics(const kg_admin_ctx *ctx, kg_buf *out);

/* The JSON API over the results store (admin_api.c): queries run on
 * libuv's thread pool, a few at a time, each on a read-only SQLite
 * connection of its own; the loop thread checks parameters and frames. */
typedef struct kg_admin_api kg_admin_api;
typedef struct kg_admin_job kg_admin_job;

/* How a job hands its answer to its waiter, on the loop thread. resp and
 * its body stay the job's: the waiter copies what it needs (frames it)
 * before returning. */
typedef void (*kg_admin_job_done)(void *waiter, kg_admin_resp *resp);

kg_admin_api *kg_admin_api_new(uv_loop_t *loop, const kg_admin_ctx *ctx);
/* Every waiter must have detached first. Jobs still on the pool finish
 * there and the API is freed by the last one, so the loop must run on
 * (it does: pending work keeps it alive). NULL is fine. */
void kg_admin_api_free(kg_admin_api *api);

/* Starts answering a request whose path starts with /api/. Returns NULL
 * when the answer is known at once, in resp: /api/noise (read from memory,
 * store or not), 400 for a bad parameter, 404 for an unknown route, 503
 * without a store, or 503 with retry_after when too many API requests are
 * already waiting. Otherwise returns a job that
 * will call done(waiter, answer) once, on the loop thread and never from
 * within this call, unless kg_admin_job_detach is called first. */
kg_admin_job *kg_admin_api_handle(kg_admin_api *api, const kg_admin_req *req,
                                  kg_admin_resp *resp, kg_admin_job_done done,
                                  void *waiter);

/* The waiter is going away (its connection closes): done will never be
 * called, and the job is freed when it can be (at once if it has not
 * started). The job pointer is invalid afterwards. */
void kg_admin_job_detach(kg_admin_job *job);

/* A fleet store's recent answers (admin_cache.c), by request (path and
 * query as sent), each for ttl_ms; loop thread only. get fills resp (a
 * 200) and returns true when the key was answered less than ttl_ms
 * before now_ms; put keeps a 200 answer (not a too big one), replacing
 * the oldest when full. */
typedef struct kg_admin_cache kg_admin_cache;
kg_admin_cache *kg_admin_cache_new(uint64_t ttl_ms);
void kg_admin_cache_free(kg_admin_cache *c);  /* NULL is fine */
bool kg_admin_cache_get(kg_admin_cache *c, uint64_t now_ms, const char *key,
                        kg_admin_resp *resp);
void kg_admin_cache_put(kg_admin_cache *c, uint64_t now_ms, const char *key,
                        const kg_admin_resp *resp);

#endif
