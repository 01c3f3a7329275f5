/* replay_client.c: pooled keep-alive HTTP/1.1 client for replay (see
 * replay_client.h).
 *
 * A connection is in one of three states, told apart by two fields:
 * connecting or busy (req set), idle (req NULL, on the client's idle
 * list), closing (closing set; freed in the close callback of its last
 * handle). Every failure goes through kg_rc_fail and every success
 * through kg_rc_complete, each of which detaches the request from the
 * connection before calling back, so the callback may send again at once
 * (and may reuse this very connection). */
#include "traffic/replay_client.h"

#include <stdlib.h>
#include <string.h>

#include "common/common.h"

struct kg_rc {
  uv_loop_t *loop;
  struct sockaddr_storage addr;  /* the target */
  socklen_t addrlen;
  uint64_t timeout_ms;           /* silence allowed per request */
  kg_rc_conn *idle;              /* idle connections (intrusive list) */
  size_t nconns;                 /* connections not yet freed */
  uint64_t opened;               /* connections ever opened */
  bool closing;                  /* kg_rc_close was called */
};

struct kg_rc_conn {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  uv_timer_t timer;        /* the request's timeout, or a deferred failure */
  kg_rc *c;                /* owner */
  kg_rc_req *req;          /* in flight, or NULL when idle */
  kg_http parser;          /* the response being parsed, while req */
  bool parser_live;        /* parser is initialised (and must be freed) */
  bool reused;             /* req is not this connection's first request */
  bool got_bytes;          /* a response byte arrived for req */
  bool closing;            /* uv_close has been called */
  bool writing;            /* `write` is in flight: it cannot carry another
                              request until its callback has run */
  const char *deferred;    /* a failure found inside kg_rc_send, reported
                              from the timer so `done` never runs there */
  int open_handles;        /* handles still to be closed (tcp, timer) */
  kg_rc_conn *next;        /* idle list link */
  char rbuf[64 * 1024];    /* read buffer: one read at a time */
};

void kg_rc_req_init(kg_rc_req *r) {
  memset(r, 0, sizeof(*r));
  kg_http_msg_init(&r->resp);
}

void kg_rc_req_free(kg_rc_req *r) {
  kg_buf_free(&r->bytes);
  kg_buf_free(&r->body);
  kg_http_msg_free(&r->resp);
}

kg_rc *kg_rc_new(uv_loop_t *loop, const struct sockaddr *addr, socklen_t addrlen,
                 double timeout) {
  kg_rc *c = kg_calloc(1, sizeof(*c));
  c->loop = loop;
  memcpy(&c->addr, addr, KG_MIN((size_t)addrlen, sizeof(c->addr)));
  c->addrlen = addrlen;
  c->timeout_ms = timeout > 0 ? (uint64_t)(timeout * 1000.0) : 30000;
  return c;
}

uint64_t kg_rc_connections_opened(const kg_rc *c) { return c->opened; }

/* --- closing ------------------------------------------------------------------ */

static void kg_rc_on_close(uv_handle_t *h) {
  kg_rc_conn *conn = h->data;
  if (--conn->open_handles > 0) return;
  kg_rc *c = conn->c;
  free(conn);
  c->nconns--;
  if (c->closing && c->nconns == 0) free(c);
}

static void kg_rc_idle_remove(kg_rc_conn *conn) {
  for (kg_rc_conn **p = &conn->c->idle; *p; p = &(*p)->next)
    if (*p == conn) {
      *p = conn->next;
      conn->next = NULL;
      return;
    }
}

static void kg_rc_conn_close(kg_rc_conn *conn) {
  if (conn->closing) return;
  conn->closing = true;
  if (conn->req == NULL) kg_rc_idle_remove(conn);
  if (conn->parser_live) {
    kg_http_free(&conn->parser);
    conn->parser_live = false;
  }
  uv_close((uv_handle_t *)&conn->tcp, kg_rc_on_close);
  uv_close((uv_handle_t *)&conn->timer, kg_rc_on_close);
}

void kg_rc_close(kg_rc *c) {
  c->closing = true;
  while (c->idle) kg_rc_conn_close(c->idle);
  if (c->nconns == 0) free(c);
}

