/* sink.h: where compared results go.
 *
 * A sink is a table of operations over a state of its own: the diff log
 * (difflog.c) and the SQLite store (store.c) are two. The results pipeline
 * (pipeline.h) hands every batch of kg_result to each open sink in turn,
 * in libuv's thread pool. Which sinks open is the config's business: each
 * kind's open looks at the config and opens itself, or says it is not
 * configured.
 *
 * A new store is a new sink: one file defining its kg_sink_ops, its
 * declaration below, and one line in sink.c's table.
 *
 * Threads: open, reopen and close run on the main thread; write runs in
 * the thread pool, where batches of different workers may overlap, so a
 * sink's write locks whatever it shares. */
#ifndef KG_SINK_H
#define KG_SINK_H

#include <stddef.h>

#include "common/buf.h"
#include "compare/noise.h"
#include "compare/result.h"
#include "config/config.h"

typedef struct kg_sink_ops {
  /* Opens the sink as cfg asks. Returns 0 with *state set; 0 with *state
   * NULL when cfg does not ask for this sink; or -1 with a message naming
   * the file in err, having left nothing open. */
  int (*open)(const kg_config *cfg, void **state, char *err, size_t errlen);
  /* Writes n results, borrowed for the call. Returns 0, or a negative code
   * after logging it: the batch is lost for this sink, kagami goes on. */
  int (*write)(void *state, const kg_result *const *results, size_t n);
  /* SIGHUP: opens again what logrotate may have renamed, logging a
   * failure (the old file stays in use). NULL when nothing needs it. */
  void (*reopen)(void *state);
  /* Flushes and frees the state; no write runs any more. */
  void (*close)(void *state);
  /* Optional: appends the sink's own /metrics families (Prometheus text).
   * Any thread; reads counters only. */
  void (*metrics)(void *state, kg_buf *out);
  /* Optional: the run's learned-noise model (main thread, after open,
   * before results flow; the model outlives the sink). A fleet's store
   * shares it with the other instances (noise.h). */
  void (*share_noise)(void *state, kg_noise *noise);
} kg_sink_ops;

/* The sinks kagami has, in the order they are opened and written. */
extern const kg_sink_ops kg_difflog_sink; /* diff_log = "FILE" (difflog.c) */
extern const kg_sink_ops kg_store_sink;   /* store = ... (store.c) */
extern const kg_sink_ops kg_pgstore_sink; /* store = "postgresql://..." (pgstore.c) */

#define KG_SINKS_MAX 8

/* The open sinks, built once per run (kg_sinks_open) and shared,
 * read-only, by every pipeline. */
typedef struct kg_sinks {
  const kg_sink_ops *ops[KG_SINKS_MAX];
  void *state[KG_SINKS_MAX];
  size_t n;
} kg_sinks;

/* Opens every sink cfg asks for into *out (which may then hold none).
 * Returns 0, or -1 with a message in err and nothing left open. Main
 * thread, before any result is written. */
int kg_sinks_open(const kg_config *cfg, kg_sinks *out, char *err, size_t errlen);
/* Hands n results (borrowed for the call) to every sink. A sink's failure
 * is logged by the sink and does not keep the others from writing. */
void kg_sinks_write(const kg_sinks *s, const kg_result *const *results, size_t n);
/* Appends every open sink's /metrics families to out. */
void kg_sinks_metrics(const kg_sinks *s, kg_buf *out);
/* Hands the learned-noise model to every sink that shares it. */
void kg_sinks_share_noise(const kg_sinks *s, kg_noise *noise);
/* SIGHUP: every sink reopens what it must. */
void kg_sinks_reopen(const kg_sinks *s);
/* Closes every sink and empties s. Call once nothing writes any more. */
void kg_sinks_close(kg_sinks *s);

#endif
