/* source.c: traffic sources (see source.h): WARC recordings, URL lists and
 * nginx logs turned into request items, and which of them a file is. */
#include "traffic/source.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/common.h"
#include "http/http.h"

/* --- traffic items -------------------------------------------------------------- */

void kg_source_item_init(kg_source_item *it) {
  memset(it, 0, sizeof(*it));
  it->ts = NAN;
  it->elapsed = NAN;
}

void kg_source_item_free(kg_source_item *it) {
  free(it->method);
  free(it->url);
  free(it->host);
  kg_hdrs_free(&it->req_hdrs);
  kg_buf_free(&it->req_body);
  free(it->reason);
  kg_hdrs_free(&it->resp_hdrs);
  kg_buf_free(&it->resp_body);
  free(it->error);
  kg_source_item_init(it);
}

size_t kg_source_item_size(const kg_source_item *it) {
  return sizeof(*it) + (it->url ? strlen(it->url) : 0) + it->req_hdrs.data.len +
         it->req_body.len + it->resp_hdrs.data.len + it->resp_body.len;
}

static const char *const kg_source_format_names[] = {"auto", "warc", "urls", "nginx"};

const char *kg_source_format_name(kg_source_format f) {
  return (unsigned)f < KG_ARRAY_SIZE(kg_source_format_names) ? kg_source_format_names[f] : NULL;
}

int kg_source_format_parse(const char *s, kg_source_format *out) {
  for (size_t i = 0; i < KG_ARRAY_SIZE(kg_source_format_names); i++)
    if (strcmp(s, kg_source_format_names[i]) == 0) {
      *out = (kg_source_format)i;
      return 0;
    }
  return -1;
}

/* Splits an absolute http(s) URL into its authority (owned, into *host)
 * and its origin-form target (owned, "/" when empty). Returns 0, or -1 when
 * url is not absolute. The fragment is dropped: it never reaches a server. */
static int kg_source_split_absolute(const char *url, size_t len, char **host, char **target) {
  size_t skip = 0;
  if (len >= 7 && strncasecmp(url, "http://", 7) == 0) skip = 7;
  else if (len >= 8 && strncasecmp(url, "https://", 8) == 0) skip = 8;
  else return -1;
  size_t a = skip;
  while (a < len && url[a] != '/' && url[a] != '?' && url[a] != '#') a++;
  if (a == skip) return -1;
  size_t fe = a;
  while (fe < len && url[fe] != '#') fe++;
  *host = kg_strndup(url + skip, a - skip);
  kg_buf t = KG_BUF_INIT;
  if (a == fe || url[a] != '/') kg_buf_append(&t, "/", 1);
  kg_buf_append(&t, url + a, fe - a);
  *target = kg_buf_steal(&t, NULL);
  return 0;
}

/* A request target we can put on a request line: origin-form, no spaces
 * or control bytes. */
static bool kg_source_target_ok(const char *s, size_t n) {
  if (n == 0 || s[0] != '/') return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] == 0x7f) return false;
  return true;
}

/* Sets it->url (and it->host for an absolute URL) from a URL in text. */
static int kg_source_item_set_url(kg_source_item *it, const char *u, size_t n) {
  size_t fe = 0;
  while (fe < n && u[fe] != '#') fe++;
  char *host = NULL, *target = NULL;
  if (kg_source_split_absolute(u, n, &host, &target) == 0) {
    bool ok = kg_source_target_ok(target, strlen(target));
    for (const char *p = host; *p && ok; p++)
      if ((unsigned char)*p <= ' ' || *p == '@') ok = false;
    if (!ok) {
      free(host);
      free(target);
      return -1;
    }
    free(it->host);
    free(it->url);
    it->host = host;
    it->url = target;
    return 0;
  }
  if (!kg_source_target_ok(u, fe)) return -1;
  free(it->url);
  it->url = kg_strndup(u, fe);
  return 0;
}

static bool kg_source_is_method_token(const char *s, size_t n) {
  if (n == 0 || n > 20) return false;
  for (size_t i = 0; i < n; i++)
    if (!(s[i] >= 'A' && s[i] <= 'Z') && s[i] != '-' && s[i] != '_') return false;
  return true;
}

