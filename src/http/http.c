/* http.c: the HTTP/1.x parser adapter (see http.h). */
#include "http/http.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"

void kg_http_msg_init(kg_http_msg *m) {
  memset(m, 0, sizeof(*m));
}

void kg_http_msg_reset(kg_http_msg *m) {
  kg_buf_reset(&m->url);
  kg_buf_reset(&m->reason);
  kg_hdrs_reset(&m->hdrs);
  m->method = m->status = m->http_major = m->http_minor = 0;
  m->keep_alive = m->chunked = m->has_length = m->upgrade = false;
  m->expect_continue = false;
  m->content_length = 0;
}

void kg_http_msg_free(kg_http_msg *m) {
  kg_buf_free(&m->url);
  kg_buf_free(&m->reason);
  kg_hdrs_free(&m->hdrs);
}

void kg_http_msg_move(kg_http_msg *dst, kg_http_msg *src) {
  kg_http_msg_free(dst);
  *dst = *src;
  kg_http_msg_init(src);
}

static kg_http *kg_http_of(http_parser *p) { return (kg_http *)p->data; }

static int kg_http_fail(kg_http *h, int status, const char *why) {
  if (h->error_status == 0) {
    h->error_status = status;
    h->error_text = why;
  }
  return -1;
}

static int kg_http_count_head(kg_http *h, size_t n) {
  h->head_bytes += n;
  if (h->limits.max_head_bytes && h->head_bytes > h->limits.max_head_bytes)
    return kg_http_fail(h, 431, "request header too large");
  return 0;
}

static int kg_http_on_begin(http_parser *p) {
  kg_http *h = kg_http_of(p);
  kg_http_msg_reset(&h->msg);
  h->head_bytes = 0;
  h->in_value = false;
  h->in_message = true;
  h->chunk_scan = false;
  h->in_trailers = false;
  return 0;
}

static int kg_http_on_url(http_parser *p, const char *at, size_t n) {
  kg_http *h = kg_http_of(p);
  kg_buf_append(&h->msg.url, at, n);
  /* RFC 9112 3: a target too long to handle is 414, not 431. */
  if (h->limits.max_head_bytes && h->msg.url.len > h->limits.max_head_bytes)
    return kg_http_fail(h, 414, "request target too long");
  return kg_http_count_head(h, n);
}

static int kg_http_on_status(http_parser *p, const char *at, size_t n) {
  kg_http *h = kg_http_of(p);
  kg_buf_append(&h->msg.reason, at, n);
  return kg_http_count_head(h, n);
}

static int kg_http_on_field(http_parser *p, const char *at, size_t n) {
  kg_http *h = kg_http_of(p);
  /* Trailer fields (after a chunked body) are dropped, as RFC 9112 7.1.2
   * lets a recipient that removes the chunked coding do: appended to the
   * head they would reach backends as header fields that were never
   * checked like the head's, and kagami re-frames the body without them.
   * They still count against the head-size limit. */
  if (h->in_trailers) return kg_http_count_head(h, n + 4);
  /* A name piece after a value, or the very first piece, starts a field;
   * otherwise the name was split across two reads. */
  if (h->in_value || h->msg.hdrs.n == 0) {
    if (h->limits.max_headers && h->msg.hdrs.n >= h->limits.max_headers)
      return kg_http_fail(h, 431, "too many header fields");
    kg_hdrs_add(&h->msg.hdrs, at, n, "", 0);
  } else {
    kg_hdrs_extend_last_name(&h->msg.hdrs, at, n);
  }
  h->in_value = false;
  return kg_http_count_head(h, n + 4); /* ": " and CRLF count too */
}

static int kg_http_on_value(http_parser *p, const char *at, size_t n) {
  kg_http *h = kg_http_of(p);
  if (h->in_trailers) return kg_http_count_head(h, n);
  kg_hdrs_extend_last_value(&h->msg.hdrs, at, n);
  h->in_value = true;
  return kg_http_count_head(h, n);
}

static bool kg_is_tchar(char c);
static bool kg_http_scan_chunked(kg_http *h, const char *p, const char *end);

