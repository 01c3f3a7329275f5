/* Unit tests: request framing rules and the parser adapter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "http/http.h"

/* --- kg_http_check_request_framing ------------------------------------------ */

static int framing(int minor, const char *const *fields, const char **why) {
  kg_hdrs h = KG_HDRS_INIT;
  for (size_t i = 0; fields[i]; i += 2)
    kg_hdrs_add(&h, fields[i], strlen(fields[i]), fields[i + 1],
                strlen(fields[i + 1]));
  int st = kg_http_check_request_framing(&h, 1, minor, why);
  kg_hdrs_free(&h);
  return st;
}

static void test_framing_table(void **state) {
  (void)state;
  static const struct {
    int minor;
    const char *fields[8];
    int want;
  } cases[] = {
      {1, {NULL}, 0},
      {1, {"Content-Length", "10", NULL}, 0},
      {1, {"Content-Length", "0", NULL}, 0},
      {1, {"Transfer-Encoding", "chunked", NULL}, 0},
      {1, {"transfer-encoding", "CHUNKED", NULL}, 0},
      {1, {"Transfer-Encoding", " chunked ", NULL}, 0},
      {1, {"Content-Length", "5", "Transfer-Encoding", "chunked", NULL}, 400},
      {1, {"Transfer-Encoding", "chunked", "Content-Length", "5", NULL}, 400},
      {1, {"Content-Length", "5", "Content-Length", "6", NULL}, 400},
      {1, {"Content-Length", "5", "Content-Length", "5", NULL}, 400},
      {1, {"Content-Length", "5, 5", NULL}, 400},
      {1, {"Content-Length", "-1", NULL}, 400},
      {1, {"Content-Length", "+5", NULL}, 400},
      {1, {"Content-Length", "", NULL}, 400},
      {1, {"Content-Length", "0x10", NULL}, 400},
      {1, {"Content-Length", "99999999999999999999", NULL}, 400},
      {1, {"Transfer-Encoding", "gzip", NULL}, 400},
      {1, {"Transfer-Encoding", "chunked, gzip", NULL}, 400},
      {1, {"Transfer-Encoding", "xchunked", NULL}, 400},
      {1, {"Transfer-Encoding", "chunked, chunked", NULL}, 400},
      {1, {"Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked", NULL}, 400},
      {1, {"Transfer-Encoding", "gzip, chunked", NULL}, 501},
      {1, {"Transfer-Encoding", "identity, chunked", NULL}, 501},
      {1, {"Transfer-Encoding", "", NULL}, 400},
      {1, {"Transfer-Encoding", "chunked\x01", NULL}, 400},
      {0, {"Transfer-Encoding", "chunked", NULL}, 400},
      {0, {"Content-Length", "3", NULL}, 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *why = NULL;
    int got = framing(cases[i].minor, cases[i].fields, &why);
    if (got != cases[i].want)
      fail_msg("case %zu: want %d, got %d (%s)", i, cases[i].want, got,
               why ? why : "");
    if (got) assert_non_null(why);
  }
}

static void test_hop_by_hop(void **state) {
  (void)state;
  assert_true(kg_http_is_hop_by_hop("Connection", 10));
  assert_true(kg_http_is_hop_by_hop("keep-alive", 10));
  assert_true(kg_http_is_hop_by_hop("TRANSFER-ENCODING", 17));
  assert_false(kg_http_is_hop_by_hop("Content-Length", 14));
  assert_false(kg_http_is_hop_by_hop("X-Connection", 12));
  kg_hdrs h = KG_HDRS_INIT;
  kg_hdrs_add(&h, "Connection", 10, "keep-alive, X-Secret ,foo", 25);
  assert_true(kg_http_connection_lists(&h, "x-secret", 8));
  assert_true(kg_http_connection_lists(&h, "FOO", 3));
  assert_false(kg_http_connection_lists(&h, "X-Sec", 5));
  assert_true(kg_http_connection_lists_any(&h));
  kg_hdrs_free(&h);
  /* Every hop-by-hop name, any case; and the common lists that name none
   * beyond keep-alive. */
  const char *hop[] = {"te", "Trailer", "UPGRADE", "connection", "Keep-Alive",
                       "proxy-connection", "transfer-encoding"};
  for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
    assert_true(kg_http_is_hop_by_hop(hop[i], strlen(hop[i])));
  assert_false(kg_http_is_hop_by_hop("tx", 2));
  assert_false(kg_http_is_hop_by_hop("upgraded", 8));
  kg_hdrs_add(&h, "Content-Type", 12, "text/html", 9);
  assert_false(kg_http_connection_lists_any(&h));
  kg_hdrs_add(&h, "Connection", 10, "Keep-Alive", 10);
  kg_hdrs_add(&h, "connection", 10, " keep-alive ,", 13);
  assert_false(kg_http_connection_lists_any(&h));
  kg_hdrs_add(&h, "CONNECTION", 10, "close", 5);
  assert_true(kg_http_connection_lists_any(&h));
  kg_hdrs_free(&h);
}

/* --- the adapter --------------------------------------------------------------- */

typedef struct rec {
  int heads;
  char body[256];
  size_t body_len;
  int head_ret;
} rec;

static int on_head(void *ud, kg_http_msg *m) {
  rec *r = ud;
  r->heads++;
  (void)m;
  return r->head_ret;
}

static int on_body(void *ud, const char *p, size_t n) {
  rec *r = ud;
  assert_true(r->body_len + n <= sizeof(r->body));
  memcpy(r->body + r->body_len, p, n);
  r->body_len += n;
  return 0;
}

static const kg_http_ops ops = {on_head, on_body};

static void test_pipelined_requests_pause_between(void **state) {
  (void)state;
  const char *in =
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
      "GET /c HTTP/1.0\r\n\r\n";
  rec r = {0};
  kg_http h;
  kg_http_init(&h, HTTP_REQUEST, &ops, &r, (kg_http_limits){4096, 50});
  size_t off = 0, used = 0, len = strlen(in);
  assert_int_equal(kg_http_feed(&h, in, len, &used), KG_HTTP_PAUSED);
  assert_string_equal(h.msg.url.data, "/a");
  assert_true(h.msg.keep_alive);
  off += used;
  kg_http_resume(&h);
  assert_int_equal(kg_http_feed(&h, in + off, len - off, &used), KG_HTTP_PAUSED);
  assert_string_equal(h.msg.url.data, "/b");
  assert_true(h.msg.chunked);
  assert_int_equal(r.body_len, 5);
  assert_memory_equal(r.body, "abcde", 5);
  off += used;
  kg_http_resume(&h);
  assert_int_equal(kg_http_feed(&h, in + off, len - off, &used), KG_HTTP_PAUSED);
  assert_string_equal(h.msg.url.data, "/c");
  assert_false(h.msg.keep_alive); /* HTTP/1.0 without keep-alive */
  assert_int_equal(off + used, len);
  assert_int_equal(r.heads, 3);
  kg_http_free(&h);
}

static void test_byte_at_a_time(void **state) {
  (void)state;
  const char *in =
      "PUT /x?y=1 HTTP/1.1\r\nHost: example\r\nX-Long-Name: some value\r\n"
      "Content-Length: 4\r\n\r\nbody";
  rec r = {0};
  kg_http h;
  kg_http_init(&h, HTTP_REQUEST, &ops, &r, (kg_http_limits){4096, 50});
  size_t len = strlen(in), used;
  kg_http_state st = KG_HTTP_MORE;
  for (size_t i = 0; i < len; i++) {
    st = kg_http_feed(&h, in + i, 1, &used);
    assert_int_equal(used, 1);
    if (i + 1 < len) assert_int_equal(st, KG_HTTP_MORE);
  }
  assert_int_equal(st, KG_HTTP_PAUSED);
  assert_string_equal(h.msg.url.data, "/x?y=1");
  assert_int_equal(h.msg.hdrs.n, 3);
  assert_string_equal(kg_hdrs_name(&h.msg.hdrs, 1), "X-Long-Name");
  assert_string_equal(kg_hdrs_value(&h.msg.hdrs, 1), "some value");
  assert_memory_equal(r.body, "body", 4);
  kg_http_free(&h);
}

static kg_http_state feed_all(const char *in, kg_http_limits lim, int *status) {
  rec r = {0};
  kg_http h;
  kg_http_init(&h, HTTP_REQUEST, &ops, &r, lim);
  size_t used;
  kg_http_state st = kg_http_feed(&h, in, strlen(in), &used);
  *status = h.error_status;
  kg_http_free(&h);
  return st;
}

/* Trailer fields never join the head: they were not checked like head
 * fields (this one has a space before its colon) and would otherwise be
 * forwarded to backends as header fields. Found by fuzz_request. */
static void test_trailers_dropped(void **state) {
  (void)state;
  const char *in =
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\nX-Trailer : 1\r\nHost: evil\r\n\r\n";
  rec r = {0};
  kg_http h;
  kg_http_init(&h, HTTP_REQUEST, &ops, &r, (kg_http_limits){4096, 50});
  size_t used;
  assert_int_equal(kg_http_feed(&h, in, strlen(in), &used), KG_HTTP_PAUSED);
  assert_int_equal(used, strlen(in));
  assert_int_equal(h.msg.hdrs.n, 2);
  assert_string_equal(kg_hdrs_value(&h.msg.hdrs, 0), "x");
  assert_memory_equal(r.body, "abc", 3);
  kg_http_free(&h);
}

/* A 304 (or 204, or 1xx) ends with its head even when it carries the
 * Content-Length of the representation: the next response follows at
 * once. Found by fuzz_response. */
static void test_response_no_body_statuses(void **state) {
  (void)state;
  const char *in =
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"
      "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"
      "HTTP/1.1 100 Continue\r\nContent-Length: 3\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  static const int want[] = {304, 204, 100, 200};
  rec r = {0};
  kg_http h;
  kg_http_init(&h, HTTP_RESPONSE, &ops, &r, (kg_http_limits){0, 0});
  size_t off = 0, used, len = strlen(in);
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(kg_http_feed(&h, in + off, len - off, &used), KG_HTTP_PAUSED);
    assert_int_equal(h.msg.status, want[i]);
    off += used;
    kg_http_resume(&h);
  }
  assert_int_equal(off, len);
  assert_int_equal(r.body_len, 2);
  assert_memory_equal(r.body, "ok", 2);
  kg_http_free(&h);
}