int kg_source_parse_url_line(const char *line, size_t len, kg_source_item *it) {
  size_t a = 0, b = len;
  while (a < b && isspace((unsigned char)line[a])) a++;
  while (b > a && isspace((unsigned char)line[b - 1])) b--;
  if (a == b || line[a] == '#') return 0;
  const char *s = line + a;
  size_t n = b - a;
  /* "METHOD URL [HTTP/x.y]" or just "URL". */
  const char *sp = memchr(s, ' ', n);
  const char *method = "GET";
  size_t mlen = 3;
  if (sp) {
    size_t ml = (size_t)(sp - s);
    if (!kg_source_is_method_token(s, ml)) return -1;
    method = s;
    mlen = ml;
    size_t k = ml;
    while (k < n && s[k] == ' ') k++;
    s += k;
    n -= k;
    const char *sp2 = memchr(s, ' ', n);
    if (sp2) {
      size_t rest = (size_t)(s + n - sp2);
      const char *v = sp2;
      while (rest && *v == ' ') v++, rest--;
      if (!(rest >= 6 && strncmp(v, "HTTP/", 5) == 0)) return -1;
      n = (size_t)(sp2 - s);
    }
  }
  if (kg_source_item_set_url(it, s, n) != 0) return -1;
  free(it->method);
  it->method = kg_strndup(method, mlen);
  return 1;
}

static int kg_source_month(const char *m) {
  static const char *const names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; i++)
    if (strncmp(m, names[i], 3) == 0) return i;
  return -1;
}

/* "10/Oct/2000:13:55:36 -0700" -> Unix seconds. Month names are English
 * whatever the locale: that is what nginx writes. */
static int kg_source_parse_nginx_time(const char *s, size_t n, double *out) {
  char t[40];
  if (n < 26 || n >= sizeof(t)) return -1;
  memcpy(t, s, n);
  t[n] = '\0';
  const char *p = t;
  int d, y, h, mi, sec, oh, om;
  if (!kg_read_digits(&p, 2, &d) || *p++ != '/') return -1;
  int mo = kg_source_month(p);
  if (mo < 0) return -1;
  p += 3;
  if (*p++ != '/' || !kg_read_digits(&p, 4, &y) || *p++ != ':' ||
      !kg_read_digits(&p, 2, &h) || *p++ != ':' || !kg_read_digits(&p, 2, &mi) ||
      *p++ != ':' || !kg_read_digits(&p, 2, &sec) || *p++ != ' ')
    return -1;
  char sign = *p++;
  if ((sign != '+' && sign != '-') || !kg_read_digits(&p, 2, &oh) || !kg_read_digits(&p, 2, &om) ||
      *p != '\0')
    return -1;
  if (d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
  struct tm tm = {.tm_year = y - 1900, .tm_mon = mo, .tm_mday = d,
                  .tm_hour = h, .tm_min = mi, .tm_sec = sec};
  long off = (oh * 60L + om) * 60L * (sign == '-' ? -1 : 1);
  *out = (double)(timegm(&tm) - off);
  return 0;
}

/* Reads a quoted log field starting at s[*i] == '"', undoing nginx's
 * "\xHH" and Apache's backslash escapes, into out. Returns 0 or -1. */
static int kg_source_quoted(const char *s, size_t n, size_t *i, kg_buf *out) {
  if (*i >= n || s[*i] != '"') return -1;
  size_t k = *i + 1;
  while (k < n && s[k] != '"') {
    if (s[k] == '\\' && k + 1 < n) {
      if (s[k + 1] == 'x' && k + 3 < n && isxdigit((unsigned char)s[k + 2]) &&
          isxdigit((unsigned char)s[k + 3])) {
        char hex[3] = {s[k + 2], s[k + 3], 0};
        char c = (char)strtol(hex, NULL, 16);
        kg_buf_append(out, &c, 1);
        k += 4;
        continue;
      }
      kg_buf_append(out, s + k + 1, 1);
      k += 2;
      continue;
    }
    kg_buf_append(out, s + k, 1);
    k++;
  }
  if (k >= n) return -1;
  *i = k + 1;
  return 0;
}

/* A field value we may send: printable, no CR/LF/NUL. */
static bool kg_source_value_ok(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 && s[i] != '\t') return false;
  return n > 0;
}

