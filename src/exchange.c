/* exchange.c: one request's fan-out, completion and result (see exchange.h). */
#include "exchange.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "difflog.h"
#include "hooks.h"
#include "log.h"
#include "proxy.h"
#include "worker.h"

static bool kg_method_idempotent(int m) {
  return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS ||
         m == HTTP_PUT || m == HTTP_DELETE || m == HTTP_TRACE;
}

static kg_req_view kg_exchange_view(const kg_exchange *ex) {
  return (kg_req_view){.method = ex->method,
                       .url = ex->req.url.data ? ex->req.url.data : "/",
                       .path = ex->path.data ? ex->path.data : "/",
                       .hdrs = &ex->req.hdrs,
                       .body = ex->body.data,
                       .body_len = ex->body.len};
}

/* Which backends get this request: bit i = cfg->backends[i]. The master
 * (bit 0) always does; shadows only for shadow_methods, then only when the
 * sample says so, then as the select_backends hook says (nil: all). */
static uint64_t kg_exchange_select(kg_exchange *ex) {
  kg_worker *w = ex->w;
  const kg_config *cfg = w->cfg;
  uint64_t all = cfg->nbackends >= 64 ? ~0ULL : (1ULL << cfg->nbackends) - 1;
  if (cfg->nbackends == 1) return 1;
  if (!(cfg->shadow_methods & (1ULL << ex->req.method))) return 1;
  if (!kg_sample(&w->rng, cfg->sample)) return 1;
  uint64_t mask = all;
  if (cfg->has_select_backends) {
    kg_req_view v = kg_exchange_view(ex);
    uint64_t chosen = 0;
    if (kg_hooks_select_backends(w->hooks, &v, &chosen) == 1)
      mask = chosen & all;
  }
  return mask | 1;
}

/* The fields every backend gets: the client's, minus those that describe
 * the client's connection (hop-by-hop, and any it lists in Connection),
 * minus Expect (kagami answers 100-continue itself) and the framing fields
 * (the body is re-framed with one Content-Length). */
static void kg_exchange_forward_hdrs(const kg_exchange *ex, kg_hdrs *out) {
  const kg_hdrs *in = &ex->req.hdrs;
  for (size_t i = 0; i < in->n; i++) {
    const char *name = kg_hdrs_name(in, i);
    size_t nlen = in->v[i].name_len;
    if (kg_http_is_hop_by_hop(name, nlen) ||
        kg_http_connection_lists(in, name, nlen) ||
        kg_str_ieq(name, nlen, "expect") ||
        kg_str_ieq(name, nlen, "content-length"))
      continue;
    kg_hdrs_add(out, name, nlen, kg_hdrs_value(in, i), in->v[i].value_len);
  }
}

static void kg_exchange_build_request(const kg_exchange *ex, kg_leg *leg,
                                      const kg_hdrs *h) {
  kg_buf *b = &leg->req;
  kg_buf_appendf(b, "%s %s HTTP/1.1\r\n", ex->method,
                 ex->req.url.data ? ex->req.url.data : "/");
  bool host = false;
  for (size_t i = 0; i < h->n; i++) {
    kg_buf_append(b, kg_hdrs_name(h, i), h->v[i].name_len);
    kg_buf_append(b, ": ", 2);
    kg_buf_append(b, kg_hdrs_value(h, i), h->v[i].value_len);
    kg_buf_append(b, "\r\n", 2);
    if (kg_str_ieq(kg_hdrs_name(h, i), h->v[i].name_len, "host")) host = true;
  }
  if (!host) /* HTTP/1.0 clients may omit it; HTTP/1.1 backends need it */
    kg_buf_appendf(b, "Host: %s\r\n", leg->pool->be->addr.text);
  if (ex->body.len || ex->req.has_length || ex->req.chunked)
    kg_buf_appendf(b, "Content-Length: %zu\r\n", ex->body.len);
  kg_buf_append(b, "\r\n", 2);
  kg_buf_append(b, ex->body.data, ex->body.len);
}

static void kg_exchange_make_id(kg_exchange *ex) {
  kg_worker *w = ex->w;
  uint64_t ms = (uint64_t)ex->arrived.tv_sec * 1000u +
                (uint64_t)ex->arrived.tv_nsec / 1000000u;
  snprintf(ex->id, sizeof(ex->id), "%011" PRIx64 "%02x%07" PRIx64, ms,
           (unsigned)(w->id & 0xff), (uint64_t)((w->seq++) & 0xfffffffULL));
}

