/* tls.c: the TLS transport (kg_conn_tls, conn.h) and its contexts (tls.h).
 *
 * OpenSSL never touches the socket: ciphertext read by libuv is written
 * into a memory BIO (rbio) and OpenSSL's output is taken from another
 * (wbio) and written by libuv, so nothing blocks the loop. A session goes
 * HANDSHAKE -> OPEN -> DONE (failed, or the peer's EOF delivered); the
 * pump (kg_tls_pump) is the one function that moves it, run whenever
 * ciphertext arrives or the owner resumes reading.
 *
 * Reads: the ciphertext lands in the owner's read buffer, is copied into
 * rbio at once, and the plaintext is then decrypted into the same buffer
 * and handed to the owner, one record at a time, while it keeps reading.
 * What is left when it stops (pipelined requests, a paused response) stays
 * in OpenSSL; read_start delivers it from an idle handle on the next loop
 * iteration, never from inside read_start.
 *
 * Writes: SSL_write always takes the whole plaintext (a memory BIO grows),
 * so try_write reports every byte taken and queues what the socket did not
 * accept: the bytes are encrypted once, in order, and write_queue_size
 * (libuv's queue of ciphertext) is still what backpressure reads. */
#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "common/common.h"
#include "net/conn.h"

struct kg_tls_ctx {
  SSL_CTX *ssl_ctx;          /* owned */
  bool server;
  char *server_name;         /* owned; client: checked and (unless an IP) SNI */
  bool name_is_ip;
  pthread_mutex_t lock;      /* guards session and the counts */
  SSL_SESSION *session;      /* client: the last resumable session, owned */
  uint64_t handshakes, resumed;
};

typedef enum { KG_TLS_HANDSHAKE, KG_TLS_OPEN, KG_TLS_DONE } kg_tls_state;

typedef struct kg_tls_conn {
  SSL *ssl;                  /* owns rbio and wbio */
  BIO *rbio;                 /* ciphertext from the peer, not yet used */
  BIO *wbio;                 /* ciphertext for the peer, not yet written */
  uv_idle_t idle;            /* delivers buffered plaintext after read_start */
  kg_tls_state state;
  bool established;          /* the handshake completed */
  bool raw_reading;          /* the socket is being read */
  int eof;                   /* the socket's EOF or read error, once seen */
  int werr;                  /* a failed write of OpenSSL's own output */
} kg_tls_conn;

/* A write of ciphertext owned by the transport; wr is the owner's request
 * to complete with it (NULL for OpenSSL's own output). */
typedef struct kg_tls_wreq {
  uv_write_t req;
  kg_conn_write_req *wr;
  size_t len;
  char data[];
} kg_tls_wreq;

/* --- contexts ----------------------------------------------------------------- */

/* Keeps the newest session of a client handshake for the next connection:
 * a pool refill then resumes (one round trip, no certificate work). */
static int kg_tls_on_new_session(SSL *ssl, SSL_SESSION *sess) {
  kg_tls_ctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
  if (!SSL_SESSION_is_resumable(sess)) return 0;
  pthread_mutex_lock(&t->lock);
  if (t->session) SSL_SESSION_free(t->session);
  t->session = sess;
  pthread_mutex_unlock(&t->lock);
  return 1; /* we keep the reference */
}

/* A listener speaks HTTP/1.1 only: it is chosen when the client offers
 * it; a client offering only other protocols gets no ALPN answer. */
