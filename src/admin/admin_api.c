/* admin_api.c: the admin listener's JSON API over the results store.
 *
 *   GET /api/endpoints?since=1h&endpoint=GLOB&instance=NAME
 *   GET /api/results?endpoint=NAME&differing=1&limit=50&before=ID&instance=NAME
 *   GET /api/results/ID?instance=NAME
 *   GET /api/timeseries?endpoint=NAME&bucket=60&since=1h&instance=NAME
 *   (instance: a fleet's PostgreSQL store, one kagami's part; without it
 *   the whole fleet)
 *   GET /api/noise?endpoint=GLOB
 *   GET /api/instances
 *
 * The answers are storeq's JSON as it documents them (storeq.h), except
 * /api/noise, which reads the learned-noise model in memory (see
 * kg_admin_api_noise), and /api/instances, which tells the dashboard what
 * it looks at (kg_admin_api_instances).
 *
 * The loop thread only checks the parameters; the query runs as a job on
 * libuv's thread pool, so that a slow one (a report over a full store)
 * delays neither signal handling nor the other admin connections. Each
 * job opens its own read-only connection (under a millisecond: WAL
 * readers share nothing but the file), so no SQLite handle is ever used by
 * two threads, and a store created or replaced after kagami started is
 * simply found by the next job.
 *
 * The pool is shared with the workers' comparisons and store writes (four
 * threads unless UV_THREADPOOL_SIZE says otherwise), so at most
 * KG_ADMIN_API_RUNNING jobs run at once; up to KG_ADMIN_API_QUEUED more
 * wait their turn in order, and beyond that a request is answered 503
 * with Retry-After at once rather than queued without bound.
 *
 * Under `kagami admin` on a fleet's store, an answer also serves the same
 * request for KG_ADMIN_API_CACHE_MS (admin_cache.c): many dashboards
 * polling one kagami admin then share each copy out of PostgreSQL,
 * and none sees data older than that.
 *
 * Ownership: a job belongs to the API. Its waiter (an admin connection)
 * gets the answer through done() on the loop thread, once, unless it
 * detaches first because it is closing; a detached job that is still
 * waiting is freed at once, a running one when the pool is done with it.
 * The API itself outlives its running jobs (kg_admin_api_free defers). */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_int.h"
#include "common/common.h"
#include "common/jsonw.h"
#include "compare/noise.h"
#include "results/pgread.h"
#include "config/parse.h"
#include "results/storeq.h"

#define KG_ADMIN_API_RUNNING 2
#define KG_ADMIN_API_QUEUED 8
/* kagami admin on a fleet's store: an answer serves the same question for
 * this long (admin_cache.c), under the dashboard's 3 s poll period. */
#define KG_ADMIN_API_CACHE_MS 2000

typedef enum kg_admin_job_kind {
  KG_JOB_ENDPOINTS,
  KG_JOB_RESULTS,
  KG_JOB_RESULT,
  KG_JOB_TIMESERIES,
  KG_JOB_INSTANCES,
} kg_admin_job_kind;

struct kg_admin_job {
  uv_work_t work;            /* while handed to the pool */
  kg_admin_api *api;         /* owner */
  kg_admin_job *next;        /* in api's wait queue */
  kg_admin_job_done done;    /* NULL once the waiter detached */
  void *waiter;
  bool running;              /* handed to the pool: only its after-work
                                callback frees it */
  /* The query. Owned copies: the pool thread reads nothing else. */
  kg_admin_job_kind kind;
  char *store_path;          /* the SQLite store, or NULL when ... */
  char *store_url;           /* ... a fleet's PostgreSQL store is read */
  char *instance;            /* PostgreSQL: one instance's part, or NULL */
  char *name;                /* endpoint, glob or id; may be NULL */
  char *before;              /* results: page below this id, or NULL */
  char *cache_key;           /* the request, when its answer is cached */
  double since, factor, bucket;
  bool differing;
  bool live;                 /* instances: a proxy runs in this process */
  int limit;
  /* The answer, written by the pool thread, read after it. */
  kg_admin_resp resp;
};

struct kg_admin_api {
  uv_loop_t *loop;           /* the main thread's */
  const kg_admin_ctx *ctx;   /* config (store path, regression factor),
                                read on the loop thread only */
  kg_admin_job *queue, *tail; /* waiting jobs, oldest first */
  int queued, running;
  bool closing;              /* kg_admin_api_free was called */
  kg_admin_cache *cache;     /* kagami admin on PostgreSQL, else NULL */
};

