/* admin.c: the admin listener (see admin.h): a small HTTP/1.1 server on
 * the main thread's loop.
 *
 * A connection is in one of three states:
 *   OPEN       reading requests and answering them in order; answers are
 *              gathered in `out` and written once per read. Most are made
 *              at once (they are small and local); a JSON API answer comes
 *              from a job on the thread pool (admin_api.c), and while that
 *              job runs (`job` set) parsing stops there, so that answers
 *              keep their order. Reading goes on meanwhile, a little, so a
 *              client that gives up is noticed and its job detached
 *   LINGERING  the last answer said "Connection: close" and is written;
 *              our side is shut down and what the client still sends is
 *              drained for a moment, so that unread input does not make
 *              the kernel reset the connection and destroy the answer
 *   CLOSED     kg_conn_close was called; freed in the conn's close callback
 * Input that arrives while too many answer bytes wait to be written stays
 * unparsed in `inbuf` and reading pauses, so a client pipelining requests
 * for the dashboard script cannot make us buffer without bound. */
#include "admin/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/admin_int.h"
#include "common/common.h"
#include "http/http.h"
#include "common/log.h"
#include "net/conn.h"

#define KG_ADMIN_MAX_CONNS 64            /* browsers open ~6, scrapers 1 */
#define KG_ADMIN_MAX_HEAD (16 * 1024)    /* request line + fields */
#define KG_ADMIN_MAX_HEADERS 64
#define KG_ADMIN_MAX_BODY (8 * 1024)     /* GET has no use for a body */
#define KG_ADMIN_HIGH_WATER (1024 * 1024) /* unsent answer bytes: stop parsing */
#define KG_ADMIN_TIMEOUT_MS 15000        /* to send a request / stay idle */
#define KG_ADMIN_LINGER_MS 1000

/* Every page and answer: nothing may come from, or go to, another origin
 * (the dashboard is plain files of ours), and no one may frame it. */
static const char kg_admin_csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

typedef enum kg_admin_conn_state {
  KG_ADMIN_OPEN,
  KG_ADMIN_LINGERING,
  KG_ADMIN_CLOSED,
} kg_admin_conn_state;

typedef struct kg_admin_conn kg_admin_conn;

struct kg_admin_conn {
  kg_conn conn;                /* the connection; its deadline is the
                                  request deadline, idle, linger */
  kg_admin *a;                 /* owner */
  kg_admin_conn *prev, *next;  /* a->conns */
  kg_admin_conn_state state;
  kg_http http;                /* request parser */
  kg_buf inbuf;                /* received, not yet parsed (owned) */
  kg_buf out;                  /* answers not yet handed to libuv (owned) */
  size_t body_bytes;           /* of the request being parsed (dropped) */
  bool close_after_write;      /* the last answer closes the connection */
  bool eof;                    /* the client will send nothing more */
  kg_admin_job *job;           /* the API answer being made for the oldest
                                  unanswered request, or NULL; owned by the
                                  API, detached by kg_admin_conn_close */
  bool job_head;               /* that request was HEAD */
  bool job_keep_alive;         /* ... may keep the connection open */
  bool job_http10;             /* ... was HTTP/1.0 */
};

struct kg_admin {
  uv_loop_t *loop;             /* the main thread's */
  kg_admin_ctx *ctx;           /* owned by main */
  uv_tcp_t listener;
  bool listener_alive;         /* until its close callback */
  bool stopping;               /* kg_admin_stop was called */
  kg_admin_conn *conns;        /* open connections (intrusive list) */
  size_t nconns;               /* connections not yet freed */
  kg_admin_api *api;           /* owned */
  char readbuf[16 * 1024];     /* every read lands here, then in inbuf */
};

typedef struct kg_admin_write {
  kg_conn_write_req req;
  kg_admin_conn *c;
  char *data;                  /* owned */
} kg_admin_write;

static void kg_admin_conn_close(kg_admin_conn *c);
static void kg_admin_conn_process(kg_admin_conn *c);

/* --- small helpers ------------------------------------------------------- */

static const char *kg_admin_reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