static int kg_tls_on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned inlen, void *arg) {
  static const unsigned char h11[] = "\x08http/1.1";
  unsigned char *sel = NULL;
  (void)ssl;
  (void)arg;
  if (SSL_select_next_proto(&sel, outlen, h11, sizeof(h11) - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

/* "what FILE: OpenSSL's reason" into err; returns -1. */
static int kg_tls_ctx_fail(char *err, size_t errlen, const char *what,
                           const char *file) {
  unsigned long e = ERR_peek_last_error();
  char why[256] = "unknown error";
  if (e != 0) {
    const char *r = ERR_reason_error_string(e);
    snprintf(why, sizeof(why), "%s", r ? r : "unknown error");
  }
  ERR_clear_error();
  if (file) snprintf(err, errlen, "%s %s: %s", what, file, why);
  else snprintf(err, errlen, "%s: %s", what, why);
  return -1;
}

int kg_tls_ctx_new(const kg_tls_settings *s, kg_tls_ctx **out, char *err,
                   size_t errlen) {
  *out = NULL;
  ERR_clear_error();
  SSL_CTX *ctx = SSL_CTX_new(s->server ? TLS_server_method() : TLS_client_method());
  if (ctx == NULL) return kg_tls_ctx_fail(err, errlen, "TLS context", NULL);
  kg_tls_ctx *t = kg_calloc(1, sizeof(*t));
  t->ssl_ctx = ctx;
  t->server = s->server;
  pthread_mutex_init(&t->lock, NULL);
  SSL_CTX_set_app_data(ctx, t);
  /* Idle pooled connections should not hold 2 x 16 KiB of buffers each;
   * renegotiation is a handshake inside the stream we do not run. */
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  int rc = -1;
  if (!SSL_CTX_set_min_proto_version(ctx, s->min_version == 13 ? TLS1_3_VERSION
                                                               : TLS1_2_VERSION)) {
    kg_tls_ctx_fail(err, errlen, "min_version", NULL);
    goto done;
  }
  if (s->ciphers && !SSL_CTX_set_cipher_list(ctx, s->ciphers)) {
    kg_tls_ctx_fail(err, errlen, "ciphers", s->ciphers);
    goto done;
  }
  if (s->cert) {
    if (SSL_CTX_use_certificate_chain_file(ctx, s->cert) != 1) {
      kg_tls_ctx_fail(err, errlen, "cannot use certificate", s->cert);
      goto done;
    }
    int ok = SSL_CTX_use_PrivateKey_file(ctx, s->key, SSL_FILETYPE_PEM);
    /* OpenSSL checks the pair as it loads the key: a mismatch is named
     * as such, with both files. */
    if (ok != 1 && ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
      kg_tls_ctx_fail(err, errlen, "cannot use key", s->key);
      goto done;
    }
    if (ok != 1 || SSL_CTX_check_private_key(ctx) != 1) {
      ERR_clear_error();
      snprintf(err, errlen, "key %s does not match certificate %s", s->key, s->cert);
      goto done;
    }
  }
  if (s->server) {
    SSL_CTX_set_alpn_select_cb(ctx, kg_tls_on_alpn, NULL);
  } else {
    static const unsigned char h11[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, h11, sizeof(h11) - 1);
    if (s->verify) {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
      int ok = s->ca ? SSL_CTX_load_verify_locations(ctx, s->ca, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
      if (ok != 1) {
        kg_tls_ctx_fail(err, errlen, "cannot load CA file", s->ca ? s->ca : "(system)");
        goto done;
      }
    } else {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                            SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, kg_tls_on_new_session);
    if (s->server_name) {
      unsigned char ip[16];
      t->server_name = kg_strdup(s->server_name);
      t->name_is_ip = inet_pton(AF_INET, s->server_name, ip) == 1 ||
                      inet_pton(AF_INET6, s->server_name, ip) == 1;
    }
  }
  rc = 0;
done:
  if (rc != 0) {
    kg_tls_ctx_free(t);
    return -1;
  }
  *out = t;
  return 0;
}

void kg_tls_ctx_free(kg_tls_ctx *t) {
  if (t == NULL) return;
  if (t->session) SSL_SESSION_free(t->session);
  SSL_CTX_free(t->ssl_ctx);
  pthread_mutex_destroy(&t->lock);
  free(t->server_name);
  free(t);
}

void kg_tls_ctx_counts(kg_tls_ctx *t, uint64_t *handshakes, uint64_t *resumed) {
  pthread_mutex_lock(&t->lock);
  *handshakes = t->handshakes;
  *resumed = t->resumed;
  pthread_mutex_unlock(&t->lock);
}

/* --- a session's reasons ------------------------------------------------------ */

/* Why a handshake failed, as one of conn.h's codes: the certificate check
 * first (its result names the reason), then the protocol errors. */
static int kg_tls_reason(SSL *ssl) {
  switch (SSL_get_verify_result(ssl)) {
  case X509_V_OK: break;
  case X509_V_ERR_CERT_HAS_EXPIRED: return KG_CONN_ETLS_EXPIRED;
  case X509_V_ERR_HOSTNAME_MISMATCH:
  case X509_V_ERR_IP_ADDRESS_MISMATCH: return KG_CONN_ETLS_HOSTNAME;
  case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
  case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: return KG_CONN_ETLS_SELF_SIGNED;
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
  case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: return KG_CONN_ETLS_UNKNOWN_CA;
  default: return KG_CONN_ETLS_VERIFY;
  }
  unsigned long e = ERR_peek_error();
  if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
    switch (ERR_GET_REASON(e)) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_VERSION_TOO_LOW:
      return KG_CONN_ETLS_VERSION;
    }
  }
  return KG_CONN_ETLS_HANDSHAKE;
}

/* --- writing ciphertext ------------------------------------------------------- */

static void kg_tls_on_write(uv_write_t *req, int status) {
  kg_tls_wreq *q = KG_CONTAINER_OF(req, kg_tls_wreq, req);
  if (q->wr) q->wr->cb(q->wr, status);
  free(q);
}

/* Sends what OpenSSL wrote into wbio. Without wr the socket is tried
 * first and only a remainder queued; with wr everything is queued and
 * wr's callback runs when it is written (never from here). 0 or a
 * negative code (wr's callback then does not run). */
static int kg_tls_flush(kg_conn *c, kg_conn_write_req *wr) {
  kg_tls_conn *t = c->transport;
  size_t n = (size_t)BIO_ctrl_pending(t->wbio);
  if (n == 0 && wr == NULL) return 0;
  kg_tls_wreq *q = kg_malloc(sizeof(*q) + n);
  q->wr = wr;
  q->len = n;
  if (n > 0 && BIO_read(t->wbio, q->data, (int)n) != (int)n) abort(); /* memory BIO */
  uv_buf_t b = uv_buf_init(q->data, (unsigned)n);
  if (wr == NULL) {
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r < 0 && r != UV_EAGAIN) {
      free(q);
      return r;
    }
    if (r > 0) b = uv_buf_init(q->data + r, (unsigned)(n - (size_t)r));
    if (b.len == 0) {
      free(q);
      return 0;
    }
  }
  int r = uv_write(&q->req, (uv_stream_t *)&c->tcp, &b, 1, kg_tls_on_write);
  if (r < 0) free(q);
  return r;
}

/* --- the pump ----------------------------------------------------------------- */

static void kg_tls_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  kg_conn *c = h->data;
  (void)suggested;
  *buf = uv_buf_init(c->rbuf, (unsigned)c->rbuf_len);
}

