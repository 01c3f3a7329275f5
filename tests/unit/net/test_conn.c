/* Loop-level tests of the transport (net/conn.c) over TCP on 127.0.0.1:
 * connect and accept, writes both ways, the lazy deadline, close-once
 * with a write pending, and a peer that resets. Each test runs the real
 * loop and ends by asserting that it closes cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/conn.h"
#include "net_test.h"

static char test_rbuf[64 * 1024]; /* every read of a test lands here */

/* One end of a connection and what happened to it. */
typedef struct test_end {
  kg_conn conn;
  char got[256];            /* bytes read, up to its size */
  size_t ngot;
  ssize_t read_error;       /* the first nread < 0, else 0 */
  int connects, connect_status;
  int deadlines;
  uint64_t deadline_at;     /* uv_now at the last on_deadline */
  int closes;
  bool close_on_read;       /* close once something was read */
  bool close_on_error;      /* close when reads fail */
} test_end;

static void test_on_read(kg_conn *c, ssize_t nread, const uv_buf_t *buf) {
  test_end *e = c->data;
  if (nread < 0) {
    if (e->read_error == 0) e->read_error = nread;
    if (e->close_on_error) kg_conn_close(c);
    return;
  }
  size_t n = (size_t)nread;
  if (n > sizeof(e->got) - e->ngot) n = sizeof(e->got) - e->ngot;
  memcpy(e->got + e->ngot, buf->base, n);
  e->ngot += n;
  if (e->close_on_read) kg_conn_close(c);
}

static void test_on_deadline(kg_conn *c) {
  test_end *e = c->data;
  e->deadlines++;
  e->deadline_at = uv_now(c->timer.loop);
  kg_conn_close(c);
}

static void test_on_close(kg_conn *c) {
  test_end *e = c->data;
  e->closes++;
}

static const kg_conn_cbs test_cbs = {test_on_read, test_on_deadline, test_on_close};

/* A listener on 127.0.0.1 (any port) whose one accepted connection is
 * `server`. */
typedef struct test_pair {
  uv_loop_t loop;
  uv_tcp_t listener;
  struct sockaddr_storage addr;
  test_end client, server;
  bool accepted;
} test_pair;

static void test_on_connection(uv_stream_t *l, int status) {
  test_pair *p = l->data;
  assert_int_equal(status, 0);
  kg_conn_init(&p->server.conn, l->loop, &kg_conn_tcp, &test_cbs, &p->server, test_rbuf,
               sizeof(test_rbuf));
  assert_int_equal(kg_conn_accept(&p->server.conn, l), 0);
  assert_int_equal(kg_conn_read_start(&p->server.conn), 0);
  p->accepted = true;
  uv_close((uv_handle_t *)&p->listener, NULL); /* one connection is enough */
}

static void test_on_connect(kg_conn *c, int status) {
  test_end *e = c->data;
  e->connects++;
  e->connect_status = status;
  if (status == 0) assert_int_equal(kg_conn_read_start(c), 0);
}

/* Starts the listener and a client connecting to it. */
static void test_pair_start(test_pair *p) {
  memset(p, 0, sizeof(*p));
  assert_int_equal(uv_loop_init(&p->loop), 0);
  test_listen(&p->loop, &p->listener, p, &p->addr, test_on_connection);
  kg_conn_init(&p->client.conn, &p->loop, &kg_conn_tcp, &test_cbs, &p->client, test_rbuf,
               sizeof(test_rbuf));
  assert_int_equal(kg_conn_connect(&p->client.conn, (const struct sockaddr *)&p->addr,
                                   test_on_connect), 0);
}

/* test_pair_start, then runs the loop until both ends are connected. */
static void test_pair_connect(test_pair *p) {
  test_pair_start(p);
  RUN_UNTIL(p, p->client.connects == 1 && p->accepted);
  assert_int_equal(p->client.connect_status, 0);
}

/* Runs the loop until nothing is left, then asserts it closes cleanly. */
static void test_pair_finish(test_pair *p) {
  uv_run(&p->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&p->loop), 0);
}

static void test_connect_write_read(void **state) {
  (void)state;
  test_pair p;
  test_pair_connect(&p);
  uv_buf_t b = uv_buf_init("ping", 4);
  assert_int_equal(kg_conn_try_write(&p.client.conn, &b, 1), 4);
  RUN_UNTIL(&p, p.server.ngot == 4);
  assert_memory_equal(p.server.got, "ping", 4);
  uv_buf_t two[2] = {uv_buf_init("po", 2), uv_buf_init("ng", 2)};
  assert_int_equal(kg_conn_try_write(&p.server.conn, two, 2), 4);
  RUN_UNTIL(&p, p.client.ngot == 4);
  assert_memory_equal(p.client.got, "pong", 4);
  /* Our close is the peer's EOF. */
  p.server.close_on_error = true;
  kg_conn_close(&p.client.conn);
  RUN_UNTIL(&p, p.server.closes == 1);
  assert_int_equal(p.server.read_error, UV_EOF);
  test_pair_finish(&p);
  assert_int_equal(p.client.closes, 1);
}

static int test_writes_done, test_write_status;
static void test_on_write(kg_conn_write_req *wr, int status) {
  (void)wr;
  test_writes_done++;
  test_write_status = status;
}