/* --- outcomes ----------------------------------------------------------------------- */

/* Failures that mean "the target closed this pooled connection while it was
 * idle" when they come before any response byte. */
static bool kg_rc_stale(const char *why) {
  return strcmp(why, "connection closed without response") == 0 ||
         strcmp(why, "connection reset") == 0 || strcmp(why, "write failed") == 0;
}

static void kg_rc_fail(kg_rc_conn *conn, const char *why) {
  kg_rc_req *r = conn->req;
  kg_rc *c = conn->c;
  bool retry = conn->reused && !conn->got_bytes && r->retry_ok && !r->retried &&
               kg_rc_stale(why);
  conn->req = NULL;
  r->conn = NULL;
  /* Not on the idle list (it was busy): closing it touches only itself. */
  conn->closing = true;
  if (conn->parser_live) {
    kg_http_free(&conn->parser);
    conn->parser_live = false;
  }
  uv_close((uv_handle_t *)&conn->tcp, kg_rc_on_close);
  uv_close((uv_handle_t *)&conn->timer, kg_rc_on_close);
  if (retry && !c->closing) {
    r->retried = true;
    kg_rc_send(c, r);
    return;
  }
  r->error = why;
  r->t_end = kg_now_ns();
  r->done(r);
}

/* The response is complete. `leftover`: bytes came after it, which a
 * well-behaved server never sends unasked, so the connection is not
 * trusted with another request. */
static void kg_rc_complete(kg_rc_conn *conn, bool leftover) {
  kg_rc_req *r = conn->req;
  kg_rc *c = conn->c;
  r->t_end = kg_now_ns();
  kg_http_msg_move(&r->resp, &conn->parser.msg);
  kg_http_free(&conn->parser);
  conn->parser_live = false;
  bool keep = r->resp.keep_alive && !r->resp.upgrade && !leftover && !c->closing &&
              !conn->writing;
  conn->req = NULL;
  r->conn = NULL;
  uv_timer_stop(&conn->timer);
  if (keep) {
    conn->next = c->idle;
    c->idle = conn;
  } else {
    kg_rc_conn_close(conn);
  }
  r->done(r);
}

/* --- I/O ------------------------------------------------------------------------------ */

static void kg_rc_on_timer(uv_timer_t *t) {
  kg_rc_conn *conn = t->data;
  if (conn->req == NULL || conn->closing) return;
  const char *why = conn->deferred ? conn->deferred : "timeout";
  conn->deferred = NULL;
  kg_rc_fail(conn, why);
}

static void kg_rc_fail_later(kg_rc_conn *conn, const char *why) {
  conn->deferred = why;
  uv_timer_start(&conn->timer, kg_rc_on_timer, 0, 0);
}

static void kg_rc_arm(kg_rc_conn *conn) {
  uv_timer_start(&conn->timer, kg_rc_on_timer, conn->c->timeout_ms, 0);
}

static int kg_rc_on_head(void *ud, kg_http_msg *m) {
  kg_rc_conn *conn = ud;
  (void)m;
  return conn->req->head ? 1 : 0;
}

static int kg_rc_on_body(void *ud, const char *p, size_t n) {
  kg_rc_req *r = ((kg_rc_conn *)ud)->req;
  r->body_bytes += n;
  if (r->body.len < r->max_capture)
    kg_buf_append(&r->body, p, KG_MIN(n, r->max_capture - r->body.len));
  if (r->body_bytes > r->max_capture) r->truncated = true;
  return 0;
}

static const kg_http_ops kg_rc_http_ops = {kg_rc_on_head, kg_rc_on_body};

static void kg_rc_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  kg_rc_conn *conn = h->data;
  (void)suggested;
  *buf = uv_buf_init(conn->rbuf, sizeof(conn->rbuf));
}