static void kg_tls_on_raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void kg_tls_raw(kg_conn *c, bool on) {
  kg_tls_conn *t = c->transport;
  if (on == t->raw_reading || (on && t->eof)) return;
  t->raw_reading = on;
  if (on) uv_read_start((uv_stream_t *)&c->tcp, kg_tls_alloc, kg_tls_on_raw_read);
  else uv_read_stop((uv_stream_t *)&c->tcp);
}

/* The session is over: code goes to the owner, as connect's status while
 * a client handshakes, else as a read. */
static void kg_tls_finish(kg_conn *c, int code) {
  kg_tls_conn *t = c->transport;
  bool connecting = t->state == KG_TLS_HANDSHAKE && !SSL_is_server(t->ssl);
  t->state = KG_TLS_DONE;
  c->handshaking = false;
  kg_tls_raw(c, false);
  if (connecting) {
    c->connect_cb(c, code);
    return;
  }
  c->reading = false; /* as TCP: reads stop at EOF or an error */
  uv_buf_t b = uv_buf_init(c->rbuf, 0);
  c->cbs->on_read(c, code, &b);
}

/* Runs the handshake to its end, then hands plaintext to the owner while
 * it reads. Every return leaves OpenSSL's output sent or queued. */
static void kg_tls_pump(kg_conn *c) {
  kg_tls_conn *t = c->transport;
  if (t->state == KG_TLS_HANDSHAKE) {
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    int fr = kg_tls_flush(c, NULL);
    if (r != 1) {
      int e = SSL_get_error(t->ssl, r);
      if (e == SSL_ERROR_WANT_READ && !t->eof && fr == 0) return;
      int code = kg_tls_reason(t->ssl);
      /* The peer hanging up mid-handshake says nothing about why; a
       * refused connection reset is its own, libuv's, reason. */
      if (code == KG_CONN_ETLS_HANDSHAKE && t->eof && t->eof != UV_EOF) code = t->eof;
      ERR_clear_error();
      kg_tls_finish(c, code);
      return;
    }
    t->state = KG_TLS_OPEN;
    t->established = true;
    c->handshaking = false;
    kg_tls_ctx *x = c->transport_ctx;
    pthread_mutex_lock(&x->lock);
    x->handshakes++;
    if (SSL_session_reused(t->ssl)) x->resumed++;
    pthread_mutex_unlock(&x->lock);
    if (!SSL_is_server(t->ssl)) {
      /* Connected: the owner decides when to read. Session tickets that
       * come after the handshake are read with the response. */
      kg_tls_raw(c, c->reading);
      c->connect_cb(c, 0);
      return;
    }
  }
  while (t->state == KG_TLS_OPEN && c->reading && !c->closing) {
    ERR_clear_error();
    int n = SSL_read(t->ssl, c->rbuf, (int)KG_MIN(c->rbuf_len, (size_t)INT32_MAX));
    if (n > 0) {
      uv_buf_t b = uv_buf_init(c->rbuf, (unsigned)n);
      c->cbs->on_read(c, n, &b);
      continue;
    }
    int e = SSL_get_error(t->ssl, n);
    if (kg_tls_flush(c, NULL) != 0) t->werr = UV_EPIPE;
    if (e == SSL_ERROR_WANT_READ && !t->eof && !t->werr) return;
    /* close_notify, or the socket's end (a cut record included: the owner
     * tells a short response by its framing), or a record we reject. */
    int code = e == SSL_ERROR_ZERO_RETURN  ? UV_EOF
               : e == SSL_ERROR_WANT_READ ? (t->werr ? t->werr : t->eof)
                                          : UV_EPROTO;
    ERR_clear_error();
    kg_tls_finish(c, code);
  }
}