kg_admin_api *kg_admin_api_new(uv_loop_t *loop, const kg_admin_ctx *ctx) {
  kg_admin_api *api = kg_calloc(1, sizeof(*api));
  api->loop = loop;
  api->ctx = ctx;
  /* A proxy's admin answers afresh, as before: its few users see their
   * own traffic at once. */
  if (ctx->store_only && ctx->cfg->store_url) api->cache = kg_admin_cache_new(KG_ADMIN_API_CACHE_MS);
  return api;
}

static void kg_admin_api_destroy(kg_admin_api *api) {
  kg_admin_cache_free(api->cache);
  free(api);
}

void kg_admin_api_free(kg_admin_api *api) {
  if (api == NULL) return;
  /* Waiters detach before this (admin.c closes its connections first),
   * and a detached waiting job is freed at once: only running jobs can
   * be left, and the last one to end frees the API. */
  api->closing = true;
  if (api->running == 0 && api->queue == NULL) kg_admin_api_destroy(api);
}

static void kg_admin_job_free(kg_admin_job *job) {
  free(job->store_path);
  free(job->store_url);
  free(job->instance);
  free(job->name);
  free(job->before);
  free(job->cache_key);
  kg_buf_free(&job->resp.body);
  free(job);
}

/* --- on the pool thread ---------------------------------------------------- */

/* Turns a query's answer into the job's response: JSON, or the error
 * storeq reported (404 unknown id, 400 bad argument, 503 the store
 * failed). */
static void kg_admin_job_json(kg_admin_job *job, kg_storeq *q, json_t *j) {
  kg_admin_resp *resp = &job->resp;
  if (j == NULL) {
    int code = kg_storeq_errcode(q);
    const char *msg = kg_storeq_errmsg(q);
    int status = code == KG_STOREQ_NOT_FOUND ? 404
                 : code == KG_STOREQ_INVALID ? 400 : 503;
    kg_admin_resp_text(resp, status, msg && *msg ? msg : "query failed");
    return;
  }
  char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12));
  json_decref(j);
  resp->status = 200;
  resp->content_type = "application/json";
  kg_buf_reset(&resp->body);
  if (text) kg_buf_appends(&resp->body, text);
  kg_buf_appends(&resp->body, "\n");
  free(text);
}

/* The /api/instances answer: {"store": "postgresql" | "sqlite" | null,
 * "live": bool, "instances": [names]}. The names are a fleet's (NULL: an
 * SQLite store or none, which hold one instance, unnamed). */
static void kg_admin_instances_json(kg_admin_resp *resp, const char *store, bool live,
                                    json_t *names) {
  json_t *j = json_pack("{s:s?, s:b, s:o}", "store", store, "live", live, "instances",
                        names ? names : json_array());
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  resp->status = 200;
  resp->content_type = "application/json";
  kg_buf_reset(&resp->body);
  kg_buf_appendf(&resp->body, "%s\n", text ? text : "{}");
  free(text);
}

