/* fuzz_request: client bytes -> the framing decision (src/http/http.c).
 *
 * The input is what a client sends on one connection, fed to a request
 * parser the way the proxy feeds it: in reads of varying size, resuming
 * after each complete request (pipelining) and stopping at the first error.
 * The callbacks act as the proxy's do (CONNECT refused, a body limit).
 *
 * Input: byte 0 picks the limits, bytes 1-3 a cycle of read sizes (0 means
 * "the rest"), byte 4 whether the peer closes at the end; the rest is the
 * byte stream.
 *
 * What must hold: a request the adapter lets through has a method, a
 * target and exactly one framing that agrees with its header fields (a
 * request with both Transfer-Encoding and Content-Length never completes),
 * and delivers as many body bytes as that framing says; every refusal
 * carries one of the statuses the proxy answers with; no more bytes are
 * consumed than given, and all of them unless the parser stopped. */
#include <strings.h>

#include "fuzz_util.h"
#include "http/http.h"

typedef struct fz_req {
  uint64_t max_body;    /* like max_body_bytes; 0 = none */
  bool head_seen;       /* on_head ran for the message in progress */
  uint64_t body_bytes;  /* body bytes of the message in progress */
} fz_req;

static int fz_on_head(void *ud, kg_http_msg *m) {
  fz_req *r = ud;
  /* One head per message: a second head before the message completed
   * would mean the adapter lost track of a boundary. */
  FZ_CHECK(!r->head_seen);
  r->head_seen = true;
  r->body_bytes = 0;
  /* HTTP/0.9 and 2+ are refused before any owner sees them. */
  FZ_CHECK(m->http_major == 1);
  /* The framing rules ran before this callback. */
  FZ_CHECK(!(kg_hdrs_find(&m->hdrs, "content-length") >= 0 &&
             kg_hdrs_find(&m->hdrs, "transfer-encoding") >= 0));
  if (m->method == HTTP_CONNECT) return 501;
  if (r->max_body && m->has_length && m->content_length > r->max_body) return 413;
  return 0;
}

static int fz_on_body(void *ud, const char *p, size_t n) {
  fz_req *r = ud;
  FZ_CHECK(r->head_seen);
  FZ_CHECK(n > 0 && p != NULL);
  r->body_bytes += n;
  if (r->max_body && r->body_bytes > r->max_body) return 413;
  return 0;
}

static const kg_http_ops fz_ops = {fz_on_head, fz_on_body};

static bool fz_is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* A request the adapter completed: everything the proxy forwards from it
 * must describe one unambiguous message. */
static void fz_check_complete(fz_req *r, const kg_http *h) {
  const kg_http_msg *m = &h->msg;
  FZ_CHECK(!kg_http_in_message(h));
  FZ_CHECK(r->head_seen);
  FZ_CHECK(m->url.len > 0 && m->url.data != NULL);
  FZ_CHECK(strcmp(http_method_str((enum http_method)m->method), "<unknown>") != 0);
  FZ_CHECK(m->http_major == 1);

  for (size_t i = 0; i < m->hdrs.n; i++) {
    const char *name = kg_hdrs_name(&m->hdrs, i);
    const char *value = kg_hdrs_value(&m->hdrs, i);
    FZ_CHECK(m->hdrs.v[i].name_len > 0);
    for (uint32_t j = 0; j < m->hdrs.v[i].name_len; j++) FZ_CHECK(fz_is_tchar(name[j]));
    for (uint32_t j = 0; j < m->hdrs.v[i].value_len; j++)
      FZ_CHECK(value[j] != '\r' && value[j] != '\n' && value[j] != '\0');
  }

  long cl = kg_hdrs_find(&m->hdrs, "content-length");
  long te = kg_hdrs_find(&m->hdrs, "transfer-encoding");
  FZ_CHECK(!(cl >= 0 && te >= 0));
  /* The parser's framing (what the proxy re-frames the body by) must be
   * the one the header fields state, or a backend that reads the fields
   * would see another message boundary than kagami did. */
  FZ_CHECK(m->chunked == (te >= 0));
  FZ_CHECK(m->has_length == (cl >= 0));
  if (m->has_length) {
    const char *v = kg_hdrs_value(&m->hdrs, (size_t)cl);
    FZ_CHECK(strtoull(v, NULL, 10) == m->content_length);
    FZ_CHECK(r->body_bytes == m->content_length);
  } else if (!m->chunked) {
    FZ_CHECK(r->body_bytes == 0); /* requests are never close-delimited */
  }
  if (m->expect_continue) {
    long e = kg_hdrs_find(&m->hdrs, "expect");
    FZ_CHECK(e >= 0 && strcasecmp(kg_hdrs_value(&m->hdrs, (size_t)e), "100-continue") == 0);
  }
  r->head_seen = false;
  r->body_bytes = 0;
}

static void fz_check_error(const kg_http *h) {
  int s = h->error_status;
  FZ_CHECK(s == 400 || s == 413 || s == 414 || s == 417 || s == 431 || s == 501 ||
           s == 505);
  FZ_CHECK(h->error_text != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  uint8_t lim = fz_byte(&in);
  static const size_t head_caps[] = {0, 64, 512, 64 * 1024};
  static const size_t count_caps[] = {0, 2, 10, 100};
  static const uint64_t body_caps[] = {0, 8, 1024, 16u << 20};
  kg_http_limits limits = {head_caps[lim & 3], count_caps[(lim >> 2) & 3]};
  fz_req r = {.max_body = body_caps[(lim >> 4) & 3]};
  size_t sizes[3];
  for (int i = 0; i < 3; i++) sizes[i] = fz_byte(&in);
  bool close_at_end = fz_byte(&in) & 1;

  kg_http h;
  kg_http_init(&h, HTTP_REQUEST, &fz_ops, &r, limits);
  bool stopped = false;
  for (unsigned k = 0; in.n > 0 && !stopped; k++) {
    size_t want = sizes[k % 3];
    if (want == 0 || want > in.n) want = in.n;
    /* Each read in its own exact buffer, freed after use: the adapter must
     * copy what it keeps, and ASan sees any read past a read's end. */
    char *buf = fz_dup((fz_in){in.p, want});
    in.p += want;
    in.n -= want;
    size_t done = 0;
    while (done < want) {
      size_t used = 0;
      kg_http_state st = kg_http_feed(&h, buf + done, want - done, &used);
      FZ_CHECK(used <= want - done);
      done += used;
      if (st == KG_HTTP_MORE) {
        FZ_CHECK(done == want);
        break;
      }
      if (st == KG_HTTP_ERROR) {
        fz_check_error(&h);
        stopped = true;
        break;
      }
      FZ_CHECK(st == KG_HTTP_PAUSED);
      FZ_CHECK(used > 0); /* a message cannot end without a byte of it */
      fz_check_complete(&r, &h);
      /* After an upgrade the rest is another protocol: the proxy never
       * parses it (it closes after answering). */
      if (h.msg.upgrade) {
        stopped = true;
        break;
      }
      kg_http_resume(&h);
    }
    free(buf);
  }
  if (!stopped && close_at_end) {
    /* Requests are never delimited by the close: one cut short is an
     * error, and a close between requests is clean. */
    bool mid = kg_http_in_message(&h);
    kg_http_state st = kg_http_eof(&h);
    if (mid) {
      FZ_CHECK(st == KG_HTTP_ERROR);
      FZ_CHECK(h.error_status == 400);
    } else {
      FZ_CHECK(st == KG_HTTP_MORE);
    }
  }
  kg_http_free(&h);
  return 0;
}
