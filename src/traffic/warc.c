/* warc.c: the WARC container (see warc.h): record IDs and dates, writing
 * records, and a streaming reader (plain or gzip) that frames records,
 * latches damage, and hands lines to the sources that are not WARC. */
#include "traffic/warc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/common.h"

/* --- ids and dates ------------------------------------------------------------ */

/* getrandom(2) cannot fail for 16 bytes once the pool is initialised; the
 * fallbacks only matter on kernels without it. */
static void kg_warc_random_bytes(unsigned char *p, size_t n) {
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
  kg_warc_random_bytes(b, sizeof(b));
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

int kg_warc_parse_date(const char *s, double *out) {
  struct tm tm = {0};
  int y, mo, d, h, mi, sec;
  const char *p = s;
  if (!kg_read_digits(&p, 4, &y) || *p++ != '-' || !kg_read_digits(&p, 2, &mo) ||
      *p++ != '-' || !kg_read_digits(&p, 2, &d) || *p++ != 'T' ||
      !kg_read_digits(&p, 2, &h) || *p++ != ':' || !kg_read_digits(&p, 2, &mi) ||
      *p++ != ':' || !kg_read_digits(&p, 2, &sec))
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

void kg_warc_add_field(kg_hdrs *fields, const char *name, const char *value) {
  kg_hdrs_add(fields, name, strlen(name), value, strlen(value));
}

char *kg_warc_clean_value(const char *s) {
  char *c = kg_strdup(s);
  for (char *p = c; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
  return c;
}

void kg_warc_format_warcinfo(kg_buf *out, const char *filename, const char *info,
                             size_t info_len) {
  char id[KG_WARC_ID_LEN], date[32];
  kg_warc_new_id(id);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  kg_warc_date((double)now.tv_sec + (double)now.tv_nsec / 1e9, date);
  kg_hdrs f = KG_HDRS_INIT;
  kg_warc_add_field(&f, "WARC-Type", "warcinfo");
  kg_warc_add_field(&f, "WARC-Record-ID", id);
  kg_warc_add_field(&f, "WARC-Date", date);
  char *fname = kg_warc_clean_value(filename);
  kg_warc_add_field(&f, "WARC-Filename", fname);
  free(fname);
  kg_warc_add_field(&f, "Content-Type", "application/warc-fields");
  kg_warc_format(out, &f, info, info_len);
  kg_hdrs_free(&f);
}

/* A cheap check of framing only: the version line, a Content-Length, and
 * CRLF CRLF where the block should end. Field syntax is the reader's
 * business; what matters before appending is that the last record is
 * whole. */
bool kg_warc_file_whole(int fd, uint64_t size, uint64_t *bad) {
  char h[4096];
  uint64_t off = 0;
  while (off < size) {
    *bad = off;
    ssize_t n = pread(fd, h, sizeof(h) - 1, (off_t)off);
    if (n < 8 || memcmp(h, "WARC/1.", 7) != 0) return false;
    h[n] = '\0';
    char *end = strstr(h, "\r\n\r\n");
    if (end == NULL) return false;
    *end = '\0';
    uint64_t hlen = (uint64_t)(end - h) + 4;
    const char *cl = strcasestr(h, "\r\nContent-Length:");
    if (cl == NULL) return false;
    char *e = NULL;
    unsigned long long blen = strtoull(cl + 17, &e, 10);
    if (e == cl + 17) return false;
    uint64_t next = off + hlen + blen + 4;
    char tail[4];
    if (next > size || pread(fd, tail, 4, (off_t)(next - 4)) != 4 ||
        memcmp(tail, "\r\n\r\n", 4) != 0)
      return false;
    off = next;
  }
  return true;
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
static size_t kg_warc_fill(kg_warc_reader *r, size_t need) {
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

static void kg_warc_consume(kg_warc_reader *r, size_t n) {
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
static int kg_warc_latch_damage(kg_warc_reader *r, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int kg_warc_latch_damage(kg_warc_reader *r, uint64_t off, const char *fmt, ...) {
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

/* See warc.h. The window grows to hold a whole line, up to
 * KG_WARC_MAX_LINE. */
int kg_warc_read_line(kg_warc_reader *r, const char **line, size_t *len,
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
      kg_warc_consume(r, n + 1);
      return 1;
    }
    if (avail >= KG_WARC_MAX_LINE) {
      *toolong = true;
      *off = r->pos;
      *line = "";
      *len = 0;
      kg_warc_consume(r, avail);
      for (;;) {
        size_t a = kg_warc_fill(r, 1);
        if (a == 0) break;
        const char *q = memchr(r->buf + r->start, '\n', a);
        if (q) {
          kg_warc_consume(r, (size_t)(q - (r->buf + r->start)) + 1);
          break;
        }
        kg_warc_consume(r, a);
      }
      return 1;
    }
    scanned = avail;
    if (kg_warc_fill(r, avail + 1) == avail) {
      if (avail == 0)
        return r->read_error[0] ? kg_warc_latch_damage(r, r->pos, "%s", r->read_error) : 0;
      *off = r->pos; /* a last line without a newline */
      *line = r->buf + r->start;
      *len = (*line)[avail - 1] == '\r' ? avail - 1 : avail;
      kg_warc_consume(r, avail);
      return 1;
    }
  }
}

size_t kg_warc_peek(kg_warc_reader *r, size_t need, const char **p) {
  size_t avail = kg_warc_fill(r, need);
  *p = r->buf ? r->buf + r->start : "";
  return avail;
}

const char *kg_warc_unreadable(const kg_warc_reader *r) {
  return r->read_error[0] && r->pos == 0 && r->end == r->start ? r->read_error : NULL;
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
static size_t kg_warc_header_end(const char *p, size_t n) {
  for (size_t i = 0; i + 1 < n; i++) {
    if (p[i] != '\n') continue;
    if (p[i + 1] == '\n') return i + 2;
    if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n') return i + 3;
  }
  return 0;
}

/* Parses the named fields of a header (after the version line) into
 * fields. Returns NULL, or what is wrong. */
static const char *kg_warc_parse_fields(const char *p, size_t n, kg_hdrs *fields) {
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
      if (kg_warc_fill(r, 1) == 0) break;
      char c = r->buf[r->start];
      if (c != '\r' && c != '\n') break;
      kg_warc_consume(r, 1);
    }
    uint64_t off = r->pos;
    size_t avail = kg_warc_fill(r, 1);
    if (avail == 0) {
      if (r->read_error[0]) return kg_warc_latch_damage(r, off, "%s", r->read_error);
      return 0;
    }
    /* Anything else than a version line here is not a record. */
    size_t k = KG_MIN(kg_warc_fill(r, 7), (size_t)7);
    if (memcmp(r->buf + r->start, "WARC/1.", k) != 0)
      return kg_warc_latch_damage(r, off, "corrupt: not a WARC record (no WARC/1.x line)");
    /* The header: fill until its empty line shows up. */
    size_t hend = 0;
    size_t want = 512;
    for (;;) {
      avail = kg_warc_fill(r, want);
      hend = kg_warc_header_end(r->buf + r->start, KG_MIN(avail, (size_t)KG_WARC_MAX_HEADER));
      if (hend) break;
      if (avail >= KG_WARC_MAX_HEADER)
        return kg_warc_latch_damage(r, off, "corrupt: no end of the record header within %d bytes",
                                    KG_WARC_MAX_HEADER);
      if (avail < want)
        return kg_warc_latch_damage(r, off, "truncated: the file ends inside a record header%s%s",
                                    r->read_error[0] ? ": " : "", r->read_error);
      want *= 2;
    }
    const char *h = r->buf + r->start;
    if (hend < 8 || memcmp(h, "WARC/1.", 7) != 0)
      return kg_warc_latch_damage(r, off, "corrupt: not a WARC record (no WARC/1.x line)");
    const char *nl = memchr(h, '\n', hend);
    size_t first = (size_t)(nl - h) + 1;
    kg_warc_record_free(rec);
    kg_warc_record_init(rec);
    const char *bad = kg_warc_parse_fields(h + first, hend - first, &rec->fields);
    if (bad) return kg_warc_latch_damage(r, off, "corrupt: %s", bad);
    const char *cl = kg_warc_field(rec, "Content-Length");
    if (cl == NULL) return kg_warc_latch_damage(r, off, "corrupt: no Content-Length");
    uint64_t blen = 0;
    if (*cl == '\0' || strlen(cl) > 15)
      return kg_warc_latch_damage(r, off, "corrupt: bad Content-Length '%.40s'", cl);
    for (const char *p = cl; *p; p++) {
      if (!isdigit((unsigned char)*p))
        return kg_warc_latch_damage(r, off, "corrupt: bad Content-Length '%.40s'", cl);
      blen = blen * 10 + (uint64_t)(*p - '0');
    }
    if (blen > KG_WARC_MAX_BLOCK) {
      /* Passed over without being held: consume it as it streams by. */
      kg_warc_consume(r, hend);
      uint64_t left = blen + 4;
      char tail[4];
      size_t ntail = 0;
      while (left > 0) {
        size_t a = kg_warc_fill(r, 1);
        if (a == 0)
          return kg_warc_latch_damage(r, off, "truncated: the block should be %llu bytes, "
                                      "the file ends before it does", (unsigned long long)blen);
        size_t take = (size_t)KG_MIN((uint64_t)a, left);
        for (size_t j = 0; j < take; j++) /* remember the last 4 bytes */
          if (left - j <= 4) tail[ntail++] = r->buf[r->start + j];
        kg_warc_consume(r, take);
        left -= take;
      }
      if (ntail != 4 || memcmp(tail, "\r\n\r\n", 4) != 0)
        return kg_warc_latch_damage(r, off, "corrupt: the block is not followed by CRLF CRLF "
                                    "(wrong Content-Length?)");
      r->skipped_large++;
      continue;
    }
    size_t total = hend + (size_t)blen + 4;
    avail = kg_warc_fill(r, total);
    if (avail < hend + (size_t)blen)
      return kg_warc_latch_damage(r, off, "truncated: the block should be %llu bytes, the file "
                                  "ends after %zu%s%s", (unsigned long long)blen, avail - hend,
                                  r->read_error[0] ? ": " : "", r->read_error);
    if (avail < total) {
      /* The block is whole but its closing CRLF CRLF is not: either cut
       * right there, or followed by something else. */
      const char *t = r->buf + r->start + hend + blen;
      size_t nt = avail - hend - (size_t)blen;
      if (memcmp(t, "\r\n\r\n", nt) == 0)
        return kg_warc_latch_damage(r, off, "truncated: the file ends before the record's "
                                    "closing CRLF CRLF");
      return kg_warc_latch_damage(r, off, "corrupt: the block is not followed by CRLF CRLF "
                                  "(wrong Content-Length?)");
    }
    if (memcmp(r->buf + r->start + hend + blen, "\r\n\r\n", 4) != 0)
      return kg_warc_latch_damage(r, off, "corrupt: the block is not followed by CRLF CRLF "
                                  "(wrong Content-Length?)");
    kg_buf_append(&rec->block, r->buf + r->start + hend, (size_t)blen);
    rec->offset = off;
    rec->length = total;
    kg_warc_consume(r, total);
    return 1;
  }
}

