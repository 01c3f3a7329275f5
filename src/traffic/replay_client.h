/* replay_client.h: the small HTTP/1.1 client `kagami replay` sends with.
 *
 * One kg_rc talks to one target over pooled keep-alive connections, one
 * request per connection at a time, on the caller's libuv loop (not
 * thread-safe). It is deliberately not upstream.c, which is tied to the
 * proxy's worker, exchanges and flow control; what they share is the
 * parser adapter (http.h) and the error strings of the diff log.
 *
 * Contract: kg_rc_send never fails by itself and never calls `done` from
 * inside; `done` is called exactly once per request, from the loop, with
 * req->error NULL (a complete response in resp/body) or a static
 * description: "connection refused", "connect failed", "connection
 * reset", "connection closed without response", "connection closed
 * mid-response", "invalid response", "timeout", "write failed". A request
 * that met a pooled connection the target had closed while idle is resent
 * once on a new connection when retry_ok (idempotent methods). */
#ifndef KG_REPLAY_CLIENT_H
#define KG_REPLAY_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "http/http.h"

typedef struct kg_rc kg_rc;
typedef struct kg_rc_conn kg_rc_conn;
typedef struct kg_rc_req kg_rc_req;

typedef void (*kg_rc_done_cb)(kg_rc_req *req);

struct kg_rc_req {
  /* set by the caller before kg_rc_send */
  kg_buf bytes;          /* the whole request, head and body (owned) */
  bool head;             /* a HEAD request: the response has no body */
  bool retry_ok;         /* may be resent once after a stale connection */
  size_t max_capture;    /* body bytes kept in `body` */
  kg_rc_done_cb done;
  /* results, valid in done */
  const char *error;     /* NULL on success, else a static description */
  kg_http_msg resp;      /* the response head */
  kg_buf body;           /* the first max_capture bytes of the decoded body */
  uint64_t body_bytes;   /* decoded body bytes received */
  bool truncated;        /* body_bytes > max_capture */
  uint64_t t_start;      /* kg_now_ns() when sent */
  uint64_t t_end;        /* kg_now_ns() when done */
  /* private to replay_client.c */
  kg_rc_conn *conn;      /* the connection it is on, while in flight */
  bool retried;          /* already resent once */
};

/* Initialises a request (empty buffers, no results). */
void kg_rc_req_init(kg_rc_req *r);
/* Frees its buffers (not r itself, which the caller embeds). */
void kg_rc_req_free(kg_rc_req *r);

/* A client for the target at addr (copied), with `timeout` seconds of
 * silence allowed per request (connecting, before the response, between
 * reads). Never fails. */
kg_rc *kg_rc_new(uv_loop_t *loop, const struct sockaddr *addr, socklen_t addrlen,
                 double timeout);
/* Sends r (see the contract above). */
void kg_rc_send(kg_rc *c, kg_rc_req *r);
/* Connections opened so far (for the summary: keep-alive at work). */
uint64_t kg_rc_connections_opened(const kg_rc *c);
/* Closes the idle connections and frees the client once every handle is
 * closed (the loop must run on for that). No request may be in flight. */
void kg_rc_close(kg_rc *c);

#endif