/* Where kg_http_scan_chunked is in a chunked body's framing. */
enum {
  KG_CHUNK_HEAD_LF = 0, /* the LF that ends the head */
  KG_CHUNK_SIZE_START,  /* first hex digit of a chunk size */
  KG_CHUNK_SIZE,
  KG_CHUNK_BWS,         /* blanks after the size: ';' or CR must follow */
  KG_CHUNK_EXT,         /* chunk extensions, up to CR */
  KG_CHUNK_SIZE_LF,     /* LF after the size line's CR */
  KG_CHUNK_DATA,        /* chunk data (not seen here), then CR */
  KG_CHUNK_DATA_LF,
  KG_CHUNK_TRAILER_START,
  KG_CHUNK_TRAILER,
  KG_CHUNK_TRAILER_LF,
  KG_CHUNK_END_LF,
  KG_CHUNK_DONE,        /* nothing more belongs to this message */
};
static const char *kg_http_host_problem(const kg_hdrs *hd, int http_minor);
static const char *kg_http_absolute_to_origin(kg_http_msg *m);

/* http_parser (unless built strict) lets a space into a field name, as in
 * "Transfer-Encoding : chunked". Such a field is not what it looks like to
 * us, but may be to a backend: a classic smuggling vector, so it is refused. */
static bool kg_http_names_clean(const kg_hdrs *hd) {
  for (size_t i = 0; i < hd->n; i++) {
    const char *n = kg_hdrs_name(hd, i);
    if (hd->v[i].name_len == 0) return false;
    for (uint32_t j = 0; j < hd->v[i].name_len; j++)
      if (!kg_is_tchar(n[j])) return false;
  }
  return true;
}

/* Field values are forwarded as they came: one holding a bare CR, LF or
 * NUL could split into two fields on
 * the next hop, so it is refused here. */
static bool kg_http_values_clean(const kg_hdrs *hd) {
  for (size_t i = 0; i < hd->n; i++) {
    /* Values are stored NUL-terminated, so a span short of value_len
     * means a CR, an LF or a NUL inside. */
    if (strcspn(kg_hdrs_value(hd, i), "\r\n") != hd->v[i].value_len) return false;
  }
  return true;
}

