/* exchange.c: one request's fan-out, completion and result (see exchange.h).
 *
 * A compared exchange ends in its worker's results pipeline
 * (results/pipeline.h): it is queued there, compared in the thread pool in
 * a batch with others, written to the sinks, and freed back on the loop.
 * The queue is bounded in count and bytes; what does not fit is dropped
 * and counted. */
#include "proxy/exchange.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "compare/endpoint.h"
#include "results/epstats.h"
#include "results/storeagg.h"
#include "proxy/hooks.h"
#include "common/log.h"
#include "compare/noise.h"
#include "traffic/record.h"
#include "proxy/worker.h"

#define KG_BATCH_GATHER 32  /* results that start a batch at once */
#define KG_BATCH_WAIT_MS 2  /* or the longest the first one waits */
/* A batch takes at most this many results, and two batches of a worker
 * may run at once: when comparing is the bottleneck (20 KB HTML pages),
 * one batch of the whole backlog kept one core busy and held up to
 * KG_MAX_PENDING_BYTES more in the thread pool than the queue's bound says
 * (800+ MiB peak RSS in make bench). The comparison is thread-safe (the
 * noise model and endpoint statistics lock). */
#define KG_BATCH_MAX 256
#define KG_BATCHES_RUNNING 2

static const char *const kg_role_names[] = {"master", "shadow", "secondary",
                                            "repeat"};

static bool kg_method_idempotent(int m) {
  return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS ||
         m == HTTP_PUT || m == HTTP_DELETE || m == HTTP_TRACE;
}

static bool kg_method_safe(int m) {
  return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS;
}

static kg_req_view kg_exchange_view(const kg_exchange *ex) {
  return (kg_req_view){.method = ex->method,
                       .url = ex->req.url.data ? ex->req.url.data : "/",
                       .path = ex->path.data ? ex->path.data : "/",
                       .hdrs = &ex->req.hdrs,
                       .body = ex->body.data,
                       .body_len = ex->body.len,
                       .conn_id = ex->conn_id,
                       .conn_seq = ex->conn_seq};
}

static const char *kg_exchange_endpoint(kg_exchange *ex) {
  if (ex->endpoint.len == 0)
    kg_endpoint_of(ex->method, ex->path.data, ex->cfg->endpoints, &ex->endpoint);
  return ex->endpoint.data;
}

/* Which backends get this request: bit i = cfg->backends[i]. The master
 * (bit 0) always does; shadows only for shadow_methods, then only when the
 * sample (with the per-endpoint cap and floor) says so, then as the
 * select_backends hook says (nil: all). The secondary only serves noise
 * learning. */
static uint64_t kg_exchange_select(kg_exchange *ex) {
  kg_worker *w = ex->w;
  const kg_config *cfg = w->cfg;
  uint64_t all = 0;
  for (size_t i = 1; i < cfg->nbackends; i++) {
    const kg_backend_cfg *be = &cfg->backends[i];
    uint64_t methods = be->has_shadow_methods ? be->shadow_methods : cfg->shadow_methods;
    if ((int)i == cfg->secondary && !cfg->noise_learn) continue;
    if (methods & (1ULL << ex->req.method)) all |= 1ULL << i;
  }
  if (all == 0) return 1;
  if (!(cfg->sample > 0)) return 1; /* 0 turns shadowing off, floor too */
  if (ex->body.len > cfg->shadow_max_body_bytes) {
    w->stats.dropped++; /* too big to copy: the master only */
    return 1;
  }
  bool picked = kg_sample(&w->rng, cfg->sample);
  /* Endpoints are only worked out per request when a per-endpoint rule
   * needs them before the decision. */
  if (cfg->max_per_endpoint_per_s > 0 || cfg->sample < 1)
    picked = kg_epsample_decide(&w->epsample, kg_exchange_endpoint(ex), picked,
                                uv_now(&w->loop) * 1000000ULL);
  if (!picked) return 1;
  uint64_t mask = all;
  if (cfg->has_select_backends) {
    kg_req_view v = kg_exchange_view(ex);
    uint64_t chosen = 0;
    if (kg_hooks_select_backends(w->hooks, &v, &chosen) == 1) mask = chosen & all;
  }
  return mask | 1;
}

