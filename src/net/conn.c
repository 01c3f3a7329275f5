/* conn.c: the connection object and the plain stream transports, TCP and
 * Unix domain sockets (see conn.h).
 *
 * The kg_conn_* functions keep what every transport shares (the deadline,
 * close-once, the bookkeeping of callbacks); the kg_conn_tcp_* table does
 * the I/O on c->stream, which the Unix table reuses for everything but
 * making the handle and connecting. The TLS transport (tls.c) keeps its
 * session in c->transport. */
#include "net/conn.h"

#include <string.h>
#include <sys/un.h>

#include "common/common.h"

static void kg_conn_on_timer(uv_timer_t *t);

/* --- the plain TCP transport ------------------------------------------------ */

static void kg_conn_tcp_on_connect(uv_connect_t *req, int status) {
  kg_conn *c = req->data;
  if (c->closing) return; /* cancelled: the owner has let go */
  if (status == 0) uv_tcp_nodelay(&c->tcp, 1);
  c->connect_cb(c, status);
}

static int kg_conn_tcp_connect(kg_conn *c, const struct sockaddr *addr) {
  c->connect_req.data = c;
  return uv_tcp_connect(&c->connect_req, &c->tcp, addr, kg_conn_tcp_on_connect);
}

static void kg_conn_unix_init(kg_conn *c, uv_loop_t *loop) {
  uv_pipe_init(loop, &c->pipe, 0); /* only checks its arguments */
}

static void kg_conn_unix_on_connect(uv_connect_t *req, int status) {
  kg_conn *c = req->data;
  if (c->closing) return;
  c->connect_cb(c, status);
}

/* libuv connects a pipe by path and reports every failure (no such file,
 * refused, a path too long) through the callback, never here. */
static int kg_conn_unix_connect(kg_conn *c, const struct sockaddr *addr) {
  const struct sockaddr_un *un = (const struct sockaddr_un *)addr;
  if (addr->sa_family != AF_UNIX) return UV_EINVAL;
  c->connect_req.data = c;
  uv_pipe_connect(&c->connect_req, &c->pipe, un->sun_path, kg_conn_unix_on_connect);
  return 0;
}

static int kg_conn_tcp_accept(kg_conn *c, uv_stream_t *server) {
  int r = uv_accept(server, &c->stream);
  if (r == 0) uv_tcp_nodelay(&c->tcp, 1);
  return r;
}

static void kg_conn_tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  kg_conn *c = h->data;
  (void)suggested;
  *buf = uv_buf_init(c->rbuf, (unsigned)c->rbuf_len);
}

static void kg_conn_tcp_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  kg_conn *c = s->data;
  if (c->closing) return;
  if (nread < 0) c->reading = false; /* libuv stops reading at EOF or an error */
  c->cbs->on_read(c, nread, buf);
}

static int kg_conn_tcp_read_start(kg_conn *c) {
  return uv_read_start(&c->stream, kg_conn_tcp_alloc, kg_conn_tcp_on_read);
}

static int kg_conn_tcp_read_stop(kg_conn *c) {
  return uv_read_stop(&c->stream);
}

static int kg_conn_tcp_try_write(kg_conn *c, const uv_buf_t *bufs, unsigned n) {
  int r = uv_try_write(&c->stream, bufs, n);
  return r == UV_EAGAIN ? 0 : r;
}

static void kg_conn_tcp_on_write(uv_write_t *req, int status) {
  kg_conn_write_req *wr = KG_CONTAINER_OF(req, kg_conn_write_req, req);
  wr->cb(wr, status);
}

static int kg_conn_tcp_write(kg_conn *c, kg_conn_write_req *wr, const uv_buf_t *bufs,
                             unsigned n) {
  return uv_write(&wr->req, &c->stream, bufs, n, kg_conn_tcp_on_write);
}

static size_t kg_conn_tcp_write_queue_size(const kg_conn *c) {
  return c->stream.write_queue_size;
}

static void kg_conn_tcp_on_shutdown(uv_shutdown_t *req, int status) {
  kg_conn *c = req->data;
  if (c->closing) return;
  c->shutdown_cb(c, status);
}

static int kg_conn_tcp_shutdown(kg_conn *c) {
  c->shutdown_req.data = c;
  return uv_shutdown(&c->shutdown_req, &c->stream, kg_conn_tcp_on_shutdown);
}

void kg_conn_handle_closed(uv_handle_t *h) {
  kg_conn *c = h->data;
  if (--c->open_handles > 0) return;
  if (c->ops->release) c->ops->release(c);
  c->cbs->on_close(c);
}

static void kg_conn_tcp_close(kg_conn *c) {
  uv_close((uv_handle_t *)&c->stream, kg_conn_handle_closed);
}

/* URL schemes and the transports that carry them. */
static const struct {
  const char *scheme;
  const kg_conn_ops *ops;
} kg_conn_transports[] = {
    {"http", &kg_conn_tcp},
    {"https", &kg_conn_tls},
    {"unix", &kg_conn_unix},
};

/* The fixed texts of the transports' own codes (conn.h), in code order. */
static const char *const kg_conn_errors[] = {
    "tls: certificate has expired", "tls: hostname mismatch",
    "tls: self-signed certificate", "tls: unknown CA",
    "tls: handshake timeout",       "tls: protocol version",
    "tls: handshake failed",        "tls: certificate verify failed",
};

