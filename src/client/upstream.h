/* upstream.h: the HTTP/1.1 client: backend connection pools and requests.
 *
 * A kg_pool holds one backend's keep-alive connections on one loop. A
 * kg_leg is one request's trip to a pool's backend: the request bytes to
 * send, the parsed response head, the captured body, timings and the
 * outcome. The caller owns both. A connection (kg_upconn, private to
 * upstream.c, carried by a net/conn.h kg_conn) is lent to a leg while the
 * request is in flight and goes back to the pool, or is closed, before the
 * caller hears the leg is done.
 *
 * The client knows nothing of its callers: the live proxy's exchange and
 * `kagami replay` both use it. It reports through the callbacks the
 * caller registers on each leg (kg_leg_cbs):
 *   on_interim(leg, msg)  a 1xx interim response (not 101); optional
 *   on_head(leg)          the response head is in leg->resp; optional
 *   on_body(leg, p, n)    decoded body bytes (also captured when
 *                         leg->capture); optional
 *   on_done(leg)          finished; leg->error says how
 * on_done is called exactly once per started leg that is not cancelled,
 * never from inside kg_leg_start, and the leg is not touched by the client
 * after it. From on_interim/on_head/on_body the caller may cancel the leg.
 *
 * leg->error is NULL on success or one of these static strings:
 * "connection refused", "connect failed", "connection reset",
 * "connection closed without response", "connection closed mid-response",
 * "read error", "write failed", "invalid response", "timeout", or one of
 * the transport's own (kg_conn_strerror: "tls: certificate has expired",
 * "tls: handshake timeout", ...). */
#ifndef KG_UPSTREAM_H
#define KG_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "common/buf.h"
#include "http/http.h"
#include "net/conn.h"

typedef struct kg_upconn kg_upconn;
typedef struct kg_leg kg_leg;

/* The backend a pool talks to, filled by the caller. */
typedef struct kg_upstream {
  const char *name;            /* for logs (lent: outlives the pool) */
  const char *host;            /* "host:port", for a Host field (lent) */
  struct sockaddr_storage addr; /* where to connect */
  const kg_conn_ops *transport; /* what carries the bytes (NULL: TCP) */
  void *transport_ctx;         /* its settings (kg_conn.transport_ctx;
                                  https: a kg_tls_ctx), lent */
  uint64_t timeout_ms;         /* silence allowed to connect, before the
                                  response and between its reads */
  uint64_t idle_timeout_ms;    /* an idle pooled connection is closed after
                                  this (KG_CONN_NO_DEADLINE: never) */
  size_t max_idle;             /* idle connections kept */
  size_t max_capture;          /* body bytes a capturing leg keeps */
  bool log_down;               /* log when it starts and stops refusing */
} kg_upstream;

typedef struct kg_pool {
  uv_loop_t *loop;              /* where its connections live */
  kg_upstream be;               /* the backend */
  char *rbuf;                   /* every read lands here (lent) */
  size_t rbuf_len;
  int index;                    /* the caller's number for it (the proxy:
                                   its position in cfg->backends) */
  bool retired;                 /* a reload replaced it or the worker is
                                   stopping: connections close when their
                                   request is done */
  kg_upconn *idle;              /* idle connections (intrusive list) */
  size_t nidle;                 /* length of the idle list */
  size_t nconns;                /* open connections, idle or busy */
  uint64_t opened;              /* connections ever opened */
  size_t inflight;              /* legs currently using this pool */
  unsigned connect_failures;    /* consecutive failed connects */
  uint64_t down_until;          /* loop time (ms) before which a backend
                                   that keeps refusing gets no requests */
  size_t inflight_bytes;        /* body bytes captured by in-flight
                                   `bounded` legs (the proxy's shadows: the
                                   master's response must get through) */
} kg_pool;

/* The caller's callbacks (see above); a static table, shared by its legs. */
typedef struct kg_leg_cbs {
  void (*on_interim)(kg_leg *leg, const kg_http_msg *msg);
  void (*on_head)(kg_leg *leg);
  void (*on_body)(kg_leg *leg, const char *p, size_t n);
  void (*on_done)(kg_leg *leg);
} kg_leg_cbs;

struct kg_leg {
  /* set by the caller before kg_leg_start (the rest zeroed) */
  const kg_leg_cbs *cbs;  /* how the caller is told */
  void *data;             /* the caller's (the exchange, a replayed request) */
  int role;               /* the caller's tag, not used here */
  kg_pool *pool;          /* the backend */
  kg_buf req;             /* request bytes to send (owned) */
  bool head_request;      /* the request was HEAD: the response has no body */
  bool capture;           /* keep body bytes (up to be.max_capture) */
  bool bounded;           /* count captured bytes in pool->inflight_bytes */
  bool retry_ok;          /* idempotent: may be resent after a stale
                             pooled connection failed (RFC 9110 9.2.2) */
  /* the client's */
  kg_upconn *conn;        /* lent connection while in flight, else NULL */
  bool started;           /* kg_leg_start was called */
  bool done;              /* finished or cancelled */
  bool retried;           /* already retried once on a fresh connection */
  bool got_response;      /* at least one response byte arrived */
  bool paused;            /* reading paused by the caller */
  /* the outcome, valid in on_done */
  uint64_t t_start;       /* kg_now_ns() at start */
  uint64_t t_end;         /* kg_now_ns() at done */
  kg_http_msg resp;       /* response head (owned), valid after on_head */
  kg_buf body;            /* captured decoded body (owned) */
  uint64_t body_bytes;    /* decoded body bytes received, captured or not */
  bool truncated;         /* body_bytes exceeded the capture limit */
  const char *error;      /* NULL on success, else a static description */
};

/* Prepares pool p (memory owned by the caller) for backend be (copied; its
 * strings are lent) on loop; reads land in rbuf[0..rbuf_len), which must
 * outlive the pool's connections and is reused by every read. */
void kg_pool_init(kg_pool *p, uv_loop_t *loop, const kg_upstream *be, char *rbuf,
                  size_t rbuf_len);
/* A backend that refused or failed to connect KG_POOL_DOWN_AFTER times in a
 * row is left alone for a while (1 s, doubling to 30 s), then probed with
 * the next request: sending copies to a dead shadow would only burn CPU. */
#define KG_POOL_DOWN_AFTER 5
bool kg_pool_is_down(const kg_pool *p);
/* Closes every idle connection (at shutdown). Busy ones close when done.
 * With no leg in flight, the pool's memory may go once this returns (the
 * loop must still run to finish closing). */
void kg_pool_close_idle(kg_pool *p);

/* Sends leg->req to the leg's backend on a pooled or new connection. */
void kg_leg_start(kg_leg *leg);
/* Abandons an in-flight leg: its connection is closed, and no callback for
 * it runs any more (on_done is NOT called). */
void kg_leg_cancel(kg_leg *leg);
/* Flow control: stop and resume reading the response (while paused the
 * backend is not timed: the reader is slow, not the backend). */
void kg_leg_pause(kg_leg *leg);
void kg_leg_resume(kg_leg *leg);
/* Frees the leg's buffers (not the leg itself, which the caller owns). */
void kg_leg_free(kg_leg *leg);

#endif
