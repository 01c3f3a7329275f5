/* fuzz_response: backend bytes -> responses (src/http/http.c, as upstream.c
 * drives it).
 *
 * The input is what a backend sends on one connection. The callbacks act
 * as upstream.c's: an interim 1xx is parsed and skipped (101 refused), a
 * final head is moved out of the parser (the exchange keeps it) and, for a
 * HEAD request, its body is skipped; after each final response the next
 * request's response is parsed from the same bytes (connection reuse).
 *
 * Input: byte 0: bit 0 = the requests are HEAD, bit 1 = the backend closes
 * at the end; bytes 1-3: a cycle of read sizes (0 = the rest); then the
 * byte stream.
 *
 * What must hold: every failure is a 502; no body byte for HEAD, 1xx, 204
 * or 304; a Content-Length body delivers exactly that many bytes; a close
 * completes a close-delimited body and nothing else; no more bytes consumed
 * than given, and all of them unless the parser stopped. */
#include "fuzz_util.h"
#include "http/http.h"

typedef struct fz_resp {
  bool head_request;    /* the request was HEAD: final bodies skipped */
  bool head_seen;       /* on_head ran for the message in progress */
  int status;           /* of the message in progress */
  uint64_t body_bytes;  /* of the message in progress */
  kg_http_msg final;    /* the final head, moved out as upstream.c does */
} fz_resp;

static bool fz_no_body(const fz_resp *r) {
  return r->status < 200 || r->status == 204 || r->status == 304 || r->head_request;
}

static int fz_on_head(void *ud, kg_http_msg *m) {
  fz_resp *r = ud;
  FZ_CHECK(!r->head_seen);
  r->head_seen = true;
  r->status = m->status;
  r->body_bytes = 0;
  FZ_CHECK(m->status >= 100 && m->status <= 999);
  if (m->status < 200) return m->status == 101 ? 502 : 0;
  /* The parser must keep going with its message emptied under it. */
  kg_http_msg_move(&r->final, m);
  return r->head_request ? 1 : 0;
}

static int fz_on_body(void *ud, const char *p, size_t n) {
  fz_resp *r = ud;
  FZ_CHECK(r->head_seen);
  FZ_CHECK(n > 0 && p != NULL);
  FZ_CHECK(!fz_no_body(r));
  r->body_bytes += n;
  return 0;
}

static const kg_http_ops fz_ops = {fz_on_head, fz_on_body};

/* A response completed (PAUSED). */
static void fz_check_complete(fz_resp *r, const kg_http *h) {
  FZ_CHECK(!kg_http_in_message(h));
  FZ_CHECK(r->head_seen);
  if (r->status >= 200) {
    const kg_http_msg *m = &r->final;
    FZ_CHECK(m->status == r->status);
    if (fz_no_body(r)) FZ_CHECK(r->body_bytes == 0);
    else if (m->has_length) FZ_CHECK(r->body_bytes == m->content_length);
    /* The next request on this connection starts from an empty head, as
     * when upstream.c hands the connection to the next leg. */
    kg_http_msg_reset(&r->final);
  } else {
    FZ_CHECK(r->body_bytes == 0);
    FZ_CHECK(h->msg.status == r->status); /* interim heads stay in place */
  }
  r->head_seen = false;
  r->body_bytes = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  uint8_t flags = fz_byte(&in);
  size_t sizes[3];
  for (int i = 0; i < 3; i++) sizes[i] = fz_byte(&in);
  fz_resp r = {.head_request = flags & 1};
  kg_http_msg_init(&r.final);

  kg_http h;
  kg_http_init(&h, HTTP_RESPONSE, &fz_ops, &r, (kg_http_limits){0, 0});
  bool stopped = false;
  for (unsigned k = 0; in.n > 0 && !stopped; k++) {
    size_t want = sizes[k % 3];
    if (want == 0 || want > in.n) want = in.n;
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
        FZ_CHECK(h.error_status == 502 && h.error_text != NULL);
        stopped = true;
        break;
      }
      FZ_CHECK(st == KG_HTTP_PAUSED);
      FZ_CHECK(used > 0);
      fz_check_complete(&r, &h);
      kg_http_resume(&h);
    }
    free(buf);
  }
  if (!stopped && (flags & 2)) {
    bool mid = kg_http_in_message(&h);
    /* Only a final response whose head said neither Content-Length nor
     * chunked, and that may have a body, ends with the connection. */
    bool close_delimited = r.head_seen && r.status >= 200 && !fz_no_body(&r) &&
                           !r.final.chunked && !r.final.has_length;
    kg_http_state st = kg_http_eof(&h);
    if (!mid) {
      FZ_CHECK(st == KG_HTTP_MORE);
    } else if (close_delimited) {
      FZ_CHECK(st == KG_HTTP_PAUSED);
      fz_check_complete(&r, &h);
    } else {
      FZ_CHECK(st == KG_HTTP_ERROR && h.error_status == 502);
    }
  }
  kg_http_free(&h);
  kg_http_msg_free(&r.final);
  return 0;
}
