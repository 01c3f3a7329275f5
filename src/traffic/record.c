/* record.c: the traffic recorder (see record.h): a bounded queue, a writer
 * thread, WARC 1.1 records, redaction and rotation.
 *
 * Each exchange becomes a request record and, when the master answered, a
 * response record; both are formatted into one buffer and appended with a
 * single write(2) on an O_APPEND descriptor, so a kill -9 leaves the file
 * ending on a whole exchange, or (at worst) with one exchange cut short.
 * A failed or short write is undone with ftruncate so a full disk cannot
 * leave a half record that would hide every record after it.
 *
 * When kagami starts on an existing file, the file is checked record by
 * record (headers only, seeking over blocks): appending after an
 * incomplete record would make everything written later unreadable, so
 * such a file is moved aside (renamed as a rotation would) and a new one
 * started. */
#include "traffic/record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "http/http.h"
#include "common/log.h"
#include "traffic/warc.h"

/* The queue between the event loops and the writer: past either bound an
 * exchange is dropped and counted, never waited for. */
#define KG_RECORD_QUEUE_ITEMS 1024
#define KG_RECORD_QUEUE_BYTES ((size_t)64 << 20)
/* Write errors are logged at most this often (seconds). */
#define KG_RECORD_ERROR_LOG_INTERVAL 60

#define KG_REDACTED "[redacted]"

struct kg_recorder {
  /* settings, copied at open: a reload may free the config */
  char *path;                 /* owned: record.file */
  char *master_host;          /* owned: target URI host when Host is absent */
  bool bodies;                /* record.bodies */
  bool keep_credentials;      /* record.keep_credentials */
  char **redact;              /* owned copies of cfg->redact_headers */
  size_t nredact;
  uint64_t max_bytes;         /* record.max_bytes */
  /* the file: only the writer thread touches these after open */
  int fd;
  uint64_t size;              /* bytes in the current file */
  uint64_t exchanges_in_file; /* exchanges in it (a file holding only its
                                 warcinfo is never rotated) */
  time_t last_error_log;
  /* the queue, under lock */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  kg_record_item *queue[KG_RECORD_QUEUE_ITEMS]; /* ring */
  size_t qhead, qlen;
  size_t qbytes;              /* estimated bytes held by queued items */
  bool closing;
  pthread_t thread;
  /* counters, read from any thread */
  _Atomic uint64_t written;
  _Atomic uint64_t dropped;
};

/* --- items ------------------------------------------------------------------- */

void kg_record_item_free(kg_record_item *item) {
  if (item == NULL) return;
  free(item->method);
  free(item->url);
  kg_hdrs_free(&item->req_hdrs);
  kg_buf_free(&item->req_body);
  free(item->reason);
  kg_hdrs_free(&item->resp_hdrs);
  kg_buf_free(&item->resp_body);
  free(item->error);
  free(item);
}

static size_t kg_record_item_bytes(const kg_record_item *it) {
  return sizeof(*it) + (it->url ? strlen(it->url) : 0) + it->req_hdrs.data.len +
         it->req_body.len + it->resp_hdrs.data.len + it->resp_body.len;
}

/* --- formatting ------------------------------------------------------------------ */

static bool kg_recorder_redacts(const kg_recorder *r, const char *name) {
  if (r->keep_credentials) return false;
  for (size_t i = 0; i < r->nredact; i++)
    if (strcasecmp(r->redact[i], name) == 0) return true;
  return false;
}

/* Appends a cookie list ("a=1; b=2") with every value replaced: the names
 * stay, so a replay's comparison (which looks at cookie names only) and a
 * person reading the file still see which cookies there were. */
static void kg_recorder_redact_cookies(kg_buf *b, const char *v, size_t n, bool first_only) {
  size_t i = 0;
  bool first = true;
  while (i < n) {
    size_t e = i;
    while (e < n && v[e] != ';') e++;
    if (first || !first_only) {
      const char *eq = memchr(v + i, '=', e - i);
      if (eq) {
        kg_buf_append(b, v + i, (size_t)(eq - (v + i)) + 1);
        kg_buf_appends(b, KG_REDACTED);
      } else {
        kg_buf_append(b, v + i, e - i);
      }
    } else {
      kg_buf_append(b, v + i, e - i); /* Set-Cookie attributes: no secret */
    }
    if (e < n) kg_buf_append(b, ";", 1);
    first = false;
    i = e + 1;
  }
}

