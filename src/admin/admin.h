/* admin.h: the admin listener: metrics, health, the JSON API and the
 * dashboard, for the people and tools watching a running kagami.
 *
 * It lives on the main thread's loop, never on a worker's, so nothing it
 * does (rendering metrics, reading the results store) can delay a client
 * of the proxy. It reads the workers only through their thread-safe
 * views (kg_worker_stats, kg_epstats_totals) and the store through a
 * read-only SQLite connection of its own.
 *
 * Routes (GET and HEAD only):
 *   /healthz                 "ok", never needs the token
 *   /metrics                 Prometheus text format 0.0.4
 *   /api/endpoints           ?since=1h&endpoint=GLOB
 *   /api/results             ?endpoint=&differing=1&limit=&before=
 *   /api/results/ID
 *   /api/timeseries          ?endpoint=&bucket=60&since=1h
 *   /api/noise               ?endpoint=GLOB: learned noise and its evidence
 *   /api/instances           which store, whether a proxy runs here, and a
 *                            fleet's instance names (for ?instance=NAME)
 *   / and its assets         the dashboard, embedded in the binary
 * With admin_token set, /metrics and /api/ need "Authorization: Bearer
 * TOKEN". The dashboard's files hold no data, so they are served without
 * it (a browser cannot send a bearer token for a page load); the page asks
 * for the token and sends it with its API calls. */
#ifndef KG_ADMIN_H
#define KG_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "config/config.h"

typedef struct kg_worker kg_worker;
typedef struct kg_epstats kg_epstats;
typedef struct kg_noise kg_noise;
typedef struct kg_admin kg_admin;

/* What the admin listener reads. Owned by main; must outlive the admin
 * (until the loop has run the close callbacks kg_admin_stop starts). */
typedef struct kg_admin_ctx {
  const kg_config *cfg;   /* admin address, token, store path, backends */
  kg_worker *workers;     /* for kg_worker_stats and open connections */
  int nworkers;
  kg_epstats *epstats;    /* per-endpoint latency histograms */
  kg_admin *admin;        /* set by kg_admin_start, cleared by kg_admin_stop */
  kg_noise *noise;        /* learned noise, or NULL when not learning */
  const struct kg_sinks *sinks; /* their own /metrics (PostgreSQL store), or NULL */
  bool store_only;        /* `kagami admin --db`: no proxy in this process
                             (no workers, epstats, noise or sinks); only
                             the store's answers are served, /metrics has
                             nothing but the build, /api/noise says 501 */
} kg_admin_ctx;

/* Binds and listens on ctx->cfg->admin with handles on `loop` (the main
 * thread's). Returns 0, or -1 with a message such as "admin 127.0.0.1:8091:
 * address already in use" in err; on failure nothing stays open on the
 * loop once it has run its close callbacks. */
int kg_admin_start(uv_loop_t *loop, kg_admin_ctx *ctx, char *err,
                   size_t errlen);

/* Stops listening and closes every admin connection (responses still
 * being written are dropped). The memory is freed by the close callbacks,
 * so the loop must run afterwards; then nothing of the admin keeps it
 * alive. Safe when the admin was never started or is already stopped. */
void kg_admin_stop(kg_admin_ctx *ctx);

/* An embedded dashboard file; the table is generated at build time from
 * web/ by scripts/embed_web.py into build/gen/web_assets.c. */
typedef struct kg_admin_asset {
  const char *path;          /* URL path, "/app.js"; "/" for index.html */
  const char *content_type;  /* "text/javascript; charset=utf-8" */
  const char *etag;          /* quoted strong validator of the content */
  const unsigned char *data;
  size_t len;
} kg_admin_asset;

extern const kg_admin_asset kg_admin_assets[];
extern const size_t kg_admin_nassets;

#endif