/* A status code below 100 ("HTTP/1.1 20") is not a response kagami can
 * wait past as if it were interim. Found by fuzz_response. */
static void test_response_short_status(void **state) {
  (void)state;
  const char *in = "HTTP/1.1 20\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  rec r = {0};
  kg_http h;
  kg_http_init(&h, HTTP_RESPONSE, &ops, &r, (kg_http_limits){0, 0});
  size_t used;
  assert_int_equal(kg_http_feed(&h, in, strlen(in), &used), KG_HTTP_ERROR);
  assert_int_equal(h.error_status, 502);
  assert_int_equal(r.heads, 0);
  kg_http_free(&h);
}

static void test_errors_and_limits(void **state) {
  (void)state;
  int status = 0;
  kg_http_limits lim = {200, 5};
  assert_int_equal(feed_all("GARBAGE\r\n\r\n", lim, &status), KG_HTTP_ERROR);
  assert_int_equal(status, 400);
  char big[512] = "GET /";
  memset(big + 5, 'a', 300);
  strcpy(big + 305, " HTTP/1.1\r\n\r\n");
  assert_int_equal(feed_all(big, lim, &status), KG_HTTP_ERROR);
  assert_int_equal(status, 414); /* the target alone is too long */
  char fields[512] = "GET / HTTP/1.1\r\nX-Big: ";
  memset(fields + strlen(fields), 'b', 300);
  strcat(fields, "\r\n\r\n");
  assert_int_equal(feed_all(fields, lim, &status), KG_HTTP_ERROR);
  assert_int_equal(status, 431); /* the head is */
  assert_int_equal(feed_all("GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\n"
                            "e: 1\r\nf: 1\r\n\r\n", lim, &status),
                   KG_HTTP_ERROR);
  assert_int_equal(status, 431);
  assert_int_equal(feed_all("POST / HTTP/1.1\r\nContent-Length: 1\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n", lim, &status),
                   KG_HTTP_ERROR);
  assert_int_equal(status, 400);
  assert_int_equal(feed_all("GET / HTTP/1.1\r\nExpect: magic\r\n\r\n", lim, &status),
                   KG_HTTP_ERROR);
  assert_int_equal(status, 417);
  assert_int_equal(feed_all("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", lim, &status),
                   KG_HTTP_ERROR);
  assert_int_equal(status, 400);
  /* Incomplete is not invalid. */
  assert_int_equal(feed_all("GET / HTTP/1.1\r\nHost: x\r\n", lim, &status), KG_HTTP_MORE);
}