/* Appends "Name: value\r\n" for field i of h, redacted if it must be. */
static void kg_recorder_format_field(const kg_recorder *r, kg_buf *b, const kg_hdrs *h,
                                     size_t i) {
  const char *name = kg_hdrs_name(h, i);
  const char *v = kg_hdrs_value(h, i);
  size_t vlen = h->v[i].value_len;
  kg_buf_append(b, name, h->v[i].name_len);
  kg_buf_append(b, ": ", 2);
  if (!kg_recorder_redacts(r, name)) kg_buf_append(b, v, vlen);
  else if (strcasecmp(name, "cookie") == 0) kg_recorder_redact_cookies(b, v, vlen, false);
  else if (strcasecmp(name, "set-cookie") == 0) kg_recorder_redact_cookies(b, v, vlen, true);
  else kg_buf_appends(b, KG_REDACTED);
  kg_buf_append(b, "\r\n", 2);
}

static bool kg_recorder_method_has_body(const char *m) {
  return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
}

/* The request as forwarded, re-framed with one Content-Length (the fields
 * came without framing ones). */
static void kg_recorder_format_request(const kg_recorder *r, const kg_record_item *it,
                                       kg_buf *b, bool *truncated) {
  kg_buf_appendf(b, "%s %s HTTP/1.1\r\n", it->method, it->url);
  for (size_t i = 0; i < it->req_hdrs.n; i++) {
    const char *name = kg_hdrs_name(&it->req_hdrs, i);
    size_t nlen = it->req_hdrs.v[i].name_len;
    if (kg_str_ieq(name, nlen, "content-length") || kg_str_ieq(name, nlen, "transfer-encoding"))
      continue;
    kg_recorder_format_field(r, b, &it->req_hdrs, i);
  }
  size_t blen = r->bodies ? it->req_body.len : 0;
  *truncated = !r->bodies && it->req_body.len > 0;
  if (blen || it->req_body.len || kg_recorder_method_has_body(it->method))
    kg_buf_appendf(b, "Content-Length: %zu\r\n", blen);
  kg_buf_append(b, "\r\n", 2);
  kg_buf_append(b, it->req_body.data, blen);
}

/* Responses that have no body whatever their fields say: their
 * Content-Length describes the resource, and is kept as the master sent
 * it. */
static bool kg_recorder_response_bodiless(const kg_record_item *it) {
  return strcmp(it->method, "HEAD") == 0 || (it->status >= 100 && it->status < 200) ||
         it->status == 204 || it->status == 304;
}

/* The master's answer as HTTP/1.1, with the de-chunked body and a
 * Content-Length; fields that describe the connection are left out. */
static void kg_recorder_format_response(const kg_recorder *r, const kg_record_item *it,
                                        kg_buf *b, bool *truncated) {
  kg_buf_appendf(b, "HTTP/1.1 %03d %s\r\n", it->status, it->reason ? it->reason : "");
  bool bodiless = kg_recorder_response_bodiless(it);
  const kg_hdrs *h = &it->resp_hdrs;
  for (size_t i = 0; i < h->n; i++) {
    const char *name = kg_hdrs_name(h, i);
    size_t nlen = h->v[i].name_len;
    if (kg_http_is_hop_by_hop(name, nlen) || kg_http_connection_lists(h, name, nlen))
      continue;
    if (!bodiless && kg_str_ieq(name, nlen, "content-length")) continue;
    kg_recorder_format_field(r, b, h, i);
  }
  size_t blen = bodiless ? 0 : r->bodies ? it->resp_body.len : 0;
  *truncated = it->resp_truncated || (!r->bodies && it->resp_body.len > 0);
  if (!bodiless) kg_buf_appendf(b, "Content-Length: %zu\r\n", blen);
  kg_buf_append(b, "\r\n", 2);
  kg_buf_append(b, it->resp_body.data, blen);
}

static void kg_recorder_target_uri(const kg_recorder *r, const kg_record_item *it, kg_buf *out) {
  const char *url = it->url;
  if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0) {
    kg_buf_appends(out, url);
    return;
  }
  long h = kg_hdrs_find(&it->req_hdrs, "host");
  const char *host = h >= 0 ? kg_hdrs_value(&it->req_hdrs, (size_t)h) : r->master_host;
  if (*host == '\0') host = r->master_host;
  /* "*" (OPTIONS) and authority-form (CONNECT) targets name no path. */
  kg_buf_appendf(out, "http://%s%s", host, url[0] == '/' ? url : "/");
}

