/* conn.h: one network connection, whatever carries it.
 *
 * A kg_conn owns its socket handle and a timer, and is the only place that
 * knows how bytes move: every operation goes through a transport's ops
 * table (kg_conn_ops). TCP is kg_conn_tcp, Unix domain sockets kg_conn_unix;
 * TLS (OpenSSL over memory BIOs, tls.c) is one more table, with no change to the users (the proxy's
 * client side, the HTTP client, the admin listener) beyond choosing it.
 *
 * Ownership: the owner embeds the kg_conn in its own struct (as libuv
 * handles are embedded) and frees that struct only from cbs->on_close,
 * which runs exactly once, from the loop, after kg_conn_close; kg_conn_close
 * may be called from any state, any number of times.
 *
 * Reads: every read lands in the buffer lent at kg_conn_init (on a worker,
 * one 256 KiB buffer for all its connections) and must be consumed before
 * the callback returns; nothing is copied.
 *
 * Deadlines are lazy: moving one only touches libuv's timer heap when it
 * comes earlier than the timer; a timer that fires early sleeps again.
 * Users move deadlines several times per request (every read, back to a
 * pool) and restarting the timer each time showed in profiles.
 *
 * Errors follow common.h: 0 or a negative libuv code; a function that takes
 * a callback and fails never calls it. */
#ifndef KG_CONN_H
#define KG_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct kg_conn kg_conn;
typedef struct kg_conn_write_req kg_conn_write_req;

#define KG_CONN_NO_DEADLINE UINT64_MAX

typedef void (*kg_conn_read_cb)(kg_conn *c, ssize_t nread, const uv_buf_t *buf);
typedef void (*kg_conn_event_cb)(kg_conn *c);
typedef void (*kg_conn_status_cb)(kg_conn *c, int status);
typedef void (*kg_conn_write_cb)(kg_conn_write_req *wr, int status);

/* What the owner is told. on_read as libuv's read callback (nread < 0: EOF
 * or an error); on_deadline when the deadline passed (it is then cleared);
 * on_close last, once: the owner may free the conn's memory there. */
typedef struct kg_conn_cbs {
  kg_conn_read_cb on_read;
  kg_conn_event_cb on_deadline;
  kg_conn_event_cb on_close;
} kg_conn_cbs;

/* One queued write. The caller owns it (and the bytes it points to) until
 * its callback has run; status is UV_ECANCELED when the conn closed first. */
struct kg_conn_write_req {
  uv_write_t req;
  kg_conn *conn;
  kg_conn_write_cb cb;
};

/* A transport. Each operation has the contract of the kg_conn_* function
 * of the same name below, which is the only caller. */
typedef struct kg_conn_ops {
  const char *name;
  /* Optional: initialises the stream handle (default: c->tcp). */
  void (*init)(kg_conn *c, uv_loop_t *loop);
  int (*connect)(kg_conn *c, const struct sockaddr *addr);
  int (*accept)(kg_conn *c, uv_stream_t *server);
  int (*read_start)(kg_conn *c);
  int (*read_stop)(kg_conn *c);
  int (*try_write)(kg_conn *c, const uv_buf_t *bufs, unsigned n);
  int (*write)(kg_conn *c, kg_conn_write_req *wr, const uv_buf_t *bufs, unsigned n);
  size_t (*write_queue_size)(const kg_conn *c);
  int (*shutdown)(kg_conn *c);
  void (*close)(kg_conn *c);
  /* Optional: frees the transport's state once every handle is closed,
   * just before the owner's on_close. */
  void (*release)(kg_conn *c);
} kg_conn_ops;

/* Plain TCP. */
extern const kg_conn_ops kg_conn_tcp;
/* Unix domain stream sockets: connect's addr is a struct sockaddr_un
 * (backends written "unix:/path/to/app.sock"). Client side only. */
extern const kg_conn_ops kg_conn_unix;
/* TLS over TCP (OpenSSL through memory BIOs, net/tls.h). The owner sets
 * c->transport_ctx to a kg_tls_ctx before connect or accept: a client
 * ctx for connect (connect's callback runs once the handshake is done),
 * a server ctx for accept (the handshake runs with the first reads). */
extern const kg_conn_ops kg_conn_tls;

/* Failures a transport reports beyond libuv's codes (through connect's
 * status or a read's nread), below every UV_* code. kg_conn_strerror
 * gives each its fixed description, the text a leg's error records. */
