/* jsonw.c: JSON string writer (see jsonw.h). */
#include "common/jsonw.h"

#include "common/common.h"

#include <math.h>

#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. Rejects
 * overlong forms, surrogates and code points above U+10FFFF, as RFC 3629
 * does. */
static size_t kg_utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned cp;
  if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07;
  else return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

void kg_jsonw_str(kg_buf *out, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  kg_buf_reserve(out, n + 2);
  kg_buf_append(out, "\"", 1);
  size_t run = 0; /* bytes copied as they are, flushed in one append */
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    size_t len = c >= 0x20 && c != '"' && c != '\\' && c < 0x80 ? 1 : 0;
    if (len == 0 && c >= 0x80) len = kg_utf8_len(p + i, n - i);
    if (len && !(c < 0x20 || c == '"' || c == '\\')) {
      run += len;
      i += len;
      continue;
    }
    kg_buf_append(out, s + i - run, run);
    run = 0;
    switch (c) {
      case '"': kg_buf_append(out, "\\\"", 2); break;
      case '\\': kg_buf_append(out, "\\\\", 2); break;
      case '\n': kg_buf_append(out, "\\n", 2); break;
      case '\r': kg_buf_append(out, "\\r", 2); break;
      case '\t': kg_buf_append(out, "\\t", 2); break;
      default:
        if (c < 0x20) {
          char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
          kg_buf_append(out, u, 6);
        } else {
          kg_buf_append(out, "\xEF\xBF\xBD", 3); /* invalid UTF-8 */
        }
    }
    i++;
  }
  kg_buf_append(out, s + n - run, run);
  kg_buf_append(out, "\"", 1);
}

void kg_jsonw_cstr(kg_buf *out, const char *s) {
  if (s == NULL) kg_buf_append(out, "null", 4);
  else kg_jsonw_str(out, s, strlen(s));
}

void kg_jsonw_u64(kg_buf *out, uint64_t v) {
  char d[20];
  size_t i = sizeof(d);
  do {
    d[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  kg_buf_append(out, d + i, sizeof(d) - i);
}

void kg_jsonw_fixed3(kg_buf *out, double v) {
  if (!(v > -9e12 && v < 9e12)) { /* out of the fast path's range */
    kg_buf_appendf(out, "%.3f", isfinite(v) ? v : 0.0);
    return;
  }
  long long m = llround(v * 1000.0);
  if (m < 0) {
    kg_buf_append(out, "-", 1);
    m = -m;
  }
  kg_jsonw_u64(out, (uint64_t)m / 1000);
  char frac[4] = {'.'};
  kg_put_dec3(frac + 1, (uint64_t)m);
  kg_buf_append(out, frac, 4);
}