/* Appends the records of one exchange to out. */
static void kg_recorder_format_exchange(const kg_recorder *r, const kg_record_item *it,
                                        kg_buf *out) {
  char req_id[KG_WARC_ID_LEN], resp_id[KG_WARC_ID_LEN], date[32];
  kg_warc_new_id(req_id);
  kg_warc_date((double)it->ts.tv_sec + (double)it->ts.tv_nsec / 1e9, date);
  kg_buf uri = KG_BUF_INIT, block = KG_BUF_INIT;
  kg_recorder_target_uri(r, it, &uri);
  bool failed = it->error != NULL || it->status == 0;

  kg_hdrs f = KG_HDRS_INIT;
  bool truncated = false;
  kg_recorder_format_request(r, it, &block, &truncated);
  kg_warc_add_field(&f, "WARC-Type", "request");
  kg_warc_add_field(&f, "WARC-Record-ID", req_id);
  kg_warc_add_field(&f, "WARC-Date", date);
  kg_warc_add_field(&f, "WARC-Target-URI", uri.data);
  if (truncated) kg_warc_add_field(&f, "WARC-Truncated", "length");
  if (failed) {
    char *e = kg_warc_clean_value(it->error ? it->error : "no response");
    kg_warc_add_field(&f, "WARC-Kagami-Error", e);
    free(e);
  }
  kg_warc_add_field(&f, "Content-Type", "application/http;msgtype=request");
  kg_warc_format(out, &f, block.data, block.len);

  if (!failed) {
    kg_hdrs_reset(&f);
    kg_buf_reset(&block);
    kg_warc_new_id(resp_id);
    char *reason = it->reason ? kg_warc_clean_value(it->reason) : NULL;
    kg_record_item tmp = *it;
    tmp.reason = reason;
    kg_recorder_format_response(r, &tmp, &block, &truncated);
    free(reason);
    char elapsed[32];
    snprintf(elapsed, sizeof(elapsed), "%.6f", it->elapsed >= 0 ? it->elapsed : 0.0);
    kg_warc_add_field(&f, "WARC-Type", "response");
    kg_warc_add_field(&f, "WARC-Record-ID", resp_id);
    kg_warc_add_field(&f, "WARC-Date", date);
    kg_warc_add_field(&f, "WARC-Target-URI", uri.data);
    kg_warc_add_field(&f, "WARC-Concurrent-To", req_id);
    kg_warc_add_field(&f, "WARC-Kagami-Elapsed", elapsed);
    if (truncated) kg_warc_add_field(&f, "WARC-Truncated", "length");
    kg_warc_add_field(&f, "Content-Type", "application/http;msgtype=response");
    kg_warc_format(out, &f, block.data, block.len);
  }
  kg_hdrs_free(&f);
  kg_buf_free(&block);
  kg_buf_free(&uri);
}

/* The warcinfo record that starts every file: who wrote it, in what
 * format. */
static void kg_recorder_format_warcinfo(const kg_recorder *r, kg_buf *out) {
  const char *base = strrchr(r->path, '/');
  base = base ? base + 1 : r->path;
  kg_buf body = KG_BUF_INIT;
  kg_buf_appendf(&body,
                 "software: kagami/%s\r\n"
                 "format: WARC File Format 1.1\r\n"
                 "conformsTo: https://iipc.github.io/warc-specifications/"
                 "specifications/warc-format/warc-1.1/\r\n"
                 "description: HTTP traffic recorded by the kagami shadow proxy; "
                 "request then response record per exchange\r\n",
                 KG_VERSION);
  kg_warc_format_warcinfo(out, base, body.data, body.len);
  kg_buf_free(&body);
}

/* --- the file -------------------------------------------------------------------- */

/* Writes all of p at the end of the file. On failure the file is cut back
 * to where it was, so no partial record stays. 0 or -errno. */
static int kg_recorder_append(kg_recorder *r, const char *p, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t w = write(r->fd, p + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = w < 0 ? errno : ENOSPC;
      if (off > 0 && ftruncate(r->fd, (off_t)r->size) != 0) { /* nothing more to do */ }
      return -e;
    }
    off += (size_t)w;
  }
  r->size += n;
  return 0;
}

/* Renames path to path.YYYYMMDDTHHMMSSZ (with .1, .2... if that exists).
 * Writes the new name into out. 0 or -errno. */
