/* upstream.c: backend connections, pools, and legs (see upstream.h).
 *
 * Connection states, from the leg's point of view:
 *   CONNECTING -> (write request, read response) -> back to the pool, or
 *   closed. A pooled connection that fails before any response byte was
 *   probably closed by the backend while idle (the keep-alive race), so the
 *   leg is retried once on a fresh connection.
 *
 * A connection owns two handles (tcp, timer) and is freed when both close
 * callbacks have run; nothing else points to it by then, because the leg
 * and the pool drop their pointers before uv_close is called. */
#include "client/upstream.h"

#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "proxy/exchange.h"
#include "common/log.h"
#include "proxy/worker.h"

#define KG_POOL_MAX_IDLE 256              /* idle connections per backend */
#define KG_POOL_IDLE_TIMEOUT_MS (30 * 1000) /* below common backend defaults */

struct kg_upconn {
  uv_tcp_t tcp;             /* the socket */
  uv_timer_t timer;         /* fires at timer_due, then checks deadline */
  uint64_t deadline;        /* loop time the current phase times out at */
  uint64_t timer_due;       /* when the timer is set to fire, if active */
  uv_connect_t connect_req;
  uv_write_t write_req;
  kg_pool *pool;            /* the pool it belongs to */
  kg_leg *leg;              /* borrower, or NULL while idle/closing */
  kg_http http;             /* response parser */
  kg_upconn *idle_prev, *idle_next; /* idle list links */
  int open_handles;         /* handles not yet closed; free at 0 */
  bool connected;
  bool closing;
  bool reused;              /* served an earlier request */
  bool is_idle;
  bool writing;             /* write_req is in libuv's hands */
  const char *deferred_error; /* failure to report from the timer, so that
                                 kg_leg_start never calls back directly */
};

static void kg_upconn_send(kg_upconn *c);
static void kg_upconn_on_read(uv_stream_t *s, ssize_t nread,
                              const uv_buf_t *buf);
static void kg_upconn_on_timer(uv_timer_t *t);

#define KG_NO_DEADLINE UINT64_MAX

/* Timeouts are lazy: moving the deadline only touches libuv's timer heap
 * when the new deadline is earlier than the timer. A leg moves it several
 * times per request (borrowed, each read, back to the pool) and restarting
 * the timer each time showed in profiles; a timer that fires early just
 * sleeps again until the deadline. */
static void kg_upconn_deadline(kg_upconn *c, uint64_t ms) {
  uv_loop_t *loop = c->timer.loop;
  uint64_t due = ms == KG_NO_DEADLINE ? KG_NO_DEADLINE : uv_now(loop) + ms;
  c->deadline = due;
  if (due == KG_NO_DEADLINE) return;
  if (!uv_is_active((uv_handle_t *)&c->timer) || due < c->timer_due) {
    uv_timer_start(&c->timer, kg_upconn_on_timer, ms, 0);
    c->timer_due = due;
  }
}

void kg_pool_init(kg_pool *p, kg_worker *w, const kg_config *cfg, int index) {
  memset(p, 0, sizeof(*p));
  p->w = w;
  p->cfg = cfg;
  const kg_backend_cfg *be = &cfg->backends[index];
  p->be = be;
  p->index = index;
}

/* --- connection lifetime --------------------------------------------------- */

static void kg_upconn_on_close(uv_handle_t *h) {
  kg_upconn *c = h->data;
  if (--c->open_handles == 0) {
    kg_http_free(&c->http);
    free(c);
  }
}

static void kg_idle_remove(kg_upconn *c) {
  if (!c->is_idle) return;
  kg_pool *p = c->pool;
  if (c->idle_prev) c->idle_prev->idle_next = c->idle_next;
  else p->idle = c->idle_next;
  if (c->idle_next) c->idle_next->idle_prev = c->idle_prev;
  c->idle_prev = c->idle_next = NULL;
  c->is_idle = false;
  p->nidle--;
}

static void kg_upconn_close(kg_upconn *c) {
  if (c->closing) return;
  c->closing = true;
  kg_idle_remove(c);
  c->leg = NULL;
  c->pool->nconns--;
  uv_close((uv_handle_t *)&c->tcp, kg_upconn_on_close);
  uv_close((uv_handle_t *)&c->timer, kg_upconn_on_close);
  kg_worker_maybe_finish(c->pool->w);
}

static int kg_upconn_on_head(void *ud, kg_http_msg *m);
static int kg_upconn_on_body(void *ud, const char *p, size_t n);
static const kg_http_ops kg_upconn_http_ops = {
    .on_head = kg_upconn_on_head,
    .on_body = kg_upconn_on_body,
};