/* The fields every backend gets: the client's, minus those that describe
 * the client's connection (hop-by-hop, and any it lists in Connection),
 * minus Expect (kagami answers 100-continue itself) and the framing fields
 * (the body is re-framed with one Content-Length). */
static void kg_exchange_forward_hdrs(const kg_exchange *ex, kg_hdrs *out) {
  const kg_hdrs *in = &ex->req.hdrs;
  bool has_connection = kg_http_connection_lists_any(in);
  for (size_t i = 0; i < in->n; i++) {
    const char *name = kg_hdrs_name(in, i);
    size_t nlen = in->v[i].name_len;
    if (kg_http_is_hop_by_hop(name, nlen) ||
        (has_connection && kg_http_connection_lists(in, name, nlen)) ||
        kg_str_ieq(name, nlen, "expect") ||
        kg_str_ieq(name, nlen, "content-length"))
      continue;
    kg_hdrs_add(out, name, nlen, kg_hdrs_value(in, i), in->v[i].value_len);
  }
}

static void kg_exchange_build_request(const kg_exchange *ex, kg_leg *leg,
                                      const kg_hdrs *h) {
  kg_buf *b = &leg->req;
  const char *url = ex->req.url.data ? ex->req.url.data : "/";
  kg_buf_reserve(b, ex->req.url.len + ex->req.hdrs.data.len + 64 + ex->body.len);
  kg_buf_appends(b, ex->method);
  kg_buf_append(b, " ", 1);
  kg_buf_appends(b, url);
  kg_buf_append(b, " HTTP/1.1\r\n", 11);
  bool host = false;
  for (size_t i = 0; i < h->n; i++) {
    kg_buf_append(b, kg_hdrs_name(h, i), h->v[i].name_len);
    kg_buf_append(b, ": ", 2);
    kg_buf_append(b, kg_hdrs_value(h, i), h->v[i].value_len);
    kg_buf_append(b, "\r\n", 2);
    if (kg_str_ieq(kg_hdrs_name(h, i), h->v[i].name_len, "host")) host = true;
  }
  if (!host) /* HTTP/1.0 clients may omit it; HTTP/1.1 backends need it */
    kg_buf_appendf(b, "Host: %s\r\n", leg->pool->be.host);
  if (ex->body.len || ex->req.has_length || ex->req.chunked)
    kg_buf_appendf(b, "Content-Length: %zu\r\n", ex->body.len);
  kg_buf_append(b, "\r\n", 2);
  kg_buf_append(b, ex->body.data, ex->body.len);
}

static void kg_exchange_make_id(kg_exchange *ex) {
  kg_worker *w = ex->w;
  uint64_t ms = (uint64_t)ex->arrived.tv_sec * 1000u +
                (uint64_t)ex->arrived.tv_nsec / 1000000u;
  /* 11 hex digits of milliseconds (enough until the year 2527), 2 of the
   * worker, 7 of its sequence; by hand, as snprintf showed in profiles. */
  char *p = ex->id;
  kg_put_hex(p, ms, 11);
  kg_put_hex(p + 11, (uint64_t)(w->id & 0xff), 2);
  kg_put_hex(p + 13, (uint64_t)(w->seq++) & 0xfffffffULL, 7);
  p[20] = '\0';
}

static const kg_leg_cbs kg_exchange_leg_cbs;

static kg_leg *kg_exchange_add_leg(kg_exchange *ex, size_t backend,
                                   kg_role role, kg_hdrs *fwd, kg_hdrs *munged) {
  kg_worker *w = ex->w;
  kg_pool *pool = &w->pools[backend];
  kg_leg *leg = &ex->legs[ex->nlegs++];
  leg->cbs = &kg_exchange_leg_cbs;
  leg->data = ex;
  leg->role = role;
  leg->pool = pool;
  leg->bounded = role != KG_ROLE_MASTER; /* the master must get through */
  leg->head_request = ex->req.method == HTTP_HEAD;
  leg->retry_ok = kg_method_idempotent(ex->req.method);
  const kg_hdrs *h = fwd;
  if (w->cfg->has_munge_headers) {
    kg_req_view view = kg_exchange_view(ex);
    kg_hdrs_copy(munged, fwd);
    if (kg_hooks_munge_headers(w->hooks, pool->be.name, &view, munged) == 1)
      h = munged;
  }
  kg_exchange_build_request(ex, leg, h);
  return leg;
}