static int kg_recorder_move_aside(const char *path, char *out, size_t outlen) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  char stamp[32];
  strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
  struct stat st;
  snprintf(out, outlen, "%s.%s", path, stamp);
  for (int i = 1; stat(out, &st) == 0 && i < 1000; i++)
    snprintf(out, outlen, "%s.%s.%d", path, stamp, i);
  if (rename(path, out) != 0) return -errno;
  return 0;
}

/* Opens (creating) the current file; a new or empty file gets its
 * warcinfo record first. 0 or -errno. */
static int kg_recorder_open_file(kg_recorder *r) {
  r->fd = open(r->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (r->fd < 0) return -errno;
  struct stat st;
  if (fstat(r->fd, &st) != 0) {
    int e = errno;
    close(r->fd);
    r->fd = -1;
    return -e;
  }
  r->size = (uint64_t)st.st_size;
  r->exchanges_in_file = r->size > 0; /* an old file: rotatable */
  if (r->size == 0) {
    kg_buf b = KG_BUF_INIT;
    kg_recorder_format_warcinfo(r, &b);
    int rc = kg_recorder_append(r, b.data, b.len);
    kg_buf_free(&b);
    if (rc < 0) {
      close(r->fd);
      r->fd = -1;
      return rc;
    }
  }
  return 0;
}

/* Closes the current file, moves it aside and starts a new one. On
 * failure recording goes on in the current file (or stops when none can
 * be opened), with a log line. */
static void kg_recorder_rotate(kg_recorder *r) {
  char moved[4096];
  fsync(r->fd);
  int rc = kg_recorder_move_aside(r->path, moved, sizeof(moved));
  if (rc < 0) {
    kg_log_error("record: cannot rotate %s: %s (recording goes on in it)", r->path,
                 strerror(-rc));
    return;
  }
  close(r->fd);
  r->fd = -1;
  rc = kg_recorder_open_file(r);
  if (rc < 0) {
    kg_log_error("record: rotated %s to %s but cannot open a new file: %s", r->path,
                 moved, strerror(-rc));
    return;
  }
  kg_log_info("record: rotated %s to %s", r->path, moved);
}

/* Writes one exchange (formatted into the scratch buffer b), rotating
 * first when it would take the file past max_bytes. A failed write drops
 * the exchange and counts it; the error is logged at most once a
 * KG_RECORD_ERROR_LOG_INTERVAL. The caller still owns it. */
static void kg_recorder_write(kg_recorder *r, kg_record_item *it, kg_buf *b) {
  kg_buf_reset(b);
  kg_recorder_format_exchange(r, it, b);
  if (r->fd >= 0 && r->exchanges_in_file > 0 && r->size + b->len > r->max_bytes)
    kg_recorder_rotate(r);
  int rc = r->fd >= 0 ? kg_recorder_append(r, b->data, b->len) : -EBADF;
  if (rc == 0) {
    r->exchanges_in_file++;
    atomic_fetch_add(&r->written, 1);
    return;
  }
  atomic_fetch_add(&r->dropped, 1);
  time_t now = time(NULL);
  if (now - r->last_error_log >= KG_RECORD_ERROR_LOG_INTERVAL) {
    r->last_error_log = now;
    kg_log_error("record: cannot write to %s: %s (exchanges are dropped and counted)",
                 r->path, strerror(-rc));
  }
}

/* --- the writer thread ------------------------------------------------------------- */

/* The writer: takes everything queued at once, writes it without the
 * lock, and ends when closing and the queue is empty. Owns the items it
 * takes. */
static void *kg_recorder_thread(void *arg) {
  kg_recorder *r = arg;
  kg_thread_name("kg-record");
  kg_record_item *batch[KG_RECORD_QUEUE_ITEMS];
  kg_buf b = KG_BUF_INIT;
  pthread_mutex_lock(&r->lock);
  for (;;) {
    while (r->qlen == 0 && !r->closing) pthread_cond_wait(&r->cond, &r->lock);
    if (r->qlen == 0) break; /* closing, and everything is written */
    size_t n = r->qlen;
    for (size_t i = 0; i < n; i++)
      batch[i] = r->queue[(r->qhead + i) % KG_RECORD_QUEUE_ITEMS];
    r->qhead = (r->qhead + n) % KG_RECORD_QUEUE_ITEMS;
    r->qlen = 0;
    r->qbytes = 0;
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; i < n; i++) {
      kg_recorder_write(r, batch[i], &b);
      kg_record_item_free(batch[i]);
    }
    pthread_mutex_lock(&r->lock);
  }
  pthread_mutex_unlock(&r->lock);
  kg_buf_free(&b);
  return NULL;
}