int kg_source_parse_nginx_line(const char *line, size_t len, kg_source_item *it) {
  /* $remote_addr - $remote_user [$time_local] "$request" $status
   * $body_bytes_sent "$http_referer" "$http_user_agent" */
  const char *lb = memchr(line, '[', len);
  if (lb == NULL || lb == line || lb[-1] != ' ') return -1;
  size_t i = (size_t)(lb - line) + 1;
  const char *rb = memchr(line + i, ']', len - i);
  if (rb == NULL) return -1;
  double ts;
  if (kg_source_parse_nginx_time(line + i, (size_t)(rb - (line + i)), &ts) != 0) return -1;
  i = (size_t)(rb - line) + 1;
  if (i >= len || line[i] != ' ') return -1;
  i++;
  kg_buf req = KG_BUF_INIT, ref = KG_BUF_INIT, ua = KG_BUF_INIT;
  int rc = -1;
  if (kg_source_quoted(line, len, &i, &req) != 0) goto out;
  /* status and bytes */
  if (i >= len || line[i] != ' ') goto out;
  i++;
  size_t st = i;
  while (i < len && isdigit((unsigned char)line[i])) i++;
  if (i - st != 3) goto out;
  if (i >= len || line[i] != ' ') goto out;
  i++;
  st = i;
  while (i < len && (isdigit((unsigned char)line[i]) || line[i] == '-')) i++;
  if (i == st) goto out;
  /* Combined adds referer and user agent; common stops here. Whatever a
   * custom format appends after them is ignored. */
  if (i + 1 < len && line[i] == ' ' && line[i + 1] == '"') {
    i++;
    if (kg_source_quoted(line, len, &i, &ref) != 0) goto out;
    if (i + 1 < len && line[i] == ' ' && line[i + 1] == '"') {
      i++;
      if (kg_source_quoted(line, len, &i, &ua) != 0) goto out;
    }
  }
  /* The request line: METHOD SP target [SP HTTP/x.y] */
  const char *r = req.data ? req.data : "";
  size_t rn = req.len;
  const char *sp = memchr(r, ' ', rn);
  if (sp == NULL || !kg_source_is_method_token(r, (size_t)(sp - r))) goto out;
  size_t mlen = (size_t)(sp - r);
  const char *tgt = sp + 1;
  const char *sp2 = memchr(tgt, ' ', rn - (size_t)(tgt - r));
  size_t tlen = sp2 ? (size_t)(sp2 - tgt) : rn - (size_t)(tgt - r);
  if (sp2 && strncmp(sp2 + 1, "HTTP/", 5) != 0) goto out;
  if (kg_source_item_set_url(it, tgt, tlen) != 0) goto out;
  if (!(mlen == 3 && memcmp(r, "GET", 3) == 0)) {
    rc = 0; /* a fine line, but only GETs are replayed from logs */
    goto out;
  }
  free(it->method);
  it->method = kg_strdup("GET");
  it->ts = ts;
  if (ua.len && !(ua.len == 1 && ua.data[0] == '-') && kg_source_value_ok(ua.data, ua.len))
    kg_hdrs_add(&it->req_hdrs, "User-Agent", 10, ua.data, ua.len);
  if (ref.len && !(ref.len == 1 && ref.data[0] == '-') && kg_source_value_ok(ref.data, ref.len))
    kg_hdrs_add(&it->req_hdrs, "Referer", 7, ref.data, ref.len);
  rc = 1;
out:
  kg_buf_free(&req);
  kg_buf_free(&ref);
  kg_buf_free(&ua);
  return rc;
}

/* --- HTTP messages inside WARC records --------------------------------------- */

typedef struct kg_source_msg {
  kg_buf body;
  bool no_body;  /* the response to a HEAD: the head is all there is */
  bool headed;   /* the head was parsed */
} kg_source_msg;

static int kg_source_msg_on_head(void *ud, kg_http_msg *m) {
  kg_source_msg *p = ud;
  (void)m;
  p->headed = true;
  return p->no_body ? 1 : 0;
}

static int kg_source_msg_on_body(void *ud, const char *b, size_t n) {
  kg_source_msg *p = ud;
  kg_buf_append(&p->body, b, n);
  return 0;
}

static const kg_http_ops kg_source_msg_ops = {kg_source_msg_on_head, kg_source_msg_on_body};

/* Parses a whole HTTP message from a block. Returns 0 with msg and body
 * filled (body moved into *body), 1 when the head parsed but the body was
 * cut short (what there is goes into *body), or -1. */
