/* pipeline.h: from finished requests to the sinks, off the loop.
 *
 * Live shadowing (proxy/exchange.c, one pipeline per worker) and replay
 * (traffic/replay.c) both end the same way: a finished request is queued
 * on its loop, batches of them go to libuv's thread pool one at a time,
 * where each is compared and the batch's results are handed to every sink
 * (sink.h) together, and back on the loop each request is counted and
 * freed. The pipeline is that path; what a request is and how it is
 * compared is its owner's, through kg_pipeline_ops.
 *
 * Batching keeps the loop's cost per request to a list append and
 * amortises the thread hand-off: a batch starts when `gather` items wait,
 * when the first has waited `wait_ms`, at kg_pipeline_flush, or at once
 * after a previous batch when items are left. A batch takes at most
 * `max_batch` items, and while a full batch waits (a backlog) up to
 * `max_running` batches run at once: a slow differ (HTML) then uses more
 * than one core, and what a running batch holds stays small (items in the
 * thread pool are outside the queue's bounds). The queue can be bounded
 * in count and bytes: past the bound, submit refuses and the owner drops
 * and counts (live), or the owner stops producing while
 * kg_pipeline_pending says the queue is long (replay).
 *
 * Threads: every call below is made on the loop thread; compare runs in
 * the thread pool, for up to max_running batches of one pipeline at once
 * (so with max_running > 1 it must be safe to call concurrently), and the
 * sinks get batches in the order they finish. */
#ifndef KG_PIPELINE_H
#define KG_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "compare/result.h"
#include "results/sink.h"

typedef struct kg_pipeline kg_pipeline;

/* Embedded in the owner's request object (KG_CONTAINER_OF gets it back). */
typedef struct kg_pipeline_item {
  struct kg_pipeline_item *next; /* in the queue, then in its batch */
  size_t bytes;                  /* memory it holds, for the byte bound */
} kg_pipeline_item;

typedef struct kg_pipeline_ops {
  /* Thread pool: compares the request and fills *out, which may point
   * into memory the item owns until done is called. */
  void (*compare)(kg_pipeline_item *it, kg_result *out);
  /* Loop thread, after the sinks took the batch (compared is false if the
   * batch never ran): counts the outcome and frees the item. */
  void (*done)(kg_pipeline_item *it, bool compared);
  /* Loop thread, optional: a batch ended, so the queue has room again. */
  void (*drained)(kg_pipeline *p);
} kg_pipeline_ops;

typedef struct kg_pipeline_limits {
  size_t max_items;   /* submit refuses when this many wait; 0: no bound */
  size_t max_bytes;   /* ... or when the item would pass this; 0: none */
  size_t gather;      /* items that start a batch at once (at least 1) */
  uint64_t wait_ms;   /* or the longest the first item waits */
  size_t max_batch;   /* items in one batch at most; 0: the whole queue */
  size_t max_running; /* batches in the thread pool at once (0 means 1) */
} kg_pipeline_limits;

struct kg_pipeline {
  const kg_pipeline_ops *ops;
  kg_pipeline_limits lim;
  const kg_sinks *sinks;   /* borrowed: outlives every batch */
  void *data;              /* the owner's, for its callbacks */
  uv_loop_t *loop;
  kg_pipeline_item *head;  /* waiting for the next batch (FIFO) */
  kg_pipeline_item *tail;
  size_t n;                /* items waiting */
  size_t bytes;            /* their bytes */
  size_t running;          /* batches in the thread pool */
  uv_timer_t timer;        /* wait_ms for the first waiting item */
};

/* Initialises p on loop (its timer is a handle of that loop: close it with
 * kg_pipeline_close before the loop closes). sinks and data are borrowed. */
void kg_pipeline_init(kg_pipeline *p, uv_loop_t *loop, const kg_pipeline_ops *ops,
                      const kg_pipeline_limits *lim, const kg_sinks *sinks, void *data);
/* Queues it (and starts a batch as the limits say). Returns 0, or UV_ENOBUFS
 * when the queue is at its bound: then it was not taken, and the caller
 * counts and frees it. */
int kg_pipeline_submit(kg_pipeline *p, kg_pipeline_item *it);
/* Starts a batch now if items wait and none runs (a stopping owner does
 * not wait for more). */
void kg_pipeline_flush(kg_pipeline *p);
/* Items waiting (not those in a running batch); *bytes gets their bytes. */
size_t kg_pipeline_pending(const kg_pipeline *p, size_t *bytes);
/* Items wait or a batch runs: done callbacks are still to come. */
bool kg_pipeline_busy(const kg_pipeline *p);
/* Closes the timer. Call once nothing more will be submitted; a running
 * batch (the one calling done right now, say) still finishes. */
void kg_pipeline_close(kg_pipeline *p);

#endif
