/* decode.c: bounded Content-Encoding decoding with zlib (see decode.h). */
#include "compare/decode.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
/* next_in as a const pointer: zlib never writes to its input. */
#define ZLIB_CONST
#include <zlib.h>

#include "common/common.h"

/* "gzip, gzip, gzip, ..." has no honest use; each layer may cost max_out of
 * work, so the number of layers is bounded too. */
#define MAX_CODINGS 4

/* Growth step for the first allocation: big enough that typical pages
 * decode in a few reallocations, small enough not to matter when the
 * decoded body is tiny. */
#define FIRST_CHUNK 16384

typedef enum { CODING_GZIP, CODING_DEFLATE } coding;

typedef enum {
  DEC_OK = 0,
  DEC_INVALID,   /* not data of the announced format */
  DEC_TRUNCATED, /* a valid prefix, but the input ended early */
  DEC_OVER       /* would have produced more than the limit */
} dec_result;

/* zlib allocates through our wrappers so that running out of memory aborts
 * like everywhere else instead of surfacing as a decode error. */
static voidpf kg_decode_z_alloc(voidpf opaque, uInt items, uInt size) {
  return kg_malloc((size_t)items * (size_t)size);
}

static void kg_decode_z_free(voidpf opaque, voidpf p) { free(p); }

/* Makes room for at least one more byte in b without letting its
 * capacity pass hard_len (the caller guarantees b->len < hard_len).
 * kg_buf_reserve doubles freely, which is what a bomb would exploit, so
 * the growth is done here with a ceiling. */
static void kg_decode_reserve_capped(kg_buf *b, size_t hard_len) {
  if (b->data != NULL && b->len < b->cap) return;
  size_t want = b->cap ? (b->cap > SIZE_MAX / 4 ? SIZE_MAX / 2 : b->cap * 2)
                       : FIRST_CHUNK;
  if (want < b->len + 1) want = b->len + 1;
  if (want > hard_len) want = hard_len;
  bool fresh = b->data == NULL;
  b->data = kg_realloc(b->data, want + 1); /* +1: kg_buf's terminator */
  if (fresh) b->data[0] = '\0';
  b->cap = want;
}

/* Runs one zlib stream (or, when multi_member, a run of concatenated gzip
 * members) over in[0..n), appending at most limit bytes to dst. On any
 * failure dst is rolled back to its length on entry. */
static dec_result kg_decode_run_inflate(int window_bits, bool multi_member,
                              const unsigned char *in, size_t n, size_t limit,
                              kg_buf *dst) {
  z_stream s;
  memset(&s, 0, sizeof(s));
  s.zalloc = kg_decode_z_alloc;
  s.zfree = kg_decode_z_free;
  if (inflateInit2(&s, window_bits) != Z_OK) abort(); /* only on OOM/misuse */

  const size_t start = dst->len;
  /* Where the whole output may end; limit is bounded by the caller's
   * max_out, and start + limit cannot wrap in practice, but be exact. */
  const size_t hard_len = limit > SIZE_MAX - 1 - start ? SIZE_MAX - 1 : start + limit;
  size_t fed = 0; /* input bytes handed to zlib so far */
  dec_result res = DEC_OK;

  for (;;) {
    /* avail_in is 32-bit: feed huge inputs in slices. */
    if (s.avail_in == 0 && fed < n) {
      size_t chunk = KG_MIN(n - fed, (size_t)UINT_MAX);
      s.next_in = in + fed;
      s.avail_in = (uInt)chunk;
      fed += chunk;
    }

    /* Once the limit is reached, inflate into a one-byte scratch: if zlib
     * can still produce a byte the body is over the limit, and if it only
     * reaches the end (trailer, end of stream) the body fits exactly. */
    unsigned char probe;
    bool probing = dst->len >= hard_len;
    uInt room;
    if (probing) {
      s.next_out = &probe;
      room = 1;
    } else {
      kg_decode_reserve_capped(dst, hard_len);
      size_t avail = KG_MIN(dst->cap, hard_len) - dst->len;
      room = (uInt)KG_MIN(avail, (size_t)UINT_MAX);
      s.next_out = (Bytef *)dst->data + dst->len;
    }
    s.avail_out = room;

    int rc = inflate(&s, Z_NO_FLUSH);
    size_t got = room - s.avail_out;
    if (probing && got > 0) {
      res = DEC_OVER;
      break;
    }
    if (!probing) dst->len += got;

    bool input_left = s.avail_in > 0 || fed < n;
    if (rc == Z_STREAM_END) {
      if (!input_left) break;
      /* gzip allows members back to back (RFC 1952 2.2); whatever follows
       * must then be another member, or inflate reports a bad header. */
      if (!multi_member) {
        res = DEC_INVALID;
        break;
      }
      inflateReset(&s);
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && !input_left) {
      res = DEC_TRUNCATED;
      break;
    }
    /* Z_DATA_ERROR, Z_NEED_DICT (a preset dictionary we cannot know), or a
     * Z_BUF_ERROR that made no progress despite input and room. */
    res = DEC_INVALID;
    break;
  }
  inflateEnd(&s);

  if (res != DEC_OK) dst->len = start;
  if (dst->data) dst->data[dst->len] = '\0';
  return res;
}

/* RFC 1950 header: compression method 8, window at most 32K, and the
 * first two bytes as a big-endian number divisible by 31. */