static void test_response_eof_framing(void **state) {
  (void)state;
  rec r = {0};
  kg_http h;
  kg_http_init(&h, HTTP_RESPONSE, &ops, &r, (kg_http_limits){0, 0});
  const char *in = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close";
  size_t used;
  assert_int_equal(kg_http_feed(&h, in, strlen(in), &used), KG_HTTP_MORE);
  assert_int_equal(kg_http_eof(&h), KG_HTTP_PAUSED);
  assert_int_equal(r.body_len, 11);
  kg_http_free(&h);

  rec r2 = {0};
  kg_http_init(&h, HTTP_RESPONSE, &ops, &r2, (kg_http_limits){0, 0});
  in = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
  assert_int_equal(kg_http_feed(&h, in, strlen(in), &used), KG_HTTP_MORE);
  assert_int_equal(kg_http_eof(&h), KG_HTTP_ERROR);
  assert_int_equal(h.error_status, 502);
  kg_http_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_framing_table),
      cmocka_unit_test(test_hop_by_hop),
      cmocka_unit_test(test_pipelined_requests_pause_between),
      cmocka_unit_test(test_byte_at_a_time),
      cmocka_unit_test(test_trailers_dropped),
      cmocka_unit_test(test_response_no_body_statuses),
      cmocka_unit_test(test_response_short_status),
      cmocka_unit_test(test_errors_and_limits),
      cmocka_unit_test(test_response_eof_framing),
  };
  return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