void kg_admin_resp_text(kg_admin_resp *r, int status, const char *text) {
  r->status = status;
  r->content_type = "text/plain; charset=utf-8";
  kg_buf_reset(&r->body);
  kg_buf_appendf(&r->body, "%s\n", text);
}

static int kg_admin_hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool kg_admin_decode(const char *p, size_t n, bool plus_is_space, kg_buf *out) {
  kg_buf_reset(out);
  kg_buf_reserve(out, n);
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (ch == '+' && plus_is_space) {
      ch = ' ';
    } else if (ch == '%') {
      int hi = i + 2 < n ? kg_admin_hexval(p[i + 1]) : -1;
      int lo = hi >= 0 ? kg_admin_hexval(p[i + 2]) : -1;
      if (lo < 0 || (hi == 0 && lo == 0)) return false;
      ch = (char)(hi * 16 + lo);
      i += 2;
    }
    kg_buf_append(out, &ch, 1);
  }
  return true;
}

bool kg_admin_query_valid(const char *query) {
  kg_buf tmp = KG_BUF_INIT;
  bool ok = kg_admin_decode(query, strlen(query), true, &tmp);
  kg_buf_free(&tmp);
  return ok;
}

bool kg_admin_query(const char *query, const char *name, kg_buf *out) {
  size_t nlen = strlen(name);
  const char *p = query;
  while (p && *p) {
    const char *end = strchr(p, '&');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    size_t klen = eq ? (size_t)(eq - p) : len;
    if (klen == nlen && memcmp(p, name, nlen) == 0) {
      if (!eq) {
        kg_buf_reset(out);
        kg_buf_reserve(out, 0);
        return true;
      }
      return kg_admin_decode(eq + 1, len - klen - 1, true, out);
    }
    p = end ? end + 1 : NULL;
  }
  return false;
}

/* Compares the presented token with the configured one in time that does
 * not depend on where they first differ, so the token cannot be guessed a
 * byte at a time by timing. (The time does depend on the length presented,
 * which the client knows anyway.) */
static bool kg_admin_token_equal(const char *want, const char *got,
                                 size_t gotlen) {
  size_t wlen = strlen(want);
  size_t diff = wlen ^ gotlen;
  if (wlen == 0) return diff == 0;
  for (size_t i = 0; i < gotlen; i++)
    diff |= (size_t)((unsigned char)got[i] ^ (unsigned char)want[i % wlen]);
  return diff == 0;
}

/* True when no token is configured, or the request carries
 * "Authorization: Bearer <token>" with the right one. */