static bool kg_decode_looks_like_zlib(const unsigned char *in, size_t n) {
  if (n < 2) return false;
  return (in[0] & 0x0f) == 8 && (in[0] >> 4) <= 7 &&
         ((unsigned)in[0] * 256u + in[1]) % 31u == 0;
}

/* Decodes one layer, appending to dst. Returns a static message or NULL. */
static const char *kg_decode_decode_layer(coding c, const unsigned char *in, size_t n,
                                size_t limit, kg_buf *dst) {
  dec_result r;
  if (c == CODING_GZIP) {
    r = kg_decode_run_inflate(16 + MAX_WBITS, true, in, n, limit, dst);
    switch (r) {
      case DEC_OK: return NULL;
      case DEC_INVALID: return "invalid gzip data";
      case DEC_TRUNCATED: return "truncated gzip data";
      case DEC_OVER: return "decoded body over the capture limit";
    }
    return "invalid gzip data";
  }
  /* "deflate" means zlib-wrapped (RFC 9110 8.4.1.2), but servers long sent
   * raw deflate and browsers accept both, so do the same. A raw stream can
   * by chance begin with bytes that pass the zlib header check (1 in ~500
   * for a stored or fixed block), hence the raw retry when the zlib
   * reading fails. If both fail, the header made zlib the likelier intent,
   * so its verdict (invalid or truncated) is the one reported. */
  if (kg_decode_looks_like_zlib(in, n)) {
    r = kg_decode_run_inflate(MAX_WBITS, false, in, n, limit, dst);
    if (r == DEC_INVALID || r == DEC_TRUNCATED) {
      dec_result raw = kg_decode_run_inflate(-MAX_WBITS, false, in, n, limit, dst);
      if (raw == DEC_OK || raw == DEC_OVER) r = raw;
    }
  } else {
    r = kg_decode_run_inflate(-MAX_WBITS, false, in, n, limit, dst);
  }
  switch (r) {
    case DEC_OK: return NULL;
    case DEC_INVALID: return "invalid deflate data";
    case DEC_TRUNCATED: return "truncated deflate data";
    case DEC_OVER: return "decoded body over the capture limit";
  }
  return "invalid deflate data";
}

/* Messages must be static (callers keep them and may read them on another
 * thread), so the codings worth naming have theirs spelled out. */
static const char *kg_decode_unsupported_message(const char *tok, size_t len) {
  static const struct {
    const char *name;
    const char *msg;
  } known[] = {
      {"br", "unsupported content-encoding br"},
      {"zstd", "unsupported content-encoding zstd"},
      {"compress", "unsupported content-encoding compress"},
      {"x-compress", "unsupported content-encoding x-compress"},
  };
  for (size_t i = 0; i < KG_ARRAY_SIZE(known); i++)
    if (kg_str_ieq(tok, len, known[i].name)) return known[i].msg;
  return "unsupported content-encoding";
}

/* Parses the header value into codings in the order applied, dropping
 * identity and empty list elements (RFC 9110 5.6.1 allows "gzip, ,").
 * Returns NULL or a static error message. */
static const char *kg_decode_parse_codings(const char *value, coding *codings, size_t *count) {
  *count = 0;
  if (value == NULL) return NULL;
  const char *p = value;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    const char *tok = p;
    while (*p && *p != ',') p++;
    const char *end = p;
    while (end > tok && (end[-1] == ' ' || end[-1] == '\t')) end--;
    size_t len = (size_t)(end - tok);
    if (len == 0) continue;
    coding c;
    if (kg_str_ieq(tok, len, "identity")) continue;
    if (kg_str_ieq(tok, len, "gzip") || kg_str_ieq(tok, len, "x-gzip")) {
      c = CODING_GZIP;
    } else if (kg_str_ieq(tok, len, "deflate")) {
      c = CODING_DEFLATE;
    } else {
      return kg_decode_unsupported_message(tok, len);
    }
    if (*count == MAX_CODINGS) return "too many content-codings";
    codings[(*count)++] = c;
  }
  return NULL;
}

int kg_decode_body(const char *content_encoding, const char *in, size_t n,
                   size_t max_out, kg_buf *out, const char **err) {
  const char *msg = NULL;
  coding codings[MAX_CODINGS];
  size_t ncodings = 0;

  if (n == 0) return 0;
  msg = kg_decode_parse_codings(content_encoding, codings, &ncodings);
  if (msg == NULL && ncodings == 0) {
    if (n > max_out) {
      msg = "decoded body over the capture limit";
    } else {
      kg_buf_append(out, in, n);
      return 0;
    }
  }

  /* Undo the last-applied coding first. Intermediate results ping-pong
   * between two scratch buffers (each bounded by max_out); the final
   * layer appends straight into out. */
  kg_buf scratch[2] = {KG_BUF_INIT, KG_BUF_INIT};
  const unsigned char *cur = (const unsigned char *)in;
  size_t cur_n = n;
  int which = 0;
  for (size_t i = ncodings; msg == NULL && i-- > 0;) {
    kg_buf *dst = i == 0 ? out : &scratch[which];
    if (dst != out) kg_buf_reset(dst);
    msg = kg_decode_decode_layer(codings[i], cur, cur_n, max_out, dst);
    if (msg == NULL && i > 0) {
      cur = (const unsigned char *)dst->data;
      cur_n = dst->len;
      which ^= 1;
    }
  }
  kg_buf_free(&scratch[0]);
  kg_buf_free(&scratch[1]);

  if (msg != NULL) {
    if (err) *err = msg;
    return -1;
  }
  return 0;
}