static void kg_tls_on_raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  kg_conn *c = s->data;
  kg_tls_conn *t = c->transport;
  if (c->closing || nread == 0) return;
  if (nread < 0) {
    t->eof = (int)nread;
    t->raw_reading = false; /* libuv stops reading at EOF or an error */
  } else if (BIO_write(t->rbio, buf->base, (int)nread) != (int)nread) {
    abort(); /* a memory BIO takes everything or the allocation failed */
  }
  kg_tls_pump(c);
}

static void kg_tls_on_idle(uv_idle_t *h) {
  kg_conn *c = h->data;
  uv_idle_stop(h);
  if (!c->closing) kg_tls_pump(c);
}

/* --- the ops ------------------------------------------------------------------ */

/* A session for c in the role its context says; the idle handle is
 * counted in c->open_handles and closed with the conn. */
static int kg_tls_session_new(kg_conn *c) {
  kg_tls_ctx *x = c->transport_ctx;
  if (x == NULL) return UV_EINVAL;
  SSL *ssl = SSL_new(x->ssl_ctx);
  if (ssl == NULL) return UV_ENOMEM;
  kg_tls_conn *t = kg_calloc(1, sizeof(*t));
  t->ssl = ssl;
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (t->rbio == NULL || t->wbio == NULL) abort(); /* out of memory */
  /* An empty rbio means "no more yet", not EOF. */
  BIO_set_mem_eof_return(t->rbio, -1);
  SSL_set_bio(ssl, t->rbio, t->wbio);
  if (x->server) {
    SSL_set_accept_state(ssl);
  } else {
    SSL_set_connect_state(ssl);
    if (x->server_name) {
      if (x->name_is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), x->server_name);
      } else {
        SSL_set_tlsext_host_name(ssl, x->server_name);
        SSL_set1_host(ssl, x->server_name);
      }
    }
    pthread_mutex_lock(&x->lock);
    if (x->session) SSL_set_session(ssl, x->session);
    pthread_mutex_unlock(&x->lock);
  }
  c->transport = t;
  uv_idle_init(c->tcp.loop, &t->idle);
  t->idle.data = c;
  c->open_handles++;
  return 0;
}