static int kg_http_on_headers_complete(http_parser *p) {
  kg_http *h = kg_http_of(p);
  kg_http_msg *m = &h->msg;
  bool request = p->type == HTTP_REQUEST;
  h->in_trailers = true;
  m->method = (int)p->method;
  m->status = (int)p->status_code;
  m->http_major = p->http_major;
  m->http_minor = p->http_minor;
  m->keep_alive = http_should_keep_alive(p) != 0;
  m->chunked = (p->flags & F_CHUNKED) != 0;
  m->has_length = !m->chunked && p->content_length != ULLONG_MAX;
  m->content_length = m->has_length ? p->content_length : 0;
  m->upgrade = p->upgrade != 0;

  if (!kg_http_names_clean(&m->hdrs))
    return kg_http_fail(h, request ? 400 : 502, "invalid header name");
  if (!kg_http_values_clean(&m->hdrs))
    return kg_http_fail(h, request ? 400 : 502, "invalid header value");
  /* http_parser takes "HTTP/1.1 20" or "HTTP/1.1 0" for a status line;
   * read as below 200, it would pass for an interim response and the
   * exchange would wait for a final one that never comes. */
  if (!request && m->status < 100)
    return kg_http_fail(h, 502, "invalid status code");
  if (request && m->http_major != 1) {
    /* http_parser reads "GET /" without a version as HTTP/0.9, which has
     * no header fields at all: not something to forward. */
    return m->http_major == 0 ? kg_http_fail(h, 400, "HTTP/0.9 request")
                              : kg_http_fail(h, 505, "HTTP version not supported");
  }
  if (request) {
    const char *why = NULL;
    int st = kg_http_check_request_framing(&m->hdrs, m->http_major,
                                           m->http_minor, &why);
    if (st) return kg_http_fail(h, st, why);
    if (kg_hdrs_find(&m->hdrs, "transfer-encoding") >= 0) {
      /* The framing rules above passed it, so the only coding is chunked.
       * Our reading decides, not http_parser's, which misses "chunked"
       * followed by a tab or after an empty list element (and would then
       * refuse a valid request). */
      p->flags |= F_CHUNKED;
      m->chunked = true;
      m->has_length = false;
      m->content_length = 0;
    }
    long e = kg_hdrs_find(&m->hdrs, "expect");
    if (e >= 0) {
      const char *v = kg_hdrs_value(&m->hdrs, (size_t)e);
      if (strcasecmp(v, "100-continue") != 0)
        return kg_http_fail(h, 417, "unsupported expectation");
      m->expect_continue = true;
    }
    /* RFC 9112 3.2: a Host that is missing (HTTP/1.1), repeated or not a
     * host[:port] leaves backends to guess which authority was meant. */
    const char *bad_host = kg_http_host_problem(&m->hdrs, m->http_minor);
    if (bad_host) return kg_http_fail(h, 400, bad_host);
    /* RFC 9112 3.2.1: a fragment is never part of a request target. */
    if (m->url.len && memchr(m->url.data, '#', m->url.len))
      return kg_http_fail(h, 400, "fragment in request target");
    const char *bad_target = kg_http_absolute_to_origin(m);
    if (bad_target) return kg_http_fail(h, 400, bad_target);
  }
  /* RFC 9112 6.3: 1xx, 204 and 304 responses end with their head whatever
   * their fields say. http_parser would read a body of Content-Length bytes
   * (a 304 may well carry the length of the 200 it stands for), stalling
   * the leg and taking the next response's bytes for that body. Decided
   * before on_head, which may move the message away. */
  bool no_body = !request && (m->status < 200 || m->status == 204 || m->status == 304);
  bool chunked = (p->flags & F_CHUNKED) != 0;
  int r = h->ops->on_head(h->ud, m);
  if (r >= 400) return kg_http_fail(h, r, "rejected");
  if (r == 1 || no_body) return 1;
  if (chunked) {
    /* Pause so that kg_http_feed learns where the head ends (the parser
     * stops on the head's last LF): the chunked framing is checked from
     * there on. */
    h->chunk_scan = true;
    h->chunk_state = 0;
    h->pause_internal = true;
    http_parser_pause(p, 1);
  }
  return 0;
}

static int kg_http_on_body(http_parser *p, const char *at, size_t n) {
  kg_http *h = kg_http_of(p);
  if (h->chunk_scan) {
    if (!kg_http_scan_chunked(h, h->scan_from, at))
      return kg_http_fail(h, p->type == HTTP_REQUEST ? 400 : 502,
                          "invalid chunked framing");
    h->scan_from = at + n;
  }
  int r = h->ops->on_body(h->ud, at, n);
  if (r >= 400) return kg_http_fail(h, r, "body rejected");
  return 0;
}

