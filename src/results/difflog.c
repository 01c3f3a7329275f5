/* difflog.c: JSON-lines diff log (see difflog.h). */
#include "results/difflog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "common/jsonw.h"
#include "common/log.h"
#include "results/sink.h"

struct kg_difflog {
  int fd;                /* O_APPEND */
  pthread_mutex_t lock;  /* one record at a time */
};

int kg_difflog_open(const char *path, kg_difflog **out) {
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  kg_difflog *d = kg_calloc(1, sizeof(*d));
  d->fd = fd;
  pthread_mutex_init(&d->lock, NULL);
  *out = d;
  return 0;
}

int kg_difflog_reopen(kg_difflog *d, const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  pthread_mutex_lock(&d->lock);
  int old = d->fd;
  d->fd = fd;
  pthread_mutex_unlock(&d->lock);
  close(old);
  return 0;
}

int kg_difflog_append(kg_difflog *d, const char *line, size_t len) {
  int rc = 0;
  pthread_mutex_lock(&d->lock);
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(d->fd, line + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      rc = -errno;
      break;
    }
    off += (size_t)w;
  }
  pthread_mutex_unlock(&d->lock);
  return rc;
}

int kg_difflog_write(kg_difflog *d, const kg_result *const *results, size_t n) {
  kg_buf lines = KG_BUF_INIT;
  for (size_t i = 0; i < n; i++) kg_result_format(results[i], &lines);
  int rc = lines.len ? kg_difflog_append(d, lines.data, lines.len) : 0;
  if (rc < 0) kg_log_error("diff log write failed: %s", strerror(-rc));
  kg_buf_free(&lines);
  return rc;
}

void kg_difflog_close(kg_difflog *d) {
  if (d == NULL) return;
  fsync(d->fd);
  close(d->fd);
  pthread_mutex_destroy(&d->lock);
  free(d);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ". The part up to the seconds is cached per
 * thread: records arrive many per second, and gmtime_r plus snprintf for
 * each cost more than the rest of a record's formatting. */
static void kg_format_ts(const struct timespec *ts, char out[64]) {
  static _Thread_local time_t cached_sec = -1;
  static _Thread_local char cached[48];
  static _Thread_local int cached_len;
  if (ts->tv_sec != cached_sec) {
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    cached_len = snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d",
                          tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                          tm.tm_min, tm.tm_sec);
    if (cached_len < 0 || cached_len >= (int)sizeof(cached)) cached_len = 0;
    cached_sec = ts->tv_sec;
  }
  long ms = ts->tv_nsec / 1000000;
  char *p = out;
  memcpy(p, cached, (size_t)cached_len);
  p += cached_len;
  *p++ = '.';
  kg_put_dec3(p, (uint64_t)ms);
  p += 3;
  *p++ = 'Z';
  *p = '\0';
}

static void kg_key(kg_buf *out, const char *key) {
  kg_jsonw_cstr(out, key);
  kg_buf_append(out, ":", 1);
}

static void kg_write_difference(kg_buf *out, bool *first, const char *backend,
                          const char *key, const char *where, const char *m,
                          const char *s) {
  if (!*first) kg_buf_append(out, ",", 1);
  *first = false;
  kg_buf_appendl(out, "{\"backend\":");
  kg_jsonw_cstr(out, backend);
  kg_buf_append(out, ",", 1);
  kg_key(out, key);
  kg_jsonw_cstr(out, where);
  kg_buf_appendl(out, ",\"master\":");
  kg_jsonw_cstr(out, m);
  kg_buf_appendl(out, ",\"shadow\":");
  kg_jsonw_cstr(out, s);
  kg_buf_append(out, "}", 1);
}

/* Written directly (jsonw.h says why); the field order is the documented
 * one. */