static int kg_source_parse_message(enum http_parser_type type, const kg_buf *block,
                                   bool no_body, kg_http_msg *msg, kg_buf *body) {
  kg_source_msg p = {.body = KG_BUF_INIT, .no_body = no_body};
  kg_http h;
  kg_http_init(&h, type, &kg_source_msg_ops, &p, (kg_http_limits){0, 0});
  size_t used = 0;
  int rc = -1;
  kg_http_state st = kg_http_feed(&h, block->data ? block->data : "", block->len, &used);
  if (st == KG_HTTP_MORE) {
    /* The block ended first: a close-delimited body completes here; any
     * other message was cut (the writer kept only part of it). */
    st = kg_http_eof(&h);
    if (st == KG_HTTP_ERROR && p.headed) rc = 1;
  }
  if (st == KG_HTTP_PAUSED) rc = 0;
  if (rc >= 0) {
    kg_http_msg_move(msg, &h.msg);
    *body = p.body;
  } else {
    kg_buf_free(&p.body);
  }
  kg_http_free(&h);
  return rc;
}

static bool kg_source_is_http_record(const kg_warc_record *rec, const char *type) {
  const char *t = kg_warc_field(rec, "WARC-Type");
  const char *ct = kg_warc_field(rec, "Content-Type");
  return t && strcasecmp(t, type) == 0 && ct && strncasecmp(ct, "application/http", 16) == 0;
}

/* Fills the request part of an item from a request record. 0 or -1. */
static int kg_source_item_from_request(kg_source_item *it, const kg_warc_record *rec) {
  kg_http_msg m;
  kg_http_msg_init(&m);
  kg_buf body = KG_BUF_INIT;
  int rc = kg_source_parse_message(HTTP_REQUEST, &rec->block, false, &m, &body);
  if (rc != 0) {
    kg_http_msg_free(&m);
    kg_buf_free(&body);
    return -1;
  }
  it->method = kg_strdup(http_method_str((enum http_method)m.method));
  const char *url = m.url.data ? m.url.data : "/";
  if (kg_source_item_set_url(it, url, strlen(url)) != 0) {
    /* "*" (OPTIONS) or an authority (CONNECT): nothing to replay. */
    kg_http_msg_free(&m);
    kg_buf_free(&body);
    return -1;
  }
  for (size_t i = 0; i < m.hdrs.n; i++) {
    const char *name = kg_hdrs_name(&m.hdrs, i);
    size_t nlen = m.hdrs.v[i].name_len;
    if (kg_str_ieq(name, nlen, "content-length") || kg_str_ieq(name, nlen, "transfer-encoding"))
      continue;
    kg_hdrs_add(&it->req_hdrs, name, nlen, kg_hdrs_value(&m.hdrs, i), m.hdrs.v[i].value_len);
  }
  it->req_body = body;
  kg_http_msg_free(&m);
  const char *date = kg_warc_field(rec, "WARC-Date");
  double ts;
  if (date && kg_warc_parse_date(date, &ts) == 0) it->ts = ts;
  const char *uri = kg_warc_field(rec, "WARC-Target-URI");
  char *host = NULL, *target = NULL;
  if (it->host == NULL && uri && kg_source_split_absolute(uri, strlen(uri), &host, &target) == 0) {
    it->host = host;
    free(target);
  }
  const char *e = kg_warc_field(rec, "WARC-Kagami-Error");
  if (e) it->error = kg_strdup(e);
  it->offset = rec->offset;
  return 0;
}

/* Fills the response part of an item. 0 or -1 (no response then). */
static int kg_source_item_add_response(kg_source_item *it, const kg_warc_record *rec) {
  kg_http_msg m;
  kg_http_msg_init(&m);
  kg_buf body = KG_BUF_INIT;
  bool head = it->method && strcmp(it->method, "HEAD") == 0;
  int rc = kg_source_parse_message(HTTP_RESPONSE, &rec->block, head, &m, &body);
  if (rc < 0) {
    kg_http_msg_free(&m);
    return -1;
  }
  it->has_response = true;
  it->status = m.status;
  it->reason = kg_strdup(m.reason.data ? m.reason.data : "");
  kg_hdrs_copy(&it->resp_hdrs, &m.hdrs);
  it->resp_body = body;
  it->resp_truncated = rc == 1 || kg_warc_field(rec, "WARC-Truncated") != NULL;
  it->resp_body_omitted = it->resp_truncated && body.len == 0 && !head;
  const char *el = kg_warc_field(rec, "WARC-Kagami-Elapsed");
  if (el) {
    char *endp = NULL;
    double v = strtod(el, &endp);
    if (endp != el && *endp == '\0' && v >= 0 && isfinite(v)) it->elapsed = v;
  }
  kg_http_msg_free(&m);
  return 0;
}

