/* warc.c: WARC records, and the traffic sources built on them and on
 * plain-text logs (see warc.h). */
#include "traffic/warc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/common.h"
#include "http/http.h"

/* --- ids and dates ------------------------------------------------------------ */

/* getrandom(2) cannot fail for 16 bytes once the pool is initialised; the
 * fallbacks only matter on kernels without it. */
static void kg_random_bytes(unsigned char *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(p + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  if (got == n) return;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    while (got < n) {
      ssize_t r = read(fd, p + got, n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      got += (size_t)r;
    }
    close(fd);
  }
  /* Still short: an id must be unique, not secret; the clock will do. */
  uint64_t x = kg_now_ns() ^ ((uint64_t)getpid() << 32);
  for (; got < n; got++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    p[got] = (unsigned char)(x >> 56);
  }
}

void kg_warc_new_id(char out[KG_WARC_ID_LEN]) {
  unsigned char b[16];
  kg_random_bytes(b, sizeof(b));
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  snprintf(out, KG_WARC_ID_LEN,
           "<urn:uuid:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
           "%02x%02x%02x%02x%02x%02x>",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
           b[11], b[12], b[13], b[14], b[15]);
}

void kg_warc_date(double unix_seconds, char out[32]) {
  if (!(unix_seconds >= 0)) unix_seconds = 0;
  time_t sec = (time_t)unix_seconds;
  long usec = (long)((unix_seconds - (double)sec) * 1e6 + 0.5);
  if (usec >= 1000000) {
    sec++;
    usec -= 1000000;
  }
  struct tm tm;
  gmtime_r(&sec, &tm);
  size_t n = strftime(out, 20, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%06dZ", (int)usec);
}

/* Reads exactly n digits at *p, advancing it. */
static bool kg_digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i])) return false;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return true;
}

int kg_warc_parse_date(const char *s, double *out) {
  struct tm tm = {0};
  int y, mo, d, h, mi, sec;
  const char *p = s;
  if (!kg_digits(&p, 4, &y) || *p++ != '-' || !kg_digits(&p, 2, &mo) ||
      *p++ != '-' || !kg_digits(&p, 2, &d) || *p++ != 'T' ||
      !kg_digits(&p, 2, &h) || *p++ != ':' || !kg_digits(&p, 2, &mi) ||
      *p++ != ':' || !kg_digits(&p, 2, &sec))
    return -1;
  double frac = 0, scale = 0.1;
  if (*p == '.') {
    p++;
    if (!isdigit((unsigned char)*p)) return -1;
    for (; isdigit((unsigned char)*p); p++, scale /= 10) frac += (*p - '0') * scale;
  }
  if (*p != 'Z' || p[1] != '\0') return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return -1;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  *out = (double)timegm(&tm) + frac;
  return 0;
}

/* --- writing ---------------------------------------------------------------- */

void kg_warc_format(kg_buf *out, const kg_hdrs *fields, const char *block,
                    size_t block_len) {
  kg_buf_reserve(out, 256 + fields->data.len + 4 * fields->n + block_len);
  kg_buf_append(out, "WARC/1.1\r\n", 10);
  for (size_t i = 0; i < fields->n; i++) {
    kg_buf_append(out, kg_hdrs_name(fields, i), fields->v[i].name_len);
    kg_buf_append(out, ": ", 2);
    kg_buf_append(out, kg_hdrs_value(fields, i), fields->v[i].value_len);
    kg_buf_append(out, "\r\n", 2);
  }
  kg_buf_appendf(out, "Content-Length: %zu\r\n\r\n", block_len);
  kg_buf_append(out, block, block_len);
  kg_buf_append(out, "\r\n\r\n", 4);
}

/* --- the byte layer ----------------------------------------------------------- */

#define KG_WARC_READ_CHUNK (128 * 1024)
#define KG_WARC_MAX_LINE (1024 * 1024) /* a log line longer is unparseable */

struct kg_warc_reader {
  gzFile gz;             /* reads plain files transparently too */
  bool compressed;       /* gzip input */
  uint64_t file_size;    /* 0 when unknown (not a regular file) */
  char *buf;             /* owned window of the stream */
  size_t cap;            /* bytes allocated */
  size_t start, end;     /* unread bytes are buf[start, end) */
  uint64_t pos;          /* stream offset of buf[start] */
  bool eof;              /* no more bytes will come */
  char read_error[160];  /* set when gzread failed (treated as damage) */
  bool damaged;          /* latched: every later read returns -1 */
  uint64_t damage_off;
  char damage_why[256];
  uint64_t skipped_large;
};