kg_exchange *kg_exchange_new(kg_worker *w, const kg_exchange_client_ops *client_ops,
                             void *client, uint64_t conn_id, uint64_t conn_seq,
                             kg_http_msg *req, kg_buf *body) {
  const kg_config *cfg = w->cfg;
  kg_exchange *ex = kg_calloc(1, sizeof(*ex));
  ex->w = w;
  ex->cfg = cfg;
  ex->client = client;
  ex->client_ops = client_ops;
  ex->conn_id = conn_id;
  ex->conn_seq = conn_seq;
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
  /* One leg per backend, plus room for a repeat of the first shadow. */
  ex->legs = kg_calloc(cfg->nbackends + 1, sizeof(kg_leg));
  kg_hdrs fwd = KG_HDRS_INIT, munged = KG_HDRS_INIT;
  kg_exchange_forward_hdrs(ex, &fwd);
  size_t first_shadow = 0;
  for (size_t i = 0; i < cfg->nbackends; i++) {
    if (!(mask & (1ULL << i))) continue;
    kg_role role = i == 0 ? KG_ROLE_MASTER
                   : (int)i == cfg->secondary ? KG_ROLE_SECONDARY
                                              : KG_ROLE_SHADOW;
    if (i > 0 && (w->pools[i].inflight >= cfg->shadow_max_inflight ||
                  w->pools[i].inflight_bytes >= cfg->shadow_max_inflight_bytes ||
                  kg_pool_is_down(&w->pools[i]))) {
      w->stats.dropped++; /* bounded shadow work: drop, never queue */
      continue;
    }
    kg_exchange_add_leg(ex, i, role, &fwd, &munged);
    if (role == KG_ROLE_SHADOW && first_shadow == 0) first_shadow = i;
  }
  /* Noise learning without a second production fleet: the same safe
   * request to the same shadow twice; what differs is noise. */
  if (cfg->noise_learn && first_shadow && cfg->noise_repeat > 0 &&
      kg_method_safe(ex->req.method) && kg_sample(&w->rng, cfg->noise_repeat) &&
      w->pools[first_shadow].inflight < cfg->shadow_max_inflight)
    kg_exchange_add_leg(ex, first_shadow, KG_ROLE_REPEAT, &fwd, &munged);
  kg_hdrs_free(&fwd);
  kg_hdrs_free(&munged);
  ex->compare = first_shadow != 0;
  ex->record = w->shared->recorder != NULL && kg_sample(&w->rng, cfg->record_sample);
  bool capture = ex->nlegs > 1 || cfg->has_on_backends_finished || ex->record;
  for (size_t i = 0; i < ex->nlegs; i++) ex->legs[i].capture = capture;
  /* (The endpoint of a compared request, when the sampler did not need it
   * already, is worked out in the thread pool, off the loop.) */
  if (ex->compare) w->stats.shadowed++;
  return ex;
}

static void kg_exchange_start_leg(kg_exchange *ex, kg_leg *leg) {
  ex->pending++;
  ex->w->stats.backend_requests[leg->pool->index]++;
  kg_leg_start(leg);
}

void kg_exchange_start(kg_exchange *ex) {
  /* The master first: shadows must not delay its connect or write. A
   * repeat waits for the shadow's answer (kg_exchange_leg_done): sent at
   * once, it reached the shadow in the same millisecond as the first copy
   * and its timestamps agreed, so a millisecond timestamp was rarely
   * learned as noise although it differed between master and shadow
   * half the time (README: Performance). */
  for (size_t i = 0; i < ex->nlegs; i++)
    if (ex->legs[i].role != KG_ROLE_REPEAT) kg_exchange_start_leg(ex, &ex->legs[i]);
}

static void kg_exchange_free(kg_exchange *ex) {
  kg_worker *w = ex->w;
  for (size_t i = 0; i < ex->nlegs; i++) {
    kg_leg_free(&ex->legs[i]);
    if (ex->pairs) kg_pair_result_free(&ex->pairs[i]);
  }
  free(ex->legs);
  free(ex->views);
  free(ex->pairs);
  free(ex->roles);
  for (size_t i = 0; i < ex->nsuppressed; i++) free(ex->suppressed[i]);
  free(ex->suppressed);
  kg_http_msg_free(&ex->req);
  kg_buf_free(&ex->body);
  kg_buf_free(&ex->path);
  kg_buf_free(&ex->endpoint);
  free(ex);
  w->nexchanges--;
  kg_worker_maybe_finish(w);
}

