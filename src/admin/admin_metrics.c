/* admin_metrics.c: /metrics in the Prometheus text exposition format
 * (version 0.0.4): one HELP and one TYPE line per metric family, then its
 * samples; label values escaped; histograms as cumulative _bucket{le}
 * series ending in +Inf, then _sum and _count.
 *
 * The counters are the workers' published copies (refreshed every second,
 * so a scrape may lag the traffic by that much); the latency histograms
 * are epstats' per-endpoint histograms merged per backend. */
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "common/common.h"
#include "results/epstats.h"
#include "results/sink.h"
#include "common/histogram.h"
#include "proxy/worker.h"

/* Upper bounds of the latency buckets: what Prometheus users expect for
 * HTTP latencies, from half a millisecond to a minute. Values recorded in
 * microseconds; the text is what goes into `le`. */
static const struct {
  uint64_t us;
  const char *le;
} kg_latency_buckets[] = {
    {500, "0.0005"},   {1000, "0.001"},   {2500, "0.0025"},  {5000, "0.005"},
    {10000, "0.01"},   {25000, "0.025"},  {50000, "0.05"},   {100000, "0.1"},
    {250000, "0.25"},  {500000, "0.5"},   {1000000, "1"},    {2500000, "2.5"},
    {5000000, "5"},    {10000000, "10"},  {30000000, "30"},  {60000000, "60"},
};

/* A label value between double quotes: backslash, quote and newline are
 * the three characters the format escapes. */
static void kg_prom_label(kg_buf *o, const char *v) {
  for (; *v; v++) {
    if (*v == '\\') kg_buf_appends(o, "\\\\");
    else if (*v == '"') kg_buf_appends(o, "\\\"");
    else if (*v == '\n') kg_buf_appends(o, "\\n");
    else kg_buf_append(o, v, 1);
  }
}