static int kg_http_on_complete(http_parser *p) {
  kg_http *h = kg_http_of(p);
  h->in_message = false;
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings kg_http_settings = {
    .on_message_begin = kg_http_on_begin,
    .on_url = kg_http_on_url,
    .on_status = kg_http_on_status,
    .on_header_field = kg_http_on_field,
    .on_header_value = kg_http_on_value,
    .on_headers_complete = kg_http_on_headers_complete,
    .on_body = kg_http_on_body,
    .on_message_complete = kg_http_on_complete,
};

void kg_http_init(kg_http *h, enum http_parser_type type,
                  const kg_http_ops *ops, void *ud, kg_http_limits limits) {
  memset(h, 0, sizeof(*h));
  http_parser_init(&h->parser, type);
  h->parser.data = h;
  h->ops = ops;
  h->ud = ud;
  h->limits = limits;
  kg_http_msg_init(&h->msg);
}

void kg_http_free(kg_http *h) { kg_http_msg_free(&h->msg); }

static kg_http_state kg_http_result(kg_http *h) {
  enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
  if (h->error_status) return KG_HTTP_ERROR; /* also found outside callbacks */
  if (e == HPE_OK) return KG_HTTP_MORE;
  if (e == HPE_PAUSED) return KG_HTTP_PAUSED;
  if (h->error_status == 0) {
    bool request = h->parser.type == HTTP_REQUEST;
    if (e == HPE_HEADER_OVERFLOW && request) {
      h->error_status = 431;
      h->error_text = "request header too large";
    } else {
      h->error_status = request ? 400 : 502;
      h->error_text = http_errno_description(e);
    }
  }
  return KG_HTTP_ERROR;
}

/* The HTTP/2 connection preface ("PRI * HTTP/2.0", RFC 9113 3.4) as the
 * start of a request: http_parser knows no PRI method and would call it a
 * bad request, while it is a client speaking a version kagami does not:
 * 505. Only a preface that arrives with its first bytes in one read is
 * recognised (clients write all 24 bytes at once). */
static bool kg_http_is_h2_preface(const kg_http *h, const char *p, size_t n) {
  static const char preface[] = "PRI * HTTP/2.0\r\n";
  return h->parser.type == HTTP_REQUEST && !h->in_message && n >= 4 &&
         memcmp(p, preface, KG_MIN(n, sizeof(preface) - 1)) == 0;
}

kg_http_state kg_http_feed(kg_http *h, const char *p, size_t n, size_t *used) {
  size_t off = 0;
  if (kg_http_is_h2_preface(h, p, n)) {
    *used = 0;
    kg_http_fail(h, 505, "HTTP/2 is not supported: use HTTP/1.1");
    return KG_HTTP_ERROR;
  }
  for (;;) {
    h->scan_from = p + off;
    off += http_parser_execute(&h->parser, &kg_http_settings, p + off, n - off);
    enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
    if (h->pause_internal) {
      /* A chunked head ended at p[off], its last LF, not yet consumed. */
      h->pause_internal = false;
      if (e != HPE_PAUSED) break;
      http_parser_pause(&h->parser, 0);
      continue;
    }
    if (h->chunk_scan && (e == HPE_OK || e == HPE_PAUSED)) {
      /* The framing bytes after the last data piece; a completed message
       * must have ended exactly with its last CRLF. */
      bool ok = kg_http_scan_chunked(h, h->scan_from, p + off);
      if (ok && e == HPE_PAUSED && !h->in_message) {
        ok = h->chunk_state == KG_CHUNK_DONE;
        h->chunk_scan = false;
      }
      if (!ok && h->error_status == 0) {
        h->error_status = h->parser.type == HTTP_REQUEST ? 400 : 502;
        h->error_text = "invalid chunked framing";
      }
    }
    break;
  }
  *used = off;
  return kg_http_result(h);
}

kg_http_state kg_http_eof(kg_http *h) {
  if (!h->in_message) return KG_HTTP_MORE;
  http_parser_execute(&h->parser, &kg_http_settings, NULL, 0);
  kg_http_state st = kg_http_result(h);
  if (st == KG_HTTP_MORE) {
    /* The parser accepted EOF without completing: the message was cut. */
    h->error_status = h->parser.type == HTTP_REQUEST ? 400 : 502;
    h->error_text = "connection closed mid-message";
    return KG_HTTP_ERROR;
  }
  return st;
}

void kg_http_resume(kg_http *h) { http_parser_pause(&h->parser, 0); }

/* --- framing rules -------------------------------------------------------- */

static bool kg_is_tchar(char c) {
  /* Letters, digits and '-' make up nearly every real field name. */
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
      c == '-')
    return true;
  return c != '\0' && strchr("!#$%&'*+.^_`|~", c) != NULL;
}

/* Calls fn for each element of a comma-separated list field value,
 * trimmed of optional whitespace; empty elements are skipped as RFC 9110
 * 5.6.1 allows. Stops early when fn returns non-zero and returns that. */
