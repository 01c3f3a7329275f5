/* Unit tests: Content-Encoding decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <zlib.h>

#include "common/buf.h"
#include "common/common.h"
#include "compare/decode.h"

#define GZIP_BITS (16 + MAX_WBITS)
#define ZLIB_BITS MAX_WBITS
#define RAW_BITS (-MAX_WBITS)

/* Compresses `repeat` copies of in[0..n) into out, in the given framing,
 * streaming so that a 100 MB bomb never exists uncompressed. */
static void zcompress_repeat(int bits, const void *in, size_t n, size_t repeat,
                             kg_buf *out) {
  z_stream s;
  memset(&s, 0, sizeof(s));
  assert_int_equal(deflateInit2(&s, 9, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  unsigned char chunk[65536];
  for (size_t i = 0; i <= repeat; i++) {
    int flush = i == repeat ? Z_FINISH : Z_NO_FLUSH;
    s.next_in = (Bytef *)(uintptr_t)(i == repeat ? "" : in);
    s.avail_in = i == repeat ? 0 : (uInt)n;
    int rc;
    do {
      s.next_out = chunk;
      s.avail_out = sizeof(chunk);
      rc = deflate(&s, flush);
      assert_true(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR);
      kg_buf_append(out, chunk, sizeof(chunk) - s.avail_out);
    } while (s.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
  }
  deflateEnd(&s);
}

static void zcompress(int bits, const char *in, size_t n, kg_buf *out) {
  zcompress_repeat(bits, in, n, 1, out);
}

/* Some text that compresses but is not trivial. */
static void sample_text(kg_buf *b, size_t lines) {
  for (size_t i = 0; i < lines; i++)
    kg_buf_appendf(b, "<li id=\"item-%zu\">row %zu: %zu bottles</li>\n", i, i, i * 7919 % 1000);
}

static void expect_ok(const char *ce, const kg_buf *enc, const kg_buf *want) {
  kg_buf out = KG_BUF_INIT;
  const char *err = NULL;
  int rc = kg_decode_body(ce, enc->data, enc->len, 1 << 24, &out, &err);
  if (rc != 0) print_error("%s: %s\n", ce ? ce : "(null)", err);
  assert_int_equal(rc, 0);
  assert_int_equal(out.len, want->len);
  assert_memory_equal(out.data, want->data, want->len);
  kg_buf_free(&out);
}

static void expect_err(const char *ce, const char *in, size_t n, size_t max_out,
                       const char *want_err) {
  kg_buf out = KG_BUF_INIT;
  kg_buf_appends(&out, "keep");
  const char *err = NULL;
  assert_int_equal(kg_decode_body(ce, in, n, max_out, &out, &err), -1);
  assert_non_null(err);
  assert_string_equal(err, want_err);
  /* On failure out is exactly as it was. */
  assert_int_equal(out.len, 4);
  assert_string_equal(out.data, "keep");
  kg_buf_free(&out);
}

static void test_identity_copies(void **state) {
  (void)state;
  const char *const ces[] = {NULL, "", "identity", " Identity ", "IDENTITY, identity", ","};
  for (size_t i = 0; i < KG_ARRAY_SIZE(ces); i++) {
    kg_buf out = KG_BUF_INIT;
    kg_buf_appends(&out, ">");
    const char *err = NULL;
    assert_int_equal(kg_decode_body(ces[i], "a\0b", 3, 100, &out, &err), 0);
    assert_int_equal(out.len, 4); /* appended, NUL byte kept */
    assert_memory_equal(out.data, ">a\0b", 4);
    assert_int_equal(out.data[4], '\0');
    kg_buf_free(&out);
  }
  /* The cap holds for identity too. */
  expect_err(NULL, "abcdef", 6, 5, "decoded body over the capture limit");
  kg_buf out = KG_BUF_INIT;
  assert_int_equal(kg_decode_body("identity", "abcdef", 6, 6, &out, NULL), 0);
  assert_int_equal(out.len, 6);
  kg_buf_free(&out);
}

static void test_empty_body_is_empty(void **state) {
  (void)state;
  /* HEAD and 304 responses keep the header but have no body. */
  const char *const ces[] = {"gzip", "deflate", "br", "identity", NULL};
  for (size_t i = 0; i < KG_ARRAY_SIZE(ces); i++) {
    kg_buf out = KG_BUF_INIT;
    const char *err = NULL;
    assert_int_equal(kg_decode_body(ces[i], "", 0, 10, &out, &err), 0);
    assert_int_equal(out.len, 0);
    kg_buf_free(&out);
  }
}

static void test_gzip_round_trip(void **state) {
  (void)state;
  kg_buf text = KG_BUF_INIT, enc = KG_BUF_INIT;
  sample_text(&text, 5000);
  zcompress(GZIP_BITS, text.data, text.len, &enc);
  assert_true(enc.len < text.len / 3);
  expect_ok("gzip", &enc, &text);
  expect_ok("x-gzip", &enc, &text);
  expect_ok("GZip", &enc, &text);
  expect_ok("  X-GZIP\t", &enc, &text);
  kg_buf_free(&enc);

  /* A gzip of nothing is a valid stream that decodes to nothing. */
  kg_buf empty = KG_BUF_INIT;
  zcompress(GZIP_BITS, "", 0, &enc);
  expect_ok("gzip", &enc, &empty);
  kg_buf_free(&enc);
  kg_buf_free(&text);
}

static void test_deflate_zlib_and_raw(void **state) {
  (void)state;
  kg_buf text = KG_BUF_INIT, zl = KG_BUF_INIT, raw = KG_BUF_INIT;
  sample_text(&text, 3000);
  zcompress(ZLIB_BITS, text.data, text.len, &zl);
  zcompress(RAW_BITS, text.data, text.len, &raw);
  expect_ok("deflate", &zl, &text);
  expect_ok("deflate", &raw, &text);
  expect_ok("DEFLATE", &raw, &text);
  kg_buf_free(&zl);
  kg_buf_free(&raw);
  kg_buf_free(&text);
}

static void test_raw_deflate_that_looks_like_zlib(void **state) {
  (void)state;
  /* A raw stream whose first two bytes (0x78 0x01) pass the zlib header
   * check: a non-final stored block holding "A" (the padding bits of the
   * first byte happen to be 0x78's), then an empty final stored block. */
  static const unsigned char raw[] = {0x78, 0x01, 0x00, 0xfe, 0xff, 'A',
                                      0x01, 0x00, 0x00, 0xff, 0xff};
  kg_buf enc = KG_BUF_INIT, want = KG_BUF_INIT;
  kg_buf_append(&enc, raw, sizeof(raw));
  kg_buf_appends(&want, "A");
  expect_ok("deflate", &enc, &want);
  kg_buf_free(&enc);
  kg_buf_free(&want);
}

static void test_list_of_codings(void **state) {
  (void)state;
  kg_buf text = KG_BUF_INIT, inner = KG_BUF_INIT, enc = KG_BUF_INIT;
  sample_text(&text, 200);

  zcompress(GZIP_BITS, text.data, text.len, &enc);
  expect_ok("gzip, identity", &enc, &text);
  expect_ok("identity,gzip", &enc, &text);
  expect_ok(" , gzip ,, ", &enc, &text);
  kg_buf_free(&enc);

  /* "deflate, gzip": deflate was applied first, so gzip is undone first. */
  zcompress(ZLIB_BITS, text.data, text.len, &inner);
  zcompress(GZIP_BITS, inner.data, inner.len, &enc);
  expect_ok("deflate, gzip", &enc, &text);
  expect_ok("Deflate,GZIP", &enc, &text);
  /* In the wrong order the outer layer is not deflate data. */
  expect_err("gzip, deflate", enc.data, enc.len, 1 << 24, "invalid deflate data");
  kg_buf_free(&enc);
  kg_buf_free(&inner);

  /* Three layers. */
  kg_buf l1 = KG_BUF_INIT, l2 = KG_BUF_INIT, l3 = KG_BUF_INIT;
  zcompress(GZIP_BITS, text.data, text.len, &l1);
  zcompress(RAW_BITS, l1.data, l1.len, &l2);
  zcompress(GZIP_BITS, l2.data, l2.len, &l3);
  expect_ok("gzip, deflate, x-gzip", &l3, &text);
  kg_buf_free(&l1);
  kg_buf_free(&l2);
  kg_buf_free(&l3);

  expect_err("gzip, gzip, gzip, gzip, gzip", "x", 1, 100, "too many content-codings");
  kg_buf_free(&text);
}

static void test_unsupported(void **state) {
  (void)state;
  expect_err("br", "x", 1, 100, "unsupported content-encoding br");
  expect_err("BR", "x", 1, 100, "unsupported content-encoding br");
  expect_err("gzip, br", "x", 1, 100, "unsupported content-encoding br");
  expect_err("zstd", "x", 1, 100, "unsupported content-encoding zstd");
  expect_err("compress", "x", 1, 100, "unsupported content-encoding compress");
  expect_err("gzip;q=1", "x", 1, 100, "unsupported content-encoding");
  expect_err("chunked", "x", 1, 100, "unsupported content-encoding");
  expect_err("gzi p", "x", 1, 100, "unsupported content-encoding");
}

static void test_concatenated_members(void **state) {
  (void)state;
  kg_buf enc = KG_BUF_INIT, want = KG_BUF_INIT;
  zcompress(GZIP_BITS, "hello ", 6, &enc);
  zcompress(GZIP_BITS, "", 0, &enc);
  zcompress(GZIP_BITS, "world", 5, &enc);
  kg_buf_appends(&want, "hello world");
  expect_ok("gzip", &enc, &want);

  /* Whatever follows a member must be a member. */
  kg_buf_appends(&enc, "trailing junk");
  expect_err("gzip", enc.data, enc.len, 100, "invalid gzip data");
  kg_buf_free(&enc);

  /* deflate has a single stream: trailing bytes are an error. */
  zcompress(ZLIB_BITS, "hello", 5, &enc);
  kg_buf_append(&enc, "\0\0", 2);
  expect_err("deflate", enc.data, enc.len, 100, "invalid deflate data");
  kg_buf_free(&enc);
  kg_buf_free(&want);
}

static void test_truncated(void **state) {
  (void)state;
  kg_buf text = KG_BUF_INIT, enc = KG_BUF_INIT;
  sample_text(&text, 50);
  zcompress(GZIP_BITS, text.data, text.len, &enc);
  /* Every proper prefix, from a lone magic byte to a missing last trailer
   * byte, is a truncation, not garbage. */
  for (size_t cut = 1; cut < enc.len; cut++)
    expect_err("gzip", enc.data, cut, 1 << 20, "truncated gzip data");
  /* A second member cut short too. */
  kg_buf two = KG_BUF_INIT;
  kg_buf_append(&two, enc.data, enc.len);
  kg_buf_append(&two, enc.data, enc.len / 2);
  expect_err("gzip", two.data, two.len, 1 << 20, "truncated gzip data");
  kg_buf_free(&two);
  kg_buf_free(&enc);

  zcompress(ZLIB_BITS, text.data, text.len, &enc);
  for (size_t cut = 2; cut < enc.len; cut += 7)
    expect_err("deflate", enc.data, cut, 1 << 20, "truncated deflate data");
  kg_buf_free(&enc);
  kg_buf_free(&text);
}

static void test_garbage(void **state) {
  (void)state;
  expect_err("gzip", "hello world", 11, 100, "invalid gzip data");
  expect_err("x-gzip", "\x1f\x8b\x09\x00", 4, 100, "invalid gzip data"); /* bad method */
  expect_err("deflate", "hello world", 11, 100, "invalid deflate data");
  expect_err("deflate", "\xff\xff\xff\xff", 4, 100, "invalid deflate data");

  /* A gzip stream with a corrupted CRC. */
  kg_buf enc = KG_BUF_INIT;
  zcompress(GZIP_BITS, "some text", 9, &enc);
  enc.data[enc.len - 6] ^= 0x55;
  expect_err("gzip", enc.data, enc.len, 100, "invalid gzip data");
  kg_buf_free(&enc);

  /* zlib data labelled gzip is not accepted as gzip. */
  zcompress(ZLIB_BITS, "some text", 9, &enc);
  expect_err("gzip", enc.data, enc.len, 100, "invalid gzip data");
  kg_buf_free(&enc);
}

static void test_bomb_stops_at_cap(void **state) {
  (void)state;
  static const char zeros[1 << 16];
  kg_buf enc = KG_BUF_INIT;
  zcompress_repeat(GZIP_BITS, zeros, sizeof(zeros), 1600, &enc); /* 100 MiB */
  assert_true(enc.len < 200 * 1024);

  const size_t cap = 1 << 20;
  kg_buf out = KG_BUF_INIT;
  const char *err = NULL;
  uint64_t t0 = kg_now_ns();
  assert_int_equal(kg_decode_body("gzip", enc.data, enc.len, cap, &out, &err), -1);
  uint64_t elapsed = kg_now_ns() - t0;
  assert_string_equal(err, "decoded body over the capture limit");
  assert_int_equal(out.len, 0);
  assert_true(out.cap <= cap); /* never allocated past the cap */
  /* Inflating 1 MiB takes milliseconds; inflating 100 MiB would not. */
  assert_true(elapsed < 500u * 1000 * 1000);
  kg_buf_free(&out);

  /* Nested: a gzip of the bomb. The intermediate is capped as well. */
  kg_buf outer = KG_BUF_INIT;
  zcompress(GZIP_BITS, enc.data, enc.len, &outer);
  expect_err("gzip, gzip", outer.data, outer.len, cap, "decoded body over the capture limit");
  kg_buf_free(&outer);
  kg_buf_free(&enc);

  /* Same through raw deflate. */
  zcompress_repeat(RAW_BITS, zeros, sizeof(zeros), 1600, &enc);
  expect_err("deflate", enc.data, enc.len, cap, "decoded body over the capture limit");
  kg_buf_free(&enc);
}

static void test_exact_cap(void **state) {
  (void)state;
  char body[5000];
  for (size_t i = 0; i < sizeof(body); i++) body[i] = (char)('a' + i % 26);
  kg_buf enc = KG_BUF_INIT;
  zcompress(GZIP_BITS, body, sizeof(body), &enc);

  kg_buf out = KG_BUF_INIT;
  kg_buf_appends(&out, "prefix:");
  assert_int_equal(kg_decode_body("gzip", enc.data, enc.len, sizeof(body), &out, NULL), 0);
  assert_int_equal(out.len, 7 + sizeof(body));
  assert_memory_equal(out.data + 7, body, sizeof(body));
  kg_buf_free(&out);

  expect_err("gzip", enc.data, enc.len, sizeof(body) - 1, "decoded body over the capture limit");
  expect_err("gzip", enc.data, enc.len, 0, "decoded body over the capture limit");

  /* A cap exactly at the first member: the second pushes it over. */
  zcompress(GZIP_BITS, "z", 1, &enc);
  expect_err("gzip", enc.data, enc.len, sizeof(body), "decoded body over the capture limit");
  assert_int_equal(kg_decode_body("gzip", enc.data, enc.len, sizeof(body) + 1, &out, NULL), 0);
  assert_int_equal(out.len, sizeof(body) + 1);
  kg_buf_free(&out);
  kg_buf_free(&enc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_identity_copies),
      cmocka_unit_test(test_empty_body_is_empty),
      cmocka_unit_test(test_gzip_round_trip),
      cmocka_unit_test(test_deflate_zlib_and_raw),
      cmocka_unit_test(test_raw_deflate_that_looks_like_zlib),
      cmocka_unit_test(test_list_of_codings),
      cmocka_unit_test(test_unsupported),
      cmocka_unit_test(test_concatenated_members),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_bomb_stops_at_cap),
      cmocka_unit_test(test_exact_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
