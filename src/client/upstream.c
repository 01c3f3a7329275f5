/* upstream.c: the HTTP client's connections, pools and legs (see upstream.h).
 *
 * Connection states, from the leg's point of view:
 *   CONNECTING -> (write request, read response) -> back to the pool, or
 *   closed. A pooled connection that fails before any response byte was
 *   probably closed by the backend while idle (the keep-alive race), so the
 *   leg is retried once on a fresh connection.
 *
 * A connection is carried by a kg_conn (net/conn.h) embedded in it and is
 * freed in the conn's close callback; nothing else points to it by then,
 * because the leg and the pool drop their pointers before closing it. */
#include "client/upstream.h"

#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/log.h"
#include "net/conn.h"

struct kg_upconn {
  kg_conn conn;             /* socket, deadline, close-once; its data is
                               this kg_upconn */
  kg_conn_write_req write;  /* the request's remainder, when queued */
  kg_pool *pool;            /* the pool it belongs to; NULL once closing */
  kg_leg *leg;              /* borrower, or NULL while idle/closing */
  kg_http http;             /* response parser */
  kg_upconn *idle_prev, *idle_next; /* idle list links */
  bool connected;
  bool reused;              /* served an earlier request */
  bool is_idle;
  bool writing;             /* `write` is in libuv's hands */
  const char *deferred_error; /* failure to report from the timer, so that
                                 kg_leg_start never calls back directly */
};

static void kg_upconn_send(kg_upconn *c);
static void kg_upconn_on_read(kg_conn *conn, ssize_t nread, const uv_buf_t *buf);
static void kg_upconn_on_deadline(kg_conn *conn);
static void kg_upconn_on_close(kg_conn *conn);

static const kg_conn_cbs kg_upconn_conn_cbs = {
    .on_read = kg_upconn_on_read,
    .on_deadline = kg_upconn_on_deadline,
    .on_close = kg_upconn_on_close,
};

/* Moves the deadline, except over a failure waiting to be reported: that
 * one must fire on the next iteration whatever the leg does meanwhile. */
static void kg_upconn_deadline(kg_upconn *c, uint64_t ms) {
  if (c->deferred_error == NULL) kg_conn_set_deadline(&c->conn, ms);
}

void kg_pool_init(kg_pool *p, uv_loop_t *loop, const kg_upstream *be, char *rbuf,
                  size_t rbuf_len) {
  memset(p, 0, sizeof(*p));
  p->loop = loop;
  p->be = *be;
  p->rbuf = rbuf;
  p->rbuf_len = rbuf_len;
}

/* --- connection lifetime --------------------------------------------------- */