static int kg_http_each_token(const char *v, size_t len,
                              int (*fn)(const char *, size_t, void *),
                              void *ud) {
  size_t i = 0;
  while (i < len) {
    size_t start = i;
    while (i < len && v[i] != ',') i++;
    size_t end = i;
    while (start < end && (v[start] == ' ' || v[start] == '\t')) start++;
    while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t')) end--;
    if (end > start) {
      int r = fn(v + start, end - start, ud);
      if (r) return r;
    }
    i++;
  }
  return 0;
}

typedef struct kg_te_scan {
  int count;         /* codings seen */
  bool last_chunked; /* the latest coding was chunked */
  bool chunked_twice;
  bool other;        /* a coding other than chunked */
  bool invalid;      /* not a token */
} kg_te_scan;

static int kg_http_te_token(const char *t, size_t n, void *ud) {
  kg_te_scan *s = ud;
  for (size_t i = 0; i < n; i++)
    if (!kg_is_tchar(t[i]) && t[i] != ';' && t[i] != '=' && t[i] != ' ') {
      s->invalid = true;
      return 1;
    }
  bool chunked = kg_str_ieq(t, n, "chunked");
  if (chunked && s->last_chunked) s->chunked_twice = true;
  if (chunked && s->count > 0 && !s->last_chunked) s->other = true;
  if (!chunked) s->other = true;
  s->last_chunked = chunked;
  s->count++;
  return 0;
}

int kg_http_check_request_framing(const kg_hdrs *h, int http_major,
                                  int http_minor, const char **why) {
  size_t ncl = 0;
  kg_te_scan te = {0};
  bool has_te = false;
  for (size_t i = 0; i < h->n; i++) {
    const char *name = kg_hdrs_name(h, i);
    const char *v = kg_hdrs_value(h, i);
    size_t vlen = h->v[i].value_len;
    if (strcasecmp(name, "content-length") == 0) {
      ncl++;
      /* OWS around a field value is not part of it (RFC 9112 5). */
      while (vlen && (*v == ' ' || *v == '\t')) v++, vlen--;
      while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) vlen--;
      if (vlen == 0 || vlen > 18) {
        *why = "invalid Content-Length";
        return 400;
      }
      for (size_t j = 0; j < vlen; j++)
        if (v[j] < '0' || v[j] > '9') {
          *why = "invalid Content-Length";
          return 400;
        }
    } else if (strcasecmp(name, "transfer-encoding") == 0) {
      has_te = true;
      kg_http_each_token(v, vlen, kg_http_te_token, &te);
    }
  }
  if (ncl > 1) {
    *why = "more than one Content-Length";
    return 400;
  }
  if (!has_te) return 0;
  if (ncl) {
    *why = "both Content-Length and Transfer-Encoding";
    return 400;
  }
  if (http_major == 1 && http_minor == 0) {
    *why = "Transfer-Encoding in an HTTP/1.0 request";
    return 400;
  }
  if (te.invalid || te.count == 0 || te.chunked_twice) {
    *why = "invalid Transfer-Encoding";
    return 400;
  }
  if (!te.last_chunked) {
    *why = "chunked is not the final transfer coding";
    return 400;
  }
  if (te.other) {
    *why = "unsupported transfer coding";
    return 501;
  }
  return 0;
}

/* --- chunked framing ----------------------------------------------------- */

/* http_parser (not built strict) is lenient where leniency is a smuggling
 * vector: any two bytes after a chunk's data pass for its CRLF, and
 * everything up to a CR after a chunk size, a bare LF included, passes for
 * a chunk extension. A front proxy reading the same bytes strictly would
 * see other request boundaries than kagami. So every byte of a chunked
 * body that is not chunk data (on_body reports the data) is checked here
 * against RFC 9112 7.1: chunk-size [ BWS ";" chunk-ext ] CRLF, data CRLF,
 * ..., last-chunk, trailer lines each ending in CRLF, CRLF. http_parser
 * still decides the sizes; this only refuses what it would let through. */

static bool kg_is_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A control character other than HTAB. */
static bool kg_is_ctl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

/* Checks the framing bytes [p, end) of a chunked body, going on from
 * h->chunk_state. False at the first byte out of place. */
