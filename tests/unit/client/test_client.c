/* Loop-level tests of the HTTP client (client/upstream.c) against a small
 * server on the same loop, on 127.0.0.1: keep-alive reuse, a refused
 * connect, a timeout, a stale pooled connection retried, cancel. Each
 * test ends by asserting that the loop closes cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "client/upstream.h"
#include "common/common.h"
#include "net/conn.h"

static char test_rbuf[64 * 1024]; /* the client's reads land here */

/* --- the in-test server ------------------------------------------------------ */

typedef enum test_mode {
  TEST_ANSWER,        /* answer every request, keep the connection */
  TEST_ANSWER_CLOSE,  /* answer the first request, then close */
  TEST_SILENT,        /* read, never answer */
} test_mode;

typedef struct test_server test_server;

typedef struct test_sconn {
  uv_tcp_t tcp;
  uv_write_t wr;
  test_server *s;
  size_t crlf2;            /* request heads seen */
  char tail[4];            /* last bytes read, to find "\r\n\r\n" across reads */
  bool closing;
  struct test_sconn *next;
} test_sconn;

struct test_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  struct sockaddr_storage addr;
  test_mode mode;
  int accepted;            /* connections accepted */
  int requests;            /* request heads read */
  test_sconn *conns;
};

static const char test_response[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

static void test_sconn_on_close(uv_handle_t *h) {
  test_sconn *c = h->data;
  test_server *s = c->s;
  for (test_sconn **p = &s->conns; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      break;
    }
  free(c);
}

static void test_sconn_close(test_sconn *c) {
  if (c->closing) return;
  c->closing = true;
  uv_close((uv_handle_t *)&c->tcp, test_sconn_on_close);
}

static void test_sconn_on_write(uv_write_t *w, int status) {
  test_sconn *c = w->data;
  (void)status;
  if (c->s->mode == TEST_ANSWER_CLOSE) test_sconn_close(c);
}

static void test_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  (void)h;
  (void)n;
  static char buf[4096];
  *b = uv_buf_init(buf, sizeof(buf));
}

static void test_sconn_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  test_sconn *c = st->data;
  if (nread < 0) {
    test_sconn_close(c);
    return;
  }
  for (ssize_t i = 0; i < nread; i++) {
    memmove(c->tail, c->tail + 1, 3);
    c->tail[3] = buf->base[i];
    if (memcmp(c->tail, "\r\n\r\n", 4) != 0) continue;
    c->s->requests++;
    if (c->s->mode == TEST_SILENT) continue;
    uv_buf_t b = uv_buf_init((char *)test_response, sizeof(test_response) - 1);
    c->wr.data = c;
    uv_write(&c->wr, st, &b, 1, test_sconn_on_write);
  }
}

static void test_server_on_connection(uv_stream_t *l, int status) {
  test_server *s = l->data;
  assert_int_equal(status, 0);
  test_sconn *c = calloc(1, sizeof(*c));
  assert_non_null(c);
  c->s = s;
  uv_tcp_init(s->loop, &c->tcp);
  c->tcp.data = c;
  assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
  c->next = s->conns;
  s->conns = c;
  s->accepted++;
  uv_read_start((uv_stream_t *)&c->tcp, test_alloc, test_sconn_on_read);
}

static void test_server_start(test_server *s, uv_loop_t *loop, test_mode mode) {
  memset(s, 0, sizeof(*s));
  s->loop = loop;
  s->mode = mode;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  assert_int_equal(uv_tcp_bind(&s->listener, (const struct sockaddr *)&a, 0), 0);
  int len = sizeof(s->addr);
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&s->addr, &len);
  assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 16, test_server_on_connection),
                   0);
}

static void test_server_stop(test_server *s) {
  if (!uv_is_closing((uv_handle_t *)&s->listener))
    uv_close((uv_handle_t *)&s->listener, NULL);
  for (test_sconn *c = s->conns; c; c = c->next) test_sconn_close(c);
}

/* --- the client side ---------------------------------------------------------- */