/* --- public ------------------------------------------------------------------------ */

static void kg_recorder_free(kg_recorder *r) {
  free(r->path);
  free(r->master_host);
  for (size_t i = 0; i < r->nredact; i++) free(r->redact[i]);
  free(r->redact);
  free(r);
}

int kg_recorder_open(const kg_config *cfg, kg_recorder **out, char *err,
                     size_t errlen) {
  kg_recorder *r = kg_calloc(1, sizeof(*r));
  r->path = kg_strdup(cfg->record_file);
  r->master_host = kg_strdup(cfg->nbackends ? cfg->backends[0].addr.text : "localhost");
  r->bodies = cfg->record_bodies;
  r->keep_credentials = cfg->record_keep_credentials;
  r->max_bytes = cfg->record_max_bytes ? cfg->record_max_bytes : UINT64_MAX;
  r->nredact = cfg->nredact_headers;
  r->redact = kg_calloc(r->nredact, sizeof(char *));
  for (size_t i = 0; i < r->nredact; i++) r->redact[i] = kg_strdup(cfg->redact_headers[i]);
  r->fd = -1;

  /* An existing file must end on a whole record before we append to it. */
  int fd = open(r->path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    struct stat st;
    uint64_t bad = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        !kg_warc_file_whole(fd, (uint64_t)st.st_size, &bad)) {
      char moved[4096];
      int rc = kg_recorder_move_aside(r->path, moved, sizeof(moved));
      if (rc < 0) {
        snprintf(err, errlen, "record file %s: is not whole WARC records from byte "
                 "%" PRIu64 " and cannot be moved aside: %s", r->path, bad, strerror(-rc));
        close(fd);
        kg_recorder_free(r);
        return -1;
      }
      kg_log_warn("record: %s is not whole WARC records from byte %" PRIu64
                  " (an interrupted write?); moved it to %s and started a new file",
                  r->path, bad, moved);
    }
    close(fd);
  }
  int rc = kg_recorder_open_file(r);
  if (rc < 0) {
    snprintf(err, errlen, "record file %s: %s", r->path, strerror(-rc));
    kg_recorder_free(r);
    return -1;
  }
  pthread_mutex_init(&r->lock, NULL);
  pthread_cond_init(&r->cond, NULL);
  if ((rc = pthread_create(&r->thread, NULL, kg_recorder_thread, r)) != 0) {
    snprintf(err, errlen, "record file %s: cannot start the writer thread: %s", r->path,
             strerror(rc));
    close(r->fd);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    kg_recorder_free(r);
    return -1;
  }
  *out = r;
  return 0;
}

bool kg_recorder_submit(kg_recorder *r, kg_record_item *item) {
  size_t bytes = kg_record_item_bytes(item);
  pthread_mutex_lock(&r->lock);
  bool room = !r->closing && r->qlen < KG_RECORD_QUEUE_ITEMS &&
              (r->qlen == 0 || r->qbytes + bytes <= KG_RECORD_QUEUE_BYTES);
  if (room) {
    r->queue[(r->qhead + r->qlen) % KG_RECORD_QUEUE_ITEMS] = item;
    r->qlen++;
    r->qbytes += bytes;
    pthread_cond_signal(&r->cond);
  }
  pthread_mutex_unlock(&r->lock);
  if (!room) {
    atomic_fetch_add(&r->dropped, 1);
    kg_record_item_free(item);
  }
  return room;
}

uint64_t kg_recorder_written(kg_recorder *r) { return atomic_load(&r->written); }

uint64_t kg_recorder_dropped(kg_recorder *r) { return atomic_load(&r->dropped); }

void kg_recorder_close(kg_recorder *r) {
  if (r == NULL) return;
  pthread_mutex_lock(&r->lock);
  r->closing = true;
  pthread_cond_signal(&r->cond);
  pthread_mutex_unlock(&r->lock);
  pthread_join(r->thread, NULL);
  if (r->fd >= 0) {
    fsync(r->fd);
    close(r->fd);
  }
  pthread_mutex_destroy(&r->lock);
  pthread_cond_destroy(&r->cond);
  kg_recorder_free(r);
}