static bool kg_admin_authorized(const kg_admin *a, const kg_hdrs *h) {
  const char *token = a->ctx->cfg->admin_token;
  if (token == NULL) return true;
  long i = kg_hdrs_find(h, "authorization");
  if (i < 0) return false;
  const char *v = kg_hdrs_value(h, (size_t)i);
  while (*v == ' ' || *v == '\t') v++;
  if (strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t'))
    return false;
  v += 6;
  while (*v == ' ' || *v == '\t') v++;
  size_t n = strlen(v);
  while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
  return kg_admin_token_equal(token, v, n);
}

/* --- routing ------------------------------------------------------------- */

static const kg_admin_asset *kg_admin_find_asset(const char *path) {
  for (size_t i = 0; i < kg_admin_nassets; i++)
    if (strcmp(kg_admin_assets[i].path, path) == 0) return &kg_admin_assets[i];
  return NULL;
}

/* If-None-Match lists validators (or "*"); a match means the browser's
 * copy is current. */
static bool kg_admin_not_modified(const kg_hdrs *h, const char *etag) {
  long i = kg_hdrs_find(h, "if-none-match");
  if (i < 0) return false;
  const char *v = kg_hdrs_value(h, (size_t)i);
  return strstr(v, etag) != NULL || strcmp(v, "*") == 0;
}

static void kg_admin_serve_asset(const kg_admin_req *r, const kg_admin_asset *f,
                                 kg_admin_resp *resp) {
  resp->etag = f->etag;
  /* Revalidate every time: an upgraded kagami must not run yesterday's
   * script, and with the ETag a check costs one small request. */
  resp->cache = "no-cache";
  if (kg_admin_not_modified(r->hdrs, f->etag)) {
    resp->status = 304;
    return;
  }
  resp->status = 200;
  resp->content_type = f->content_type;
  kg_buf_append(&resp->body, f->data, f->len);
}

static void kg_admin_on_job_done(void *waiter, kg_admin_resp *resp);

/* Answers r in resp, or returns the job that will (an API query); the
 * job's waiter is c. */
static kg_admin_job *kg_admin_route(kg_admin *a, kg_admin_conn *c,
                                    const kg_admin_req *r, kg_admin_resp *resp) {
  if (strcmp(r->path, "/healthz") == 0) {
    kg_admin_resp_text(resp, 200, "ok");
    return NULL;
  }
  const kg_admin_asset *f = kg_admin_find_asset(r->path);
  if (f) {
    kg_admin_serve_asset(r, f, resp);
    return NULL;
  }
  bool metrics = strcmp(r->path, "/metrics") == 0;
  bool api = strncmp(r->path, "/api/", 5) == 0;
  if (!metrics && !api) {
    kg_admin_resp_text(resp, 404, "not found");
    return NULL;
  }
  if (!kg_admin_authorized(a, r->hdrs)) {
    kg_admin_resp_text(resp, 401, "a bearer token is required");
    resp->challenge = true;
    return NULL;
  }
  if (metrics) {
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    kg_admin_metrics(a->ctx, &resp->body);
    return NULL;
  }
  return kg_admin_api_handle(a->api, r, resp, kg_admin_on_job_done, c);
}

/* --- framing and writing ------------------------------------------------- */

/* Appends the whole answer (head, and body unless HEAD or 304) to c->out. */
static void kg_admin_frame(kg_admin_conn *c, bool head, const kg_admin_resp *r,
                           bool keep_alive, bool http10) {
  kg_buf *o = &c->out;
  bool body = r->status != 304;
  kg_buf_appendf(o, "HTTP/1.1 %d %s\r\n", r->status, kg_admin_reason(r->status));
  if (body) {
    if (r->content_type) kg_buf_appendf(o, "Content-Type: %s\r\n", r->content_type);
    kg_buf_appendf(o, "Content-Length: %zu\r\n", r->body.len);
  }
  kg_buf_appendf(o, "Cache-Control: %s\r\n", r->cache ? r->cache : "no-store");
  if (r->etag) kg_buf_appendf(o, "ETag: %s\r\n", r->etag);
  if (r->allow) kg_buf_appendf(o, "Allow: %s\r\n", r->allow);
  if (r->challenge)
    kg_buf_appends(o, "WWW-Authenticate: Bearer realm=\"kagami\"\r\n");
  if (r->retry_after > 0) kg_buf_appendf(o, "Retry-After: %d\r\n", r->retry_after);
  kg_buf_appendf(o, "Content-Security-Policy: %s\r\n", kg_admin_csp);
  kg_buf_appends(o, "X-Content-Type-Options: nosniff\r\n"
                    "Referrer-Policy: no-referrer\r\n");
  if (!keep_alive) kg_buf_appends(o, "Connection: close\r\n");
  else if (http10) kg_buf_appends(o, "Connection: keep-alive\r\n");
  kg_buf_appends(o, "\r\n");
  if (body && !head && r->body.len) kg_buf_append(o, r->body.data, r->body.len);
}

static void kg_admin_after_write(kg_admin_conn *c);

static void kg_admin_on_write(kg_conn_write_req *req, int status) {
  kg_admin_write *wr = KG_CONTAINER_OF(req, kg_admin_write, req);
  kg_admin_conn *c = wr->c;
  free(wr->data);
  free(wr);
  if (c->state != KG_ADMIN_OPEN) return;
  if (status < 0) {
    kg_admin_conn_close(c);
    return;
  }
  kg_admin_after_write(c);
}

/* Hands c->out to libuv. Returns false if the connection was closed. */
static bool kg_admin_flush(kg_admin_conn *c) {
  if (c->out.len == 0) return true;
  kg_admin_write *wr = kg_malloc(sizeof(*wr));
  size_t len = 0;
  wr->c = c;
  wr->data = kg_buf_steal(&c->out, &len);
  uv_buf_t b = uv_buf_init(wr->data, (unsigned)len);
  if (kg_conn_write(&c->conn, &wr->req, &b, 1, kg_admin_on_write) < 0) {
    free(wr->data);
    free(wr);
    kg_admin_conn_close(c);
    return false;
  }
  return true;
}

/* --- connection lifecycle ------------------------------------------------ */

static void kg_admin_maybe_free(kg_admin *a) {
  if (a->stopping && !a->listener_alive && a->nconns == 0) free(a);
}

static void kg_admin_conn_on_close(kg_conn *conn) {
  kg_admin_conn *c = conn->data;
  kg_admin *a = c->a;
  kg_http_free(&c->http);
  kg_buf_free(&c->inbuf);
  kg_buf_free(&c->out);
  free(c);
  a->nconns--;
  kg_admin_maybe_free(a);
}

static void kg_admin_conn_close(kg_admin_conn *c) {
  if (c->state == KG_ADMIN_CLOSED) return;
  c->state = KG_ADMIN_CLOSED;
  kg_admin *a = c->a;
  if (c->prev) c->prev->next = c->next;
  else a->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  if (c->job) { /* its answer has no one to go to */
    kg_admin_job_detach(c->job);
    c->job = NULL;
  }
  kg_conn_close(&c->conn);
}

static void kg_admin_on_timer(kg_conn *conn) {
  /* A request not complete in time, an idle keep-alive connection, or the
   * end of lingering: all simply close. */
  kg_admin_conn_close(conn->data);
}

static void kg_admin_set_reading(kg_admin_conn *c, bool on) {
  if (on) kg_conn_read_start(&c->conn);
  else kg_conn_read_stop(&c->conn);
}

static void kg_admin_on_shutdown(kg_conn *conn, int status) {
  kg_admin_conn *c = conn->data;
  if (c->state == KG_ADMIN_CLOSED) return;
  if (status < 0 || c->eof) {
    kg_admin_conn_close(c);
    return;
  }
  kg_admin_set_reading(c, true); /* drained and dropped, see the top */
  kg_conn_set_deadline(&c->conn, KG_ADMIN_LINGER_MS);
}

/* The last answer is written: shut our side down, then close. */
static void kg_admin_linger(kg_admin_conn *c) {
  c->state = KG_ADMIN_LINGERING;
  kg_admin_set_reading(c, false);
  kg_conn_set_deadline(&c->conn, KG_CONN_NO_DEADLINE);
  if (kg_conn_shutdown(&c->conn, kg_admin_on_shutdown) < 0)
    kg_admin_conn_close(c);
}

static void kg_admin_after_write(kg_admin_conn *c) {
  if (c->close_after_write) {
    if (c->out.len == 0 && kg_conn_write_queue_size(&c->conn) == 0) kg_admin_linger(c);
    return;
  }
  kg_admin_conn_process(c);
}

/* --- requests ------------------------------------------------------------ */

static int kg_admin_on_head(void *ud, kg_http_msg *m) {
  kg_admin_conn *c = ud;
  c->body_bytes = 0;
  if (m->method != HTTP_GET && m->method != HTTP_HEAD) return 405;
  if (m->has_length && m->content_length > KG_ADMIN_MAX_BODY) return 413;
  return 0;
}

static int kg_admin_on_body(void *ud, const char *p, size_t n) {
  kg_admin_conn *c = ud;
  c->body_bytes += n;
  return c->body_bytes > KG_ADMIN_MAX_BODY ? 413 : 0;
}

static const kg_http_ops kg_admin_http_ops = {kg_admin_on_head, kg_admin_on_body};

/* Answers one complete request into c->out, or starts the job that will
 * (c->job). */
static void kg_admin_answer(kg_admin_conn *c, const kg_http_msg *m) {
  kg_admin *a = c->a;
  kg_admin_resp resp = {0};
  const char *url = m->url.data ? m->url.data : "";
  char *path = kg_strdup(url);
  char *q = strchr(path, '?');
  if (q) *q++ = '\0';
  kg_admin_req req = {path, q ? q : "", &m->hdrs, m->method == HTTP_HEAD};
  kg_admin_job *job = NULL;
  if (path[0] != '/') kg_admin_resp_text(&resp, 400, "expected a path");
  else job = kg_admin_route(a, c, &req, &resp);
  bool keep_alive = m->keep_alive && !a->stopping;
  if (job) {
    /* What framing the answer needs, since the request is gone by then. */
    c->job = job;
    c->job_head = req.head;
    c->job_keep_alive = keep_alive;
    c->job_http10 = m->http_minor == 0;
  } else {
    kg_admin_frame(c, req.head, &resp, keep_alive, m->http_minor == 0);
    if (!keep_alive) c->close_after_write = true;
  }
  kg_buf_free(&resp.body);
  free(path);
}

/* A job's answer for the request c was waiting on: framed in order, and
 * what was pipelined behind it gets its turn. */
static void kg_admin_on_job_done(void *waiter, kg_admin_resp *resp) {
  kg_admin_conn *c = waiter;
  c->job = NULL;
  kg_admin_frame(c, c->job_head, resp, c->job_keep_alive, c->job_http10);
  if (!c->job_keep_alive) c->close_after_write = true;
  kg_conn_set_deadline(&c->conn, KG_ADMIN_TIMEOUT_MS);
  kg_admin_conn_process(c);
}

/* Answers an invalid request and closes after it: after a framing error
 * nothing that follows on the connection can be trusted. */
static void kg_admin_answer_error(kg_admin_conn *c) {
  kg_admin_resp resp = {0};
  int st = c->http.error_status ? c->http.error_status : 400;
  kg_admin_resp_text(&resp, st, st == 405 ? "only GET and HEAD" : kg_admin_reason(st));
  if (st == 405) resp.allow = "GET, HEAD";
  kg_admin_frame(c, false, &resp, false, false);
  kg_buf_free(&resp.body);
  c->close_after_write = true;
}

/* Parses and answers what inbuf holds, as long as the client reads our
 * answers; then writes them and decides whether to go on reading. */
static void kg_admin_conn_process(kg_admin_conn *c) {
  while (c->state == KG_ADMIN_OPEN && !c->close_after_write && c->job == NULL &&
         c->inbuf.len &&
         c->out.len + kg_conn_write_queue_size(&c->conn) < KG_ADMIN_HIGH_WATER) {
    size_t used = 0;
    kg_http_state st = kg_http_feed(&c->http, c->inbuf.data, c->inbuf.len, &used);
    kg_buf_consume(&c->inbuf, used);
    if (st == KG_HTTP_PAUSED) {
      kg_admin_answer(c, &c->http.msg);
      kg_http_resume(&c->http);
      /* The next request gets a full period of its own. */
      kg_conn_set_deadline(&c->conn, KG_ADMIN_TIMEOUT_MS);
    } else if (st == KG_HTTP_ERROR) {
      kg_admin_answer_error(c);
      kg_buf_reset(&c->inbuf);
    }
    /* KG_HTTP_MORE consumed everything. */
  }
  if (c->state != KG_ADMIN_OPEN) return;
  if (c->job) {
    /* Waiting for the job: send the answers before it, give the client no
     * deadline (the wait is ours), and read only enough to notice it
     * going away (reset or EOF) without buffering its next requests
     * without bound. */
    kg_conn_set_deadline(&c->conn, KG_CONN_NO_DEADLINE);
    if (!kg_admin_flush(c)) return;
    kg_admin_set_reading(c, !c->eof && c->inbuf.len < KG_ADMIN_MAX_HEAD);
    return;
  }
  /* The client has closed its side: what it sent is all answered, or was
   * an incomplete request that will never be. */
  if (c->eof && c->inbuf.len == 0) c->close_after_write = true;
  if (!kg_admin_flush(c)) return;
  if (c->close_after_write) {
    kg_admin_set_reading(c, false);
    if (kg_conn_write_queue_size(&c->conn) == 0) {
      if (c->eof) kg_admin_conn_close(c);
      else kg_admin_linger(c);
    }
    return;
  }
  kg_admin_set_reading(c, !c->eof &&
                              kg_conn_write_queue_size(&c->conn) < KG_ADMIN_HIGH_WATER);
}

static void kg_admin_on_read(kg_conn *conn, ssize_t nread, const uv_buf_t *buf) {
  kg_admin_conn *c = conn->data;
  if (c->state == KG_ADMIN_LINGERING) {
    if (nread < 0) kg_admin_conn_close(c); /* drained: the client closed too */
    return;
  }
  if (c->state != KG_ADMIN_OPEN || nread == 0) return;
  if (nread < 0) {
    if (nread != UV_EOF) {
      kg_admin_conn_close(c);
      return;
    }
    c->eof = true;
    kg_admin_set_reading(c, false);
  } else {
    kg_buf_append(&c->inbuf, buf->base, (size_t)nread);
  }
  kg_admin_conn_process(c);
}

static const kg_conn_cbs kg_admin_conn_cbs = {
    .on_read = kg_admin_on_read,
    .on_deadline = kg_admin_on_timer,
    .on_close = kg_admin_conn_on_close,
};

static void kg_admin_on_connection(uv_stream_t *server, int status) {
  kg_admin *a = server->data;
  if (status < 0) {
    kg_log_warn("admin: accept: %s", uv_strerror(status));
    return;
  }
  kg_admin_conn *c = kg_calloc(1, sizeof(*c));
  c->a = a;
  c->state = KG_ADMIN_OPEN;
  /* From the current config: a reload's new certificate applies to the
   * next connection. */
  void *tls = a->ctx->cfg->admin_tls;
  kg_conn_init(&c->conn, a->loop, tls ? &kg_conn_tls : &kg_conn_tcp, &kg_admin_conn_cbs,
               c, a->readbuf, sizeof(a->readbuf));
  c->conn.transport_ctx = tls;
  kg_http_limits lim = {KG_ADMIN_MAX_HEAD, KG_ADMIN_MAX_HEADERS};
  kg_http_init(&c->http, HTTP_REQUEST, &kg_admin_http_ops, c, lim);
  c->next = a->conns;
  if (a->conns) a->conns->prev = c;
  a->conns = c;
  a->nconns++;
  if (kg_conn_accept(&c->conn, server) < 0 || a->nconns > KG_ADMIN_MAX_CONNS) {
    kg_admin_conn_close(c);
    return;
  }
  kg_conn_set_deadline(&c->conn, KG_ADMIN_TIMEOUT_MS);
  kg_admin_set_reading(c, true);
}

/* --- start and stop ------------------------------------------------------ */

static void kg_admin_on_listener_close(uv_handle_t *h) {
  kg_admin *a = h->data;
  a->listener_alive = false;
  kg_admin_maybe_free(a);
}

int kg_admin_start(uv_loop_t *loop, kg_admin_ctx *ctx, char *err,
                   size_t errlen) {
  const kg_addr *addr = ctx->cfg->admin;
  if (addr == NULL) {
    snprintf(err, errlen, "admin: no address configured");
    return -1;
  }
  kg_admin *a = kg_calloc(1, sizeof(*a));
  a->loop = loop;
  a->ctx = ctx;
  uv_tcp_init(loop, &a->listener);
  a->listener.data = a;
  a->listener_alive = true;
  int r = uv_tcp_bind(&a->listener, (const struct sockaddr *)&addr->sa, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&a->listener, 64, kg_admin_on_connection);
  if (r < 0) {
    snprintf(err, errlen, "admin %s: %s", addr->text, uv_strerror(r));
    a->stopping = true;
    uv_close((uv_handle_t *)&a->listener, kg_admin_on_listener_close);
    return -1;
  }
  a->api = kg_admin_api_new(loop, ctx);
  ctx->admin = a;
  return 0;
}

void kg_admin_stop(kg_admin_ctx *ctx) {
  kg_admin *a = ctx->admin;
  if (a == NULL) return;
  ctx->admin = NULL;
  a->stopping = true;
  /* Connections first: closing detaches their jobs, which the API
   * requires before it goes (running jobs then end on their own). */
  while (a->conns) kg_admin_conn_close(a->conns);
  kg_admin_api_free(a->api);
  a->api = NULL;
  uv_close((uv_handle_t *)&a->listener, kg_admin_on_listener_close);
}