/* A response record with no request next to it: a GET of its target. */
static int kg_source_item_from_response_only(kg_source_item *it, const kg_warc_record *rec) {
  const char *uri = kg_warc_field(rec, "WARC-Target-URI");
  if (uri == NULL || kg_source_item_set_url(it, uri, strlen(uri)) != 0) return -1;
  it->method = kg_strdup("GET");
  const char *date = kg_warc_field(rec, "WARC-Date");
  double ts;
  if (date && kg_warc_parse_date(date, &ts) == 0) it->ts = ts;
  it->offset = rec->offset;
  return kg_source_item_add_response(it, rec);
}

/* True when records a and b are the two halves of one exchange. */
static bool kg_source_linked(const kg_warc_record *a, const kg_warc_record *b) {
  const char *aid = kg_warc_field(a, "WARC-Record-ID");
  const char *bid = kg_warc_field(b, "WARC-Record-ID");
  const char *ac = kg_warc_field(a, "WARC-Concurrent-To");
  const char *bc = kg_warc_field(b, "WARC-Concurrent-To");
  if (aid && bc && strcmp(aid, bc) == 0) return true;
  if (bid && ac && strcmp(bid, ac) == 0) return true;
  if (ac || bc) return false;
  const char *au = kg_warc_field(a, "WARC-Target-URI");
  const char *bu = kg_warc_field(b, "WARC-Target-URI");
  return au && bu && strcmp(au, bu) == 0;
}

/* --- the traffic source ------------------------------------------------------- */

struct kg_source {
  kg_source_format format;
  bool strict;
  kg_warc_reader *r;
  kg_warc_record cur, next; /* the record being turned into an item, and
                               the one read after it to find its pair */
  bool have_next;
  kg_source_status st;
};

/* The first line that is neither blank nor a comment, without consuming
 * anything; decides between a log and a URL list. */
static kg_source_format kg_source_sniff_lines(kg_warc_reader *r) {
  const char *p;
  size_t avail = kg_warc_peek(r, 64 * 1024, &p);
  size_t i = 0;
  while (i < avail) {
    const char *nl = memchr(p + i, '\n', avail - i);
    size_t e = nl ? (size_t)(nl - p) : avail;
    size_t a = i;
    while (a < e && isspace((unsigned char)p[a])) a++;
    if (a < e && p[a] != '#') {
      kg_source_item probe;
      kg_source_item_init(&probe);
      int rc = kg_source_parse_nginx_line(p + a, e - a, &probe);
      kg_source_item_free(&probe);
      return rc >= 0 ? KG_SOURCE_NGINX : KG_SOURCE_URLS;
    }
    i = e + 1;
  }
  return KG_SOURCE_URLS;
}

int kg_source_open(const char *path, kg_source_format format, bool strict,
                   kg_source **out, char *err, size_t errlen) {
  kg_warc_reader *r = NULL;
  if (kg_warc_open(path, &r, err, errlen) != 0) return -1;
  if (format == KG_SOURCE_AUTO) {
    const char *p;
    size_t avail = kg_warc_peek(r, 5, &p);
    /* A file cut within its first five bytes is still a (damaged) WARC. */
    if (avail > 0 && memcmp(p, "WARC/", KG_MIN(avail, (size_t)5)) == 0)
      format = KG_SOURCE_WARC;
    else format = kg_source_sniff_lines(r);
  }
  const char *unreadable = kg_warc_unreadable(r);
  if (unreadable) {
    snprintf(err, errlen, "%s: %s", path, unreadable);
    kg_warc_close(r);
    return -1;
  }
  kg_source *t = kg_calloc(1, sizeof(*t));
  t->format = format;
  t->strict = strict;
  t->r = r;
  kg_warc_record_init(&t->cur);
  kg_warc_record_init(&t->next);
  t->st.format = format;
  t->st.compressed = kg_warc_compressed(r);
  *out = t;
  return 0;
}

void kg_source_close(kg_source *t) {
  if (t == NULL) return;
  kg_warc_record_free(&t->cur);
  kg_warc_record_free(&t->next);
  kg_warc_close(t->r);
  free(t);
}