static void kg_admin_job_work(uv_work_t *w) {
  kg_admin_job *job = KG_CONTAINER_OF(w, kg_admin_job, work);
  char err[512];
  kg_storeq *q = NULL;
  if (job->kind == KG_JOB_INSTANCES) { /* queued for a PostgreSQL store only */
    json_t *names = kg_pgread_instances(job->store_url, err, sizeof(err));
    if (names == NULL) kg_admin_resp_text(&job->resp, 503, err);
    else kg_admin_instances_json(&job->resp, "postgresql", job->live, names);
    return;
  }
  /* A fleet's store: what the query needs is copied out of PostgreSQL for
   * this one answer (pgread.h), from `since` on. */
  kg_pgread_pick pick = {.instance = job->instance,
                         .id = job->kind == KG_JOB_RESULT ? job->name : NULL,
                         .endpoint = job->kind == KG_JOB_RESULTS ? job->name : NULL,
                         .differing = job->differing,
                         .limit = job->limit,
                         .before = job->before};
  int opened;
  if (job->store_url == NULL)
    opened = kg_storeq_open(job->store_path, &q, err, sizeof(err));
  else if (job->kind == KG_JOB_RESULT || job->kind == KG_JOB_RESULTS)
    opened = kg_pgread_open_results(job->store_url, &pick, &q, err, sizeof(err));
  else
    /* a time series in buckets under an hour reads minutes throughout */
    opened = kg_pgread_open(job->store_url, job->instance, job->since,
                            job->kind == KG_JOB_TIMESERIES &&
                                    !kg_storeq_timeseries_hourly(job->bucket)
                                ? KG_PGREAD_MINUTES : 0,
                            &q, err, sizeof(err));
  if (opened < 0) {
    kg_admin_resp_text(&job->resp, 503, err);
    return;
  }
  json_t *j = NULL;
  switch (job->kind) {
  case KG_JOB_ENDPOINTS:
    j = kg_storeq_endpoints(q, job->since, job->name, job->factor);
    break;
  case KG_JOB_RESULTS:
    j = kg_storeq_results(q, job->name, job->differing, job->limit, job->before);
    break;
  case KG_JOB_RESULT:
    j = kg_storeq_result(q, job->name);
    break;
  case KG_JOB_TIMESERIES:
    j = kg_storeq_timeseries(q, job->name, job->bucket, job->since);
    break;
  case KG_JOB_INSTANCES: /* answered before the store is opened */
    break;
  }
  kg_admin_job_json(job, q, j);
  kg_storeq_close(q);
}

/* --- on the loop thread ------------------------------------------------------- */

static void kg_admin_job_after(uv_work_t *w, int status);

/* Hands waiting jobs to the pool while fewer than the limit run. */
static void kg_admin_api_pump(kg_admin_api *api) {
  while (api->queue && api->running < KG_ADMIN_API_RUNNING) {
    kg_admin_job *job = api->queue;
    api->queue = job->next;
    if (api->queue == NULL) api->tail = NULL;
    api->queued--;
    job->next = NULL;
    job->running = true;
    api->running++;
    /* Fails only without a work callback, so never here. */
    if (uv_queue_work(api->loop, &job->work, kg_admin_job_work, kg_admin_job_after) != 0)
      abort();
  }
}

static void kg_admin_job_after(uv_work_t *w, int status) {
  kg_admin_job *job = KG_CONTAINER_OF(w, kg_admin_job, work);
  kg_admin_api *api = job->api;
  api->running--;
  if (status < 0) kg_admin_resp_text(&job->resp, 503, "cancelled");
  if (job->cache_key && !api->closing)
    kg_admin_cache_put(api->cache, uv_now(api->loop), job->cache_key, &job->resp);
  /* Jobs that waited go first: the waiter may start a new one from
   * done() (its next pipelined request), which must queue behind them. */
  if (!api->closing) kg_admin_api_pump(api);
  if (job->done) job->done(job->waiter, &job->resp);
  kg_admin_job_free(job);
  if (api->closing && api->running == 0 && api->queue == NULL) kg_admin_api_destroy(api);
}

void kg_admin_job_detach(kg_admin_job *job) {
  job->done = NULL;
  job->waiter = NULL;
  if (job->running) return; /* freed by its after-work callback */
  kg_admin_api *api = job->api;
  kg_admin_job **pp = &api->queue, *prev = NULL;
  while (*pp != job) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  *pp = job->next;
  if (api->tail == job) api->tail = prev;
  api->queued--;
  kg_admin_job_free(job);
}

/* Queues a job for the query described by `proto` (its query fields; the
 * strings are taken over), or answers 503 in resp when too many wait. */
static kg_admin_job *kg_admin_api_submit(kg_admin_api *api, const kg_admin_job *proto,
                                         kg_admin_resp *resp,
                                         kg_admin_job_done done, void *waiter) {
  kg_admin_job *job = kg_malloc(sizeof(*job));
  *job = *proto;
  job->resp = (kg_admin_resp){0};
  if (api->closing || api->queued >= KG_ADMIN_API_QUEUED) {
    kg_admin_resp_text(resp, 503, "too many API requests at once; retry shortly");
    resp->retry_after = 1;
    kg_admin_job_free(job);
    return NULL;
  }
  job->api = api;
  job->done = done;
  job->waiter = waiter;
  const kg_config *cfg = api->ctx->cfg;
  job->store_path = cfg->store_path ? kg_strdup(cfg->store_path) : NULL;
  job->store_url = cfg->store_path == NULL && cfg->store_url ? kg_strdup(cfg->store_url) : NULL;
  job->next = NULL;
  job->running = false;
  if (api->tail) api->tail->next = job;
  else api->queue = job;
  api->tail = job;
  api->queued++;
  kg_admin_api_pump(api);
  return job;
}