kg_exchange *kg_exchange_new(kg_worker *w, kg_client *client,
                             kg_http_msg *req, kg_buf *body) {
  const kg_config *cfg = w->cfg;
  kg_exchange *ex = kg_calloc(1, sizeof(*ex));
  ex->w = w;
  ex->client = client;
  kg_http_msg_init(&ex->req);
  kg_http_msg_move(&ex->req, req);
  ex->body = *body;
  *body = (kg_buf)KG_BUF_INIT;
  ex->method = http_method_str((enum http_method)ex->req.method);
  clock_gettime(CLOCK_REALTIME, &ex->arrived);
  kg_exchange_make_id(ex);
  const char *url = ex->req.url.data ? ex->req.url.data : "/";
  kg_buf_append(&ex->path, url, strcspn(url, "?#"));
  w->nexchanges++;
  w->stats.requests++;

  uint64_t mask = kg_exchange_select(ex);
  ex->legs = kg_calloc(cfg->nbackends, sizeof(kg_leg));
  kg_hdrs fwd = KG_HDRS_INIT, munged = KG_HDRS_INIT;
  kg_exchange_forward_hdrs(ex, &fwd);
  kg_req_view view = kg_exchange_view(ex);
  for (size_t i = 0; i < cfg->nbackends; i++) {
    if (!(mask & (1ULL << i))) continue;
    kg_pool *pool = &w->pools[i];
    if (i > 0 && pool->inflight >= cfg->shadow_max_inflight) {
      w->stats.dropped++; /* bounded shadow work: drop, never queue */
      continue;
    }
    kg_leg *leg = &ex->legs[ex->nlegs++];
    leg->ex = ex;
    leg->pool = pool;
    leg->head_request = ex->req.method == HTTP_HEAD;
    leg->retry_ok = kg_method_idempotent(ex->req.method);
    const kg_hdrs *h = &fwd;
    if (cfg->has_munge_headers) {
      kg_hdrs_copy(&munged, &fwd);
      if (kg_hooks_munge_headers(w->hooks, pool->be->name, &view, &munged) == 1)
        h = &munged;
    }
    kg_exchange_build_request(ex, leg, h);
  }
  kg_hdrs_free(&fwd);
  kg_hdrs_free(&munged);
  ex->compare = ex->nlegs > 1;
  bool capture = ex->compare || cfg->has_on_backends_finished;
  for (size_t i = 0; i < ex->nlegs; i++) ex->legs[i].capture = capture;
  if (ex->compare) w->stats.shadowed++;
  return ex;
}

void kg_exchange_start(kg_exchange *ex) {
  /* The master first: shadows must not delay its connect or write. */
  for (size_t i = 0; i < ex->nlegs; i++) {
    ex->pending++;
    kg_leg_start(&ex->legs[i]);
  }
}

static void kg_exchange_free(kg_exchange *ex) {
  kg_worker *w = ex->w;
  for (size_t i = 0; i < ex->nlegs; i++) kg_leg_free(&ex->legs[i]);
  free(ex->legs);
  free(ex->views);
  kg_result_free(&ex->result);
  kg_http_msg_free(&ex->req);
  kg_buf_free(&ex->body);
  kg_buf_free(&ex->path);
  free(ex);
  w->nexchanges--;
  kg_worker_maybe_finish(w);
}

/* --- completion -------------------------------------------------------------- */

static void kg_exchange_build_views(kg_exchange *ex) {
  ex->views = kg_calloc(ex->nlegs, sizeof(kg_resp_view));
  for (size_t i = 0; i < ex->nlegs; i++) {
    const kg_leg *l = &ex->legs[i];
    kg_resp_view *v = &ex->views[i];
    v->backend = l->pool->be->name;
    v->error = l->error;
    v->status = l->error ? 0 : l->resp.status;
    v->hdrs = l->error ? NULL : &l->resp.hdrs;
    v->body = l->body.data ? l->body.data : "";
    v->body_len = l->body.len;
    v->elapsed = (double)(l->t_end - l->t_start) / 1e9;
    v->bytes = l->body_bytes;
    v->truncated = l->truncated;
  }
}

