/* fuzz_decode: Content-Encoding undone under a cap (src/compare/decode.c).
 *
 * Input: byte 0: bits 0-1 the mode, bits 2-4 the cap (max_out); the rest
 * depends on the mode:
 *   0  "<Content-Encoding value>\n<body>": the body as it came from a
 *      backend, so corrupt, truncated and bomb-like streams are explored;
 *   1  a payload the harness gzips ("gzip"),
 *   2  a payload it deflates in the zlib format ("deflate"),
 *   3  a payload it deflates raw and then gzips ("deflate, gzip", raw
 *      deflate being what some servers send for "deflate").
 *
 * What must hold: the output never grows past the cap; a failure leaves
 * the output as it was and names a reason from the documented list; what
 * the harness compressed decodes back to the payload when it fits the cap,
 * and fails with the cap's message when it does not. */
#include <zlib.h>

#include "compare/decode.h"
#include "fuzz_util.h"

/* The message for a body over the cap (decode.h lists them all). */
#define FZ_OVER_CAP "decoded body over the capture limit"

static const size_t fz_caps[] = {0, 1, 16, 255, 4096, 65536, 1u << 20, 8u << 20};

static bool fz_known_error(const char *e) {
  static const char *const exact[] = {
      "too many content-codings",    "invalid gzip data",
      "invalid deflate data",        "truncated gzip data",
      "truncated deflate data",      FZ_OVER_CAP,
  };
  if (e == NULL) return false;
  if (strncmp(e, "unsupported content-encoding", 28) == 0) return true;
  for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
    if (strcmp(e, exact[i]) == 0) return true;
  return false;
}

/* Compresses in with zlib's window bits wbits (31 gzip, 15 zlib, -15 raw)
 * into a malloc'd buffer. */
static unsigned char *fz_compress(const void *in, size_t n, int wbits, size_t *outlen) {
  z_stream z;
  memset(&z, 0, sizeof(z));
  FZ_CHECK(deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, wbits, 8,
                        Z_DEFAULT_STRATEGY) == Z_OK);
  size_t cap = deflateBound(&z, (uLong)n) + 32;
  unsigned char *out = malloc(cap);
  FZ_CHECK(out != NULL);
  z.next_in = (Bytef *)in;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  FZ_CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
  *outlen = cap - z.avail_out;
  deflateEnd(&z);
  return out;
}

/* Decodes and checks what holds for every call; returns the rc. */
static int fz_decode(const char *ce, const char *body, size_t n, size_t cap,
                     kg_buf *out, const char **err) {
  kg_buf_reset(out);
  kg_buf_append(out, "PRE", 3); /* decoding appends after what is there */
  *err = NULL;
  int rc = kg_decode_body(ce, body, n, cap, out, err);
  FZ_CHECK(rc == 0 || rc == -1);
  FZ_CHECK(out->len >= 3 && memcmp(out->data, "PRE", 3) == 0);
  FZ_CHECK(out->data[out->len] == '\0');
  if (rc == 0) {
    FZ_CHECK(out->len - 3 <= cap);
  } else {
    FZ_CHECK(out->len == 3);
    FZ_CHECK(fz_known_error(*err));
  }
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  uint8_t sel = fz_byte(&in);
  size_t cap = fz_caps[(sel >> 2) & 7];
  kg_buf out = KG_BUF_INIT;
  const char *err;

  if ((sel & 3) == 0) {
    const uint8_t *nl = memchr(in.p, '\n', in.n);
    size_t celen = nl ? (size_t)(nl - in.p) : 0;
    char *ce = fz_strdup((fz_in){in.p, celen});
    fz_in body = {in.p + (nl ? celen + 1 : 0), in.n - (nl ? celen + 1 : 0)};
    char *b = fz_dup(body);
    fz_decode(ce, b, body.n, cap, &out, &err);
    free(b);
    free(ce);
  } else {
    size_t n1, n2 = 0;
    unsigned char *c1, *c2 = NULL;
    const char *ce;
    if ((sel & 3) == 1) {
      c1 = fz_compress(in.p, in.n, 31, &n1);
      ce = "gzip";
    } else if ((sel & 3) == 2) {
      c1 = fz_compress(in.p, in.n, 15, &n1);
      ce = "deflate";
    } else {
      c2 = fz_compress(in.p, in.n, -15, &n2);
      c1 = fz_compress(c2, n2, 31, &n1);
      ce = "deflate, gzip";
    }
    int rc = fz_decode(ce, (const char *)c1, n1, cap, &out, &err);
    /* The raw-deflate stage holds more bytes than the payload only when
     * the payload is tiny; the cap applies to every stage. */
    size_t need = c2 ? (in.n > n2 ? in.n : n2) : in.n;
    if (need <= cap) {
      FZ_CHECK(rc == 0);
      FZ_CHECK(out.len - 3 == in.n && (in.n == 0 || memcmp(out.data + 3, in.p, in.n) == 0));
    } else if (in.n > cap) {
      FZ_CHECK(rc == -1 && strcmp(err, FZ_OVER_CAP) == 0);
    }
    free(c1);
    free(c2);
  }
  kg_buf_free(&out);
  return 0;
}