static bool kg_http_scan_chunked(kg_http *h, const char *p, const char *end) {
  uint8_t s = h->chunk_state;
  for (; p < end; p++) {
    unsigned char c = (unsigned char)*p;
    switch (s) {
      case KG_CHUNK_HEAD_LF:
        if (c != '\n') return false;
        s = KG_CHUNK_SIZE_START;
        break;
      case KG_CHUNK_SIZE_START:
        if (!kg_is_hex(c)) return false;
        h->chunk_last = c == '0';
        s = KG_CHUNK_SIZE;
        break;
      case KG_CHUNK_SIZE:
        if (kg_is_hex(c)) h->chunk_last = h->chunk_last && c == '0';
        else if (c == ';') s = KG_CHUNK_EXT;
        else if (c == ' ' || c == '\t') s = KG_CHUNK_BWS;
        else if (c == '\r') s = KG_CHUNK_SIZE_LF;
        else return false;
        break;
      case KG_CHUNK_BWS:
        if (c == ';') s = KG_CHUNK_EXT;
        else if (c == '\r') s = KG_CHUNK_SIZE_LF;
        else if (c != ' ' && c != '\t') return false;
        break;
      case KG_CHUNK_EXT:
        if (c == '\r') s = KG_CHUNK_SIZE_LF;
        else if (kg_is_ctl(c)) return false;
        break;
      case KG_CHUNK_SIZE_LF:
        if (c != '\n') return false;
        s = h->chunk_last ? KG_CHUNK_TRAILER_START : KG_CHUNK_DATA;
        break;
      case KG_CHUNK_DATA:
        if (c != '\r') return false;
        s = KG_CHUNK_DATA_LF;
        break;
      case KG_CHUNK_DATA_LF:
        if (c != '\n') return false;
        s = KG_CHUNK_SIZE_START;
        break;
      case KG_CHUNK_TRAILER_START: /* no obs-fold, no blank-led line */
        if (c == '\r') s = KG_CHUNK_END_LF;
        else if (c == ' ' || c == '\t' || kg_is_ctl(c)) return false;
        else s = KG_CHUNK_TRAILER;
        break;
      case KG_CHUNK_TRAILER:
        if (c == '\r') s = KG_CHUNK_TRAILER_LF;
        else if (kg_is_ctl(c)) return false;
        break;
      case KG_CHUNK_TRAILER_LF:
        if (c != '\n') return false;
        s = KG_CHUNK_TRAILER_START;
        break;
      case KG_CHUNK_END_LF:
        if (c != '\n') return false;
        s = KG_CHUNK_DONE;
        break;
      default:
        return false;
    }
  }
  h->chunk_state = s;
  return true;
}

/* --- Host ------------------------------------------------------------------ */

static bool kg_is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') ||
         (c != '\0' && strchr("-._~%!$&'()*+,;=:[]", c) != NULL);
}

/* RFC 9112 3.2: exactly one Host field in HTTP/1.1 (at most one before),
 * holding uri-host [ ":" port ], or nothing when the target has no
 * authority. Returns why not, or NULL. */
static const char *kg_http_host_problem(const kg_hdrs *hd, int http_minor) {
  size_t n = 0;
  for (size_t i = 0; i < hd->n; i++) {
    if (strcasecmp(kg_hdrs_name(hd, i), "host") != 0) continue;
    n++;
    const char *v = kg_hdrs_value(hd, i);
    size_t len = hd->v[i].value_len;
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t')) len--;
    for (size_t j = 0; j < len; j++)
      if (!kg_is_host_char(v[j])) return "invalid Host";
  }
  if (n > 1) return "more than one Host";
  if (n == 0 && http_minor >= 1) return "missing Host";
  return NULL;
}

/* RFC 9112 3.2.2: a request in absolute form ("GET http://a.example/p")
 * names its authority in the target, and that authority, not the Host
 * field, is what was asked for. Backends are origin servers, so they get
 * the origin form (3.2.1: "/p") with Host set to that authority; what
 * kagami logs as the request is then what every backend saw. Only http
 * and https targets; another scheme, or no authority, is a bad request.
 * Returns why not, or NULL (also for targets already in origin form). */