/* Makes at least `need` unread bytes available, or as many as the file
 * still has. Returns the number available. Reads no more than it must
 * (zlib's gzread fills whatever it is given), so a window never holds much
 * beyond the current record. */
static size_t kg_fill(kg_warc_reader *r, size_t need) {
  while (r->end - r->start < need && !r->eof) {
    size_t avail = r->end - r->start;
    if (r->start > 0 && r->cap - r->end < KG_WARC_READ_CHUNK) {
      memmove(r->buf, r->buf + r->start, avail);
      r->end = avail;
      r->start = 0;
    }
    if (r->cap - r->end < KG_WARC_READ_CHUNK) {
      size_t cap = r->cap ? r->cap : KG_WARC_READ_CHUNK;
      while (cap - r->end < KG_WARC_READ_CHUNK) cap *= 2;
      r->buf = kg_realloc(r->buf, cap);
      r->cap = cap;
    }
    size_t want = KG_MAX((size_t)KG_WARC_READ_CHUNK, need - avail);
    want = KG_MIN(want, r->cap - r->end);
    want = KG_MIN(want, (size_t)1 << 30);
    int n = gzread(r->gz, r->buf + r->end, (unsigned)want);
    int zerr = 0;
    if (n <= 0) gzerror(r->gz, &zerr);
    if (n > 0) {
      r->end += (size_t)n;
    } else {
      /* 0 is both the end and, for gzip, a stream cut short; gzerror
       * tells them apart. */
      if (zerr == Z_BUF_ERROR)
        snprintf(r->read_error, sizeof(r->read_error), "the compressed data ends early");
      else if (zerr == Z_ERRNO)
        snprintf(r->read_error, sizeof(r->read_error), "read error: %s", strerror(errno));
      else if (zerr != Z_OK)
        snprintf(r->read_error, sizeof(r->read_error), "%s", gzerror(r->gz, &zerr));
      r->eof = true;
    }
  }
  return r->end - r->start;
}

static void kg_consume(kg_warc_reader *r, size_t n) {
  r->start += n;
  r->pos += n;
}

int kg_warc_open(const char *path, kg_warc_reader **out, char *err,
                 size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "%s: is a directory", path);
    close(fd);
    return -1;
  }
  gzFile gz = gzdopen(fd, "rb");
  if (gz == NULL) {
    snprintf(err, errlen, "%s: cannot read", path);
    close(fd);
    return -1;
  }
  gzbuffer(gz, KG_WARC_READ_CHUNK);
  kg_warc_reader *r = kg_calloc(1, sizeof(*r));
  r->gz = gz;
  r->file_size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
  r->compressed = gzdirect(gz) == 0;
  *out = r;
  return 0;
}

void kg_warc_close(kg_warc_reader *r) {
  if (r == NULL) return;
  gzclose(r->gz);
  free(r->buf);
  free(r);
}

uint64_t kg_warc_damage(const kg_warc_reader *r, const char **why) {
  if (why) *why = r->damaged ? r->damage_why : NULL;
  return r->damage_off;
}

uint64_t kg_warc_skipped_large(const kg_warc_reader *r) { return r->skipped_large; }

bool kg_warc_compressed(const kg_warc_reader *r) { return r->compressed; }

void kg_warc_progress(const kg_warc_reader *r, uint64_t *done, uint64_t *total) {
  /* For plain files the stream position is exact; for gzip only the raw
   * offset zlib has read says how far through the file we are. */
  *done = r->compressed ? (uint64_t)gzoffset(r->gz) : r->pos;
  *total = r->file_size;
  if (*total && *done > *total) *done = *total;
}

