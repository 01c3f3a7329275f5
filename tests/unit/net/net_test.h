/* net_test.h: what the loop-level tests of net/ share (test_conn.c,
 * test_tls.c): a listener on 127.0.0.1 and running a loop until a
 * condition holds. Header-only; include after cmocka.h. */
#ifndef KG_NET_TEST_H
#define KG_NET_TEST_H

#include <uv.h>

/* Listens on 127.0.0.1 (any port) with l (data = data) and writes the
 * address it got into addr. */
static inline void test_listen(uv_loop_t *loop, uv_tcp_t *l, void *data,
                               struct sockaddr_storage *addr, uv_connection_cb cb) {
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(loop, l);
  l->data = data;
  assert_int_equal(uv_tcp_bind(l, (const struct sockaddr *)&a, 0), 0);
  int len = sizeof(*addr);
  uv_tcp_getsockname(l, (struct sockaddr *)addr, &len);
  assert_int_equal(uv_listen((uv_stream_t *)l, 8, cb), 0);
}

/* Runs the loop of pair p until `done` holds (bounded by a few seconds of
 * loop time). */
#define RUN_UNTIL(p, done)                                             \
  do {                                                                  \
    uint64_t t_end_ = uv_now(&(p)->loop) + 5000;                        \
    while (!(done) && uv_now(&(p)->loop) < t_end_)                      \
      uv_run(&(p)->loop, UV_RUN_ONCE);                                  \
    assert_true(done);                                                  \
  } while (0)

#endif