/* Thread pool: compare and append the record. Touches only the exchange,
 * which no loop code refers to any more. */
static void kg_exchange_work(uv_work_t *req) {
  kg_exchange *ex = KG_CONTAINER_OF(req, kg_exchange, work);
  kg_compare(ex->views, ex->nlegs, &ex->result);
  kg_difflog *log = ex->w->difflog;
  if (log == NULL) return;
  kg_record r = {.id = ex->id,
                 .ts = ex->arrived,
                 .method = ex->method,
                 .url = ex->req.url.data ? ex->req.url.data : "/",
                 .resps = ex->views,
                 .n = ex->nlegs,
                 .result = &ex->result};
  kg_buf line = KG_BUF_INIT;
  kg_record_format(&r, &line);
  int rc = kg_difflog_append(log, line.data, line.len);
  if (rc < 0) kg_log_error("diff log write failed: %s", strerror(-rc));
  kg_buf_free(&line);
}

static void kg_exchange_run_hook(kg_exchange *ex) {
  if (!ex->w->cfg->has_on_backends_finished) return;
  kg_req_view v = kg_exchange_view(ex);
  kg_hooks_backends_finished(ex->w->hooks, &v, ex->views, ex->nlegs);
}

static void kg_exchange_after_work(uv_work_t *req, int status) {
  kg_exchange *ex = KG_CONTAINER_OF(req, kg_exchange, work);
  kg_worker *w = ex->w;
  if (status == 0) {
    w->stats.compared++;
    if (!ex->result.equal) w->stats.differing++;
    kg_exchange_run_hook(ex);
  }
  kg_exchange_free(ex);
}

/* Every leg is done and the client no longer needs us. */
static void kg_exchange_release(kg_exchange *ex) {
  if (ex->compare) {
    kg_exchange_build_views(ex);
    uv_queue_work(&ex->w->loop, &ex->work, kg_exchange_work,
                  kg_exchange_after_work);
    return;
  }
  if (ex->w->cfg->has_on_backends_finished) {
    kg_exchange_build_views(ex);
    kg_exchange_run_hook(ex);
  }
  kg_exchange_free(ex);
}

/* --- leg events -------------------------------------------------------------- */

static bool kg_leg_is_master(const kg_leg *leg) {
  return leg == &leg->ex->legs[0];
}

void kg_exchange_leg_head(kg_leg *leg) {
  kg_exchange *ex = leg->ex;
  if (!kg_leg_is_master(leg) || ex->client == NULL) return;
  ex->master_streaming = true;
  kg_client_master_head(ex->client, &leg->resp, leg->head_request);
}

void kg_exchange_leg_body(kg_leg *leg, const char *p, size_t n) {
  kg_exchange *ex = leg->ex;
  if (kg_leg_is_master(leg) && ex->client) kg_client_master_body(ex->client, p, n);
}

void kg_exchange_leg_done(kg_leg *leg) {
  kg_exchange *ex = leg->ex;
  ex->pending--;
  if (kg_leg_is_master(leg)) {
    kg_client *c = ex->client;
    ex->client = NULL;
    if (leg->error) ex->w->stats.master_errors++;
    if (c && leg->error) {
      bool timeout = strcmp(leg->error, "timeout") == 0;
      kg_log_warn("master %s failed for %s %s: %s", leg->pool->be->name,
                  ex->method, ex->req.url.data, leg->error);
      kg_client_master_failed(c, timeout ? 504 : 502);
    } else if (c) {
      kg_client_master_end(c);
    }
  } else if (leg->error) {
    ex->w->stats.shadow_errors++;
  }
  if (ex->pending == 0 && ex->client == NULL) kg_exchange_release(ex);
}

void kg_exchange_client_gone(kg_exchange *ex) {
  ex->client = NULL;
  for (size_t i = 0; i < ex->nlegs; i++) kg_leg_cancel(&ex->legs[i]);
  ex->pending = 0;
  ex->w->stats.aborted++;
  kg_exchange_free(ex);
}

void kg_exchange_pause_master(kg_exchange *ex) {
  if (ex->nlegs) kg_leg_pause(&ex->legs[0]);
}

void kg_exchange_resume_master(kg_exchange *ex) {
  if (ex->nlegs) kg_leg_resume(&ex->legs[0]);
}