void kg_result_format(const kg_result *r, kg_buf *out) {
  char ts[64];
  kg_format_ts(&r->ts, ts);
  kg_buf_appendl(out, "{\"id\":");
  kg_jsonw_cstr(out, r->id);
  kg_buf_appendl(out, ",\"ts\":");
  kg_jsonw_cstr(out, ts);
  kg_buf_appendl(out, ",\"method\":");
  kg_jsonw_cstr(out, r->method);
  kg_buf_appendl(out, ",\"url\":");
  kg_jsonw_cstr(out, r->url);
  kg_buf_appendl(out, ",\"endpoint\":");
  kg_jsonw_cstr(out, r->endpoint);
  kg_buf_appendl(out, ",\"kind\":");
  kg_jsonw_cstr(out, kg_kind_name(r->kind));
  kg_buf_appendl(out, ",\"backends\":{");
  for (size_t i = 0; i < r->n; i++) {
    const kg_resp_view *v = &r->resps[i];
    bool shadow = strcmp(r->roles[i], "shadow") == 0;
    if (i) kg_buf_append(out, ",", 1);
    kg_key(out, v->backend);
    if (v->error) {
      kg_buf_appendl(out, "{\"error\":");
      kg_jsonw_cstr(out, v->error);
    } else {
      kg_buf_appendl(out, "{\"status\":");
      kg_jsonw_u64(out, (uint64_t)(v->status < 0 ? 0 : v->status));
      kg_buf_appendl(out, ",\"bytes\":");
      kg_jsonw_u64(out, (uint64_t)v->bytes);
    }
    /* Microseconds: more digits would be noise. */
    kg_buf_appendl(out, ",\"elapsed_ms\":");
    kg_jsonw_fixed3(out, v->elapsed * 1e3);
    if (shadow && r->pairs[i].equal) kg_buf_appendl(out, ",\"equal\":true");
    else if (shadow) kg_buf_appendl(out, ",\"equal\":false");
    if (i > 0 && !shadow) {
      kg_buf_appendl(out, ",\"role\":");
      kg_jsonw_cstr(out, r->roles[i]);
    }
    if (v->truncated) kg_buf_appendl(out, ",\"truncated\":true");
    if (shadow && r->pairs[i].error && !v->error) {
      kg_buf_appendl(out, ",\"compare_error\":");
      kg_jsonw_cstr(out, r->pairs[i].error);
    }
    kg_buf_append(out, "}", 1);
  }
  if (r->equal) kg_buf_appendl(out, "},\"equal\":true");
  else kg_buf_appendl(out, "},\"equal\":false");
  if (r->truncated) kg_buf_appendl(out, ",\"truncated\":true");
  kg_buf_appendl(out, ",\"differences\":[");
  bool first = true;
  for (size_t i = 0; i < r->n; i++) {
    if (strcmp(r->roles[i], "shadow") != 0) continue;
    const kg_pair_result *p = &r->pairs[i];
    const char *be = r->resps[i].backend;
    if (p->status_differs) {
      char ms[16], ss[16];
      snprintf(ms, sizeof(ms), "%d", r->resps[0].status);
      snprintf(ss, sizeof(ss), "%d", r->resps[i].status);
      kg_write_difference(out, &first, be, "where", "status", ms, ss);
    }
    for (size_t k = 0; k < p->body.n; k++)
      kg_write_difference(out, &first, be, "where", p->body.v[k].where,
                    p->body.v[k].master, p->body.v[k].shadow);
  }
  kg_buf_appendl(out, "],\"header_differences\":[");
  first = true;
  for (size_t i = 0; i < r->n; i++) {
    if (strcmp(r->roles[i], "shadow") != 0) continue;
    const kg_pair_result *p = &r->pairs[i];
    for (size_t k = 0; k < p->headers.n; k++)
      kg_write_difference(out, &first, r->resps[i].backend, "name",
                    p->headers.v[k].where + strlen("header:"),
                    p->headers.v[k].master, p->headers.v[k].shadow);
  }
  kg_buf_appendl(out, "],\"suppressed\":[");
  for (size_t i = 0; i < r->nsuppressed; i++) {
    if (i) kg_buf_append(out, ",", 1);
    kg_jsonw_cstr(out, r->suppressed[i]);
  }
  kg_buf_append(out, "]", 1);
  if (r->regression) {
    kg_buf_appendl(out, ",\"latency_regression\":[");
    first = true;
    for (size_t i = 0; i < r->n; i++) {
      if (!((r->regression >> i) & 1)) continue;
      if (!first) kg_buf_append(out, ",", 1);
      first = false;
      kg_jsonw_cstr(out, r->resps[i].backend);
    }
    kg_buf_append(out, "]", 1);
  }
  kg_buf_appendl(out, ",\"diff\":");
  /* The diffs of all shadows, one after the other, as one string. */
  size_t total = 0;
  for (size_t i = 0; i < r->n; i++)
    if (strcmp(r->roles[i], "shadow") == 0) total += r->pairs[i].diff.len;
  if (total == 0) {
    kg_buf_appendl(out, "\"\"");
  } else {
    kg_buf joined = KG_BUF_INIT;
    for (size_t i = 0; i < r->n; i++)
      if (strcmp(r->roles[i], "shadow") == 0)
        kg_buf_append(&joined, r->pairs[i].diff.data, r->pairs[i].diff.len);
    kg_jsonw_str(out, joined.data, joined.len);
    kg_buf_free(&joined);
  }
  kg_buf_appendl(out, "}\n");
}

/* --- the diff log as a sink (sink.h) -------------------------------------------- */

/* The sink's state: the log and the path SIGHUP opens again. */
typedef struct kg_difflog_sink_state {
  kg_difflog *log; /* owned */
  char *path;      /* owned copy of cfg->diff_log */
} kg_difflog_sink_state;

static int kg_difflog_sink_open(const kg_config *cfg, void **state, char *err,
                                size_t errlen) {
  *state = NULL;
  if (cfg->diff_log == NULL) return 0;
  kg_difflog *log = NULL;
  int r = kg_difflog_open(cfg->diff_log, &log);
  if (r < 0) {
    snprintf(err, errlen, "diff log %s: %s", cfg->diff_log, strerror(-r));
    return -1;
  }
  kg_difflog_sink_state *st = kg_calloc(1, sizeof(*st));
  st->log = log;
  st->path = kg_strdup(cfg->diff_log);
  *state = st;
  return 0;
}

static int kg_difflog_sink_write(void *state, const kg_result *const *results, size_t n) {
  kg_difflog_sink_state *st = state;
  return kg_difflog_write(st->log, results, n);
}

/* logrotate renames the file, then signals: the next lines go to a new
 * file at the configured path. */
static void kg_difflog_sink_reopen(void *state) {
  kg_difflog_sink_state *st = state;
  int r = kg_difflog_reopen(st->log, st->path);
  if (r < 0)
    kg_log_error("diff log %s: cannot reopen, still writing to the old file: %s",
                 st->path, strerror(-r));
}

static void kg_difflog_sink_close(void *state) {
  kg_difflog_sink_state *st = state;
  kg_difflog_close(st->log);
  free(st->path);
  free(st);
}

const kg_sink_ops kg_difflog_sink = {
    .open = kg_difflog_sink_open,
    .write = kg_difflog_sink_write,
    .reopen = kg_difflog_sink_reopen,
    .close = kg_difflog_sink_close,
};