void kg_source_status_get(const kg_source *t, kg_source_status *out) {
  *out = t->st;
  kg_warc_progress(t->r, &out->bytes_done, &out->bytes_total);
  out->skipped = t->st.skipped + kg_warc_skipped_large(t->r);
  const char *why;
  out->damage_offset = kg_warc_damage(t->r, &why);
  out->damaged = why != NULL;
  snprintf(out->damage_why, sizeof(out->damage_why), "%s", why ? why : "");
}

/* The end of the input: clean (rc 0), or damage (rc -1; an error only
 * when strict). */
static int kg_source_end(kg_source *t, int rc, char *err, size_t errlen) {
  if (rc == 0) return 0;
  if (!t->strict) return 0;
  const char *why;
  uint64_t off = kg_warc_damage(t->r, &why);
  snprintf(err, errlen, "damaged record at byte %llu: %s", (unsigned long long)off,
           why ? why : "");
  return -1;
}

/* kg_source_next for WARC: the next request or response record that holds
 * an HTTP message, with its other half when the record after it is that
 * (that record is kept for the next call otherwise). */
static int kg_source_next_warc(kg_source *t, kg_source_item *it, char *err,
                               size_t errlen) {
  for (;;) {
    int rc;
    if (t->have_next) {
      kg_warc_record tmp = t->cur;
      t->cur = t->next;
      t->next = tmp;
      t->have_next = false;
      rc = 1;
    } else {
      rc = kg_warc_read(t->r, &t->cur);
    }
    if (rc <= 0) return kg_source_end(t, rc, err, errlen);
    bool req = kg_source_is_http_record(&t->cur, "request");
    bool resp = !req && kg_source_is_http_record(&t->cur, "response");
    if (!req && !resp) {
      t->st.other_records++;
      continue;
    }
    /* Its other half, if any, is the next record. Damage there is left
     * latched in the reader for the next call: this item is whole. */
    int nrc = kg_warc_read(t->r, &t->next);
    bool paired = false;
    if (nrc == 1) {
      t->have_next = true;
      paired = kg_source_is_http_record(&t->next, req ? "response" : "request") &&
               kg_source_linked(&t->cur, &t->next);
    }
    kg_source_item_init(it);
    const kg_warc_record *rq = req ? &t->cur : paired ? &t->next : NULL;
    const kg_warc_record *rs = resp ? &t->cur : paired ? &t->next : NULL;
    if (paired) t->have_next = false; /* both halves used */
    int ok;
    if (rq) {
      ok = kg_source_item_from_request(it, rq);
      if (ok == 0 && rs && kg_source_item_add_response(it, rs) != 0) t->st.unparseable++;
      if (ok == 0 && rs && rs->offset < it->offset) it->offset = rs->offset;
    } else {
      ok = kg_source_item_from_response_only(it, rs);
    }
    if (ok != 0) {
      kg_source_item_free(it);
      t->st.unparseable++;
      continue;
    }
    t->st.items++;
    return 1;
  }
}

/* kg_source_next for URL lists and nginx logs: the next line that parses
 * as an item; blank and comment lines are passed over, the rest counted
 * as skipped or unparseable. */
static int kg_source_next_lines(kg_source *t, kg_source_item *it, char *err,
                                size_t errlen) {
  for (;;) {
    const char *line;
    size_t len;
    uint64_t off;
    bool toolong;
    int lrc = kg_warc_read_line(t->r, &line, &len, &off, &toolong);
    /* -1: a gzip'd log cut short, latched like WARC damage at the cut. */
    if (lrc <= 0) return kg_source_end(t, lrc, err, errlen);
    if (toolong) {
      t->st.unparseable++;
      continue;
    }
    size_t a = 0;
    while (a < len && isspace((unsigned char)line[a])) a++;
    if (a == len || line[a] == '#') continue;
    kg_source_item_init(it);
    int rc = t->format == KG_SOURCE_NGINX ? kg_source_parse_nginx_line(line, len, it)
                                           : kg_source_parse_url_line(line, len, it);
    if (rc == 1) {
      it->offset = off;
      t->st.items++;
      return 1;
    }
    kg_source_item_free(it);
    if (rc == 0) t->st.skipped++;
    else t->st.unparseable++;
  }
}

int kg_source_next(kg_source *t, kg_source_item *it, char *err, size_t errlen) {
  if (t->format == KG_SOURCE_WARC) return kg_source_next_warc(t, it, err, errlen);
  return kg_source_next_lines(t, it, err, errlen);
}