static void kg_upconn_on_close(kg_conn *conn) {
  kg_upconn *c = conn->data;
  kg_http_free(&c->http);
  free(c);
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

/* Takes c out of its pool and closes it. The pool is not touched after,
 * so a caller may free the pool once its last leg is done. */
static void kg_upconn_close(kg_upconn *c) {
  if (c->pool == NULL) return;
  kg_idle_remove(c);
  c->leg = NULL;
  c->pool->nconns--;
  c->pool = NULL;
  kg_conn_close(&c->conn);
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
  const kg_conn_ops *transport = p->be.transport ? p->be.transport : &kg_conn_tcp;
  kg_conn_init(&c->conn, p->loop, transport, &kg_upconn_conn_cbs, c, p->rbuf,
               p->rbuf_len);
  c->conn.transport_ctx = p->be.transport_ctx;
  p->nconns++;
  p->opened++;
  return c;
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
  kg_conn_read_start(&c->conn);
  kg_upconn_deadline(c, p->be.idle_timeout_ms);
}

/* Takes the leg off the pool's in-flight counts. */
static void kg_leg_settle(kg_leg *leg, const char *error) {
  leg->error = error;
  leg->done = true;
  leg->pool->inflight--;
  if (leg->bounded) leg->pool->inflight_bytes -= leg->body.len;
}

/* Detaches the leg from its connection and tells the caller. The
 * connection goes back to the pool first (when reusable) so that what the
 * caller does next, e.g. start the client's next pipelined request, can
 * borrow it at once. */
static void kg_leg_finish(kg_leg *leg, const char *error, bool reusable) {
  kg_upconn *c = leg->conn;
  leg->conn = NULL;
  leg->t_end = kg_now_ns();
  kg_leg_settle(leg, error);
  if (c) {
    kg_pool *p = c->pool;
    c->leg = NULL;
    /* A backend may answer before it has read the whole request (an early
     * 413, say): the rest of the body would reach it as the next request,
     * and the write is still busy. Such a connection is not reused. */
    if (reusable && !c->writing && !p->retired && p->nidle < p->be.max_idle)
      kg_upconn_make_idle(c);
    else
      kg_upconn_close(c);
  }
  leg->cbs->on_done(leg);
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

static void kg_upconn_on_deadline(kg_conn *conn) {
  kg_upconn *c = conn->data;
  if (c->pool == NULL) return;
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
  /* Connected but still handshaking: the backend's TLS is what hangs. */
  kg_leg_fail(c->leg,
              c->conn.handshaking ? kg_conn_strerror(KG_CONN_ETLS_TIMEOUT) : "timeout",
              false);
}

static void kg_upconn_arm(kg_upconn *c) {
  kg_upconn_deadline(c, c->pool->be.timeout_ms);
}

/* Reports `error` for the leg on the next loop iteration. */
static void kg_upconn_defer_error(kg_upconn *c, const char *error) {
  kg_conn_set_deadline(&c->conn, 0);
  c->deferred_error = error;
}

/* --- request and response -------------------------------------------------- */

bool kg_pool_is_down(const kg_pool *p) {
  return p->down_until > uv_now(p->loop);
}

/* why: the last failure, named in the log line (a certificate problem
 * is not fixed by waiting, and the line should say which it is). */
static void kg_pool_connect_failed(kg_pool *p, const char *why) {
  if (++p->connect_failures < KG_POOL_DOWN_AFTER) return;
  if (p->connect_failures == KG_POOL_DOWN_AFTER && p->be.log_down)
    kg_log_warn("shadow %s failed to connect %d times in a row (last: %s): copies "
                "are skipped while it is down (probed again after a pause)",
                p->be.name, KG_POOL_DOWN_AFTER, why);
  unsigned k = KG_MIN(p->connect_failures - KG_POOL_DOWN_AFTER, 5u);
  uint64_t ms = KG_MIN((uint64_t)1000 << k, (uint64_t)30000);
  p->down_until = uv_now(p->loop) + ms;
}

static void kg_upconn_on_connect(kg_conn *conn, int status) {
  kg_upconn *c = conn->data;
  if (c->pool == NULL || c->leg == NULL) return; /* cancelled meanwhile */
  kg_pool *p = c->pool;
  if (status < 0) {
    const char *why = kg_conn_strerror(status); /* a TLS reason, precisely */
    if (why == NULL)
      why = status == UV_ECONNREFUSED ? "connection refused"
            : status == UV_ENOENT    ? "no such socket" /* unix: nothing at the path */
            : status == UV_EACCES    ? "permission denied"
                                     : "connect failed";
    kg_pool_connect_failed(p, why);
    kg_leg_fail(c->leg, why, false);
    return;
  }
  c->connected = true;
  if (p->connect_failures >= KG_POOL_DOWN_AFTER && p->be.log_down)
    kg_log_info("shadow %s accepts connections again", p->be.name);
  p->connect_failures = 0;
  p->down_until = 0;
  kg_upconn_send(c);
}

static void kg_upconn_connect(kg_pool *p, kg_leg *leg) {
  kg_upconn *c = kg_upconn_new(p);
  kg_upconn_attach(c, leg);
  kg_upconn_arm(c);
  int r = kg_conn_connect(&c->conn, (const struct sockaddr *)&p->be.addr,
                          kg_upconn_on_connect);
  if (r < 0) kg_upconn_defer_error(c, "connect failed");
}

static void kg_upconn_on_write(kg_conn_write_req *wr, int status) {
  kg_upconn *c = KG_CONTAINER_OF(wr, kg_upconn, write);
  c->writing = false;
  if (status < 0 && c->pool && c->leg) kg_leg_fail(c->leg, "write failed", true);
}

static void kg_upconn_send(kg_upconn *c) {
  kg_leg *leg = c->leg;
  uv_buf_t b = uv_buf_init(leg->req.data, (unsigned)leg->req.len);
  kg_upconn_arm(c);
  /* A request nearly always fits the socket buffer. A try-write sends it
   * without libuv's write queue, whose drain costs an epoll_ctl per
   * request; only a remainder is queued. Failures are reported from the
   * timer either way, so a stale pooled connection is retried as usual. */
  int n = kg_conn_try_write(&c->conn, &b, 1);
  if (n < 0) {
    kg_upconn_defer_error(c, "write failed");
    return;
  }
  if ((size_t)n < leg->req.len) {
    b = uv_buf_init(leg->req.data + n, (unsigned)(leg->req.len - (size_t)n));
    if (kg_conn_write(&c->conn, &c->write, &b, 1, kg_upconn_on_write) < 0) {
      kg_upconn_defer_error(c, "write failed");
      return;
    }
    c->writing = true;
  }
  if (!leg->paused) kg_conn_read_start(&c->conn);
}

static int kg_upconn_on_head(void *ud, kg_http_msg *m) {
  kg_upconn *c = ud;
  kg_leg *leg = c->leg;
  if (leg == NULL) return 502;
  if (m->status < 200) { /* interim (1xx): no body; parsing goes on after */
    if (m->status == 101) return 502; /* we never ask for an upgrade */
    if (leg->cbs->on_interim) leg->cbs->on_interim(leg, m);
    return c->leg == leg ? 0 : 502;
  }
  kg_http_msg_move(&leg->resp, m);
  if (leg->capture && leg->resp.has_length && !leg->head_request) /* one allocation */
    kg_buf_reserve(&leg->body, (size_t)KG_MIN(leg->resp.content_length,
                                              (uint64_t)leg->pool->be.max_capture));
  if (leg->cbs->on_head) leg->cbs->on_head(leg);
  if (c->leg != leg) return 502; /* the caller gave up on this leg */
  return leg->head_request ? 1 : 0;
}

static int kg_upconn_on_body(void *ud, const char *p, size_t n) {
  kg_upconn *c = ud;
  kg_leg *leg = c->leg;
  if (leg == NULL) return 502;
  leg->body_bytes += n;
  if (leg->capture) {
    size_t cap = leg->pool->be.max_capture;
    size_t room = leg->body.len < cap ? cap - leg->body.len : 0;
    if (n > room) leg->truncated = true;
    kg_buf_append(&leg->body, p, KG_MIN(n, room));
    if (leg->bounded) leg->pool->inflight_bytes += KG_MIN(n, room);
  }
  if (leg->cbs->on_body) leg->cbs->on_body(leg, p, n);
  return c->leg == leg ? 0 : 502;
}

static const char *kg_read_error(ssize_t nread, bool got_response) {
  if (nread == UV_ECONNRESET) return "connection reset";
  if (nread == UV_EOF)
    return got_response ? "connection closed mid-response"
                        : "connection closed without response";
  return "read error";
}

static void kg_upconn_on_read(kg_conn *conn, ssize_t nread, const uv_buf_t *buf) {
  kg_upconn *c = conn->data;
  if (c->pool == NULL || nread == 0) return;
  kg_leg *leg = c->leg;
  if (leg == NULL) { /* idle: the backend closed or spoke out of turn */
    kg_upconn_close(c);
    return;
  }
  if (nread < 0) {
    kg_conn_read_stop(conn);
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
    if (c->pool == NULL || c->leg != leg) return; /* cancelled from a callback */
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
  kg_leg_settle(leg, "cancelled");
  if (c) {
    c->leg = NULL;
    kg_upconn_close(c);
  }
}

void kg_leg_pause(kg_leg *leg) {
  leg->paused = true;
  if (leg->conn && leg->conn->connected) {
    kg_conn_read_stop(&leg->conn->conn);
    kg_upconn_deadline(leg->conn, KG_CONN_NO_DEADLINE); /* the client is slow,
                                                           not the backend */
  }
}

void kg_leg_resume(kg_leg *leg) {
  if (!leg->paused) return;
  leg->paused = false;
  kg_upconn *c = leg->conn;
  if (c && c->connected && c->pool) {
    kg_conn_read_start(&c->conn);
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