static void kg_rc_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  kg_rc_conn *conn = s->data;
  if (nread == 0 || conn->closing) return;
  if (conn->req == NULL) {
    /* Idle: the target closed it, or sent something unasked. */
    kg_rc_conn_close(conn);
    return;
  }
  if (nread < 0) {
    if (nread == UV_EOF && kg_http_eof(&conn->parser) == KG_HTTP_PAUSED) {
      kg_rc_complete(conn, true); /* a close-delimited body */
      return;
    }
    if (conn->got_bytes) kg_rc_fail(conn, "connection closed mid-response");
    else if (nread == UV_EOF) kg_rc_fail(conn, "connection closed without response");
    else kg_rc_fail(conn, "connection reset");
    return;
  }
  conn->got_bytes = true;
  kg_rc_arm(conn);
  size_t off = 0, n = (size_t)nread;
  while (off < n) {
    size_t used = 0;
    kg_http_state st = kg_http_feed(&conn->parser, buf->base + off, n - off, &used);
    off += used;
    if (st == KG_HTTP_ERROR) {
      kg_rc_fail(conn, "invalid response");
      return;
    }
    if (st == KG_HTTP_PAUSED) {
      int status = conn->parser.msg.status;
      if (status >= 100 && status < 200 && status != 101) {
        kg_http_resume(&conn->parser); /* interim: the final answer follows */
        continue;
      }
      kg_rc_complete(conn, off < n);
      return;
    }
  }
}

static void kg_rc_on_write(uv_write_t *w, int status) {
  kg_rc_conn *conn = w->data;
  conn->writing = false;
  if (status < 0 && conn->req && !conn->closing) kg_rc_fail(conn, "write failed");
}

static void kg_rc_write(kg_rc_conn *conn) {
  kg_rc_req *r = conn->req;
  uv_buf_t b = uv_buf_init(r->bytes.data ? r->bytes.data : "", (unsigned)r->bytes.len);
  conn->write.data = conn;
  kg_rc_arm(conn);
  if (uv_write(&conn->write, (uv_stream_t *)&conn->tcp, &b, 1, kg_rc_on_write) < 0)
    kg_rc_fail_later(conn, "write failed");
  else
    conn->writing = true;
}

static void kg_rc_on_connect(uv_connect_t *cr, int status) {
  kg_rc_conn *conn = cr->data;
  if (conn->closing || conn->req == NULL) return;
  if (status < 0) {
    kg_rc_fail(conn, status == UV_ECONNREFUSED ? "connection refused" : "connect failed");
    return;
  }
  uv_tcp_nodelay(&conn->tcp, 1);
  if (uv_read_start((uv_stream_t *)&conn->tcp, kg_rc_alloc, kg_rc_on_read) < 0) {
    kg_rc_fail(conn, "connect failed");
    return;
  }
  kg_rc_write(conn);
}

/* Attaches r to conn with a fresh parser and empty results. */
static void kg_rc_begin(kg_rc_conn *conn, kg_rc_req *r) {
  conn->req = r;
  conn->got_bytes = false;
  conn->deferred = NULL;
  r->conn = conn;
  r->error = NULL;
  kg_http_msg_free(&r->resp);
  kg_http_msg_init(&r->resp);
  kg_buf_reset(&r->body);
  r->body_bytes = 0;
  r->truncated = false;
  kg_http_init(&conn->parser, HTTP_RESPONSE, &kg_rc_http_ops, conn, (kg_http_limits){0, 0});
  conn->parser_live = true;
}

void kg_rc_send(kg_rc *c, kg_rc_req *r) {
  if (!r->retried) r->t_start = kg_now_ns();
  kg_rc_conn *conn = c->idle;
  if (conn) {
    c->idle = conn->next;
    conn->next = NULL;
    conn->reused = true;
    kg_rc_begin(conn, r);
    kg_rc_write(conn);
    return;
  }
  conn = kg_calloc(1, sizeof(*conn));
  conn->c = c;
  conn->open_handles = 2;
  c->nconns++;
  c->opened++;
  uv_tcp_init(c->loop, &conn->tcp);
  uv_timer_init(c->loop, &conn->timer);
  conn->tcp.data = conn->timer.data = conn->connect.data = conn;
  kg_rc_begin(conn, r);
  int rc = uv_tcp_connect(&conn->connect, &conn->tcp, (const struct sockaddr *)&c->addr,
                          kg_rc_on_connect);
  if (rc < 0) kg_rc_fail_later(conn, rc == UV_ECONNREFUSED ? "connection refused"
                                                          : "connect failed");
  else kg_rc_arm(conn);
}