static void test_queued_write_and_shutdown_cb(kg_conn *c, int status) {
  (void)c;
  assert_int_equal(status, 0);
}

static void test_queued_write_then_shutdown(void **state) {
  (void)state;
  test_pair p;
  test_pair_connect(&p);
  kg_conn_write_req wr;
  test_writes_done = 0;
  uv_buf_t b = uv_buf_init("queued", 6);
  assert_int_equal(kg_conn_write(&p.client.conn, &wr, &b, 1, test_on_write), 0);
  assert_int_equal(kg_conn_shutdown(&p.client.conn, test_queued_write_and_shutdown_cb), 0);
  p.server.close_on_error = true; /* EOF after the bytes */
  RUN_UNTIL(&p, p.server.closes == 1);
  assert_int_equal(test_writes_done, 1);
  assert_int_equal(test_write_status, 0);
  assert_int_equal(p.server.ngot, 6);
  assert_int_equal(p.server.read_error, UV_EOF);
  kg_conn_close(&p.client.conn);
  test_pair_finish(&p);
}

static void test_deadline_is_lazy(void **state) {
  (void)state;
  test_pair p;
  test_pair_connect(&p);
  uint64_t t0 = uv_now(&p.loop);
  kg_conn_set_deadline(&p.server.conn, 20);
  kg_conn_set_deadline(&p.server.conn, 80); /* later: the timer sleeps on */
  assert_true(p.server.conn.timer_due <= t0 + 21);
  RUN_UNTIL(&p, p.server.deadlines == 1);
  assert_true(p.server.deadline_at >= t0 + 80);
  /* Cleared deadlines never fire. */
  kg_conn_set_deadline(&p.client.conn, 10);
  kg_conn_set_deadline(&p.client.conn, KG_CONN_NO_DEADLINE);
  p.client.close_on_error = true; /* the server closed on its deadline */
  test_pair_finish(&p);
  assert_int_equal(p.client.deadlines, 0);
  assert_int_equal(p.server.closes, 1);
  assert_int_equal(p.client.closes, 1);
}

static void test_close_once_with_write_pending(void **state) {
  (void)state;
  test_pair p;
  test_pair_connect(&p);
  kg_conn_read_stop(&p.server.conn); /* the peer does not read: writes queue */
  size_t big = 64u << 20;
  char *data = calloc(1, big);
  assert_non_null(data);
  uv_buf_t b = uv_buf_init(data, (unsigned)big);
  int n = kg_conn_try_write(&p.client.conn, &b, 1);
  assert_true(n >= 0 && (size_t)n < big);
  b = uv_buf_init(data + n, (unsigned)(big - (size_t)n));
  kg_conn_write_req wr;
  test_writes_done = 0;
  test_write_status = 0;
  assert_int_equal(kg_conn_write(&p.client.conn, &wr, &b, 1, test_on_write), 0);
  assert_true(kg_conn_write_queue_size(&p.client.conn) > 0);
  kg_conn_set_deadline(&p.client.conn, 0);
  kg_conn_close(&p.client.conn);
  kg_conn_close(&p.client.conn); /* again: a no-op */
  kg_conn_close(&p.server.conn);
  test_pair_finish(&p);
  free(data);
  assert_int_equal(test_writes_done, 1);
  assert_int_equal(test_write_status, UV_ECANCELED);
  assert_int_equal(p.client.closes, 1);
  assert_int_equal(p.client.deadlines, 0); /* closed first */
  assert_int_equal(p.server.closes, 1);
}

static void test_peer_reset(void **state) {
  (void)state;
  test_pair p;
  test_pair_connect(&p);
  /* Lingering for zero seconds makes close send a reset. */
  uv_os_fd_t fd;
  assert_int_equal(uv_fileno((uv_handle_t *)&p.server.conn.tcp, &fd), 0);
  struct linger l = {.l_onoff = 1, .l_linger = 0};
  assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
  kg_conn_close(&p.server.conn);
  p.client.close_on_error = true;
  RUN_UNTIL(&p, p.client.closes == 1);
  assert_int_equal(p.client.read_error, UV_ECONNRESET);
  test_pair_finish(&p);
}

static void test_refused(void **state) {
  (void)state;
  test_pair p;
  test_pair_start(&p);
  /* A port nobody listens on: the listener's, once it is closed. */
  kg_conn_close(&p.client.conn);
  uv_close((uv_handle_t *)&p.listener, NULL);
  uv_run(&p.loop, UV_RUN_DEFAULT);
  assert_int_equal(p.client.connects, 0); /* closed first: never told */
  test_end e = {0};
  kg_conn_init(&e.conn, &p.loop, &kg_conn_tcp, &test_cbs, &e, test_rbuf, sizeof(test_rbuf));
  assert_int_equal(kg_conn_connect(&e.conn, (const struct sockaddr *)&p.addr,
                                   test_on_connect), 0);
  RUN_UNTIL(&p, e.connects == 1);
  assert_int_equal(e.connect_status, UV_ECONNREFUSED);
  kg_conn_close(&e.conn);
  test_pair_finish(&p);
  assert_int_equal(e.closes, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_connect_write_read),
      cmocka_unit_test(test_queued_write_then_shutdown),
      cmocka_unit_test(test_deadline_is_lazy),
      cmocka_unit_test(test_close_once_with_write_pending),
      cmocka_unit_test(test_peer_reset),
      cmocka_unit_test(test_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