static const char *kg_http_absolute_to_origin(kg_http_msg *m) {
  const char *u = m->url.data;
  if (u == NULL || u[0] == '/' || u[0] == '*') return NULL;
  if (m->method == HTTP_CONNECT) return NULL; /* authority form: 501 later */
  size_t skip = strncasecmp(u, "http://", 7) == 0    ? 7
                : strncasecmp(u, "https://", 8) == 0 ? 8
                                                     : 0;
  if (skip == 0) return "unsupported request target";
  const char *auth = u + skip;
  size_t alen = strcspn(auth, "/?");
  if (alen == 0 || memchr(auth, '@', alen)) return "invalid authority in request target";
  for (size_t i = 0; i < alen; i++)
    if (!kg_is_host_char(auth[i])) return "invalid authority in request target";
  const char *rest = auth + alen;
  kg_buf origin = KG_BUF_INIT;
  if (*rest != '/') kg_buf_append(&origin, "/", 1);
  kg_buf_appends(&origin, rest);
  kg_hdrs hdrs = KG_HDRS_INIT;
  bool host = false;
  for (size_t i = 0; i < m->hdrs.n; i++) {
    bool is_host = strcasecmp(kg_hdrs_name(&m->hdrs, i), "host") == 0;
    if (is_host && host) continue;
    kg_hdrs_add(&hdrs, kg_hdrs_name(&m->hdrs, i), m->hdrs.v[i].name_len,
                is_host ? auth : kg_hdrs_value(&m->hdrs, i),
                is_host ? alen : m->hdrs.v[i].value_len);
    host = host || is_host;
  }
  if (!host) kg_hdrs_add(&hdrs, "Host", 4, auth, alen);
  kg_hdrs_free(&m->hdrs);
  m->hdrs = hdrs;
  kg_buf_free(&m->url);
  m->url = origin;
  return NULL;
}

/* --- hop-by-hop fields ---------------------------------------------------- */

bool kg_http_is_hop_by_hop(const char *name, size_t len) {
  /* By length first: this runs for every field of every message. */
  switch (len) {
    case 2: return strncasecmp(name, "te", 2) == 0;
    case 7:
      return strncasecmp(name, "trailer", 7) == 0 || strncasecmp(name, "upgrade", 7) == 0;
    case 10:
      return strncasecmp(name, "connection", 10) == 0 ||
             strncasecmp(name, "keep-alive", 10) == 0;
    case 16: return strncasecmp(name, "proxy-connection", 16) == 0;
    case 17: return strncasecmp(name, "transfer-encoding", 17) == 0;
    default: return false;
  }
}

/* Calls fn for each token of each Connection field of h; stops at the
 * first non-zero return and returns it. */
static int kg_http_connection_tokens(const kg_hdrs *h,
                                     int (*fn)(const char *, size_t, void *), void *ud) {
  for (size_t i = 0; i < h->n; i++) {
    if (h->v[i].name_len != 10 || strcasecmp(kg_hdrs_name(h, i), "connection") != 0)
      continue;
    int r = kg_http_each_token(kg_hdrs_value(h, i), h->v[i].value_len, fn, ud);
    if (r) return r;
  }
  return 0;
}

typedef struct kg_conn_lookup {
  const char *name;
  size_t len;
} kg_conn_lookup;

static int kg_http_conn_token(const char *t, size_t n, void *ud) {
  kg_conn_lookup *l = ud;
  return n == l->len && strncasecmp(t, l->name, n) == 0;
}

static int kg_http_conn_token_extra(const char *t, size_t n, void *ud) {
  (void)ud;
  return !(n == 10 && strncasecmp(t, "keep-alive", 10) == 0);
}

bool kg_http_connection_lists_any(const kg_hdrs *h) {
  return kg_http_connection_tokens(h, kg_http_conn_token_extra, NULL) != 0;
}

bool kg_http_connection_lists(const kg_hdrs *h, const char *name, size_t len) {
  kg_conn_lookup l = {name, len};
  return kg_http_connection_tokens(h, kg_http_conn_token, &l) != 0;
}
