/* Unit tests: the strict framing checks http.c adds on top of http_parser
 * (chunked framing, Host, fragments, OWS around Content-Length, kagami's
 * own reading of Transfer-Encoding), each fed whole and one byte at a time
 * so that every check also holds across read boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "http/http.h"

typedef struct rec {
  int heads;
  char body[512];
  size_t body_len;
} rec;

static int on_head(void *ud, kg_http_msg *m) {
  ((rec *)ud)->heads++;
  (void)m;
  return 0;
}

static int on_body(void *ud, const char *p, size_t n) {
  rec *r = ud;
  assert_true(r->body_len + n <= sizeof(r->body));
  memcpy(r->body + r->body_len, p, n);
  r->body_len += n;
  return 0;
}

static const kg_http_ops ops = {on_head, on_body};

/* Feeds `in` whole (step 0) or `step` bytes at a time, as one message.
 * Returns the final state; *status is the error status, *r what arrived,
 * *used_all whether every byte was consumed. */
static kg_http_state feed(enum http_parser_type type, const char *in,
                          size_t step, int *status, rec *r, bool *used_all) {
  kg_http h;
  memset(r, 0, sizeof(*r));
  kg_http_init(&h, type, &ops, r, (kg_http_limits){4096, 50});
  size_t len = strlen(in), off = 0;
  kg_http_state st = KG_HTTP_MORE;
  while (off < len) {
    size_t n = step ? (len - off < step ? len - off : step) : len - off;
    size_t used = 0;
    st = kg_http_feed(&h, in + off, n, &used);
    off += used;
    if (st != KG_HTTP_MORE) break;
  }
  *status = h.error_status;
  *used_all = off == len;
  kg_http_free(&h);
  return st;
}

#define REQ(head, body) "POST /x HTTP/1.1\r\nHost: h\r\n" head "\r\n" body
#define CHUNKED "Transfer-Encoding: chunked\r\n"

static const struct {
  const char *in;
  int want;               /* 0: one complete message */
  const char *body;       /* the de-chunked body when complete */
} cases[] = {
    {REQ(CHUNKED, "5\r\nhello\r\n0\r\n\r\n"), 0, "hello"},
    {REQ(CHUNKED, "5;a=b;c=\"d e\"\r\nhello\r\n0;z\r\n\r\n"), 0, "hello"},
    {REQ(CHUNKED, "5 ;a=b\r\nhello\r\n0\r\n\r\n"), 0, "hello"},
    {REQ(CHUNKED, "0005\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"), 0, "helloabc"},
    {REQ(CHUNKED, "5\r\nhello\r\n0\r\nX-T: v\r\nY: w\r\n\r\n"), 0, "hello"},
    {REQ("Transfer-Encoding: chunked\t\r\n", "5\r\nhello\r\n0\r\n\r\n"), 0,
     "hello"},
    {REQ("Transfer-Encoding: , chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"), 0,
     "hello"},
    {REQ("Content-Length: 5  \r\n", "hello"), 0, "hello"},
    {REQ(CHUNKED, "5;a\nhello\r\n0\r\n\r\n"), 400, NULL},
    {REQ(CHUNKED, "5;a\x01\r\nhello\r\n0\r\n\r\n"), 400, NULL},
    {REQ(CHUNKED, "5\r\nhelloXX0\r\n\r\n"), 400, NULL},
    {REQ(CHUNKED, "5\r\nhello\n0\r\n\r\n"), 400, NULL},
    {REQ(CHUNKED, "5\nhello\r\n0\r\n\r\n"), 400, NULL},
    {REQ(CHUNKED, "5 x\r\nhello\r\n0\r\n\r\n"), 400, NULL},
    {REQ(CHUNKED, "5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n"), 400, NULL},
    {REQ(CHUNKED, "5\r\nhello\r\n0\r\nX-T: a\nY: b\r\n\r\n"), 400, NULL},
    {REQ(CHUNKED, "5\r\nhello\r\n0\r\n\n"), 400, NULL},
    {"GET / HTTP/1.1\r\n\r\n", 400, NULL},
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, NULL},
    {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, NULL},
    {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, NULL},
    {"GET / HTTP/1.1\r\nHost:\r\n\r\n", 0, ""},
    {"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 0, ""},
    {"GET / HTTP/1.0\r\n\r\n", 0, ""},
    {"GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400, NULL},
};

static void test_cases_whole_and_split(void **state) {
  (void)state;
  static const size_t steps[] = {0, 1, 2, 3, 7};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
      int status = 0;
      rec r;
      bool all = false;
      kg_http_state st = feed(HTTP_REQUEST, cases[i].in, steps[s], &status,
                              &r, &all);
      if (cases[i].want == 0) {
        if (st != KG_HTTP_PAUSED || !all)
          fail_msg("case %zu step %zu: state %d status %d used_all %d", i,
                   steps[s], st, status, all);
        if (r.body_len != strlen(cases[i].body) ||
            memcmp(r.body, cases[i].body, r.body_len) != 0)
          fail_msg("case %zu step %zu: body %.*s", i, steps[s],
                   (int)r.body_len, r.body);
      } else if (st != KG_HTTP_ERROR || status != cases[i].want) {
        fail_msg("case %zu step %zu: want %d, got state %d status %d", i,
                 steps[s], cases[i].want, st, status);
      }
    }
  }
}

/* Responses get the same chunked checks, with 502. */
static void test_response_chunked_framing(void **state) {
  (void)state;
  int status = 0;
  rec r;
  bool all;
  assert_int_equal(feed(HTTP_RESPONSE,
                        "HTTP/1.1 200 OK\r\n" CHUNKED "\r\n"
                        "3\r\nabc\r\n0\r\n\r\n", 1, &status, &r, &all),
                   KG_HTTP_PAUSED);
  assert_int_equal(r.body_len, 3);
  assert_int_equal(feed(HTTP_RESPONSE,
                        "HTTP/1.1 200 OK\r\n" CHUNKED "\r\n"
                        "3\r\nabcXY0\r\n\r\n", 0, &status, &r, &all),
                   KG_HTTP_ERROR);
  assert_int_equal(status, 502);
}

/* Two chunked requests in a row: the check starts afresh for the second. */
static void test_pipelined_chunked(void **state) {
  (void)state;
  const char *in = REQ(CHUNKED, "3\r\nabc\r\n0\r\n\r\n")
      REQ(CHUNKED, "2\r\nde\r\n0\r\n\r\n");
  rec r = {0};
  kg_http h;
  kg_http_init(&h, HTTP_REQUEST, &ops, &r, (kg_http_limits){4096, 50});
  size_t len = strlen(in), used = 0;
  assert_int_equal(kg_http_feed(&h, in, len, &used), KG_HTTP_PAUSED);
  kg_http_resume(&h);
  size_t off = used;
  assert_int_equal(kg_http_feed(&h, in + off, len - off, &used), KG_HTTP_PAUSED);
  assert_int_equal(off + used, len);
  assert_int_equal(r.heads, 2);
  assert_memory_equal(r.body, "abcde", 5);
  kg_http_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases_whole_and_split),
      cmocka_unit_test(test_response_chunked_framing),
      cmocka_unit_test(test_pipelined_chunked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
