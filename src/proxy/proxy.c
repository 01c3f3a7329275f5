/* proxy.c: client connections (see proxy.h).
 *
 * A client is in one of these states:
 *   READING   waiting for (the rest of) a request; client_timeout runs as a
 *             deadline for the whole request, so a trickling client is cut
 *   WAITING   an exchange owes it a response (c->ex); pipelined bytes that
 *             arrive meanwhile are kept in inbuf, unparsed
 *   LINGERING the last response is written, our side is shut down, and
 *             what the client still sends is read and dropped for a moment
 *             so that the kernel does not reset the connection (and destroy
 *             the response) because of unread data
 *   CLOSED    kg_conn_close was called; freed in the conn's close callback
 *
 * Response bytes are gathered in `out` and written once per loop iteration
 * by the worker's check handle, so a head and its body, or several
 * pipelined responses, leave in one write. */
#include "proxy/proxy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "proxy/exchange.h"
#include "common/log.h"
#include "net/conn.h"
#include "proxy/worker.h"

#define KG_CLIENT_HIGH_WATER (256 * 1024) /* pause the master above this */
#define KG_CLIENT_LOW_WATER (64 * 1024)   /* resume it below this */
#define KG_LINGER_MS 2000
#define KG_CLIENT_KEEP_BUF 4096                /* output buffer kept when idle */
#define KG_CLIENT_DIRECT_MIN (16 * 1024) /* body pieces written without a copy */

typedef enum kg_client_state {
  KG_CLIENT_READING,
  KG_CLIENT_WAITING,
  KG_CLIENT_LINGERING,
  KG_CLIENT_CLOSED,
} kg_client_state;

typedef enum kg_out_mode {
  KG_OUT_NONE,     /* no body (HEAD, 204, 304) */
  KG_OUT_LENGTH,   /* the master's Content-Length frames it: pass through */
  KG_OUT_CHUNKED,  /* we chunk it for an HTTP/1.1 client */
  KG_OUT_CLOSE,    /* delimited by closing (HTTP/1.0 client, no length) */
} kg_out_mode;

struct kg_client {
  kg_conn conn;              /* the connection; its deadline is the
                                request deadline / slow reader / linger */
  kg_worker *w;              /* owning worker */
  kg_client *prev, *next;    /* w->clients list */
  kg_client *flush_prev, *flush_next; /* w->flush_head list */
  bool in_flush;             /* on the flush list */
  kg_client_state state;
  kg_http http;              /* request parser */
  kg_buf body;               /* body of the request being parsed (owned) */
  kg_buf inbuf;              /* received, not yet parsed bytes (owned) */
  kg_buf out;                /* response bytes not yet written (owned) */
  kg_exchange *ex;           /* owes us a response (WAITING), else NULL */
  kg_out_mode mode;          /* framing of the response being sent */
  bool http10;               /* the current request was HTTP/1.0 */
  bool head_request;         /* the current request is a HEAD: no body back */
  bool keep_alive;           /* another request may follow this one */
  bool close_after_write;    /* linger-close once `out` is written */
  bool master_paused;        /* we paused the master (slow reader) */
  bool head_started;         /* the current response's head is out */
  bool broken;               /* a write failed: output is dropped */
  uint64_t id;               /* unique in the process, from 1 */
  uint64_t requests;         /* dispatched on this connection so far */
};

static void kg_client_on_read(kg_conn *conn, ssize_t nread, const uv_buf_t *buf);
static void kg_client_close(kg_client *c);
static void kg_client_continue(kg_client *c);
static const kg_exchange_client_ops kg_client_master_ops;

/* --- writing ----------------------------------------------------------------- */

typedef struct kg_write {
  kg_conn_write_req req;
  kg_client *c;
  char *data;   /* owned */
} kg_write;

static void kg_client_queue_flush(kg_client *c) {
  if (c->in_flush) return;
  kg_worker *w = c->w;
  c->in_flush = true;
  c->flush_prev = NULL;
  c->flush_next = w->flush_head;
  if (w->flush_head) w->flush_head->flush_prev = c;
  w->flush_head = c;
}

static void kg_client_unqueue_flush(kg_client *c) {
  if (!c->in_flush) return;
  if (c->flush_prev) c->flush_prev->flush_next = c->flush_next;
  else c->w->flush_head = c->flush_next;
  if (c->flush_next) c->flush_next->flush_prev = c->flush_prev;
  c->in_flush = false;
}

