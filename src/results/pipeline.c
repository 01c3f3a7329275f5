/* pipeline.c: batches of finished requests through the thread pool to the
 * sinks (see pipeline.h). */
#include "results/pipeline.h"

#include <stdlib.h>

#include "common/common.h"

/* One batch: the items taken from the queue, owned by the batch until
 * their done callbacks. */
typedef struct kg_pipeline_batch {
  uv_work_t work;
  kg_pipeline *p;
  kg_pipeline_item *head;
  size_t n;
} kg_pipeline_batch;

void kg_pipeline_init(kg_pipeline *p, uv_loop_t *loop, const kg_pipeline_ops *ops,
                      const kg_pipeline_limits *lim, const kg_sinks *sinks, void *data) {
  *p = (kg_pipeline){.ops = ops, .lim = *lim, .sinks = sinks, .data = data, .loop = loop};
  if (p->lim.gather == 0) p->lim.gather = 1;
  uv_timer_init(loop, &p->timer);
  p->timer.data = p;
}

/* Thread pool: compares every item, then gives the whole batch to the
 * sinks at once (one diff log write, one store transaction). */
static void kg_pipeline_work(uv_work_t *req) {
  kg_pipeline_batch *b = KG_CONTAINER_OF(req, kg_pipeline_batch, work);
  const kg_pipeline *p = b->p;
  kg_result *results = kg_calloc(b->n, sizeof(kg_result));
  const kg_result **ptrs = kg_calloc(b->n, sizeof(kg_result *));
  size_t i = 0;
  for (kg_pipeline_item *it = b->head; it; it = it->next, i++) {
    p->ops->compare(it, &results[i]);
    ptrs[i] = &results[i];
  }
  kg_sinks_write(p->sinks, ptrs, b->n);
  free(ptrs);
  free(results);
}

static void kg_pipeline_start(kg_pipeline *p);

static void kg_pipeline_after(uv_work_t *req, int status) {
  kg_pipeline_batch *b = KG_CONTAINER_OF(req, kg_pipeline_batch, work);
  kg_pipeline *p = b->p;
  kg_pipeline_item *next;
  for (kg_pipeline_item *it = b->head; it; it = next) {
    next = it->next;
    p->ops->done(it, status == 0);
  }
  free(b);
  p->running = false;
  if (p->head) kg_pipeline_start(p);
  if (p->ops->drained) p->ops->drained(p);
}

/* Takes the whole queue to the thread pool as one batch. */
static void kg_pipeline_start(kg_pipeline *p) {
  kg_pipeline_batch *b = kg_calloc(1, sizeof(*b));
  b->p = p;
  b->head = p->head;
  b->n = p->n;
  p->head = p->tail = NULL;
  p->n = 0;
  p->bytes = 0;
  p->running = true;
  uv_timer_stop(&p->timer);
  uv_queue_work(p->loop, &b->work, kg_pipeline_work, kg_pipeline_after);
}

static void kg_pipeline_on_timer(uv_timer_t *t) { kg_pipeline_flush(t->data); }

int kg_pipeline_submit(kg_pipeline *p, kg_pipeline_item *it) {
  if ((p->lim.max_items && p->n >= p->lim.max_items) ||
      (p->lim.max_bytes && p->bytes + it->bytes > p->lim.max_bytes))
    return UV_ENOBUFS;
  it->next = NULL;
  if (p->tail) p->tail->next = it;
  else p->head = it;
  p->tail = it;
  p->n++;
  p->bytes += it->bytes;
  if (p->running) return 0; /* the running batch's end starts the next */
  /* Waking a pool thread costs about as much as comparing two small equal
   * responses: under load, gather results for a moment first. */
  if (p->n >= p->lim.gather) kg_pipeline_start(p);
  else if (!uv_is_active((uv_handle_t *)&p->timer))
    uv_timer_start(&p->timer, kg_pipeline_on_timer, p->lim.wait_ms, 0);
  return 0;
}

void kg_pipeline_flush(kg_pipeline *p) {
  if (!p->running && p->head) kg_pipeline_start(p);
}

size_t kg_pipeline_pending(const kg_pipeline *p, size_t *bytes) {
  if (bytes) *bytes = p->bytes;
  return p->n;
}

bool kg_pipeline_busy(const kg_pipeline *p) { return p->running || p->head != NULL; }

void kg_pipeline_close(kg_pipeline *p) { uv_close((uv_handle_t *)&p->timer, NULL); }