typedef struct test_req {
  kg_leg leg;
  int heads, dones;
  size_t body_seen;
  struct test_req *then;   /* started from this one's on_done */
} test_req;

static void test_on_head(kg_leg *leg) { ((test_req *)leg->data)->heads++; }

static void test_on_body(kg_leg *leg, const char *p, size_t n) {
  (void)p;
  ((test_req *)leg->data)->body_seen += n;
}

static void test_on_done(kg_leg *leg) {
  test_req *r = leg->data;
  r->dones++;
  if (r->then) kg_leg_start(&r->then->leg);
}

static const kg_leg_cbs test_leg_cbs = {.on_head = test_on_head,
                                        .on_body = test_on_body,
                                        .on_done = test_on_done};

static void test_pool(kg_pool *p, uv_loop_t *loop, const struct sockaddr_storage *addr,
                      uint64_t timeout_ms) {
  kg_upstream be = {.name = "test",
                    .host = "127.0.0.1",
                    .addr = *addr,
                    .timeout_ms = timeout_ms,
                    .idle_timeout_ms = KG_CONN_NO_DEADLINE,
                    .max_idle = 8,
                    .max_capture = 1024};
  kg_pool_init(p, loop, &be, test_rbuf, sizeof(test_rbuf));
}

static void test_req_init(test_req *r, kg_pool *p) {
  memset(r, 0, sizeof(*r));
  r->leg.cbs = &test_leg_cbs;
  r->leg.data = r;
  r->leg.pool = p;
  r->leg.capture = true;
  r->leg.retry_ok = true;
  kg_buf_appends(&r->leg.req, "GET / HTTP/1.1\r\nHost: test\r\n\r\n");
}

#define RUN_UNTIL(loop, done)                                          \
  do {                                                                  \
    uint64_t t_end_ = uv_now(loop) + 5000;                              \
    while (!(done) && uv_now(loop) < t_end_) uv_run(loop, UV_RUN_ONCE);  \
    assert_true(done);                                                  \
  } while (0)

/* A loop, a server on it and a pool for that server. */
typedef struct test_env {
  uv_loop_t loop;
  test_server s;
  kg_pool p;
} test_env;

static void test_env_start(test_env *e, test_mode mode, uint64_t timeout_ms) {
  uv_loop_init(&e->loop);
  test_server_start(&e->s, &e->loop, mode);
  test_pool(&e->p, &e->loop, &e->s.addr, timeout_ms);
}