static void kg_client_out(kg_client *c, const void *p, size_t n) {
  if (c->broken) return;
  kg_buf_append(&c->out, p, n);
  kg_client_queue_flush(c);
}

static void kg_client_outf(kg_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void kg_client_outf(kg_client *c, const char *fmt, ...) {
  if (c->broken) return;
  va_list ap;
  va_start(ap, fmt);
  kg_buf_vappendf(&c->out, fmt, ap);
  va_end(ap);
  kg_client_queue_flush(c);
}

static void kg_client_on_timer(kg_conn *conn);
static void kg_client_close_soon(kg_client *c);

/* A write failed: the client is gone. Closing is deferred because an
 * exchange may be streaming to us further up the stack. */
static void kg_client_broken(kg_client *c) {
  c->broken = true;
  kg_buf_reset(&c->out);
  kg_client_close_soon(c);
}

static void kg_client_on_shutdown(kg_conn *conn, int status) {
  kg_client *c = conn->data;
  if (c->state == KG_CLIENT_CLOSED) return;
  if (status < 0) {
    kg_client_close(c);
    return;
  }
  /* Drain what the client still sends until it closes or we tire. */
  kg_conn_read_start(&c->conn);
  kg_conn_set_deadline(&c->conn, KG_LINGER_MS);
}

static void kg_client_linger(kg_client *c) {
  c->state = KG_CLIENT_LINGERING;
  kg_conn_set_deadline(&c->conn, KG_CONN_NO_DEADLINE);
  if (kg_conn_shutdown(&c->conn, kg_client_on_shutdown) < 0)
    kg_client_close(c);
}

/* Everything queued has been handed to the kernel: maybe resume the
 * master, maybe start closing. */
static void kg_client_after_write(kg_client *c) {
  size_t queued = kg_conn_write_queue_size(&c->conn);
  if (c->master_paused && queued < KG_CLIENT_LOW_WATER) {
    c->master_paused = false;
    kg_conn_set_deadline(&c->conn, KG_CONN_NO_DEADLINE);
    if (c->ex) kg_exchange_resume_master(c->ex);
  }
  if (c->close_after_write && queued == 0 && c->out.len == 0 &&
      c->state != KG_CLIENT_LINGERING && c->state != KG_CLIENT_CLOSED)
    kg_client_linger(c);
}

static void kg_client_on_write(kg_conn_write_req *req, int status) {
  kg_write *wr = KG_CONTAINER_OF(req, kg_write, req);
  kg_client *c = wr->c;
  free(wr->data);
  free(wr);
  if (c->state == KG_CLIENT_CLOSED) return;
  if (status < 0) {
    kg_client_close(c);
    return;
  }
  kg_client_after_write(c);
}

/* Writes c->out: directly when the socket takes it all, else queued. */
static void kg_client_flush(kg_client *c) {
  if (c->state == KG_CLIENT_CLOSED || c->broken) return;
  if (c->out.len == 0) {
    kg_client_after_write(c);
    return;
  }
  uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
  int n = kg_conn_try_write(&c->conn, &b, 1);
  if (n == (int)c->out.len) {
    /* An idle keep-alive connection must not hold on to the size of its
     * largest response: keep a small buffer for reuse, free a big one. */
    if (c->out.cap > KG_CLIENT_KEEP_BUF) kg_buf_free(&c->out);
    else kg_buf_reset(&c->out);
    kg_client_after_write(c);
    return;
  }
  if (n < 0) {
    kg_client_broken(c);
    return;
  }
  if (n > 0) kg_buf_consume(&c->out, (size_t)n);
  kg_write *wr = kg_malloc(sizeof(*wr));
  wr->c = c;
  size_t len = 0;
  wr->data = kg_buf_steal(&c->out, &len);
  b = uv_buf_init(wr->data, (unsigned)len);
  if (kg_conn_write(&c->conn, &wr->req, &b, 1, kg_client_on_write) < 0) {
    free(wr->data);
    free(wr);
    kg_client_broken(c);
    return;
  }
  if (c->ex && !c->master_paused &&
      kg_conn_write_queue_size(&c->conn) > KG_CLIENT_HIGH_WATER) {
    /* The client reads slower than the master sends: stop reading the
     * master (its bytes stay in the kernel) and give the client
     * client_timeout to catch up. */
    c->master_paused = true;
    kg_exchange_pause_master(c->ex);
    kg_conn_set_deadline(&c->conn, c->w->cfg->client_timeout_ms);
  }
}

/* The worker's check handle: after this iteration's I/O, write what every
 * client gathered. */
static void kg_proxy_on_check(uv_check_t *h) {
  kg_worker *w = KG_CONTAINER_OF(h, kg_worker, flush_check);
  while (w->flush_head) {
    kg_client *c = w->flush_head;
    kg_client_unqueue_flush(c);
    kg_client_flush(c);
  }
}

/* --- errors and closing ---------------------------------------------------- */

static const char *kg_status_text(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

/* A short response of kagami's own. With close, the connection is closed
 * once it is written and nothing more is read. The answer to a HEAD has
 * the head only: a client keeping the connection would otherwise take the
 * body for the start of its next response. */
static void kg_client_send_status(kg_client *c, int status, bool close) {
  const char *text = kg_status_text(status);
  if (close) c->keep_alive = false;
  kg_client_outf(c,
                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                 "Content-Length: %zu\r\n%s\r\n%s%s",
                 status, text, strlen(text) + 1,
                 c->keep_alive ? (c->http10 ? "Connection: keep-alive\r\n" : "")
                               : "Connection: close\r\n",
                 c->head_request ? "" : text, c->head_request ? "" : "\n");
  if (!c->keep_alive) {
    c->close_after_write = true;
    kg_conn_read_stop(&c->conn);
  }
}

static void kg_client_on_close(kg_conn *conn) {
  kg_client *c = conn->data;
  kg_worker *w = c->w;
  kg_http_free(&c->http);
  kg_buf_free(&c->body);
  kg_buf_free(&c->inbuf);
  kg_buf_free(&c->out);
  free(c);
  kg_worker_maybe_finish(w);
}

static void kg_client_close(kg_client *c) {
  if (c->state == KG_CLIENT_CLOSED) return;
  c->state = KG_CLIENT_CLOSED;
  kg_exchange *ex = c->ex;
  c->ex = NULL;
  if (ex) kg_exchange_client_gone(ex);
  kg_client_unqueue_flush(c);
  kg_worker *w = c->w;
  if (c->prev) c->prev->next = c->next;
  else w->clients = c->next;
  if (c->next) c->next->prev = c->prev;
  w->nclients--;
  kg_conn_close(&c->conn);
}

/* Closes from a later loop iteration, so that callers up the stack (an
 * exchange streaming to us) never see the client vanish under them. */
static void kg_client_close_soon(kg_client *c) {
  kg_conn_read_stop(&c->conn);
  c->keep_alive = false;
  c->close_after_write = false;
  kg_conn_set_deadline(&c->conn, 0);
  c->state = KG_CLIENT_LINGERING; /* makes the timer close it */
}

static void kg_client_on_timer(kg_conn *conn) {
  kg_client *c = conn->data;
  switch (c->state) {
    case KG_CLIENT_READING:
      /* client_timeout passed without a complete request. Someone who
       * sent part of one is told why; an idle keep-alive is just closed. */
      if (kg_http_in_message(&c->http) || c->inbuf.len) {
        kg_client_send_status(c, 408, true);
        c->state = KG_CLIENT_WAITING; /* a second firing closes */
        kg_conn_set_deadline(&c->conn, KG_LINGER_MS);
        return;
      }
      kg_client_close(c);
      return;
    case KG_CLIENT_WAITING: /* the client stopped reading our response */
    case KG_CLIENT_LINGERING:
    case KG_CLIENT_CLOSED:
      kg_client_close(c);
      return;
  }
}

/* --- requests ------------------------------------------------------------------ */

static int kg_client_on_head(void *ud, kg_http_msg *m) {
  kg_client *c = ud;
  const kg_config *cfg = c->w->cfg;
  c->http10 = m->http_major == 1 && m->http_minor == 0;
  c->head_request = m->method == HTTP_HEAD;
  if (m->method == HTTP_CONNECT) return 501;
  if (m->has_length && m->content_length > cfg->max_body_bytes) return 413;
  bool body_follows = m->chunked || (m->has_length && m->content_length > 0);
  if (m->expect_continue && !c->http10 && body_follows) {
    /* Answered here (the body is buffered before any backend sees it),
     * and written at once: the client is waiting for it. */
    kg_client_out(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
  }
  return 0;
}

static int kg_client_on_body(void *ud, const char *p, size_t n) {
  kg_client *c = ud;
  if (c->body.len + n > c->w->cfg->max_body_bytes) return 413;
  kg_buf_append(&c->body, p, n);
  return 0;
}

static const kg_http_ops kg_client_http_ops = {
    .on_head = kg_client_on_head,
    .on_body = kg_client_on_body,
};

static void kg_client_dispatch(kg_client *c) {
  kg_http_msg *m = &c->http.msg;
  c->keep_alive = m->keep_alive && !m->upgrade && !c->w->stopping;
  c->state = KG_CLIENT_WAITING;
  c->mode = KG_OUT_NONE;
  c->head_started = false;
  kg_conn_set_deadline(&c->conn, KG_CONN_NO_DEADLINE);
  c->ex = kg_exchange_new(c->w, &kg_client_master_ops, c, c->id, ++c->requests, m, &c->body);
  kg_exchange_start(c->ex);
}

/* Parses requests from p[0..n) while no exchange is pending. Returns the
 * number of bytes consumed; the caller keeps the rest in inbuf. */
static size_t kg_client_parse(kg_client *c, const char *p, size_t n) {
  size_t done = 0;
  while (done < n && c->ex == NULL && c->state == KG_CLIENT_READING) {
    size_t used = 0;
    kg_http_state st = kg_http_feed(&c->http, p + done, n - done, &used);
    done += used;
    if (st == KG_HTTP_MORE) break;
    if (st == KG_HTTP_ERROR) {
      c->w->stats.bad_requests++;
      kg_client_send_status(c, c->http.error_status, true);
      c->state = KG_CLIENT_WAITING; /* nothing more is parsed */
      kg_conn_set_deadline(&c->conn, KG_LINGER_MS);
      return n;
    }
    kg_http_resume(&c->http); /* PAUSED: one complete request */
    kg_client_dispatch(c);
  }
  return done;
}

static void kg_client_start_reading(kg_client *c) {
  if (c->state != KG_CLIENT_CLOSED) kg_conn_read_start(&c->conn);
}

/* Parses what inbuf holds, then waits for more with a fresh deadline. */
static void kg_client_continue(kg_client *c) {
  c->state = KG_CLIENT_READING;
  c->head_request = false; /* until the next request's head says so */
  if (c->inbuf.len) {
    size_t used = kg_client_parse(c, c->inbuf.data, c->inbuf.len);
    kg_buf_consume(&c->inbuf, used);
  }
  if (c->state != KG_CLIENT_READING) return;
  if (c->w->stopping && !kg_http_in_message(&c->http) && c->inbuf.len == 0) {
    c->close_after_write = true; /* nothing in progress: done */
    kg_client_queue_flush(c);
    return;
  }
  kg_conn_set_deadline(&c->conn, c->w->cfg->client_timeout_ms);
  kg_client_start_reading(c);
}

static void kg_client_on_read(kg_conn *conn, ssize_t nread, const uv_buf_t *buf) {
  kg_client *c = conn->data;
  if (nread == 0 || c->state == KG_CLIENT_CLOSED) return;
  if (nread < 0) {
    /* EOF or error: the client is gone. Whatever it is owed is dropped
     * (kg_client_close abandons the exchange). */
    kg_client_close(c);
    return;
  }
  if (c->state == KG_CLIENT_LINGERING) return; /* drained and dropped */
  size_t n = (size_t)nread;
  if (c->state == KG_CLIENT_READING && c->inbuf.len == 0) {
    size_t used = kg_client_parse(c, buf->base, n);
    if (used < n && c->state != KG_CLIENT_CLOSED)
      kg_buf_append(&c->inbuf, buf->base + used, n - used);
  } else {
    kg_buf_append(&c->inbuf, buf->base, n);
    if (c->state == KG_CLIENT_READING) {
      size_t used = kg_client_parse(c, c->inbuf.data, c->inbuf.len);
      kg_buf_consume(&c->inbuf, used);
    }
  }
  /* Pipelined bytes wait while a response is owed; past a bound, stop
   * reading and let TCP push back on the client. */
  if (c->state == KG_CLIENT_WAITING && conn->reading &&
      c->inbuf.len > c->w->cfg->max_header_bytes + 65536) {
    kg_conn_read_stop(conn);
  }
}

/* --- the master's response ----------------------------------------------------- */

/* The header fields of resp, minus those about the master's connection. */
static void kg_client_out_fields(kg_client *c, const kg_hdrs *h) {
  bool has_connection = kg_http_connection_lists_any(h);
  for (size_t i = 0; i < h->n; i++) {
    const char *name = kg_hdrs_name(h, i);
    size_t nlen = h->v[i].name_len;
    if (kg_http_is_hop_by_hop(name, nlen) ||
        (has_connection && kg_http_connection_lists(h, name, nlen)))
      continue;
    kg_buf_append(&c->out, name, nlen);
    kg_buf_append(&c->out, ": ", 2);
    kg_buf_append(&c->out, kg_hdrs_value(h, i), h->v[i].value_len);
    kg_buf_append(&c->out, "\r\n", 2);
  }
}

/* --- the master's response, as the exchange hands it over (its
 * kg_exchange_client_ops; none of them closes the client synchronously) --- */

/* A 1xx interim response from the master, passed on to HTTP/1.1 clients
 * (never to HTTP/1.0 ones, which do not know them). */
static void kg_client_master_interim(void *client, const kg_http_msg *msg) {
  kg_client *c = client;
  if (c->http10 || c->head_started || c->state == KG_CLIENT_CLOSED) return;
  kg_client_outf(c, "HTTP/1.1 %d %s\r\n", msg->status,
                 msg->reason.data ? msg->reason.data : "");
  kg_client_out_fields(c, &msg->hdrs);
  kg_buf_append(&c->out, "\r\n", 2);
}

static void kg_client_master_head(void *client, const kg_http_msg *resp,
                                  bool head_request) {
  kg_client *c = client;
  bool no_body = head_request || resp->status < 200 || resp->status == 204 ||
                 resp->status == 304;
  if (c->w->stopping) c->keep_alive = false;
  c->head_started = true;
  if (no_body) c->mode = KG_OUT_NONE;
  else if (resp->has_length) c->mode = KG_OUT_LENGTH;
  else if (!c->http10) c->mode = KG_OUT_CHUNKED;
  else {
    c->mode = KG_OUT_CLOSE;
    c->keep_alive = false;
  }
  /* Status codes are three digits (the parser saw to that). */
  char line[16] = "HTTP/1.1 000 ";
  kg_put_dec3(line + 9, (uint64_t)resp->status);
  kg_client_out(c, line, 13);
  kg_buf_append(&c->out, resp->reason.data, resp->reason.len);
  kg_buf_append(&c->out, "\r\n", 2);
  kg_client_out_fields(c, &resp->hdrs);
  if (c->mode == KG_OUT_CHUNKED)
    kg_buf_appends(&c->out, "Transfer-Encoding: chunked\r\n");
  if (!c->keep_alive) kg_buf_appends(&c->out, "Connection: close\r\n");
  else if (c->http10) kg_buf_appends(&c->out, "Connection: keep-alive\r\n");
  kg_buf_append(&c->out, "\r\n", 2);
}

/* A large piece of the master's body goes to the socket straight from the
 * read buffer, behind what c->out holds (one writev); only what the socket
 * does not take is copied into c->out. Saves copying every big response
 * (and growing c->out to its size). Returns false when it did nothing. */
static bool kg_client_write_through(kg_client *c, const char *p, size_t n) {
  if (n < KG_CLIENT_DIRECT_MIN || c->broken || kg_conn_write_queue_size(&c->conn) > 0)
    return false;
  uv_buf_t b[2] = {uv_buf_init(c->out.data, (unsigned)c->out.len),
                   uv_buf_init((char *)p, (unsigned)n)};
  bool head = c->out.len > 0;
  int r = kg_conn_try_write(&c->conn, head ? b : b + 1, head ? 2 : 1);
  if (r < 0) {
    kg_client_broken(c);
    return true;
  }
  size_t sent = r > 0 ? (size_t)r : 0;
  size_t from_out = KG_MIN(sent, c->out.len);
  kg_buf_consume(&c->out, from_out);
  sent -= from_out;
  if (sent < n) kg_client_out(c, p + sent, n - sent);
  return true;
}

static void kg_client_master_body(void *client, const char *p, size_t n) {
  kg_client *c = client;
  if (n == 0 || c->mode == KG_OUT_NONE || c->state == KG_CLIENT_CLOSED) return;
  if (c->mode == KG_OUT_CHUNKED) kg_client_outf(c, "%zx\r\n", n);
  if (!kg_client_write_through(c, p, n)) kg_client_out(c, p, n);
  if (c->mode == KG_OUT_CHUNKED) kg_client_out(c, "\r\n", 2);
  /* Large bodies: write now rather than at the end of the iteration, so
   * flow control sees the queue as it grows. */
  if (c->out.len >= KG_CLIENT_HIGH_WATER / 4) {
    kg_client_unqueue_flush(c);
    kg_client_flush(c);
  }
}

/* The exchange is done with c: it stops referring to it and any flow
 * control pause ends. Returns false when c is already closed. */
static bool kg_client_master_detach(kg_client *c) {
  c->ex = NULL;
  if (c->state == KG_CLIENT_CLOSED) return false;
  if (c->master_paused) {
    c->master_paused = false;
    kg_conn_set_deadline(&c->conn, KG_CONN_NO_DEADLINE);
  }
  return true;
}

/* The response is complete; the client stops referring to the exchange. */
static void kg_client_master_end(void *client) {
  kg_client *c = client;
  if (!kg_client_master_detach(c)) return;
  if (c->mode == KG_OUT_CHUNKED) kg_client_out(c, "0\r\n\r\n", 5);
  kg_client_queue_flush(c);
  if (!c->keep_alive) {
    c->close_after_write = true;
    return;
  }
  kg_client_continue(c);
}

/* The master failed: a 502/504 if nothing was sent yet, else the
 * connection is closed. The client stops referring to the exchange. */
static void kg_client_master_failed(void *client, int status) {
  kg_client *c = client;
  if (!kg_client_master_detach(c)) return;
  if (c->head_started) {
    /* Part of the response is out: closing early is the only way left
     * to tell the client it is incomplete. */
    kg_client_close_soon(c);
    return;
  }
  kg_client_send_status(c, status, false);
  if (c->keep_alive) kg_client_continue(c);
}

static const kg_exchange_client_ops kg_client_master_ops = {
    .interim = kg_client_master_interim,
    .head = kg_client_master_head,
    .body = kg_client_master_body,
    .end = kg_client_master_end,
    .failed = kg_client_master_failed,
};

/* --- accepting and stopping --------------------------------------------------- */

static const kg_conn_cbs kg_client_conn_cbs = {
    .on_read = kg_client_on_read,
    .on_deadline = kg_client_on_timer,
    .on_close = kg_client_on_close,
};

void kg_proxy_on_connection(uv_stream_t *server, int status) {
  kg_worker *w = server->loop->data;
  if (status < 0) {
    kg_log_warn("accept failed: %s", uv_strerror(status));
    return;
  }
  kg_client *c = kg_calloc(1, sizeof(*c));
  c->w = w;
  c->id = atomic_fetch_add_explicit(w->shared->conn_ids, 1, memory_order_relaxed) + 1;
  /* A TLS listener's context comes from the current config, so a reload
   * (SIGHUP) with a new certificate applies to the next connection. */
  size_t li = (size_t)((uv_tcp_t *)server - w->listeners);
  void *tls = li < w->cfg->nlisten ? w->cfg->listen_tls[li] : NULL;
  kg_conn_init(&c->conn, &w->loop, tls ? &kg_conn_tls : &kg_conn_tcp,
               &kg_client_conn_cbs, c, w->readbuf, sizeof(w->readbuf));
  c->conn.transport_ctx = tls;
  kg_http_init(&c->http, HTTP_REQUEST, &kg_client_http_ops, c,
               (kg_http_limits){w->cfg->max_header_bytes, w->cfg->max_headers});
  c->next = w->clients;
  if (w->clients) w->clients->prev = c;
  w->clients = c;
  w->nclients++;
  c->state = KG_CLIENT_READING;
  c->keep_alive = true;
  if (kg_conn_accept(&c->conn, server) < 0) {
    kg_client_close(c);
    return;
  }
  w->stats.connections++;
  if (w->nclients > w->cfg->max_connections || w->stopping) {
    kg_client_send_status(c, 503, true);
    c->state = KG_CLIENT_WAITING;
    kg_conn_set_deadline(&c->conn, KG_LINGER_MS);
    return;
  }
  kg_client_continue(c);
}

void kg_proxy_stop_clients(kg_worker *w) {
  kg_client *next;
  for (kg_client *c = w->clients; c; c = next) {
    next = c->next;
    /* Busy clients get "Connection: close" on their current response and
     * close after it; idle ones, and half-sent requests, go now. */
    if (c->state == KG_CLIENT_READING) kg_client_close(c);
    else c->keep_alive = false;
  }
}

void kg_proxy_close_all(kg_worker *w) {
  while (w->clients) kg_client_close(w->clients);
}

void kg_proxy_init_flush(kg_worker *w) {
  uv_check_init(&w->loop, &w->flush_check);
  uv_check_start(&w->flush_check, kg_proxy_on_check);
}
