/* test_replay.c: unit tests for the replay engine's C API
 * (src/traffic/replay.c): what kg_replay_run reports when it cannot start,
 * and the summary of a whole run against a port nobody listens on, so
 * every request fails the same way without any server. The command line
 * and its output are tested end to end in tests/integration/test_replay.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "traffic/replay.h"

/* A loopback port that was just free: bound, read back, closed. */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  socklen_t len = sizeof(a);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

static void test_defaults(void **state) {
  (void)state;
  kg_replay_opts o;
  kg_replay_opts_init(&o);
  assert_int_equal(o.concurrency, KG_REPLAY_DEFAULT_CONCURRENCY);
  assert_true(o.timeout == KG_REPLAY_DEFAULT_TIMEOUT);
  assert_null(o.file);
  assert_false(o.compare);
  assert_int_equal(o.format, KG_SOURCE_AUTO);
}

static void test_cannot_start(void **state) {
  (void)state;
  kg_replay_opts o;
  kg_replay_opts_init(&o);
  kg_replay_summary *s = kg_calloc(1, sizeof(*s));
  o.file = "/nonexistent/urls.txt";
  o.target = "ftp://127.0.0.1:1";
  assert_int_equal(kg_replay_run(&o, s), -1);
  assert_true(s->usage);
  assert_string_equal(s->error, "--target: expected http://host:port or https://host:port, "
                                "got 'ftp://127.0.0.1:1'");
  kg_replay_summary_free(s);

  /* https is a target like http: the run gets as far as the input. */
  o.target = "https://127.0.0.1:1";
  assert_int_equal(kg_replay_run(&o, s), -1);
  assert_false(s->usage);
  assert_string_equal(s->error, "/nonexistent/urls.txt: No such file or directory");
  kg_replay_summary_free(s);

  o.target = "http://127.0.0.1:1";
  assert_int_equal(kg_replay_run(&o, s), -1);
  assert_false(s->usage);
  assert_string_equal(s->error, "/nonexistent/urls.txt: No such file or directory");
  kg_replay_summary_free(s);
  free(s);
}

static void test_run_summary(void **state) {
  (void)state;
  char path[] = "/tmp/kg_test_replay_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *urls = "/a\n/b\n/a\nnot a url\n";
  assert_int_equal(write(fd, urls, strlen(urls)), (ssize_t)strlen(urls));
  close(fd);
  char target[64];
  snprintf(target, sizeof(target), "http://127.0.0.1:%d", free_port());

  kg_replay_opts o;
  kg_replay_opts_init(&o);
  o.file = path;
  o.target = target;
  o.concurrency = 1;
  kg_replay_summary *s = kg_calloc(1, sizeof(*s));
  assert_int_equal(kg_replay_run(&o, s), 0);
  unlink(path);
  assert_string_equal(s->stop_reason, "end of input");
  assert_int_equal(s->sent, 3);
  assert_int_equal(s->answered, 0);
  assert_int_equal(s->errors, 3);
  assert_non_null(s->error_kind[0]);
  assert_int_equal(s->error_count[0], 3);
  assert_int_equal(s->input.format, KG_SOURCE_URLS);
  assert_int_equal(s->input.items, 3);
  assert_int_equal(s->input.unparseable, 1);
  assert_false(s->input_failed);
  /* Busiest first. */
  assert_int_equal(s->neps, 2);
  assert_string_equal(s->eps[0].name, "GET /a");
  assert_int_equal(s->eps[0].requests, 2);
  assert_int_equal(s->eps[0].errors, 2);
  assert_string_equal(s->eps[1].name, "GET /b");
  kg_replay_summary_free(s);
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_cannot_start),
      cmocka_unit_test(test_run_summary),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