static kg_upconn *kg_upconn_new(kg_pool *p) {
  kg_upconn *c = kg_calloc(1, sizeof(*c));
  c->pool = p;
  kg_http_init(&c->http, HTTP_RESPONSE, &kg_upconn_http_ops, c,
               (kg_http_limits){0, 0});
  uv_tcp_init(&p->w->loop, &c->tcp);
  uv_timer_init(&p->w->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->open_handles = 2;
  p->nconns++;
  return c;
}

static uint64_t kg_backend_timeout_ms(const kg_pool *p) {
  return p->cfg->backend_timeout_ms;
}

static void kg_upconn_attach(kg_upconn *c, kg_leg *leg) {
  c->leg = leg;
  leg->conn = c;
}

/* --- finishing a leg ------------------------------------------------------- */

static void kg_upconn_make_idle(kg_upconn *c) {
  kg_pool *p = c->pool;
  c->reused = true;
  c->is_idle = true;
  c->idle_prev = NULL;
  c->idle_next = p->idle;
  if (p->idle) p->idle->idle_prev = c;
  p->idle = c;
  p->nidle++;
  kg_http_resume(&c->http);
  /* Keep reading while idle: EOF or stray bytes close the connection now
   * instead of failing the next request that borrows it. */
  uv_read_start((uv_stream_t *)&c->tcp, kg_worker_alloc, kg_upconn_on_read);
  kg_upconn_deadline(c, KG_POOL_IDLE_TIMEOUT_MS);
}

/* Detaches the leg from its connection and tells the exchange. The
 * connection goes back to the pool first (when reusable) so that what the
 * exchange does next, e.g. start the client's next pipelined request, can
 * borrow it at once. */
static void kg_leg_finish(kg_leg *leg, const char *error, bool reusable) {
  kg_upconn *c = leg->conn;
  leg->conn = NULL;
  leg->error = error;
  leg->t_end = kg_now_ns();
  leg->done = true;
  leg->pool->inflight--;
  if (leg->role != KG_ROLE_MASTER) leg->pool->inflight_bytes -= leg->body.len;
  if (error) leg->pool->w->stats.backend_errors[leg->pool->index]++;
  if (c) {
    c->leg = NULL;
    /* A backend may answer before it has read the whole request (an early
     * 413, say): the rest of the body would reach it as the next request,
     * and write_req is still busy. Such a connection is not reused. */
    if (reusable && !c->writing && !c->pool->w->stopping && !c->pool->retired &&
        c->pool->nidle < KG_POOL_MAX_IDLE)
      kg_upconn_make_idle(c);
    else
      kg_upconn_close(c);
  }
  kg_exchange_leg_done(leg);
}

static void kg_upconn_connect(kg_pool *p, kg_leg *leg);

/* A connection-level failure. A pooled connection that fails before any
 * response byte most likely lost the keep-alive race (the backend closed it
 * while idle), so an idempotent request is sent once more on a fresh
 * connection; anything else is the leg's outcome. */
static void kg_leg_fail(kg_leg *leg, const char *error, bool retryable) {
  kg_upconn *c = leg->conn;
  if (retryable && c && c->reused && !leg->got_response && !leg->retried &&
      leg->retry_ok) {
    leg->retried = true;
    c->leg = NULL;
    leg->conn = NULL;
    kg_upconn_close(c);
    kg_upconn_connect(leg->pool, leg);
    return;
  }
  kg_leg_finish(leg, error, false);
}

static void kg_upconn_on_timer(uv_timer_t *t) {
  kg_upconn *c = t->data;
  if (c->closing) return;
  if (c->deferred_error == NULL) {
    uint64_t now = uv_now(t->loop);
    if (c->deadline == KG_NO_DEADLINE) return;
    if (now < c->deadline) { /* moved since the timer was set */
      uv_timer_start(t, kg_upconn_on_timer, c->deadline - now, 0);
      c->timer_due = c->deadline;
      return;
    }
  }
  if (c->leg == NULL) { /* idle too long */
    kg_upconn_close(c);
    return;
  }
  if (c->deferred_error) {
    const char *e = c->deferred_error;
    c->deferred_error = NULL;
    kg_leg_fail(c->leg, e, true);
    return;
  }
  kg_leg_fail(c->leg, "timeout", false);
}

static void kg_upconn_arm(kg_upconn *c) {
  kg_upconn_deadline(c, kg_backend_timeout_ms(c->pool));
}

/* Reports `error` for the leg on the next loop iteration. */
static void kg_upconn_defer_error(kg_upconn *c, const char *error) {
  c->deferred_error = error;
  uv_timer_start(&c->timer, kg_upconn_on_timer, 0, 0);
  c->timer_due = uv_now(c->timer.loop);
}

/* --- request and response -------------------------------------------------- */

bool kg_pool_is_down(const kg_pool *p) {
  return p->down_until > uv_now(&p->w->loop);
}

static void kg_pool_connect_failed(kg_pool *p) {
  if (++p->connect_failures < KG_POOL_DOWN_AFTER) return;
  if (p->connect_failures == KG_POOL_DOWN_AFTER && p->index > 0)
    kg_log_warn("shadow %s failed to connect %d times in a row: copies are "
                "skipped while it is down (probed again after a pause)",
                p->be->name, KG_POOL_DOWN_AFTER);
  unsigned k = KG_MIN(p->connect_failures - KG_POOL_DOWN_AFTER, 5u);
  uint64_t ms = KG_MIN((uint64_t)1000 << k, (uint64_t)30000);
  p->down_until = uv_now(&p->w->loop) + ms;
}

static void kg_upconn_on_connect(uv_connect_t *req, int status) {
  kg_upconn *c = req->data;
  if (c->closing || c->leg == NULL) return; /* cancelled meanwhile */
  if (status < 0) {
    kg_pool_connect_failed(c->pool);
    kg_leg_fail(c->leg,
                status == UV_ECONNREFUSED ? "connection refused"
                                          : "connect failed",
                false);
    return;
  }
  c->connected = true;
  if (c->pool->connect_failures >= KG_POOL_DOWN_AFTER && c->pool->index > 0)
    kg_log_info("shadow %s accepts connections again", c->pool->be->name);
  c->pool->connect_failures = 0;
  c->pool->down_until = 0;
  uv_tcp_nodelay(&c->tcp, 1);
  kg_upconn_send(c);
}

static void kg_upconn_connect(kg_pool *p, kg_leg *leg) {
  kg_upconn *c = kg_upconn_new(p);
  kg_upconn_attach(c, leg);
  c->connect_req.data = c;
  kg_upconn_arm(c);
  int r = uv_tcp_connect(&c->connect_req, &c->tcp,
                         (const struct sockaddr *)&p->be->addr.sa,
                         kg_upconn_on_connect);
  if (r < 0) kg_upconn_defer_error(c, "connect failed");
}

static void kg_upconn_on_write(uv_write_t *req, int status) {
  kg_upconn *c = req->data;
  c->writing = false;
  if (status < 0 && !c->closing && c->leg) kg_leg_fail(c->leg, "write failed", true);
}

static void kg_upconn_send(kg_upconn *c) {
  kg_leg *leg = c->leg;
  uv_stream_t *s = (uv_stream_t *)&c->tcp;
  uv_buf_t b = uv_buf_init(leg->req.data, (unsigned)leg->req.len);
  kg_upconn_arm(c);
  /* A request nearly always fits the socket buffer. uv_try_write sends it
   * without libuv's write queue, whose drain costs an epoll_ctl per
   * request; only a remainder is queued. Failures are reported from the
   * timer either way, so a stale pooled connection is retried as usual. */
  int n = uv_try_write(s, &b, 1);
  if (n < 0 && n != UV_EAGAIN) {
    kg_upconn_defer_error(c, "write failed");
    return;
  }
  if (n < 0) n = 0;
  if ((size_t)n < leg->req.len) {
    b = uv_buf_init(leg->req.data + n, (unsigned)(leg->req.len - (size_t)n));
    c->write_req.data = c;
    if (uv_write(&c->write_req, s, &b, 1, kg_upconn_on_write) < 0) {
      kg_upconn_defer_error(c, "write failed");
      return;
    }
    c->writing = true;
  }
  if (!leg->paused)
    uv_read_start((uv_stream_t *)&c->tcp, kg_worker_alloc, kg_upconn_on_read);
}

static int kg_upconn_on_head(void *ud, kg_http_msg *m) {
  kg_upconn *c = ud;
  kg_leg *leg = c->leg;
  if (leg == NULL) return 502;
  if (m->status < 200) { /* interim (1xx): no body; parsing goes on after */
    if (m->status == 101) return 502; /* we never ask for an upgrade */
    kg_exchange_leg_interim(leg, m);
    return c->leg == leg ? 0 : 502;
  }
  kg_http_msg_move(&leg->resp, m);
  if (leg->capture && leg->resp.has_length && !leg->head_request) /* one allocation */
    kg_buf_reserve(&leg->body, (size_t)KG_MIN(leg->resp.content_length,
                                              (uint64_t)leg->pool->cfg->max_capture_bytes));
  kg_exchange_leg_head(leg);
  if (c->leg != leg) return 502; /* the exchange gave up on this leg */
  return leg->head_request ? 1 : 0;
}

static int kg_upconn_on_body(void *ud, const char *p, size_t n) {
  kg_upconn *c = ud;
  kg_leg *leg = c->leg;
  if (leg == NULL) return 502;
  leg->body_bytes += n;
  if (leg->capture) {
    size_t cap = leg->pool->cfg->max_capture_bytes;
    size_t room = leg->body.len < cap ? cap - leg->body.len : 0;
    if (n > room) leg->truncated = true;
    kg_buf_append(&leg->body, p, KG_MIN(n, room));
    if (leg->role != KG_ROLE_MASTER) leg->pool->inflight_bytes += KG_MIN(n, room);
  }
  kg_exchange_leg_body(leg, p, n);
  return c->leg == leg ? 0 : 502;
}

static const char *kg_read_error(ssize_t nread, bool got_response) {
  if (nread == UV_ECONNRESET) return "connection reset";
  if (nread == UV_EOF)
    return got_response ? "connection closed mid-response"
                        : "connection closed without response";
  return "read error";
}

static void kg_upconn_on_read(uv_stream_t *s, ssize_t nread,
                              const uv_buf_t *buf) {
  kg_upconn *c = s->data;
  if (c->closing || nread == 0) return;
  kg_leg *leg = c->leg;
  if (leg == NULL) { /* idle: the backend closed or spoke out of turn */
    kg_upconn_close(c);
    return;
  }
  if (nread < 0) {
    uv_read_stop(s);
    if (nread == UV_EOF && kg_http_eof(&c->http) == KG_HTTP_PAUSED) {
      kg_leg_finish(leg, NULL, false); /* close-delimited body ended */
      return;
    }
    kg_leg_fail(leg, kg_read_error(nread, leg->got_response), true);
    return;
  }
  leg->got_response = true;
  kg_upconn_arm(c);
  const char *p = buf->base;
  size_t left = (size_t)nread;
  for (;;) {
    size_t used = 0;
    kg_http_state st = kg_http_feed(&c->http, p, left, &used);
    if (c->closing || c->leg != leg) return; /* cancelled from a callback */
    if (st == KG_HTTP_ERROR) {
      kg_leg_fail(leg, "invalid response", false);
      return;
    }
    if (st == KG_HTTP_MORE) return;
    p += used;
    left -= used;
    if (leg->resp.status == 0) { /* an interim 1xx ended: parse on */
      kg_http_resume(&c->http);
      continue;
    }
    /* Bytes after the response mean the backend is out of step with us:
     * never reuse such a connection. */
    kg_leg_finish(leg, NULL, leg->resp.keep_alive && left == 0);
    return;
  }
}

/* --- the public leg API ---------------------------------------------------- */

void kg_leg_start(kg_leg *leg) {
  kg_pool *p = leg->pool;
  p->w->stats.backend_requests[p->index]++;
  leg->started = true;
  leg->t_start = kg_now_ns();
  p->inflight++;
  kg_upconn *c = p->idle;
  if (c == NULL) {
    kg_upconn_connect(p, leg);
    return;
  }
  kg_idle_remove(c);
  kg_upconn_attach(c, leg); /* kg_upconn_send sets the deadline */
  kg_upconn_send(c);
}

void kg_leg_cancel(kg_leg *leg) {
  if (!leg->started || leg->done) return;
  kg_upconn *c = leg->conn;
  leg->conn = NULL;
  leg->done = true;
  leg->error = "cancelled";
  leg->pool->inflight--;
  if (leg->role != KG_ROLE_MASTER) leg->pool->inflight_bytes -= leg->body.len;
  if (c) {
    c->leg = NULL;
    kg_upconn_close(c);
  }
}

void kg_leg_pause(kg_leg *leg) {
  leg->paused = true;
  if (leg->conn && leg->conn->connected) {
    uv_read_stop((uv_stream_t *)&leg->conn->tcp);
    kg_upconn_deadline(leg->conn, KG_NO_DEADLINE); /* the client is slow, not the backend */
  }
}

void kg_leg_resume(kg_leg *leg) {
  if (!leg->paused) return;
  leg->paused = false;
  kg_upconn *c = leg->conn;
  if (c && c->connected && !c->closing) {
    uv_read_start((uv_stream_t *)&c->tcp, kg_worker_alloc, kg_upconn_on_read);
    kg_upconn_arm(c);
  }
}

void kg_leg_free(kg_leg *leg) {
  kg_http_msg_free(&leg->resp);
  kg_buf_free(&leg->req);
  kg_buf_free(&leg->body);
}

void kg_pool_close_idle(kg_pool *p) {
  while (p->idle) kg_upconn_close(p->idle);
}