/* Closes what is left and asserts the loop closes cleanly. */
static void test_env_finish(test_env *e) {
  kg_pool_close_idle(&e->p);
  test_server_stop(&e->s);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(e->p.nconns, 0);
  assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void test_keep_alive_reuse(void **state) {
  (void)state;
  test_env e;
  test_env_start(&e, TEST_ANSWER, 5000);
  test_req a, b;
  test_req_init(&a, &e.p);
  test_req_init(&b, &e.p);
  kg_leg_start(&a.leg);
  assert_int_equal(a.dones, 0); /* never from inside kg_leg_start */
  RUN_UNTIL(&e.loop, a.dones == 1);
  assert_null(a.leg.error);
  assert_int_equal(a.heads, 1);
  assert_int_equal(a.leg.resp.status, 200);
  assert_int_equal(a.body_seen, 5);
  assert_memory_equal(a.leg.body.data, "hello", 5);
  assert_int_equal(e.p.nidle, 1);
  kg_leg_start(&b.leg);
  RUN_UNTIL(&e.loop, b.dones == 1);
  assert_null(b.leg.error);
  assert_int_equal(e.p.opened, 1); /* the same connection twice */
  assert_int_equal(e.s.accepted, 1);
  assert_int_equal(e.s.requests, 2);
  assert_int_equal(e.p.inflight, 0);
  kg_leg_free(&a.leg);
  kg_leg_free(&b.leg);
  test_env_finish(&e);
}

static void test_refused_connect(void **state) {
  (void)state;
  test_env e;
  test_env_start(&e, TEST_ANSWER, 5000);
  test_server_stop(&e.s); /* its port now refuses */
  uv_run(&e.loop, UV_RUN_DEFAULT);
  test_req a;
  test_req_init(&a, &e.p);
  kg_leg_start(&a.leg);
  RUN_UNTIL(&e.loop, a.dones == 1);
  assert_string_equal(a.leg.error, "connection refused");
  assert_int_equal(e.p.connect_failures, 1);
  assert_false(kg_pool_is_down(&e.p)); /* not after one failure */
  kg_leg_free(&a.leg);
  test_env_finish(&e);
}

static void test_timeout(void **state) {
  (void)state;
  test_env e;
  test_env_start(&e, TEST_SILENT, 50);
  test_req a;
  test_req_init(&a, &e.p);
  uint64_t t0 = uv_now(&e.loop);
  kg_leg_start(&a.leg);
  RUN_UNTIL(&e.loop, a.dones == 1);
  assert_string_equal(a.leg.error, "timeout");
  assert_true(uv_now(&e.loop) >= t0 + 50);
  assert_int_equal(e.s.requests, 1);
  assert_int_equal(e.p.nidle, 0); /* a timed-out connection is not pooled */
  kg_leg_free(&a.leg);
  test_env_finish(&e);
}

/* The server answers and closes; the next request, started at once from
 * the first one's on_done, meets the pooled connection it closed. It is
 * sent again on a fresh connection, unseen by the caller. */
static void test_stale_pooled_connection_retried(void **state) {
  (void)state;
  test_env e;
  test_env_start(&e, TEST_ANSWER_CLOSE, 5000);
  test_req a, b;
  test_req_init(&a, &e.p);
  test_req_init(&b, &e.p);
  a.then = &b;
  kg_leg_start(&a.leg);
  RUN_UNTIL(&e.loop, b.dones == 1);
  assert_null(a.leg.error);
  assert_null(b.leg.error);
  assert_int_equal(b.leg.resp.status, 200);
  assert_true(b.leg.retried);
  assert_int_equal(e.p.opened, 2);
  assert_int_equal(e.s.accepted, 2);
  /* Not idempotent: the failure is the caller's to see. */
  test_req c, d;
  test_req_init(&c, &e.p);
  test_req_init(&d, &e.p);
  d.leg.retry_ok = false;
  c.then = &d;
  kg_leg_start(&c.leg);
  RUN_UNTIL(&e.loop, d.dones == 1);
  assert_null(c.leg.error);
  assert_non_null(d.leg.error);
  assert_false(d.leg.retried);
  kg_leg_free(&a.leg);
  kg_leg_free(&b.leg);
  kg_leg_free(&c.leg);
  kg_leg_free(&d.leg);
  test_env_finish(&e);
}

static void test_noop_timer(uv_timer_t *t) { (void)t; }

static void test_cancel(void **state) {
  (void)state;
  test_env e;
  test_env_start(&e, TEST_SILENT, 100);
  test_req a, b;
  test_req_init(&a, &e.p);
  test_req_init(&b, &e.p);
  kg_leg_start(&a.leg);
  kg_leg_cancel(&a.leg); /* before it even connected */
  kg_leg_start(&b.leg);
  RUN_UNTIL(&e.loop, e.s.requests == 1);
  kg_leg_cancel(&b.leg); /* while waiting for the answer */
  kg_leg_cancel(&b.leg); /* twice: a no-op */
  assert_int_equal(e.p.inflight, 0);
  assert_int_equal(e.p.nconns, 0);
  /* Past the timeout: nothing may call back any more. */
  uv_timer_t t;
  uv_timer_init(&e.loop, &t);
  uv_timer_start(&t, test_noop_timer, 200, 0);
  uv_run(&e.loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  assert_int_equal(a.dones, 0);
  assert_int_equal(b.dones, 0);
  assert_string_equal(b.leg.error, "cancelled");
  kg_leg_free(&a.leg);
  kg_leg_free(&b.leg);
  test_env_finish(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keep_alive_reuse),
      cmocka_unit_test(test_refused_connect),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_stale_pooled_connection_retried),
      cmocka_unit_test(test_cancel),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
