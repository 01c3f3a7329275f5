/* worker.h: one event loop and everything that lives on it.
 *
 * kagami runs cfg->workers workers, each a thread with its own libuv loop,
 * its own listening sockets (bound with SO_REUSEPORT so the kernel spreads
 * connections), its own backend pools, Lua state and counters. Nothing on
 * the request path is shared between workers except the results sinks,
 * which lock themselves and are only written from the thread pool. */
#ifndef KG_WORKER_H
#define KG_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "proxy/epsample.h"
#include "proxy/hooks.h"
#include "proxy/sample.h"
#include "client/upstream.h"
#include "results/pipeline.h"
#include "results/sink.h"

typedef struct kg_client kg_client;
typedef struct kg_exchange kg_exchange;
typedef struct kg_noise kg_noise;
typedef struct kg_epstats kg_epstats;
typedef struct kg_recorder kg_recorder;

/* What every worker shares, owned by main. Each part locks itself. */
typedef struct kg_shared {
  kg_sinks sinks;        /* where results go: diff log, store (each may
                            be absent) */
  kg_recorder *recorder; /* NULL unless record.file is set */
  kg_noise *noise;       /* learned noise; NULL unless noise.learn */
  kg_epstats *epstats;   /* per-endpoint counts and latencies */
  atomic_uint_fast64_t *conn_ids; /* client connections numbered so far by
                                     all workers (hooks' req.connection.id);
                                     the counter is main's */
} kg_shared;

/* Results wait for the thread pool in batches; past these bounds they are
 * dropped and counted rather than queued without limit. */
#define KG_MAX_PENDING_RESULTS 10000
#define KG_MAX_PENDING_BYTES ((size_t)256 << 20)

typedef struct kg_stats {
  uint64_t connections;     /* client connections accepted */
  uint64_t requests;        /* requests parsed and dispatched */
  uint64_t bad_requests;    /* rejected with 4xx/5xx before dispatch */
  uint64_t shadowed;        /* requests sent to at least one shadow */
  uint64_t compared;        /* results written */
  uint64_t differing;       /* results where an answering shadow differed */
  uint64_t failed;          /* results not equal only because the master or
                               a shadow failed (not in differing) */
  uint64_t dropped;         /* shadow copies not sent (over a limit) */
  uint64_t aborted;         /* exchanges dropped because the client left */
  uint64_t results_dropped; /* compared results dropped: pool too slow */
  uint64_t master_errors;   /* 502/504 answered to clients */
  uint64_t shadow_errors;   /* shadow legs that failed */
  uint64_t connections_open; /* a gauge: set when the stats are published */
  uint64_t results_pending;  /* a gauge: results waiting for a comparison
                                batch (results_dropped past the cap) */
  uint64_t backend_requests[KG_MAX_BACKENDS]; /* legs sent, per backend */
  uint64_t backend_errors[KG_MAX_BACKENDS];   /* legs failed, per backend */
  /* Gauges, set when the stats are published: requests in flight per
   * backend and, for shadows, the response bytes they hold (what
   * shadow_max_inflight and shadow_max_inflight_bytes are checked
   * against). */
  uint64_t backend_inflight[KG_MAX_BACKENDS];
  uint64_t backend_inflight_bytes[KG_MAX_BACKENDS];
} kg_stats;

/* Adds every counter of src to dst (for totals across workers). */
void kg_stats_add(kg_stats *dst, const kg_stats *src);

typedef struct kg_retired {
  kg_pool *pools;             /* owned */
  size_t npools;
  struct kg_retired *next;
} kg_retired;

typedef struct kg_worker {
  uv_loop_t loop;             /* this worker's loop */
  int id;                     /* 0..workers-1 */
  const kg_config *cfg;       /* current config: shared, read-only, owned
                                 by main (a reload swaps it) */
  kg_hooks *hooks;            /* owned: this worker's Lua state */
  const kg_shared *shared;    /* sinks, noise, endpoint stats */
  kg_pool *pools;             /* owned: one per backend of cfg, same order */
  kg_retired *retired;        /* pools and configs replaced by reloads,
                                 kept until exit: in-flight requests may
                                 still use them */
  uv_async_t reload_async;    /* main -> worker: a new config is waiting */
  pthread_mutex_t reload_lock;
  const kg_config *reload_cfg; /* under reload_lock */
  uv_tcp_t *listeners;        /* owned array of cfg->nlisten handles */
  size_t nlisteners;          /* listeners initialised */
  size_t nlisteners_open;     /* listeners not yet closed */
  uv_async_t stop_async;      /* main -> worker: begin graceful stop */
  uv_timer_t stop_timer;      /* bounds the graceful stop */
  bool stopping;              /* no new connections or requests */
  bool finished;              /* the last handles are closing */
  kg_client *clients;         /* every open client (intrusive list) */
  kg_client *flush_head;      /* clients with response bytes to write */
  uv_check_t flush_check;     /* writes them once per loop iteration */
  size_t nclients;
  size_t nexchanges;          /* exchanges alive (incl. comparing) */
  uint64_t seq;               /* per-worker request counter, for ids */
  kg_rng rng;                 /* sampling decisions */
  kg_epsample epsample;       /* per-endpoint caps and floor */
  kg_pipeline results;        /* finished exchanges to compare, in
                                 batches, to shared->sinks (exchange.c) */
  kg_stats stats;             /* loop thread only */
  const char *master_error;    /* the master's failure cause last logged
                                 (a static string), for rate limiting */
  uint64_t master_logged;     /* loop time (ms) it was logged */
  uint64_t master_suppressed; /* failures of that cause not logged since */
  kg_stats published;         /* a copy of stats for other threads, under
                                 published_lock, refreshed every second */
  pthread_mutex_t published_lock;
  uv_timer_t publish_timer;
  uv_thread_t thread;
  uv_async_t *exit_async;     /* main's: told when this worker's loop ends */
  atomic_bool exited;         /* set by the worker thread at its end */
  int listen_fd_error;        /* set if the listeners failed to bind */
  /* Every read on this loop lands here and is consumed before the next
   * read. Room for a 64 KiB response with its head in one read: a big
   * body piece is written to the client at once (no copy), so a read cut
   * short of the response's end costs a second write. */
  char readbuf[256 * 1024];
} kg_worker;

/* Creates the worker's loop, pools, hooks and listening sockets. Returns 0,
 * or -1 with a message in err. */
int kg_worker_init(kg_worker *w, int id, const kg_config *cfg,
                   const kg_shared *shared, char *err, size_t errlen);
/* Before any worker binds with SO_REUSEPORT: fails (with a message) when
 * a listen address is already taken, e.g. by another running kagami. */
int kg_worker_check_addresses(const kg_config *cfg, char *err, size_t errlen);
/* Runs the loop until a graceful stop completes. */
void kg_worker_run(kg_worker *w);
/* Thread-safe: hands the worker a new config (already validated, owned by
 * main, kept alive until exit). It applies to requests that start after
 * the swap; requests in flight finish under the config they began with. */
void kg_worker_request_reload(kg_worker *w, const kg_config *cfg);
/* Thread-safe: asks the worker to stop gracefully. */
void kg_worker_request_stop(kg_worker *w);
/* Frees what kg_worker_init made (after kg_worker_run returned). */
void kg_worker_destroy(kg_worker *w);

/* Thread-safe: copies the worker's counters as of the last second. */
void kg_worker_stats(kg_worker *w, kg_stats *out);

/* Called by proxy.c / exchange.c when a client or exchange goes away, so a
 * stopping worker can finish as soon as nothing is left. */
void kg_worker_maybe_finish(kg_worker *w);

#endif