/* Latches damage at `off` and returns -1. */
static int kg_damage(kg_warc_reader *r, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int kg_damage(kg_warc_reader *r, uint64_t off, const char *fmt, ...) {
  if (!r->damaged) {
    r->damaged = true;
    r->damage_off = off;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->damage_why, sizeof(r->damage_why), fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* Reads a line into line and len (without its LF or CRLF), valid until the
 * next read. Returns 1, or 0 at the end. A line longer than
 * KG_WARC_MAX_LINE is consumed whole and returned empty with *toolong set
 * (it is unparseable, and holding it would be unbounded). */
static int kg_read_line(kg_warc_reader *r, const char **line, size_t *len,
                        uint64_t *off, bool *toolong) {
  *toolong = false;
  size_t scanned = 0;
  for (;;) {
    size_t avail = r->end - r->start;
    const char *base = r->buf + r->start;
    const char *nl = avail > scanned ? memchr(base + scanned, '\n', avail - scanned) : NULL;
    if (nl) {
      size_t n = (size_t)(nl - base);
      *off = r->pos;
      *line = base;
      *len = n > 0 && base[n - 1] == '\r' ? n - 1 : n;
      kg_consume(r, n + 1);
      return 1;
    }
    if (avail >= KG_WARC_MAX_LINE) {
      *toolong = true;
      *off = r->pos;
      *line = "";
      *len = 0;
      kg_consume(r, avail);
      for (;;) {
        size_t a = kg_fill(r, 1);
        if (a == 0) break;
        const char *q = memchr(r->buf + r->start, '\n', a);
        if (q) {
          kg_consume(r, (size_t)(q - (r->buf + r->start)) + 1);
          break;
        }
        kg_consume(r, a);
      }
      return 1;
    }
    scanned = avail;
    if (kg_fill(r, avail + 1) == avail) {
      if (avail == 0) return 0;
      *off = r->pos; /* a last line without a newline */
      *line = r->buf + r->start;
      *len = (*line)[avail - 1] == '\r' ? avail - 1 : avail;
      kg_consume(r, avail);
      return 1;
    }
  }
}

/* --- records ------------------------------------------------------------------ */

void kg_warc_record_init(kg_warc_record *r) { memset(r, 0, sizeof(*r)); }

void kg_warc_record_free(kg_warc_record *r) {
  kg_hdrs_free(&r->fields);
  kg_buf_free(&r->block);
}

const char *kg_warc_field(const kg_warc_record *r, const char *name) {
  long i = kg_hdrs_find(&r->fields, name);
  return i < 0 ? NULL : kg_hdrs_value(&r->fields, (size_t)i);
}

/* Finds the end of the record header starting at buf[start]: the offset
 * just past the empty line, or 0 if it is not (yet) in the window. */
static size_t kg_header_end(const char *p, size_t n) {
  for (size_t i = 0; i + 1 < n; i++) {
    if (p[i] != '\n') continue;
    if (p[i + 1] == '\n') return i + 2;
    if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n') return i + 3;
  }
  return 0;
}

/* Parses the named fields of a header (after the version line) into
 * fields. Returns NULL, or what is wrong. */
static const char *kg_parse_fields(const char *p, size_t n, kg_hdrs *fields) {
  size_t i = 0;
  while (i < n) {
    const char *nl = memchr(p + i, '\n', n - i);
    size_t e = nl ? (size_t)(nl - p) : n;
    size_t le = e > i && p[e - 1] == '\r' ? e - 1 : e;
    const char *line = p + i;
    size_t len = le - i;
    i = e + 1;
    if (len == 0) break; /* the empty line */
    if (line[0] == ' ' || line[0] == '\t') {
      if (fields->n == 0) return "a continuation line before any field";
      size_t k = 0;
      while (k < len && (line[k] == ' ' || line[k] == '\t')) k++;
      kg_hdrs_extend_last_value(fields, " ", 1);
      kg_hdrs_extend_last_value(fields, line + k, len - k);
      continue;
    }
    const char *colon = memchr(line, ':', len);
    if (colon == NULL || colon == line) return "a header line without a field name";
    size_t nlen = (size_t)(colon - line);
    for (size_t k = 0; k < nlen; k++)
      if (line[k] <= ' ' || line[k] >= 0x7f) return "a field name with spaces or control bytes";
    size_t v = nlen + 1;
    while (v < len && (line[v] == ' ' || line[v] == '\t')) v++;
    size_t vend = len;
    while (vend > v && (line[vend - 1] == ' ' || line[vend - 1] == '\t')) vend--;
    kg_hdrs_add(fields, line, nlen, line + v, vend - v);
  }
  return NULL;
}

int kg_warc_read(kg_warc_reader *r, kg_warc_record *rec) {
  for (;;) {
    if (r->damaged) return -1;
    /* Stray line ends between records are passed over: some writers add
     * an extra one, and they cannot hide a record. */
    for (;;) {
      if (kg_fill(r, 1) == 0) break;
      char c = r->buf[r->start];
      if (c != '\r' && c != '\n') break;
      kg_consume(r, 1);
    }
    uint64_t off = r->pos;
    size_t avail = kg_fill(r, 1);
    if (avail == 0) {
      if (r->read_error[0]) return kg_damage(r, off, "%s", r->read_error);
      return 0;
    }
    /* Anything else than a version line here is not a record. */
    size_t k = KG_MIN(kg_fill(r, 7), (size_t)7);
    if (memcmp(r->buf + r->start, "WARC/1.", k) != 0)
      return kg_damage(r, off, "corrupt: not a WARC record (no WARC/1.x line)");
    /* The header: fill until its empty line shows up. */
    size_t hend = 0;
    size_t want = 512;
    for (;;) {
      avail = kg_fill(r, want);
      hend = kg_header_end(r->buf + r->start, KG_MIN(avail, (size_t)KG_WARC_MAX_HEADER));
      if (hend) break;
      if (avail >= KG_WARC_MAX_HEADER)
        return kg_damage(r, off, "corrupt: no end of the record header within %d bytes",
                         KG_WARC_MAX_HEADER);
      if (avail < want)
        return kg_damage(r, off, "truncated: the file ends inside a record header%s%s",
                         r->read_error[0] ? ": " : "", r->read_error);
      want *= 2;
    }
    const char *h = r->buf + r->start;
    if (hend < 8 || memcmp(h, "WARC/1.", 7) != 0)
      return kg_damage(r, off, "corrupt: not a WARC record (no WARC/1.x line)");
    const char *nl = memchr(h, '\n', hend);
    size_t first = (size_t)(nl - h) + 1;
    kg_warc_record_free(rec);
    kg_warc_record_init(rec);
    const char *bad = kg_parse_fields(h + first, hend - first, &rec->fields);
    if (bad) return kg_damage(r, off, "corrupt: %s", bad);
    const char *cl = kg_warc_field(rec, "Content-Length");
    if (cl == NULL) return kg_damage(r, off, "corrupt: no Content-Length");
    uint64_t blen = 0;
    if (*cl == '\0' || strlen(cl) > 15) return kg_damage(r, off, "corrupt: bad Content-Length '%.40s'", cl);
    for (const char *p = cl; *p; p++) {
      if (!isdigit((unsigned char)*p))
        return kg_damage(r, off, "corrupt: bad Content-Length '%.40s'", cl);
      blen = blen * 10 + (uint64_t)(*p - '0');
    }
    if (blen > KG_WARC_MAX_BLOCK) {
      /* Passed over without being held: consume it as it streams by. */
      kg_consume(r, hend);
      uint64_t left = blen + 4;
      char tail[4];
      size_t ntail = 0;
      while (left > 0) {
        size_t a = kg_fill(r, 1);
        if (a == 0)
          return kg_damage(r, off, "truncated: the block should be %llu bytes, "
                           "the file ends before it does", (unsigned long long)blen);
        size_t take = (size_t)KG_MIN((uint64_t)a, left);
        for (size_t j = 0; j < take; j++) /* remember the last 4 bytes */
          if (left - j <= 4) tail[ntail++] = r->buf[r->start + j];
        kg_consume(r, take);
        left -= take;
      }
      if (ntail != 4 || memcmp(tail, "\r\n\r\n", 4) != 0)
        return kg_damage(r, off, "corrupt: the block is not followed by CRLF CRLF "
                         "(wrong Content-Length?)");
      r->skipped_large++;
      continue;
    }
    size_t total = hend + (size_t)blen + 4;
    avail = kg_fill(r, total);
    if (avail < hend + (size_t)blen)
      return kg_damage(r, off, "truncated: the block should be %llu bytes, the file "
                       "ends after %zu%s%s", (unsigned long long)blen, avail - hend,
                       r->read_error[0] ? ": " : "", r->read_error);
    if (avail < total) {
      /* The block is whole but its closing CRLF CRLF is not: either cut
       * right there, or followed by something else. */
      const char *t = r->buf + r->start + hend + blen;
      size_t nt = avail - hend - (size_t)blen;
      if (memcmp(t, "\r\n\r\n", nt) == 0)
        return kg_damage(r, off, "truncated: the file ends before the record's "
                         "closing CRLF CRLF");
      return kg_damage(r, off, "corrupt: the block is not followed by CRLF CRLF "
                       "(wrong Content-Length?)");
    }
    if (memcmp(r->buf + r->start + hend + blen, "\r\n\r\n", 4) != 0)
      return kg_damage(r, off, "corrupt: the block is not followed by CRLF CRLF "
                       "(wrong Content-Length?)");
    kg_buf_append(&rec->block, r->buf + r->start + hend, (size_t)blen);
    rec->offset = off;
    rec->length = total;
    kg_consume(r, total);
    return 1;
  }
}

/* --- traffic items -------------------------------------------------------------- */

void kg_traffic_item_init(kg_traffic_item *it) {
  memset(it, 0, sizeof(*it));
  it->ts = NAN;
  it->elapsed = NAN;
}

void kg_traffic_item_free(kg_traffic_item *it) {
  free(it->method);
  free(it->url);
  free(it->host);
  kg_hdrs_free(&it->req_hdrs);
  kg_buf_free(&it->req_body);
  free(it->reason);
  kg_hdrs_free(&it->resp_hdrs);
  kg_buf_free(&it->resp_body);
  free(it->error);
  kg_traffic_item_init(it);
}

size_t kg_traffic_item_size(const kg_traffic_item *it) {
  return sizeof(*it) + (it->url ? strlen(it->url) : 0) + it->req_hdrs.data.len +
         it->req_body.len + it->resp_hdrs.data.len + it->resp_body.len;
}

static const char *const kg_format_names[] = {"auto", "warc", "urls", "nginx"};

const char *kg_traffic_format_name(kg_traffic_format f) {
  return (unsigned)f < KG_ARRAY_SIZE(kg_format_names) ? kg_format_names[f] : NULL;
}

int kg_traffic_format_parse(const char *s, kg_traffic_format *out) {
  for (size_t i = 0; i < KG_ARRAY_SIZE(kg_format_names); i++)
    if (strcmp(s, kg_format_names[i]) == 0) {
      *out = (kg_traffic_format)i;
      return 0;
    }
  return -1;
}

/* Splits an absolute http(s) URL into its authority (owned, into *host)
 * and its origin-form target (owned, "/" when empty). Returns 0, or -1 when
 * url is not absolute. The fragment is dropped: it never reaches a server. */
static int kg_split_absolute(const char *url, size_t len, char **host, char **target) {
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
static bool kg_target_ok(const char *s, size_t n) {
  if (n == 0 || s[0] != '/') return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] == 0x7f) return false;
  return true;
}

/* Sets it->url (and it->host for an absolute URL) from a URL in text. */
static int kg_item_set_url(kg_traffic_item *it, const char *u, size_t n) {
  size_t fe = 0;
  while (fe < n && u[fe] != '#') fe++;
  char *host = NULL, *target = NULL;
  if (kg_split_absolute(u, n, &host, &target) == 0) {
    bool ok = kg_target_ok(target, strlen(target));
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
  if (!kg_target_ok(u, fe)) return -1;
  free(it->url);
  it->url = kg_strndup(u, fe);
  return 0;
}

static bool kg_is_method_token(const char *s, size_t n) {
  if (n == 0 || n > 20) return false;
  for (size_t i = 0; i < n; i++)
    if (!(s[i] >= 'A' && s[i] <= 'Z') && s[i] != '-' && s[i] != '_') return false;
  return true;
}

int kg_traffic_parse_url_line(const char *line, size_t len, kg_traffic_item *it) {
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
    if (!kg_is_method_token(s, ml)) return -1;
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
  if (kg_item_set_url(it, s, n) != 0) return -1;
  free(it->method);
  it->method = kg_strndup(method, mlen);
  return 1;
}

static int kg_month(const char *m) {
  static const char *const names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; i++)
    if (strncmp(m, names[i], 3) == 0) return i;
  return -1;
}

/* "10/Oct/2000:13:55:36 -0700" -> Unix seconds. Month names are English
 * whatever the locale: that is what nginx writes. */
static int kg_parse_nginx_time(const char *s, size_t n, double *out) {
  char t[40];
  if (n < 26 || n >= sizeof(t)) return -1;
  memcpy(t, s, n);
  t[n] = '\0';
  const char *p = t;
  int d, y, h, mi, sec, oh, om;
  if (!kg_digits(&p, 2, &d) || *p++ != '/') return -1;
  int mo = kg_month(p);
  if (mo < 0) return -1;
  p += 3;
  if (*p++ != '/' || !kg_digits(&p, 4, &y) || *p++ != ':' ||
      !kg_digits(&p, 2, &h) || *p++ != ':' || !kg_digits(&p, 2, &mi) ||
      *p++ != ':' || !kg_digits(&p, 2, &sec) || *p++ != ' ')
    return -1;
  char sign = *p++;
  if ((sign != '+' && sign != '-') || !kg_digits(&p, 2, &oh) || !kg_digits(&p, 2, &om) ||
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
static int kg_quoted(const char *s, size_t n, size_t *i, kg_buf *out) {
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
static bool kg_value_ok(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 && s[i] != '\t') return false;
  return n > 0;
}

int kg_traffic_parse_nginx_line(const char *line, size_t len, kg_traffic_item *it) {
  /* $remote_addr - $remote_user [$time_local] "$request" $status
   * $body_bytes_sent "$http_referer" "$http_user_agent" */
  const char *lb = memchr(line, '[', len);
  if (lb == NULL || lb == line || lb[-1] != ' ') return -1;
  size_t i = (size_t)(lb - line) + 1;
  const char *rb = memchr(line + i, ']', len - i);
  if (rb == NULL) return -1;
  double ts;
  if (kg_parse_nginx_time(line + i, (size_t)(rb - (line + i)), &ts) != 0) return -1;
  i = (size_t)(rb - line) + 1;
  if (i >= len || line[i] != ' ') return -1;
  i++;
  kg_buf req = KG_BUF_INIT, ref = KG_BUF_INIT, ua = KG_BUF_INIT;
  int rc = -1;
  if (kg_quoted(line, len, &i, &req) != 0) goto out;
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
    if (kg_quoted(line, len, &i, &ref) != 0) goto out;
    if (i + 1 < len && line[i] == ' ' && line[i + 1] == '"') {
      i++;
      if (kg_quoted(line, len, &i, &ua) != 0) goto out;
    }
  }
  /* The request line: METHOD SP target [SP HTTP/x.y] */
  const char *r = req.data ? req.data : "";
  size_t rn = req.len;
  const char *sp = memchr(r, ' ', rn);
  if (sp == NULL || !kg_is_method_token(r, (size_t)(sp - r))) goto out;
  size_t mlen = (size_t)(sp - r);
  const char *tgt = sp + 1;
  const char *sp2 = memchr(tgt, ' ', rn - (size_t)(tgt - r));
  size_t tlen = sp2 ? (size_t)(sp2 - tgt) : rn - (size_t)(tgt - r);
  if (sp2 && strncmp(sp2 + 1, "HTTP/", 5) != 0) goto out;
  if (kg_item_set_url(it, tgt, tlen) != 0) goto out;
  if (!(mlen == 3 && memcmp(r, "GET", 3) == 0)) {
    rc = 0; /* a fine line, but only GETs are replayed from logs */
    goto out;
  }
  free(it->method);
  it->method = kg_strdup("GET");
  it->ts = ts;
  if (ua.len && !(ua.len == 1 && ua.data[0] == '-') && kg_value_ok(ua.data, ua.len))
    kg_hdrs_add(&it->req_hdrs, "User-Agent", 10, ua.data, ua.len);
  if (ref.len && !(ref.len == 1 && ref.data[0] == '-') && kg_value_ok(ref.data, ref.len))
    kg_hdrs_add(&it->req_hdrs, "Referer", 7, ref.data, ref.len);
  rc = 1;
out:
  kg_buf_free(&req);
  kg_buf_free(&ref);
  kg_buf_free(&ua);
  return rc;
}

/* --- HTTP messages inside WARC records --------------------------------------- */

typedef struct kg_msg_parse {
  kg_buf body;
  bool no_body;  /* the response to a HEAD: the head is all there is */
  bool headed;   /* the head was parsed */
} kg_msg_parse;

static int kg_msg_on_head(void *ud, kg_http_msg *m) {
  kg_msg_parse *p = ud;
  (void)m;
  p->headed = true;
  return p->no_body ? 1 : 0;
}

static int kg_msg_on_body(void *ud, const char *b, size_t n) {
  kg_msg_parse *p = ud;
  kg_buf_append(&p->body, b, n);
  return 0;
}

static const kg_http_ops kg_msg_ops = {kg_msg_on_head, kg_msg_on_body};

/* Parses a whole HTTP message from a block. Returns 0 with msg and body
 * filled (body moved into *body), 1 when the head parsed but the body was
 * cut short (what there is goes into *body), or -1. */
static int kg_parse_message(enum http_parser_type type, const kg_buf *block,
                            bool no_body, kg_http_msg *msg, kg_buf *body) {
  kg_msg_parse p = {.body = KG_BUF_INIT, .no_body = no_body};
  kg_http h;
  kg_http_init(&h, type, &kg_msg_ops, &p, (kg_http_limits){0, 0});
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

static bool kg_is_http_record(const kg_warc_record *rec, const char *type) {
  const char *t = kg_warc_field(rec, "WARC-Type");
  const char *ct = kg_warc_field(rec, "Content-Type");
  return t && strcasecmp(t, type) == 0 && ct && strncasecmp(ct, "application/http", 16) == 0;
}

/* Fills the request part of an item from a request record. 0 or -1. */
static int kg_item_from_request(kg_traffic_item *it, const kg_warc_record *rec) {
  kg_http_msg m;
  kg_http_msg_init(&m);
  kg_buf body = KG_BUF_INIT;
  int rc = kg_parse_message(HTTP_REQUEST, &rec->block, false, &m, &body);
  if (rc != 0) {
    kg_http_msg_free(&m);
    kg_buf_free(&body);
    return -1;
  }
  it->method = kg_strdup(http_method_str((enum http_method)m.method));
  const char *url = m.url.data ? m.url.data : "/";
  if (kg_item_set_url(it, url, strlen(url)) != 0) {
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
  if (it->host == NULL && uri && kg_split_absolute(uri, strlen(uri), &host, &target) == 0) {
    it->host = host;
    free(target);
  }
  const char *e = kg_warc_field(rec, "WARC-Kagami-Error");
  if (e) it->error = kg_strdup(e);
  it->offset = rec->offset;
  return 0;
}

/* Fills the response part of an item. 0 or -1 (no response then). */
static int kg_item_add_response(kg_traffic_item *it, const kg_warc_record *rec) {
  kg_http_msg m;
  kg_http_msg_init(&m);
  kg_buf body = KG_BUF_INIT;
  bool head = it->method && strcmp(it->method, "HEAD") == 0;
  int rc = kg_parse_message(HTTP_RESPONSE, &rec->block, head, &m, &body);
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
static int kg_item_from_response_only(kg_traffic_item *it, const kg_warc_record *rec) {
  const char *uri = kg_warc_field(rec, "WARC-Target-URI");
  if (uri == NULL || kg_item_set_url(it, uri, strlen(uri)) != 0) return -1;
  it->method = kg_strdup("GET");
  const char *date = kg_warc_field(rec, "WARC-Date");
  double ts;
  if (date && kg_warc_parse_date(date, &ts) == 0) it->ts = ts;
  it->offset = rec->offset;
  return kg_item_add_response(it, rec);
}

/* True when records a and b are the two halves of one exchange. */
static bool kg_linked(const kg_warc_record *a, const kg_warc_record *b) {
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

struct kg_traffic {
  kg_traffic_format format;
  bool strict;
  kg_warc_reader *r;
  kg_warc_record cur, next; /* the record being turned into an item, and
                               the one read after it to find its pair */
  bool have_next;
  kg_traffic_status st;
};

/* The first line that is neither blank nor a comment, without consuming
 * anything; decides between a log and a URL list. */
static kg_traffic_format kg_sniff_lines(kg_warc_reader *r) {
  size_t avail = kg_fill(r, 64 * 1024);
  const char *p = r->buf + r->start;
  size_t i = 0;
  while (i < avail) {
    const char *nl = memchr(p + i, '\n', avail - i);
    size_t e = nl ? (size_t)(nl - p) : avail;
    size_t a = i;
    while (a < e && isspace((unsigned char)p[a])) a++;
    if (a < e && p[a] != '#') {
      kg_traffic_item probe;
      kg_traffic_item_init(&probe);
      int rc = kg_traffic_parse_nginx_line(p + a, e - a, &probe);
      kg_traffic_item_free(&probe);
      return rc >= 0 ? KG_TRAFFIC_NGINX : KG_TRAFFIC_URLS;
    }
    i = e + 1;
  }
  return KG_TRAFFIC_URLS;
}

int kg_traffic_open(const char *path, kg_traffic_format format, bool strict,
                    kg_traffic **out, char *err, size_t errlen) {
  kg_warc_reader *r = NULL;
  if (kg_warc_open(path, &r, err, errlen) != 0) return -1;
  if (format == KG_TRAFFIC_AUTO) {
    size_t avail = kg_fill(r, 5);
    /* A file cut within its first five bytes is still a (damaged) WARC. */
    if (avail > 0 && memcmp(r->buf + r->start, "WARC/", KG_MIN(avail, (size_t)5)) == 0)
      format = KG_TRAFFIC_WARC;
    else format = kg_sniff_lines(r);
  }
  if (r->read_error[0] && r->pos == 0 && r->end == r->start) {
    snprintf(err, errlen, "%s: %s", path, r->read_error);
    kg_warc_close(r);
    return -1;
  }
  kg_traffic *t = kg_calloc(1, sizeof(*t));
  t->format = format;
  t->strict = strict;
  t->r = r;
  kg_warc_record_init(&t->cur);
  kg_warc_record_init(&t->next);
  t->st.format = format;
  t->st.compressed = r->compressed;
  *out = t;
  return 0;
}

void kg_traffic_close(kg_traffic *t) {
  if (t == NULL) return;
  kg_warc_record_free(&t->cur);
  kg_warc_record_free(&t->next);
  kg_warc_close(t->r);
  free(t);
}

void kg_traffic_status_get(const kg_traffic *t, kg_traffic_status *out) {
  *out = t->st;
  kg_warc_progress(t->r, &out->bytes_done, &out->bytes_total);
  out->skipped = t->st.skipped + t->r->skipped_large;
  out->damaged = t->r->damaged;
  out->damage_offset = t->r->damage_off;
  snprintf(out->damage_why, sizeof(out->damage_why), "%s",
           t->r->damaged ? t->r->damage_why : "");
}

/* The end of WARC input: clean, or damage (an error only when strict). */
static int kg_traffic_end(kg_traffic *t, int rc, char *err, size_t errlen) {
  if (rc == 0) return 0;
  if (!t->strict) return 0;
  snprintf(err, errlen, "damaged record at byte %llu: %s",
           (unsigned long long)t->r->damage_off, t->r->damage_why);
  return -1;
}

static int kg_traffic_next_warc(kg_traffic *t, kg_traffic_item *it, char *err,
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
    if (rc <= 0) return kg_traffic_end(t, rc, err, errlen);
    bool req = kg_is_http_record(&t->cur, "request");
    bool resp = !req && kg_is_http_record(&t->cur, "response");
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
      paired = kg_is_http_record(&t->next, req ? "response" : "request") &&
               kg_linked(&t->cur, &t->next);
    }
    kg_traffic_item_init(it);
    const kg_warc_record *rq = req ? &t->cur : paired ? &t->next : NULL;
    const kg_warc_record *rs = resp ? &t->cur : paired ? &t->next : NULL;
    if (paired) t->have_next = false; /* both halves used */
    int ok;
    if (rq) {
      ok = kg_item_from_request(it, rq);
      if (ok == 0 && rs && kg_item_add_response(it, rs) != 0) t->st.unparseable++;
      if (ok == 0 && rs && rs->offset < it->offset) it->offset = rs->offset;
    } else {
      ok = kg_item_from_response_only(it, rs);
    }
    if (ok != 0) {
      kg_traffic_item_free(it);
      t->st.unparseable++;
      continue;
    }
    t->st.items++;
    return 1;
  }
}

static int kg_traffic_next_lines(kg_traffic *t, kg_traffic_item *it, char *err,
                                 size_t errlen) {
  for (;;) {
    const char *line;
    size_t len;
    uint64_t off;
    bool toolong;
    if (kg_read_line(t->r, &line, &len, &off, &toolong) == 0) {
      if (t->r->read_error[0]) {
        /* A gzip'd log cut short: like WARC damage, at the cut. */
        kg_damage(t->r, t->r->pos, "%s", t->r->read_error);
        return kg_traffic_end(t, -1, err, errlen);
      }
      return 0;
    }
    if (toolong) {
      t->st.unparseable++;
      continue;
    }
    size_t a = 0;
    while (a < len && isspace((unsigned char)line[a])) a++;
    if (a == len || line[a] == '#') continue;
    kg_traffic_item_init(it);
    int rc = t->format == KG_TRAFFIC_NGINX ? kg_traffic_parse_nginx_line(line, len, it)
                                           : kg_traffic_parse_url_line(line, len, it);
    if (rc == 1) {
      it->offset = off;
      t->st.items++;
      return 1;
    }
    kg_traffic_item_free(it);
    if (rc == 0) t->st.skipped++;
    else t->st.unparseable++;
  }
}

int kg_traffic_next(kg_traffic *t, kg_traffic_item *it, char *err, size_t errlen) {
  if (t->format == KG_TRAFFIC_WARC) return kg_traffic_next_warc(t, it, err, errlen);
  return kg_traffic_next_lines(t, it, err, errlen);
}