static void kg_tls_on_connect(uv_connect_t *req, int status) {
  kg_conn *c = req->data;
  if (c->closing) return;
  if (status < 0) {
    c->connect_cb(c, status);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->handshaking = true;
  kg_tls_raw(c, true);
  kg_tls_pump(c);
}

static int kg_tls_connect(kg_conn *c, const struct sockaddr *addr) {
  int r = kg_tls_session_new(c);
  if (r < 0) return r;
  c->connect_req.data = c;
  return uv_tcp_connect(&c->connect_req, &c->tcp, addr, kg_tls_on_connect);
}

static int kg_tls_accept(kg_conn *c, uv_stream_t *server) {
  int r = uv_accept(server, (uv_stream_t *)&c->tcp);
  if (r < 0) return r;
  uv_tcp_nodelay(&c->tcp, 1);
  r = kg_tls_session_new(c);
  if (r == 0) c->handshaking = true;
  return r;
}

static int kg_tls_read_start(kg_conn *c) {
  kg_tls_conn *t = c->transport;
  if (t == NULL) return UV_ENOTCONN;
  /* Buffered plaintext, or an end not yet told: delivered from the loop. */
  if (t->state == KG_TLS_OPEN &&
      (SSL_pending(t->ssl) > 0 || BIO_ctrl_pending(t->rbio) > 0 || t->eof))
    uv_idle_start(&t->idle, kg_tls_on_idle);
  kg_tls_raw(c, true);
  return 0;
}

static int kg_tls_read_stop(kg_conn *c) {
  kg_tls_conn *t = c->transport;
  if (t == NULL) return 0;
  uv_idle_stop(&t->idle);
  if (t->state != KG_TLS_HANDSHAKE) kg_tls_raw(c, false);
  return 0;
}

/* Encrypts all of bufs into wbio. 0 or UV_EPROTO. */
static int kg_tls_encrypt(kg_conn *c, const uv_buf_t *bufs, unsigned n, size_t *total) {
  kg_tls_conn *t = c->transport;
  *total = 0;
  if (t == NULL || t->state != KG_TLS_OPEN) return UV_ENOTCONN;
  for (unsigned i = 0; i < n; i++) {
    if (bufs[i].len == 0) continue;
    ERR_clear_error();
    if (SSL_write(t->ssl, bufs[i].base, (int)bufs[i].len) != (int)bufs[i].len) {
      ERR_clear_error();
      return UV_EPROTO;
    }
    *total += bufs[i].len;
  }
  return 0;
}

static int kg_tls_try_write(kg_conn *c, const uv_buf_t *bufs, unsigned n) {
  size_t total;
  int r = kg_tls_encrypt(c, bufs, n, &total);
  if (r == 0) r = kg_tls_flush(c, NULL);
  return r < 0 ? r : (int)total;
}

static int kg_tls_write(kg_conn *c, kg_conn_write_req *wr, const uv_buf_t *bufs,
                        unsigned n) {
  size_t total;
  int r = kg_tls_encrypt(c, bufs, n, &total);
  return r < 0 ? r : kg_tls_flush(c, wr);
}

/* What libuv has queued is ciphertext: what backpressure should see. */
static size_t kg_tls_write_queue_size(const kg_conn *c) {
  return kg_conn_tcp.write_queue_size(c);
}

/* close_notify first, so the peer can tell our end from a cut. */
static int kg_tls_shutdown(kg_conn *c) {
  kg_tls_conn *t = c->transport;
  if (t && t->state == KG_TLS_OPEN) {
    ERR_clear_error();
    SSL_shutdown(t->ssl);
    ERR_clear_error();
    int r = kg_tls_flush(c, NULL);
    if (r < 0) return r;
  }
  return kg_conn_tcp.shutdown(c); /* then the socket's, as TCP's */
}

static void kg_tls_close(kg_conn *c) {
  kg_tls_conn *t = c->transport;
  if (t) uv_close((uv_handle_t *)&t->idle, kg_conn_handle_closed);
  kg_conn_tcp.close(c);
}

static void kg_tls_release(kg_conn *c) {
  kg_tls_conn *t = c->transport;
  if (t == NULL) return;
  /* OpenSSL marks the session of a connection freed without a shutdown
   * as not resumable, and pools close idle connections without one: a
   * session that was established is still good for the next handshake. */
  if (t->established) SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(t->ssl);
  free(t);
  c->transport = NULL;
}

const kg_conn_ops kg_conn_tls = {
    .name = "tls",
    .connect = kg_tls_connect,
    .accept = kg_tls_accept,
    .read_start = kg_tls_read_start,
    .read_stop = kg_tls_read_stop,
    .try_write = kg_tls_try_write,
    .write = kg_tls_write,
    .write_queue_size = kg_tls_write_queue_size,
    .shutdown = kg_tls_shutdown,
    .close = kg_tls_close,
    .release = kg_tls_release,
};