/* --- comparison (thread pool) ---------------------------------------------- */

static void kg_exchange_build_views(kg_exchange *ex) {
  ex->views = kg_calloc(ex->nlegs, sizeof(kg_resp_view));
  for (size_t i = 0; i < ex->nlegs; i++) {
    const kg_leg *l = &ex->legs[i];
    kg_resp_view *v = &ex->views[i];
    v->backend = l->pool->be.name;
    if (l->role == KG_ROLE_REPEAT) v->backend = "(repeat)";
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

static void kg_exchange_add_suppressed(kg_exchange *ex, const kg_diffs *d) {
  for (size_t i = 0; i < d->nsuppressed; i++) {
    bool dup = false;
    for (size_t k = 0; k < ex->nsuppressed && !dup; k++)
      dup = strcmp(ex->suppressed[k], d->suppressed[i]) == 0;
    if (dup) continue;
    ex->suppressed = kg_realloc(ex->suppressed, (ex->nsuppressed + 1) * sizeof(char *));
    ex->suppressed[ex->nsuppressed++] = kg_strdup(d->suppressed[i]);
  }
}

/* Feeds a noise pair (two answers that should agree) to the noise model. */
static void kg_exchange_learn(kg_exchange *ex, size_t a, size_t b,
                              const kg_compare_opts *o) {
  /* Every location the pair differs at, not the first 100: noise past
   * the cap would otherwise never be learned. */
  kg_compare_opts all = *o;
  all.max_differences = KG_NOISE_MAX_PATTERNS;
  kg_pair_result r;
  kg_compare_pair(&ex->views[a], &ex->views[b], &all, &r);
  if (!r.error) {
    const char **pats = NULL;
    size_t n = kg_pair_result_patterns(&r, &pats);
    kg_noise_observe(ex->w->shared->noise, ex->endpoint.data, pats, n);
    free(pats);
  }
  kg_pair_result_free(&r);
}

static void kg_exchange_compare(kg_exchange *ex) {
  const kg_config *cfg = ex->cfg;
  const kg_shared *sh = ex->w->shared;
  const char *endpoint = kg_exchange_endpoint(ex);
  const kg_rule *rules[64];
  size_t nrules = kg_compare_rules(cfg->rules, cfg->nrules, endpoint, rules, KG_ARRAY_SIZE(rules));
  kg_compare_opts o = {.settings = &cfg->compare, .max_body_bytes = cfg->max_capture_bytes,
                       .rules = rules, .nrules = nrules};

  kg_exchange_build_views(ex);
  ex->pairs = kg_calloc(ex->nlegs, sizeof(kg_pair_result));
  /* Learn first, so that this request's own noise pair already counts. */
  kg_noise_view noisy = {0};
  if (sh->noise) {
    size_t shadow = 0;
    for (size_t i = 1; i < ex->nlegs; i++) {
      if (ex->legs[i].role == KG_ROLE_SECONDARY) kg_exchange_learn(ex, 0, i, &o);
      if (ex->legs[i].role == KG_ROLE_SHADOW && !shadow) shadow = i;
      if (ex->legs[i].role == KG_ROLE_REPEAT && shadow) kg_exchange_learn(ex, shadow, i, &o);
    }
    kg_noise_view_get(sh->noise, endpoint, &noisy);
    o.noisy = &noisy;
  }
  ex->equal = true;
  ex->truncated = false;
  bool present[64] = {false}, failed[64] = {false};
  uint64_t elapsed_us[64] = {0};
  for (size_t i = 0; i < ex->nlegs; i++) {
    const kg_leg *l = &ex->legs[i];
    if (ex->views[i].truncated) ex->truncated = true;
    if (l->role == KG_ROLE_MASTER || l->role == KG_ROLE_SHADOW) {
      size_t b = (size_t)l->pool->index;
      present[b] = true;
      failed[b] = l->error != NULL;
      elapsed_us[b] = (l->t_end - l->t_start) / 1000;
    }
    if (l->role != KG_ROLE_SHADOW) continue;
    kg_compare_pair(&ex->views[0], &ex->views[i], &o, &ex->pairs[i]);
    if (!ex->pairs[i].equal) ex->equal = false;
    ex->kind = ex->pairs[i].kind;
    kg_exchange_add_suppressed(ex, &ex->pairs[i].body);
    kg_exchange_add_suppressed(ex, &ex->pairs[i].headers);
  }
  kg_noise_view_free(&noisy);
  ex->newly_flagged = kg_epstats_record(sh->epstats, endpoint, ex->equal, present,
                                        failed, elapsed_us, &ex->regression);
}

/* The result of a compared exchange, for the sinks. It borrows from ex
 * (ex->roles is made here), so it lasts until ex is freed. */
static void kg_exchange_result(kg_exchange *ex, kg_result *r) {
  const char **roles = kg_calloc(ex->nlegs, sizeof(char *));
  for (size_t i = 0; i < ex->nlegs; i++) roles[i] = kg_role_names[ex->legs[i].role];
  ex->roles = roles;
  /* The regression mask is by backend index; the result is by leg. */
  uint64_t slower = 0;
  for (size_t i = 0; i < ex->nlegs; i++)
    if (ex->legs[i].role == KG_ROLE_SHADOW &&
        ((ex->regression >> ex->legs[i].pool->index) & 1))
      slower |= 1ULL << i;
  *r = (kg_result){.id = ex->id,
                   .ts = ex->arrived,
                   .method = ex->method,
                   .url = ex->req.url.data ? ex->req.url.data : "/",
                   .endpoint = ex->endpoint.data,
                   .req_hdrs = &ex->req.hdrs,
                   .resps = ex->views,
                   .roles = roles,
                   .pairs = ex->pairs,
                   .n = ex->nlegs,
                   .equal = ex->equal,
                   .truncated = ex->truncated,
                   .kind = ex->kind,
                   .suppressed = (const char *const *)ex->suppressed,
                   .nsuppressed = ex->nsuppressed,
                   .regression = slower};
}

/* Thread pool (the pipeline's compare): compares a finished exchange and
 * describes it for the sinks. */
static void kg_exchange_pipeline_compare(kg_pipeline_item *it, kg_result *out) {
  kg_exchange *ex = KG_CONTAINER_OF(it, kg_exchange, link);
  kg_exchange_compare(ex);
  kg_exchange_result(ex, out);
  ex->failed = kg_storeagg_outcome(out) == KG_OUTCOME_ERROR;
}

static void kg_exchange_run_hook(kg_exchange *ex) {
  if (!ex->cfg->has_on_backends_finished) return;
  kg_req_view v = kg_exchange_view(ex);
  kg_hook_difference *diffs = NULL;
  size_t nd = 0;
  kg_result_view rv, *result = NULL;
  if (ex->pairs) {
    for (size_t i = 0; i < ex->nlegs; i++)
      nd += ex->pairs[i].body.n + ex->pairs[i].headers.n + ex->pairs[i].status_differs;
    diffs = kg_calloc(nd + 1, sizeof(*diffs));
    nd = 0;
    kg_buf unified = KG_BUF_INIT;
    char st[2][16];
    for (size_t i = 0; i < ex->nlegs; i++) {
      const kg_pair_result *p = &ex->pairs[i];
      const char *be = ex->views[i].backend;
      if (p->status_differs) {
        snprintf(st[0], sizeof(st[0]), "%d", ex->views[0].status);
        snprintf(st[1], sizeof(st[1]), "%d", ex->views[i].status);
        diffs[nd++] = (kg_hook_difference){be, "status", st[0], st[1]};
      }
      for (size_t k = 0; k < p->body.n; k++)
        diffs[nd++] = (kg_hook_difference){be, p->body.v[k].where, p->body.v[k].master,
                                           p->body.v[k].shadow};
      for (size_t k = 0; k < p->headers.n; k++)
        diffs[nd++] = (kg_hook_difference){be, p->headers.v[k].where,
                                           p->headers.v[k].master, p->headers.v[k].shadow};
      kg_buf_append(&unified, p->diff.data, p->diff.len);
    }
    rv = (kg_result_view){.equal = ex->equal,
                          .kind = kg_kind_name(ex->kind),
                          .endpoint = ex->endpoint.data,
                          .differences = diffs,
                          .ndifferences = nd,
                          .suppressed = (const char *const *)ex->suppressed,
                          .nsuppressed = ex->nsuppressed,
                          .diff = unified.data ? unified.data : "",
                          .diff_len = unified.len};
    result = &rv;
    kg_hooks_backends_finished(ex->w->hooks, &v, ex->views, ex->nlegs, result);
    kg_buf_free(&unified);
  } else {
    kg_hooks_backends_finished(ex->w->hooks, &v, ex->views, ex->nlegs, NULL);
  }
  free(diffs);
}

/* Loop thread (the pipeline's done): counts the result, warns about a
 * latency regression it raised, runs on_backends_finished, frees ex. */
static void kg_exchange_pipeline_done(kg_pipeline_item *it, bool compared) {
  kg_exchange *ex = KG_CONTAINER_OF(it, kg_exchange, link);
  kg_worker *w = ex->w;
  if (compared) {
    w->stats.compared++;
    /* a dead shadow is not a behaviour difference (the store's rule) */
    if (ex->failed) w->stats.failed++;
    else if (!ex->equal) w->stats.differing++;
    for (size_t i = 0; i < ex->nlegs; i++)
      if ((ex->newly_flagged >> ex->legs[i].pool->index) & 1 &&
          ex->legs[i].role == KG_ROLE_SHADOW)
        kg_log_warn("%s: %s is slower than %s (p90 over %.2fx)", ex->endpoint.data,
                    ex->legs[i].pool->be.name, ex->legs[0].pool->be.name,
                    ex->cfg->latency_regression);
    kg_exchange_run_hook(ex);
  }
  kg_exchange_free(ex);
}

static const kg_pipeline_ops kg_exchange_pipeline_ops = {
    .compare = kg_exchange_pipeline_compare,
    .done = kg_exchange_pipeline_done,
};

void kg_exchange_pipeline_init(kg_worker *w) {
  const kg_pipeline_limits lim = {.max_items = KG_MAX_PENDING_RESULTS,
                                  .max_bytes = KG_MAX_PENDING_BYTES,
                                  .gather = KG_BATCH_GATHER,
                                  .wait_ms = KG_BATCH_WAIT_MS,
                                  .max_batch = KG_BATCH_MAX,
                                  .max_running = KG_BATCHES_RUNNING};
  kg_pipeline_init(&w->results, &w->loop, &kg_exchange_pipeline_ops, &lim,
                   &w->shared->sinks, w);
}

/* Hands a copy of the request and the master's answer to the recorder
 * (which writes it on its own thread, or drops it when behind). */
static void kg_exchange_submit_record(kg_exchange *ex) {
  const kg_leg *m = &ex->legs[0];
  kg_record_item *it = kg_calloc(1, sizeof(*it));
  it->ts = ex->arrived;
  it->method = kg_strdup(ex->method);
  it->url = kg_strdup(ex->req.url.data ? ex->req.url.data : "/");
  kg_exchange_forward_hdrs(ex, &it->req_hdrs);
  kg_buf_append(&it->req_body, ex->body.data, ex->body.len);
  it->elapsed = (double)(m->t_end - m->t_start) / 1e9;
  if (m->error) {
    it->error = kg_strdup(m->error);
  } else {
    it->status = m->resp.status;
    it->reason = kg_strdup(m->resp.reason.data ? m->resp.reason.data : "");
    kg_hdrs_copy(&it->resp_hdrs, &m->resp.hdrs);
    kg_buf_append(&it->resp_body, m->body.data, m->body.len);
    it->resp_truncated = m->truncated;
  }
  kg_recorder_submit(ex->w->shared->recorder, it);
}

/* Every leg is done and the client no longer needs us. */
static void kg_exchange_release(kg_exchange *ex) {
  kg_worker *w = ex->w;
  if (ex->record) kg_exchange_submit_record(ex);
  if (!ex->compare) {
    if (ex->cfg->has_on_backends_finished) {
      kg_exchange_build_views(ex);
      kg_exchange_run_hook(ex);
    }
    kg_exchange_free(ex);
    return;
  }
  ex->link.bytes = 0;
  for (size_t i = 0; i < ex->nlegs; i++) ex->link.bytes += ex->legs[i].body.len;
  if (kg_pipeline_submit(&w->results, &ex->link) < 0) {
    w->stats.results_dropped++;
    kg_exchange_free(ex);
    return;
  }
  if (w->stopping) kg_pipeline_flush(&w->results); /* no time to gather */
}

/* --- leg events -------------------------------------------------------------- */

/* RFC 9110 15.2: a proxy forwards 1xx responses it did not ask for (103
 * Early Hints, say) to the client; shadows' are of no interest. */
static void kg_exchange_leg_interim(kg_leg *leg, const kg_http_msg *msg) {
  kg_exchange *ex = leg->data;
  if (leg->role == KG_ROLE_MASTER && ex->client)
    ex->client_ops->interim(ex->client, msg);
}

static void kg_exchange_leg_head(kg_leg *leg) {
  kg_exchange *ex = leg->data;
  if (leg->role != KG_ROLE_MASTER || ex->client == NULL) return;
  ex->master_streaming = true;
  ex->client_ops->head(ex->client, &leg->resp, leg->head_request);
}

static void kg_exchange_leg_body(kg_leg *leg, const char *p, size_t n) {
  kg_exchange *ex = leg->data;
  if (leg->role == KG_ROLE_MASTER && ex->client)
    ex->client_ops->body(ex->client, p, n);
}

/* A master that is down fails every request the same way, so a burst of
 * traffic would write thousands of identical lines: each cause (refused,
 * timeout, a TLS reason, ...) is logged when it first appears and then at
 * most every KG_MASTER_LOG_MS, with the count of requests it failed
 * meanwhile; a new cause shows at once. Per worker (its loop thread only). */
#define KG_MASTER_LOG_MS 10000
static void kg_exchange_log_master(kg_exchange *ex, kg_leg *leg) {
  kg_worker *w = ex->w;
  uint64_t now = uv_now(&w->loop);
  bool same = w->master_error && strcmp(w->master_error, leg->error) == 0;
  if (same && now < w->master_logged + KG_MASTER_LOG_MS) {
    w->master_suppressed++;
    return;
  }
  char more[96] = "";
  if (w->master_suppressed && same)
    snprintf(more, sizeof(more), "; %llu more like it since the last such line",
             (unsigned long long)w->master_suppressed);
  else if (w->master_suppressed)
    kg_log_warn("master %s: %llu more requests failed with \"%s\" before this",
                leg->pool->be.name, (unsigned long long)w->master_suppressed,
                w->master_error);
  kg_log_warn("master %s failed for %s %s: %s (logged at most every %d s per cause%s)",
              leg->pool->be.name, ex->method, ex->req.url.data, leg->error,
              KG_MASTER_LOG_MS / 1000, more);
  w->master_error = leg->error;
  w->master_logged = now;
  w->master_suppressed = 0;
}

static void kg_exchange_leg_done(kg_leg *leg) {
  kg_exchange *ex = leg->data;
  ex->pending--;
  if (leg->error) ex->w->stats.backend_errors[leg->pool->index]++;
  if (leg->role == KG_ROLE_MASTER) {
    void *c = ex->client;
    ex->client = NULL;
    if (leg->error) ex->w->stats.master_errors++;
    if (c && leg->error) {
      /* "timeout", "tls: handshake timeout": the gateway timed out. */
      bool timeout = strstr(leg->error, "timeout") != NULL;
      kg_exchange_log_master(ex, leg);
      ex->client_ops->failed(c, timeout ? 504 : 502);
    } else if (c) {
      ex->client_ops->end(c);
    }
  } else if (leg->error) {
    ex->w->stats.shadow_errors++;
  }
  /* the shadow answered: now its repeat (the last leg) */
  kg_leg *last = &ex->legs[ex->nlegs - 1];
  if (leg->role == KG_ROLE_SHADOW && last->role == KG_ROLE_REPEAT && !last->started &&
      last->pool == leg->pool) {
    ex->pending++; /* held while starting: a leg that fails at once ends here */
    kg_exchange_start_leg(ex, last);
    ex->pending--;
  }
  if (ex->pending == 0 && ex->client == NULL) kg_exchange_release(ex);
}

/* How the HTTP client tells us about a leg (see upstream.h). */
static const kg_leg_cbs kg_exchange_leg_cbs = {
    .on_interim = kg_exchange_leg_interim,
    .on_head = kg_exchange_leg_head,
    .on_body = kg_exchange_leg_body,
    .on_done = kg_exchange_leg_done,
};

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
