/* upstream.h: backend connection pools and one request's trip to a backend.
 *
 * A kg_pool holds one backend's idle keep-alive connections for one worker.
 * A kg_leg is one backend's part of an exchange: the request bytes to send,
 * the parsed response head, the captured body, timings and the outcome.
 * The leg belongs to its exchange; a connection (kg_upconn, private to
 * upstream.c) is lent to a leg while the request is in flight and goes back
 * to the pool, or is closed, before the exchange hears the leg is done.
 *
 * Callbacks into the exchange (declared in exchange.h):
 *   kg_exchange_leg_interim(leg, msg)  a 1xx interim response (not 101)
 *   kg_exchange_leg_head(leg)          the response head is parsed
 *   kg_exchange_leg_body(leg, p, n)    decoded body bytes
 *   kg_exchange_leg_done(leg)          finished; leg->error says how
 * kg_exchange_leg_done is called exactly once per started leg, never from
 * inside kg_leg_start, and the leg is not touched by upstream.c after. */
#ifndef KG_UPSTREAM_H
#define KG_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "config/config.h"
#include "http/http.h"

typedef struct kg_worker kg_worker;
typedef struct kg_exchange kg_exchange;
typedef struct kg_upconn kg_upconn;

typedef struct kg_pool {
  kg_worker *w;                 /* owning worker */
  const kg_config *cfg;         /* the config generation it belongs to */
  const kg_backend_cfg *be;     /* the backend, in cfg */
  bool retired;                 /* a reload replaced it: connections close
                                   when their request is done */
  int index;                    /* position in cfg->backends */
  kg_upconn *idle;              /* idle connections (intrusive list) */
  size_t nidle;                 /* length of the idle list */
  size_t nconns;                /* open connections, idle or busy */
  size_t inflight;              /* legs currently using this pool */
  unsigned connect_failures;    /* consecutive failed connects */
  uint64_t down_until;          /* loop time (ms) before which a shadow
                                   that keeps refusing gets no copies */
  size_t inflight_bytes;        /* body bytes captured by in-flight shadow
                                   legs (the master's are not bounded here:
                                   its response must get through) */
} kg_pool;

/* What a leg is for. */
typedef enum kg_role {
  KG_ROLE_MASTER = 0, /* its response goes to the client */
  KG_ROLE_SHADOW,     /* compared with the master */
  KG_ROLE_SECONDARY,  /* a second master instance: noise reference */
  KG_ROLE_REPEAT,     /* a shadow asked twice: noise reference */
} kg_role;

typedef struct kg_leg {
  kg_exchange *ex;        /* owner */
  kg_role role;
  kg_pool *pool;          /* the backend */
  kg_upconn *conn;        /* lent connection while in flight, else NULL */
  kg_buf req;             /* request bytes to send (owned) */
  bool head_request;      /* the request was HEAD: the response has no body */
  bool capture;           /* keep body bytes (up to max_capture_bytes) */
  bool started;           /* kg_leg_start was called */
  bool done;              /* kg_exchange_leg_done was called */
  bool retry_ok;          /* idempotent: may be resent after a stale
                             pooled connection failed (RFC 9110 9.2.2) */
  bool retried;           /* already retried once on a fresh connection */
  bool got_response;      /* at least one response byte arrived */
  bool paused;            /* reading paused by the exchange */
  uint64_t t_start;       /* kg_now_ns() at start */
  uint64_t t_end;         /* kg_now_ns() at done */
  kg_http_msg resp;       /* response head (owned), valid after head */
  kg_buf body;            /* captured decoded body (owned) */
  uint64_t body_bytes;    /* decoded body bytes received, captured or not */
  bool truncated;         /* body_bytes exceeded the capture limit */
  const char *error;      /* NULL on success, else a static description */
} kg_leg;

void kg_pool_init(kg_pool *p, kg_worker *w, const kg_config *cfg, int index);
/* A shadow that refused or failed to connect KG_POOL_DOWN_AFTER times in a
 * row is left alone for a while (1 s, doubling to 30 s), then probed with
 * the next copy: sending copies to a dead shadow would only burn CPU. */
#define KG_POOL_DOWN_AFTER 5
bool kg_pool_is_down(const kg_pool *p);
/* Closes every idle connection (at shutdown). Busy ones close when done. */
void kg_pool_close_idle(kg_pool *p);

/* Sends leg->req to the leg's backend on a pooled or new connection. */
void kg_leg_start(kg_leg *leg);
/* Abandons an in-flight leg: its connection is closed, and no callback for
 * it runs any more (kg_exchange_leg_done is NOT called). */
void kg_leg_cancel(kg_leg *leg);
/* Flow control for the master leg while the client is slow to read. */
void kg_leg_pause(kg_leg *leg);
void kg_leg_resume(kg_leg *leg);
/* Frees the leg's buffers (not the leg itself, which the exchange owns). */
void kg_leg_free(kg_leg *leg);

#endif
