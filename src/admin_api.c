/* admin_api.c: the admin listener's JSON API over the results store.
 *
 *   GET /api/endpoints?since=1h&endpoint=GLOB
 *   GET /api/results?endpoint=NAME&differing=1&limit=50&before=ID
 *   GET /api/results/ID
 *   GET /api/timeseries?endpoint=NAME&bucket=60&since=1h
 *
 * The answers are storeq's JSON as it documents them (storeq.h). Queries
 * run on the main loop's thread, which serves no proxy traffic; storeq
 * bounds each one (rows, buckets, endpoints), so a request costs at most a
 * fraction of a second even on a full store. The read-only connection is
 * opened on first use and kept; after a failure it is reopened on the
 * next request, so a store replaced under us (or created after us) is
 * picked up. */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_int.h"
#include "common.h"
#include "report.h"
#include "storeq.h"

struct kg_admin_api {
  const kg_admin_ctx *ctx;   /* config (store path, regression factor) */
  kg_storeq *q;              /* owned; NULL until opened */
};

kg_admin_api *kg_admin_api_new(const kg_admin_ctx *ctx) {
  kg_admin_api *api = kg_calloc(1, sizeof(*api));
  api->ctx = ctx;
  return api;
}

void kg_admin_api_free(kg_admin_api *api) {
  if (api == NULL) return;
  kg_storeq_close(api->q);
  free(api);
}

/* A duration as `kagami report --since` reads it ("90", "15m", "1h", "7d");
 * "all" means no limit (0). */
static bool kg_admin_duration(const char *s, double *out) {
  if (strcmp(s, "all") == 0) {
    *out = 0;
    return true;
  }
  return kg_report_parse_duration(s, out) == 0;
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

/* The store connection, opened if needed; NULL with a 503 in resp. */
static kg_storeq *kg_admin_store(kg_admin_api *api, kg_admin_resp *resp) {
  const kg_config *cfg = api->ctx->cfg;
  if (api->q) return api->q;
  if (cfg->store_path == NULL) {
    kg_admin_resp_text(resp, 503, "no results store (store = false in the config)");
    return NULL;
  }
  char err[512];
  if (kg_storeq_open(cfg->store_path, &api->q, err, sizeof(err)) < 0) {
    api->q = NULL;
    kg_admin_resp_text(resp, 503, err);
    return NULL;
  }
  return api->q;
}

/* Turns a query's answer into the response: JSON, or the error storeq
 * reported (404 unknown id, 400 bad argument, 503 the store failed). */
static void kg_admin_json(kg_admin_api *api, json_t *j, kg_admin_resp *resp) {
  if (j == NULL) {
    int code = kg_storeq_errcode(api->q);
    const char *msg = kg_storeq_errmsg(api->q);
    int status = code == KG_STOREQ_NOT_FOUND ? 404
                 : code == KG_STOREQ_INVALID ? 400 : 503;
    kg_admin_resp_text(resp, status, msg && *msg ? msg : "query failed");
    if (status == 503) { /* reopen on the next request */
      kg_storeq_close(api->q);
      api->q = NULL;
    }
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

static void kg_admin_api_endpoints(kg_admin_api *api, const kg_admin_req *r,
                                   kg_admin_resp *resp) {
  double since = 0;
  if (!kg_admin_since(r->query, 0, &since, resp)) return;
  kg_storeq *q = kg_admin_store(api, resp);
  if (!q) return;
  char *glob = kg_admin_param(r->query, "endpoint");
  json_t *j = kg_storeq_endpoints(q, since, glob, api->ctx->cfg->latency_regression);
  free(glob);
  kg_admin_json(api, j, resp);
}

static void kg_admin_api_results(kg_admin_api *api, const kg_admin_req *r,
                                 kg_admin_resp *resp) {
  char *v = kg_admin_param(r->query, "differing");
  bool differing = false;
  bool ok = v == NULL || kg_admin_bool(v, &differing);
  free(v);
  if (!ok) {
    kg_admin_resp_text(resp, 400, "differing: expected 1 or 0");
    return;
  }
  long limit = 0;
  v = kg_admin_param(r->query, "limit");
  ok = v == NULL || kg_admin_int(v, 1, KG_STOREQ_MAX_RESULTS, &limit);
  free(v);
  if (!ok) {
    kg_admin_resp_text(resp, 400, "limit: expected a whole number from 1 to 1000");
    return;
  }
  kg_storeq *q = kg_admin_store(api, resp);
  if (!q) return;
  char *endpoint = kg_admin_param(r->query, "endpoint");
  char *before = kg_admin_param(r->query, "before");
  json_t *j = kg_storeq_results(q, endpoint, differing, (int)limit, before);
  free(endpoint);
  free(before);
  kg_admin_json(api, j, resp);
}

static void kg_admin_api_result(kg_admin_api *api, const char *id_text,
                                kg_admin_resp *resp) {
  kg_buf id = KG_BUF_INIT;
  /* One path segment, with a client's percent-escaping undone. */
  if (*id_text == '\0' || strchr(id_text, '/') != NULL ||
      !kg_admin_decode(id_text, strlen(id_text), false, &id)) {
    kg_admin_resp_text(resp, 404, "not found");
  } else {
    kg_storeq *q = kg_admin_store(api, resp);
    if (q) kg_admin_json(api, kg_storeq_result(q, id.data), resp);
  }
  kg_buf_free(&id);
}

static void kg_admin_api_timeseries(kg_admin_api *api, const kg_admin_req *r,
                                    kg_admin_resp *resp) {
  double since = 0;
  if (!kg_admin_since(r->query, 3600, &since, resp)) return;
  long bucket = 60;
  char *v = kg_admin_param(r->query, "bucket");
  bool ok = v == NULL || kg_admin_int(v, 1, 7 * 86400, &bucket);
  free(v);
  if (!ok) {
    kg_admin_resp_text(resp, 400, "bucket: expected seconds, from 1 to 604800");
    return;
  }
  kg_storeq *q = kg_admin_store(api, resp);
  if (!q) return;
  char *endpoint = kg_admin_param(r->query, "endpoint");
  json_t *j = kg_storeq_timeseries(q, endpoint, (double)bucket, since);
  free(endpoint);
  kg_admin_json(api, j, resp);
}

void kg_admin_api_handle(kg_admin_api *api, const kg_admin_req *req,
                         kg_admin_resp *resp) {
  const char *p = req->path + strlen("/api/");
  if (!kg_admin_query_valid(req->query)) {
    kg_admin_resp_text(resp, 400, "malformed query string");
    return;
  }
  if (strcmp(p, "endpoints") == 0) kg_admin_api_endpoints(api, req, resp);
  else if (strcmp(p, "results") == 0) kg_admin_api_results(api, req, resp);
  else if (strncmp(p, "results/", 8) == 0) kg_admin_api_result(api, p + 8, resp);
  else if (strcmp(p, "timeseries") == 0) kg_admin_api_timeseries(api, req, resp);
  else kg_admin_resp_text(resp, 404, "not found");
}
