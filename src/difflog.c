/* difflog.c: JSON-lines diff log (see difflog.h). */
#include "difflog.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

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

void kg_difflog_close(kg_difflog *d) {
  if (d == NULL) return;
  fsync(d->fd);
  close(d->fd);
  pthread_mutex_destroy(&d->lock);
  free(d);
}

static void kg_format_ts(const struct timespec *ts, char *out, size_t n) {
  struct tm tm;
  gmtime_r(&ts->tv_sec, &tm);
  snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           ts->tv_nsec / 1000000);
}

/* JSON strings must be UTF-8; bodies and URLs need not be. Invalid bytes
 * become U+FFFD so a record is always written rather than lost. */
static json_t *kg_json_text(const char *s, size_t n) {
  json_t *j = json_stringn(s, n);
  if (j) return j;
  kg_buf clean = KG_BUF_INIT;
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
                 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; k++)
      ok = ((unsigned char)s[i + k] >> 6) == 2;
    if (ok && len > 1) {
      json_t *probe = json_stringn(s + i, len); /* rejects overlongs etc. */
      ok = probe != NULL;
      json_decref(probe);
    }
    if (ok) {
      kg_buf_append(&clean, s + i, len);
      i += len;
    } else {
      kg_buf_appends(&clean, "\xEF\xBF\xBD");
      i++;
    }
  }
  j = json_stringn(clean.data ? clean.data : "", clean.len);
  kg_buf_free(&clean);
  return j;
}

static json_t *kg_json_opt(const char *s) {
  return s ? kg_json_text(s, strlen(s)) : json_null();
}

static void kg_add_difference(json_t *list, const char *backend,
                              const char *key, const char *where,
                              const char *m, const char *s) {
  json_t *d = json_object();
  json_object_set_new(d, "backend", json_string(backend));
  json_object_set_new(d, key, kg_json_opt(where));
  json_object_set_new(d, "master", kg_json_opt(m));
  json_object_set_new(d, "shadow", kg_json_opt(s));
  json_array_append_new(list, d);
}

void kg_record_format(const kg_record *r, kg_buf *out) {
  char ts[64];
  kg_format_ts(&r->ts, ts, sizeof(ts));
  json_t *o = json_object();
  json_object_set_new(o, "id", json_string(r->id));
  json_object_set_new(o, "ts", json_string(ts));
  json_object_set_new(o, "method", json_string(r->method));
  json_object_set_new(o, "url", kg_json_text(r->url, strlen(r->url)));
  json_object_set_new(o, "endpoint", kg_json_text(r->endpoint, strlen(r->endpoint)));
  json_object_set_new(o, "kind", json_string(kg_kind_name(r->kind)));
  json_t *bes = json_object();
  json_t *diffs = json_array(), *hdiffs = json_array(), *slower = json_array();
  kg_buf unified = KG_BUF_INIT;
  for (size_t i = 0; i < r->n; i++) {
    const kg_resp_view *v = &r->resps[i];
    bool shadow = strcmp(r->roles[i], "shadow") == 0;
    json_t *b = json_object();
    if (v->error) {
      json_object_set_new(b, "error", json_string(v->error));
    } else {
      json_object_set_new(b, "status", json_integer(v->status));
      json_object_set_new(b, "bytes", json_integer((json_int_t)v->bytes));
    }
    /* Rounded to microseconds: more digits would be noise. */
    json_object_set_new(b, "elapsed_ms",
                        json_real((double)(long long)(v->elapsed * 1e6) / 1e3));
    if (shadow) json_object_set_new(b, "equal", json_boolean(r->pairs[i].equal));
    if (i > 0 && !shadow) json_object_set_new(b, "role", json_string(r->roles[i]));
    if (v->truncated) json_object_set_new(b, "truncated", json_true());
    if (shadow && r->pairs[i].error && !v->error)
      json_object_set_new(b, "compare_error", json_string(r->pairs[i].error));
    json_object_set_new(bes, v->backend, b);
    if ((r->regression >> i) & 1) json_array_append_new(slower, json_string(v->backend));
    if (!shadow) continue;
    const kg_pair_result *p = &r->pairs[i];
    if (p->status_differs) {
      char ms[16], ss[16];
      snprintf(ms, sizeof(ms), "%d", r->resps[0].status);
      snprintf(ss, sizeof(ss), "%d", v->status);
      kg_add_difference(diffs, v->backend, "where", "status", ms, ss);
    }
    for (size_t k = 0; k < p->body.n; k++)
      kg_add_difference(diffs, v->backend, "where", p->body.v[k].where,
                        p->body.v[k].master, p->body.v[k].shadow);
    for (size_t k = 0; k < p->headers.n; k++)
      kg_add_difference(hdiffs, v->backend, "name",
                        p->headers.v[k].where + strlen("header:"),
                        p->headers.v[k].master, p->headers.v[k].shadow);
    kg_buf_append(&unified, p->diff.data, p->diff.len);
  }
  json_object_set_new(o, "backends", bes);
  json_object_set_new(o, "equal", json_boolean(r->equal));
  if (r->truncated) json_object_set_new(o, "truncated", json_true());
  json_object_set_new(o, "differences", diffs);
  json_object_set_new(o, "header_differences", hdiffs);
  json_t *sup = json_array();
  for (size_t i = 0; i < r->nsuppressed; i++)
    json_array_append_new(sup, kg_json_text(r->suppressed[i], strlen(r->suppressed[i])));
  json_object_set_new(o, "suppressed", sup);
  if (json_array_size(slower)) json_object_set_new(o, "latency_regression", slower);
  else json_decref(slower);
  json_object_set_new(o, "diff", kg_json_text(unified.data ? unified.data : "", unified.len));
  kg_buf_free(&unified);
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
  json_decref(o);
  kg_buf_appends(out, s);
  kg_buf_append(out, "\n", 1);
  free(s);
}