/* A duration as `kagami report --since` reads it ("90", "15m", "1h", "7d");
 * "all" means no limit (0). */
static bool kg_admin_duration(const char *s, double *out) {
  if (strcmp(s, "all") == 0) {
    *out = 0;
    return true;
  }
  return kg_config_parse_duration(s, out) == 0;
}

static double kg_admin_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* `since` as a duration back from now: the Unix time it names, 0 for all.
 * Returns false (with a 400 in resp) for a malformed one. */
static bool kg_admin_since(const char *query, double dflt, double *since_ts,
                           kg_admin_resp *resp) {
  kg_buf v = KG_BUF_INIT;
  double d = dflt;
  bool ok = true;
  if (kg_admin_query(query, "since", &v) && !kg_admin_duration(v.data, &d)) {
    kg_admin_resp_text(resp, 400, "since: expected a duration such as 90s, 15m, 1h, 7d or all");
    ok = false;
  }
  kg_buf_free(&v);
  *since_ts = d > 0 ? kg_admin_now() - d : 0;
  return ok;
}

/* A parameter's decoded value as an owned string (NULL when absent or
 * empty). */
static char *kg_admin_param(const char *query, const char *name) {
  kg_buf v = KG_BUF_INIT;
  char *s = NULL;
  if (kg_admin_query(query, name, &v) && v.len > 0) s = kg_buf_steal(&v, NULL);
  kg_buf_free(&v);
  return s;
}