const char *kg_conn_strerror(int code) {
  int i = KG_CONN_ETLS_EXPIRED - code;
  if (i < 0 || (size_t)i >= KG_ARRAY_SIZE(kg_conn_errors)) return NULL;
  return kg_conn_errors[i];
}

const kg_conn_ops *kg_conn_transport(const char *scheme, size_t len) {
  for (size_t i = 0; i < KG_ARRAY_SIZE(kg_conn_transports); i++)
    if (kg_str_ieq(scheme, len, kg_conn_transports[i].scheme))
      return kg_conn_transports[i].ops;
  return NULL;
}

/* What TCP and Unix sockets do alike: everything on c->stream. */
#define KG_CONN_STREAM_OPS                                             \
  .read_start = kg_conn_tcp_read_start, .read_stop = kg_conn_tcp_read_stop, \
  .try_write = kg_conn_tcp_try_write, .write = kg_conn_tcp_write,          \
  .write_queue_size = kg_conn_tcp_write_queue_size,                        \
  .shutdown = kg_conn_tcp_shutdown, .close = kg_conn_tcp_close

const kg_conn_ops kg_conn_tcp = {
    .name = "tcp",
    .connect = kg_conn_tcp_connect,
    .accept = kg_conn_tcp_accept,
    KG_CONN_STREAM_OPS,
};

const kg_conn_ops kg_conn_unix = {
    .name = "unix",
    .init = kg_conn_unix_init,
    .connect = kg_conn_unix_connect,
    .accept = kg_conn_tcp_accept, /* unused: no Unix listener */
    KG_CONN_STREAM_OPS,
};

/* --- what every transport shares -------------------------------------------- */

void kg_conn_init(kg_conn *c, uv_loop_t *loop, const kg_conn_ops *ops,
                  const kg_conn_cbs *cbs, void *data, char *rbuf, size_t rbuf_len) {
  *c = (kg_conn){.ops = ops, .cbs = cbs, .data = data, .rbuf = rbuf,
                 .rbuf_len = rbuf_len, .deadline = KG_CONN_NO_DEADLINE};
  /* Neither fails: uv_tcp_init only checks flags, and we pass none. */
  if (ops->init)
    ops->init(c, loop);
  else
    uv_tcp_init(loop, &c->tcp);
  uv_timer_init(loop, &c->timer);
  c->stream.data = c->timer.data = c;
  c->open_handles = 2;
}

int kg_conn_connect(kg_conn *c, const struct sockaddr *addr, kg_conn_status_cb cb) {
  c->connect_cb = cb;
  return c->ops->connect(c, addr);
}

int kg_conn_accept(kg_conn *c, uv_stream_t *server) {
  return c->ops->accept(c, server);
}

int kg_conn_read_start(kg_conn *c) {
  if (c->reading || c->closing) return 0;
  int r = c->ops->read_start(c);
  if (r == 0) c->reading = true;
  return r;
}

int kg_conn_read_stop(kg_conn *c) {
  if (!c->reading) return 0;
  c->reading = false;
  return c->ops->read_stop(c);
}

int kg_conn_try_write(kg_conn *c, const uv_buf_t *bufs, unsigned n) {
  return c->ops->try_write(c, bufs, n);
}

int kg_conn_write(kg_conn *c, kg_conn_write_req *wr, const uv_buf_t *bufs, unsigned n,
                  kg_conn_write_cb cb) {
  wr->conn = c;
  wr->cb = cb;
  return c->ops->write(c, wr, bufs, n);
}

size_t kg_conn_write_queue_size(const kg_conn *c) {
  return c->ops->write_queue_size(c);
}

int kg_conn_shutdown(kg_conn *c, kg_conn_status_cb cb) {
  c->shutdown_cb = cb;
  return c->ops->shutdown(c);
}

void kg_conn_set_deadline(kg_conn *c, uint64_t ms) {
  if (ms == KG_CONN_NO_DEADLINE) {
    c->deadline = KG_CONN_NO_DEADLINE; /* a running timer finds nothing due */
    return;
  }
  uint64_t due = uv_now(c->timer.loop) + ms;
  c->deadline = due;
  if (!uv_is_active((uv_handle_t *)&c->timer) || due < c->timer_due) {
    uv_timer_start(&c->timer, kg_conn_on_timer, ms, 0);
    c->timer_due = due;
  }
}

static void kg_conn_on_timer(uv_timer_t *t) {
  kg_conn *c = t->data;
  if (c->closing || c->deadline == KG_CONN_NO_DEADLINE) return;
  uint64_t now = uv_now(t->loop);
  if (now < c->deadline) { /* moved later since the timer was set */
    uv_timer_start(t, kg_conn_on_timer, c->deadline - now, 0);
    c->timer_due = c->deadline;
    return;
  }
  c->deadline = KG_CONN_NO_DEADLINE;
  c->cbs->on_deadline(c);
}

void kg_conn_close(kg_conn *c) {
  if (c->closing) return;
  c->closing = true;
  c->reading = false;
  c->ops->close(c);
  uv_close((uv_handle_t *)&c->timer, kg_conn_handle_closed);
}