static void kg_prom_family(kg_buf *o, const char *name, const char *type,
                           const char *help) {
  kg_buf_appendf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void kg_prom_value(kg_buf *o, const char *name, const char *type,
                          const char *help, uint64_t v) {
  kg_prom_family(o, name, type, help);
  kg_buf_appendf(o, "%s %llu\n", name, (unsigned long long)v);
}

/* One sample per backend: name{backend="..."} v[i]. */
static void kg_prom_per_backend(kg_buf *o, const kg_config *cfg,
                                const char *name, const char *type,
                                const char *help, const uint64_t *v) {
  kg_prom_family(o, name, type, help);
  for (size_t i = 0; i < cfg->nbackends; i++) {
    kg_buf_appendf(o, "%s{backend=\"", name);
    kg_prom_label(o, cfg->backends[i].name);
    kg_buf_appendf(o, "\"} %llu\n", (unsigned long long)v[i]);
  }
}

static const char *kg_backend_role(const kg_config *cfg, size_t i) {
  if (i == 0) return "master";
  return (int)i == cfg->secondary ? "secondary" : "shadow";
}

/* Latency per backend over every endpoint, plus how many endpoints have
 * each shadow flagged as slower. */
static void kg_prom_latency(kg_buf *o, const kg_admin_ctx *ctx) {
  const kg_config *cfg = ctx->cfg;
  size_t nb = cfg->nbackends;
  kg_hist *merged = kg_malloc(nb * sizeof(kg_hist));
  uint64_t flagged[KG_MAX_BACKENDS] = {0};
  for (size_t i = 0; i < nb; i++) kg_hist_init(&merged[i]);
  size_t neps = ctx->epstats ? kg_epstats_totals(ctx->epstats, merged, nb, flagged) : 0;

  const char *name = "kagami_backend_latency_seconds";
  kg_prom_family(o, name, "histogram",
                 "Time from sending a compared request to a backend to the "
                 "end of its response, over all endpoints.");
  for (size_t i = 0; i < nb; i++) {
    const kg_hist *h = &merged[i];
    kg_buf lbl = KG_BUF_INIT;
    kg_prom_label(&lbl, cfg->backends[i].name);
    for (size_t k = 0; k < KG_ARRAY_SIZE(kg_latency_buckets); k++)
      kg_buf_appendf(o, "%s_bucket{backend=\"%s\",le=\"%s\"} %llu\n", name,
                     lbl.data, kg_latency_buckets[k].le,
                     (unsigned long long)kg_hist_count_le(h, kg_latency_buckets[k].us));
    kg_buf_appendf(o, "%s_bucket{backend=\"%s\",le=\"+Inf\"} %llu\n", name,
                   lbl.data, (unsigned long long)kg_hist_count(h));
    kg_buf_appendf(o, "%s_sum{backend=\"%s\"} %.6f\n", name, lbl.data,
                   (double)h->sum / 1e6);
    kg_buf_appendf(o, "%s_count{backend=\"%s\"} %llu\n", name, lbl.data,
                   (unsigned long long)kg_hist_count(h));
    kg_buf_free(&lbl);
  }
  kg_prom_family(o, "kagami_latency_regression_endpoints", "gauge",
                 "Endpoints on which this shadow's p90 latency is over "
                 "latency_regression times the master's.");
  for (size_t i = 1; i < nb; i++) {
    kg_buf_appends(o, "kagami_latency_regression_endpoints{backend=\"");
    kg_prom_label(o, cfg->backends[i].name);
    kg_buf_appendf(o, "\"} %llu\n", (unsigned long long)flagged[i]);
  }
  kg_prom_value(o, "kagami_endpoints", "gauge",
                "Endpoints with comparison statistics.", neps);
  free(merged);
}

void kg_admin_metrics(const kg_admin_ctx *ctx, kg_buf *o) {
  const kg_config *cfg = ctx->cfg;
  kg_stats t = {0};
  for (int i = 0; i < ctx->nworkers; i++) {
    kg_stats s;
    kg_worker_stats(&ctx->workers[i], &s);
    kg_stats_add(&t, &s);
  }
  uint64_t open = t.connections_open; /* as of the last second */

  kg_prom_family(o, "kagami_build_info", "gauge", "The running kagami's version.");
  kg_buf_appendf(o, "kagami_build_info{version=\"%s\"} 1\n", KG_VERSION);
  /* No proxy here: its counters are the proxies' own to expose, and zeros
   * would read as a fleet that does nothing. */
  if (ctx->store_only) return;
  kg_prom_family(o, "kagami_backend_info", "gauge",
                 "Configured backends and their roles.");
  for (size_t i = 0; i < cfg->nbackends; i++) {
    kg_buf_appends(o, "kagami_backend_info{backend=\"");
    kg_prom_label(o, cfg->backends[i].name);
    kg_buf_appendf(o, "\",role=\"%s\",url=\"", kg_backend_role(cfg, i));
    kg_prom_label(o, cfg->backends[i].url);
    kg_buf_appends(o, "\"} 1\n");
  }

  kg_prom_value(o, "kagami_connections_open", "gauge",
                "Client connections open now.", open);
  kg_prom_value(o, "kagami_connections_total", "counter",
                "Client connections accepted.", t.connections);
  kg_prom_value(o, "kagami_requests_total", "counter",
                "Client requests parsed and sent to the master.", t.requests);
  kg_prom_value(o, "kagami_bad_requests_total", "counter",
                "Client requests rejected by kagami before any backend.",
                t.bad_requests);
  kg_prom_value(o, "kagami_shadowed_total", "counter",
                "Requests sent to at least one shadow.", t.shadowed);
  kg_prom_value(o, "kagami_compared_total", "counter",
                "Requests whose shadow responses were compared.", t.compared);
  kg_prom_value(o, "kagami_differing_total", "counter",
                "Compared requests where a shadow that answered differed.", t.differing);
  kg_prom_value(o, "kagami_compare_failed_total", "counter",
                "Compared requests with no difference but a failed master or shadow "
                "(not counted as differing).", t.failed);
  kg_prom_value(o, "kagami_dropped_total", "counter",
                "Shadow copies not sent because a limit was reached.",
                t.dropped);
  kg_prom_value(o, "kagami_results_dropped_total", "counter",
                "Compared results dropped because comparing or storing fell behind.",
                t.results_dropped);
  kg_prom_value(o, "kagami_results_pending", "gauge",
                "Finished requests waiting to be compared and stored (past "
                "10000 per worker they are dropped).",
                t.results_pending);
  kg_prom_value(o, "kagami_aborted_total", "counter",
                "Exchanges abandoned because the client went away.", t.aborted);
  kg_prom_value(o, "kagami_master_errors_total", "counter",
                "Requests answered 502 or 504 because the master failed.",
                t.master_errors);
  kg_prom_per_backend(o, cfg, "kagami_backend_requests_total", "counter",
                      "Requests sent to each backend.", t.backend_requests);
  kg_prom_per_backend(o, cfg, "kagami_backend_errors_total", "counter",
                      "Requests to each backend that failed (refused, reset, "
                      "timeout, invalid response).", t.backend_errors);
  kg_prom_per_backend(o, cfg, "kagami_backend_inflight", "gauge",
                      "Requests to each backend waiting for their response.",
                      t.backend_inflight);
  kg_prom_per_backend(o, cfg, "kagami_backend_inflight_bytes", "gauge",
                      "Response bytes held by a shadow's requests in flight "
                      "(checked against shadow_max_inflight_bytes).",
                      t.backend_inflight_bytes);
  kg_prom_latency(o, ctx);
  if (ctx->sinks) kg_sinks_metrics(ctx->sinks, o);
}