enum {
  KG_CONN_ETLS_EXPIRED = -5001,   /* "tls: certificate has expired" */
  KG_CONN_ETLS_HOSTNAME = -5002,  /* "tls: hostname mismatch" */
  KG_CONN_ETLS_SELF_SIGNED = -5003, /* "tls: self-signed certificate" */
  KG_CONN_ETLS_UNKNOWN_CA = -5004, /* "tls: unknown CA" */
  KG_CONN_ETLS_TIMEOUT = -5005,   /* "tls: handshake timeout" */
  KG_CONN_ETLS_VERSION = -5006,   /* "tls: protocol version" */
  KG_CONN_ETLS_HANDSHAKE = -5007, /* "tls: handshake failed" */
  KG_CONN_ETLS_VERIFY = -5008,    /* "tls: certificate verify failed" */
};
/* The static description of a transport code above, or NULL for any other
 * code (libuv's: use uv_strerror or the caller's own words). */
const char *kg_conn_strerror(int code);

/* The transport a URL scheme names ("http" -> kg_conn_tcp; len bytes of
 * scheme, case-insensitive), or NULL when no transport has that scheme.
 * Backend URLs (config) and replay targets are resolved through it, so a
 * new transport is one file with its kg_conn_ops, its declaration here
 * and one line in the table in conn.c. */
const kg_conn_ops *kg_conn_transport(const char *scheme, size_t len);

struct kg_conn {
  union {                     /* the socket: which one is the transport's */
    uv_tcp_t tcp;             /* TCP (a TLS transport runs over it) */
    uv_pipe_t pipe;           /* a Unix domain socket */
    uv_stream_t stream;       /* either, for what every stream does */
  };
  uv_timer_t timer;           /* fires at timer_due, then checks deadline */
  uv_connect_t connect_req;
  uv_shutdown_t shutdown_req;
  const kg_conn_ops *ops;     /* the transport (static) */
  const kg_conn_cbs *cbs;     /* the owner's callbacks (static) */
  void *data;                 /* the owner's */
  void *transport;            /* the transport's own state; NULL for TCP */
  void *transport_ctx;        /* the transport's settings, set by the owner
                                 after kg_conn_init (TLS: a kg_tls_ctx);
                                 lent, outlives the conn */
  char *rbuf;                 /* where reads land: lent by the owner */
  size_t rbuf_len;
  uint64_t deadline;          /* loop time (ms), or KG_CONN_NO_DEADLINE */
  uint64_t timer_due;         /* when the timer fires, while it is active */
  kg_conn_status_cb connect_cb;
  kg_conn_status_cb shutdown_cb;
  int open_handles;           /* handles not yet closed; on_close at 0 */
  bool reading;               /* reads are started */
  bool closing;               /* kg_conn_close was called */
  bool handshaking;           /* connected, but the transport is not ready
                                 yet (a TLS handshake): a deadline passing
                                 now is KG_CONN_ETLS_TIMEOUT's case */
};

/* For transports with handles of their own (kg_conn_tls): the close
 * callback that counts them in open_handles (incremented by the
 * transport when it opens one). */
void kg_conn_handle_closed(uv_handle_t *h);

/* Prepares c (its memory owned by the caller) on loop. rbuf[0..rbuf_len)
 * receives every read and must outlive the conn. Cannot fail: what a
 * transport may fail at (a handshake, say) belongs to connect/accept or
 * to the reads, which report it. */
void kg_conn_init(kg_conn *c, uv_loop_t *loop, const kg_conn_ops *ops,
                 const kg_conn_cbs *cbs, void *data, char *rbuf, size_t rbuf_len);
/* Connects to addr; cb(c, status) follows unless this fails. */
int kg_conn_connect(kg_conn *c, const struct sockaddr *addr, kg_conn_status_cb cb);
/* Accepts one pending connection of server. */
int kg_conn_accept(kg_conn *c, uv_stream_t *server);
/* Reads start (a no-op when started) or stop. */
int kg_conn_read_start(kg_conn *c);
int kg_conn_read_stop(kg_conn *c);
/* Writes what the socket takes now, without queueing: returns the bytes
 * written (0 when none could be) or a negative code. */
int kg_conn_try_write(kg_conn *c, const uv_buf_t *bufs, unsigned n);
/* Queues bufs (which must stay valid until wr->cb runs). */
int kg_conn_write(kg_conn *c, kg_conn_write_req *wr, const uv_buf_t *bufs, unsigned n,
                  kg_conn_write_cb cb);
/* Bytes queued and not yet handed to the kernel. */
size_t kg_conn_write_queue_size(const kg_conn *c);
/* Ends our sending side after queued writes; cb(c, status) follows unless
 * this fails. */
int kg_conn_shutdown(kg_conn *c, kg_conn_status_cb cb);
/* Sets the deadline ms from now (KG_CONN_NO_DEADLINE: none). 0 makes
 * on_deadline run on the next loop iteration, never from inside. */
void kg_conn_set_deadline(kg_conn *c, uint64_t ms);
/* Closes from any state; on_close follows once. No read, deadline,
 * connect or shutdown callback runs after this; a queued write's callback
 * still does (UV_ECANCELED), so that its owner can free what it queued. */
void kg_conn_close(kg_conn *c);

#endif