/* Parses a whole number in [lo, hi]. */
static bool kg_admin_int(const char *s, long lo, long hi, long *out) {
  char *end = NULL;
  if (s == NULL || !isdigit((unsigned char)*s)) return false;
  long v = strtol(s, &end, 10);
  if (*end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

static bool kg_admin_bool(const char *s, bool *out) {
  if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes")) *out = true;
  else if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no")) *out = false;
  else return false;
  return true;
}

/* Answers 503 in resp when no store is configured. */
static bool kg_admin_no_store(const kg_admin_api *api, kg_admin_resp *resp) {
  const kg_config *cfg = api->ctx->cfg;
  if (cfg->store_path != NULL || cfg->store_url != NULL) return false;
  kg_admin_resp_text(resp, 503, "no results store (store = false in the config)");
  return true;
}

/* Each parser below checks a route's parameters on the loop thread and
 * fills *job's query, or answers (400) in resp and returns false. */

static bool kg_admin_api_endpoints(const kg_admin_api *api, const kg_admin_req *r,
                                   kg_admin_job *job, kg_admin_resp *resp) {
  if (!kg_admin_since(r->query, 0, &job->since, resp)) return false;
  job->kind = KG_JOB_ENDPOINTS;
  job->name = kg_admin_param(r->query, "endpoint");
  job->instance = kg_admin_param(r->query, "instance");
  job->factor = api->ctx->cfg->latency_regression;
  return true;
}

static bool kg_admin_api_results(const kg_admin_req *r, kg_admin_job *job,
                                 kg_admin_resp *resp) {
  char *v = kg_admin_param(r->query, "differing");
  bool differing = false;
  bool ok = v == NULL || kg_admin_bool(v, &differing);
  free(v);
  if (!ok) {
    kg_admin_resp_text(resp, 400, "differing: expected 1 or 0");
    return false;
  }
  long limit = 0;
  v = kg_admin_param(r->query, "limit");
  ok = v == NULL || kg_admin_int(v, 1, KG_STOREQ_MAX_RESULTS, &limit);
  free(v);
  if (!ok) {
    kg_admin_resp_text(resp, 400, "limit: expected a whole number from 1 to 1000");
    return false;
  }
  job->kind = KG_JOB_RESULTS;
  job->differing = differing;
  job->limit = (int)limit;
  job->name = kg_admin_param(r->query, "endpoint");
  job->before = kg_admin_param(r->query, "before");
  job->instance = kg_admin_param(r->query, "instance");
  return true;
}

static bool kg_admin_api_result(const kg_admin_req *r, const char *id_text,
                                kg_admin_job *job, kg_admin_resp *resp) {
  kg_buf id = KG_BUF_INIT;
  /* One path segment, with a client's percent-escaping undone. */
  if (*id_text == '\0' || strchr(id_text, '/') != NULL ||
      !kg_admin_decode(id_text, strlen(id_text), false, &id)) {
    kg_admin_resp_text(resp, 404, "not found");
    kg_buf_free(&id);
    return false;
  }
  job->kind = KG_JOB_RESULT;
  job->name = kg_buf_steal(&id, NULL);
  job->instance = kg_admin_param(r->query, "instance");
  return true;
}

static bool kg_admin_api_timeseries(const kg_admin_req *r, kg_admin_job *job,
                                    kg_admin_resp *resp) {
  if (!kg_admin_since(r->query, 3600, &job->since, resp)) return false;
  long bucket = 60;
  char *v = kg_admin_param(r->query, "bucket");
  bool ok = v == NULL || kg_admin_int(v, 1, 7 * 86400, &bucket);
  free(v);
  if (!ok) {
    kg_admin_resp_text(resp, 400, "bucket: expected seconds, from 1 to 604800");
    return false;
  }
  job->kind = KG_JOB_TIMESERIES;
  job->bucket = (double)bucket;
  job->name = kg_admin_param(r->query, "endpoint");
  job->instance = kg_admin_param(r->query, "instance");
  return true;
}

/* The evidence members every /api/noise entry has: pairs seen and when
 * the entry was first and last seen. */
static void kg_admin_api_noise_seen(kg_buf *o, uint64_t pairs, double first, double last) {
  kg_buf_appends(o, ",\"pairs\":");
  kg_jsonw_u64(o, pairs);
  kg_buf_appends(o, ",\"first_seen\":");
  kg_jsonw_fixed3(o, first);
  kg_buf_appends(o, ",\"last_seen\":");
  kg_jsonw_fixed3(o, last);
}

/* One endpoint of the noise snapshot as /api/noise shows it. A location's
 * pairs are its endpoint's: the share that decides suppression is
 * differed / pairs. */
static void kg_admin_api_noise_ep(const kg_noise_ep_info *e, kg_buf *o) {
  kg_buf_appends(o, "{\"endpoint\":");
  kg_jsonw_cstr(o, e->endpoint);
  kg_admin_api_noise_seen(o, e->pairs, e->first_seen, e->last_seen);
  if (e->fleet_pairs) { /* a fleet's store shares the evidence: the others' part */
    kg_buf_appends(o, ",\"fleet_pairs\":");
    kg_jsonw_u64(o, e->fleet_pairs);
  }
  kg_buf_appends(o, ",\"suppressed\":");
  kg_jsonw_u64(o, e->nnoisy);
  kg_buf_appends(o, ",\"locations\":[");
  for (size_t k = 0; k < e->nlocs; k++) {
    const kg_noise_loc_info *l = &e->locs[k];
    kg_buf_appends(o, k ? ",{\"location\":" : "{\"location\":");
    kg_jsonw_cstr(o, l->location);
    kg_buf_appends(o, ",\"differed\":");
    kg_jsonw_u64(o, l->differed);
    if (e->fleet_pairs) {
      kg_buf_appends(o, ",\"fleet_differed\":");
      kg_jsonw_u64(o, l->fleet_differed);
    }
    kg_admin_api_noise_seen(o, e->pairs, l->first_seen, l->last_seen);
    kg_buf_appends(o, l->noisy ? ",\"suppressed\":true}" : ",\"suppressed\":false}");
  }
  kg_buf_appends(o, "]}");
}

/* GET /api/noise?endpoint=GLOB: what learned noise counts and hides, per
 * endpoint (sorted), each location with its evidence. Answered here on the
 * loop thread, not in the pool: it reads memory, not the store, and the
 * copy is bounded by the model's caps (measured in the README); the lock
 * the workers share is held only for the copy. Written with jsonw, which
 * turns any invalid UTF-8 (a text line's shape) into U+FFFD, so the answer
 * is valid JSON whatever the backends sent. Learning off is not an error:
 * the answer says so ("learning": false) and lists nothing. */
static kg_admin_job *kg_admin_api_noise(const kg_admin_api *api, const kg_admin_req *r,
                                        kg_admin_resp *resp) {
  const kg_config *cfg = api->ctx->cfg;
  if (api->ctx->store_only) {
    kg_admin_resp_text(resp, 501, "learned noise lives in the memory of the running proxies: "
                                  "ask one (kagami noise --admin URL)");
    return NULL;
  }
  char *glob = kg_admin_param(r->query, "endpoint");
  kg_noise_snapshot s = {.threshold = cfg->noise_threshold,
                         .min_pairs = cfg->noise_min_pairs};
  if (api->ctx->noise) kg_noise_snapshot_get(api->ctx->noise, glob, &s);
  free(glob);
  kg_buf *o = &resp->body;
  kg_buf_reset(o);
  kg_buf_appendf(o, "{\"learning\":%s,\"threshold\":%.6g,\"min_pairs\":",
                 api->ctx->noise ? "true" : "false", s.threshold);
  kg_jsonw_u64(o, s.min_pairs);
  kg_buf_appends(o, s.full ? ",\"full\":true,\"endpoints\":[" : ",\"full\":false,\"endpoints\":[");
  for (size_t i = 0; i < s.neps; i++) {
    if (i) kg_buf_appends(o, ",");
    kg_admin_api_noise_ep(&s.eps[i], o);
  }
  kg_buf_appends(o, "]}\n");
  kg_noise_snapshot_free(&s);
  resp->status = 200;
  resp->content_type = "application/json";
  return NULL;
}

/* GET /api/instances: what the dashboard looks at. An SQLite store (or
 * none) is answered here at once; a fleet's names come from PostgreSQL,
 * in a job. */
static bool kg_admin_api_instances(const kg_admin_api *api, kg_admin_job *job,
                                   kg_admin_resp *resp) {
  const kg_config *cfg = api->ctx->cfg;
  bool live = !api->ctx->store_only;
  if (cfg->store_path != NULL || cfg->store_url == NULL) {
    kg_admin_instances_json(resp, cfg->store_path ? "sqlite" : NULL, live, NULL);
    return false;
  }
  job->kind = KG_JOB_INSTANCES;
  job->live = live;
  return true;
}

/* With a cache: answers in resp from it (true), or marks the job to fill
 * it (false). The key is the request as sent: the same question asked
 * within the cache's period, whatever its relative `since`. */
static bool kg_admin_api_cached(kg_admin_api *api, const kg_admin_req *req,
                                kg_admin_job *job, kg_admin_resp *resp) {
  if (api->cache == NULL) return false;
  kg_buf key = KG_BUF_INIT;
  kg_buf_appendf(&key, "%s?%s", req->path, req->query);
  if (kg_admin_cache_get(api->cache, uv_now(api->loop), key.data, resp)) {
    kg_buf_free(&key);
    return true;
  }
  job->cache_key = kg_buf_steal(&key, NULL);
  return false;
}

kg_admin_job *kg_admin_api_handle(kg_admin_api *api, const kg_admin_req *req,
                                  kg_admin_resp *resp, kg_admin_job_done done,
                                  void *waiter) {
  const char *p = req->path + strlen("/api/");
  if (!kg_admin_query_valid(req->query)) {
    kg_admin_resp_text(resp, 400, "malformed query string");
    return NULL;
  }
  if (strcmp(p, "noise") == 0) return kg_admin_api_noise(api, req, resp);
  kg_admin_job proto = {0};
  bool ok;
  if (strcmp(p, "endpoints") == 0) ok = kg_admin_api_endpoints(api, req, &proto, resp);
  else if (strcmp(p, "results") == 0) ok = kg_admin_api_results(req, &proto, resp);
  else if (strncmp(p, "results/", 8) == 0) ok = kg_admin_api_result(req, p + 8, &proto, resp);
  else if (strcmp(p, "timeseries") == 0) ok = kg_admin_api_timeseries(req, &proto, resp);
  else if (strcmp(p, "instances") == 0) ok = kg_admin_api_instances(api, &proto, resp);
  else {
    kg_admin_resp_text(resp, 404, "not found");
    ok = false;
  }
  if (ok && !kg_admin_no_store(api, resp) && !kg_admin_api_cached(api, req, &proto, resp))
    return kg_admin_api_submit(api, &proto, resp, done, waiter);
  free(proto.name);
  free(proto.before);
  free(proto.instance);
  free(proto.cache_key);
  return NULL;
}
