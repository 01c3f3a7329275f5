/* worker.c: one event loop with its listeners, pools and hooks (see worker.h). */
#include "proxy/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "common/log.h"
#include "proxy/exchange.h"
#include "proxy/proxy.h"

#define KG_LISTEN_BACKLOG 1024
#define KG_POOL_MAX_IDLE 256              /* idle connections per backend */
#define KG_POOL_IDLE_TIMEOUT_MS (30 * 1000) /* below common backend defaults */

/* A listening socket of our own making: libuv 1.44 cannot set
 * SO_REUSEPORT, which lets every worker accept on the same address. */
static int kg_listen_socket(const kg_addr *a, char *err, size_t errlen) {
  int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "listen %s: %s", a->text, strerror(errno));
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (bind(fd, (const struct sockaddr *)&a->sa, a->salen) < 0 ||
      listen(fd, KG_LISTEN_BACKLOG) < 0) {
    snprintf(err, errlen, "listen %s: %s", a->text, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

int kg_worker_check_addresses(const kg_config *cfg, char *err, size_t errlen) {
  /* SO_REUSEPORT would let us share a port with another running kagami
   * and silently split its traffic; a plain bind first proves the
   * address is free. */
  for (size_t i = 0; i < cfg->nlisten; i++) {
    const kg_addr *a = &cfg->listen[i];
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      snprintf(err, errlen, "listen %s: %s", a->text, strerror(errno));
      return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int r = bind(fd, (const struct sockaddr *)&a->sa, a->salen);
    int e = errno;
    close(fd);
    if (r < 0) {
      snprintf(err, errlen, "listen %s: %s", a->text, strerror(e));
      return -1;
    }
  }
  return 0;
}

/* The one place a backend timeout is read from the config. */
static uint64_t kg_worker_backend_timeout_ms(const kg_config *cfg) {
  return cfg->backend_timeout_ms;
}

/* One HTTP client pool per backend of cfg, on this worker's loop and read
 * buffer. The array is the caller's to free; the pools lend cfg's strings,
 * which live until exit. */
static kg_pool *kg_worker_pools_new(kg_worker *w, const kg_config *cfg) {
  kg_pool *pools = kg_calloc(cfg->nbackends, sizeof(kg_pool));
  for (size_t i = 0; i < cfg->nbackends; i++) {
    const kg_backend_cfg *b = &cfg->backends[i];
    /* Host, when the client sent none: a Unix socket has no host:port. */
    kg_upstream be = {.name = b->name,
                      .host = b->transport == &kg_conn_unix ? b->addr.host : b->addr.text,
                      .addr = b->addr.sa,
                      .transport = b->transport,
                      .transport_ctx = b->tls,
                      .timeout_ms = kg_worker_backend_timeout_ms(cfg),
                      .idle_timeout_ms = KG_POOL_IDLE_TIMEOUT_MS,
                      .max_idle = KG_POOL_MAX_IDLE,
                      .max_capture = cfg->max_capture_bytes,
                      .log_down = i > 0}; /* a shadow: the master's errors
                                             are logged per request */
    kg_pool_init(&pools[i], &w->loop, &be, w->readbuf, sizeof(w->readbuf));
    pools[i].index = (int)i;
  }
  return pools;
}

void kg_stats_add(kg_stats *dst, const kg_stats *src) {
  /* kg_stats is all uint64_t counters: add them as an array. */
  uint64_t *d = (uint64_t *)dst;
  const uint64_t *s = (const uint64_t *)src;
  for (size_t i = 0; i < sizeof(kg_stats) / sizeof(uint64_t); i++) d[i] += s[i];
}

static void kg_worker_publish(kg_worker *w) {
  w->stats.connections_open = w->nclients;
  w->stats.results_pending = kg_pipeline_pending(&w->results, NULL);
  for (size_t i = 0; i < w->cfg->nbackends && i < KG_MAX_BACKENDS; i++) {
    w->stats.backend_inflight[i] = w->pools[i].inflight;
    w->stats.backend_inflight_bytes[i] = w->pools[i].inflight_bytes;
  }
  pthread_mutex_lock(&w->published_lock);
  w->published = w->stats;
  pthread_mutex_unlock(&w->published_lock);
}

static void kg_worker_on_publish(uv_timer_t *t) { kg_worker_publish(t->data); }

void kg_worker_stats(kg_worker *w, kg_stats *out) {
  pthread_mutex_lock(&w->published_lock);
  *out = w->published;
  pthread_mutex_unlock(&w->published_lock);
}

/* On the worker's loop: swap in the config main handed over. New hooks
 * (a Lua state of their own) and new pools; the old pools stop pooling and
 * stay allocated until exit, since requests in flight still point to
 * them. */
static void kg_worker_on_reload(uv_async_t *a) {
  kg_worker *w = a->data;
  pthread_mutex_lock(&w->reload_lock);
  const kg_config *cfg = w->reload_cfg;
  w->reload_cfg = NULL;
  pthread_mutex_unlock(&w->reload_lock);
  if (cfg == NULL || w->stopping) return;
  char err[1024];
  kg_hooks *hooks = NULL;
  if (kg_hooks_new(cfg, &hooks, err, sizeof(err)) < 0) {
    kg_log_error("worker %d: reload failed: %s; keeping the running config",
                 w->id, err);
    return;
  }
  kg_retired *r = kg_calloc(1, sizeof(*r));
  r->pools = w->pools;
  r->npools = w->cfg->nbackends;
  r->next = w->retired;
  w->retired = r;
  for (size_t i = 0; i < r->npools; i++) {
    r->pools[i].retired = true;
    kg_pool_close_idle(&r->pools[i]);
  }
  w->pools = kg_worker_pools_new(w, cfg);
  kg_hooks_free(w->hooks);
  w->hooks = hooks;
  w->cfg = cfg;
  kg_epsample_free(&w->epsample);
  kg_epsample_init(&w->epsample, cfg->max_per_endpoint_per_s / cfg->workers);
}

void kg_worker_request_reload(kg_worker *w, const kg_config *cfg) {
  pthread_mutex_lock(&w->reload_lock);
  w->reload_cfg = cfg;
  pthread_mutex_unlock(&w->reload_lock);
  uv_async_send(&w->reload_async);
}

static void kg_worker_on_stop_timer(uv_timer_t *t) {
  kg_worker *w = t->data;
  kg_log_warn("worker %d: graceful stop timed out; closing %zu connections",
              w->id, w->nclients);
  kg_proxy_close_all(w);
}

static void kg_worker_on_listener_close(uv_handle_t *h) {
  kg_worker *w = h->loop->data;
  w->nlisteners_open--;
  kg_worker_maybe_finish(w);
}

static void kg_worker_on_stop(uv_async_t *a) {
  kg_worker *w = a->data;
  if (w->stopping) return;
  w->stopping = true;
  for (size_t i = 0; i < w->nlisteners; i++)
    uv_close((uv_handle_t *)&w->listeners[i], kg_worker_on_listener_close);
  kg_proxy_stop_clients(w);
  for (size_t i = 0; i < w->cfg->nbackends; i++) {
    w->pools[i].retired = true; /* no connection is pooled any more */
    kg_pool_close_idle(&w->pools[i]);
  }
  /* In-flight master responses get until a backend would time out. */
  uint64_t grace = kg_worker_backend_timeout_ms(w->cfg) + 1000;
  uv_timer_start(&w->stop_timer, kg_worker_on_stop_timer, grace, 0);
  kg_worker_maybe_finish(w);
}

void kg_worker_maybe_finish(kg_worker *w) {
  if (!w->stopping || w->finished || w->nclients || w->nexchanges ||
      w->nlisteners_open)
    return;
  w->finished = true;
  kg_worker_publish(w); /* the final numbers */
  for (size_t i = 0; i < w->cfg->nbackends; i++) kg_pool_close_idle(&w->pools[i]);
  uv_close((uv_handle_t *)&w->publish_timer, NULL);
  kg_pipeline_close(&w->results);
  uv_close((uv_handle_t *)&w->stop_async, NULL);
  uv_close((uv_handle_t *)&w->reload_async, NULL);
  uv_close((uv_handle_t *)&w->stop_timer, NULL);
  uv_close((uv_handle_t *)&w->flush_check, NULL);
}

int kg_worker_init(kg_worker *w, int id, const kg_config *cfg,
                   const kg_shared *shared, char *err, size_t errlen) {
  memset(w, 0, sizeof(*w));
  w->id = id;
  w->cfg = cfg;
  w->shared = shared;
  kg_epsample_init(&w->epsample, cfg->max_per_endpoint_per_s / cfg->workers);
  if (kg_hooks_new(cfg, &w->hooks, err, errlen) < 0) return -1;
  int r = uv_loop_init(&w->loop);
  if (r < 0) {
    snprintf(err, errlen, "event loop: %s", uv_strerror(r));
    kg_hooks_free(w->hooks);
    return -1;
  }
  w->loop.data = w;
  kg_rng_seed(&w->rng, kg_now_ns() ^ ((uint64_t)getpid() << 32) ^
                           ((uint64_t)id * 0x9e3779b97f4a7c15ULL));
  w->pools = kg_worker_pools_new(w, cfg);
  w->listeners = kg_calloc(cfg->nlisten, sizeof(uv_tcp_t));
  for (size_t i = 0; i < cfg->nlisten; i++) {
    int fd = kg_listen_socket(&cfg->listen[i], err, errlen);
    uv_tcp_init(&w->loop, &w->listeners[i]);
    w->nlisteners++;
    w->nlisteners_open++;
    if (fd < 0 || (r = uv_tcp_open(&w->listeners[i], fd)) < 0 ||
        (r = uv_listen((uv_stream_t *)&w->listeners[i], KG_LISTEN_BACKLOG,
                       kg_proxy_on_connection)) < 0) {
      if (fd >= 0)
        snprintf(err, errlen, "listen %s: %s", cfg->listen[i].text,
                 uv_strerror(r));
      w->listen_fd_error = 1;
      break;
    }
  }
  uv_async_init(&w->loop, &w->stop_async, kg_worker_on_stop);
  w->stop_async.data = w;
  pthread_mutex_init(&w->reload_lock, NULL);
  uv_async_init(&w->loop, &w->reload_async, kg_worker_on_reload);
  w->reload_async.data = w;
  uv_timer_init(&w->loop, &w->stop_timer);
  w->stop_timer.data = w;
  pthread_mutex_init(&w->published_lock, NULL);
  kg_exchange_pipeline_init(w);
  uv_timer_init(&w->loop, &w->publish_timer);
  w->publish_timer.data = w;
  uv_timer_start(&w->publish_timer, kg_worker_on_publish, 1000, 1000);
  /* It must not keep a stopping loop alive by itself. */
  uv_unref((uv_handle_t *)&w->publish_timer);
  kg_proxy_init_flush(w);
  if (w->listen_fd_error) {
    /* Unwind through the normal stop path so every handle closes. */
    kg_worker_on_stop(&w->stop_async);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    kg_worker_destroy(w);
    return -1;
  }
  return 0;
}

void kg_worker_run(kg_worker *w) { uv_run(&w->loop, UV_RUN_DEFAULT); }

void kg_worker_request_stop(kg_worker *w) { uv_async_send(&w->stop_async); }

void kg_worker_destroy(kg_worker *w) {
  int r = uv_loop_close(&w->loop);
  if (r < 0) kg_log_error("worker %d: loop did not close cleanly: %s", w->id,
                          uv_strerror(r));
  kg_hooks_free(w->hooks);
  kg_epsample_free(&w->epsample);
  pthread_mutex_destroy(&w->published_lock);
  pthread_mutex_destroy(&w->reload_lock);
  free(w->pools);
  w->pools = NULL;
  while (w->retired) {
    kg_retired *old = w->retired;
    w->retired = old->next;
    free(old->pools);
    free(old);
  }
  free(w->listeners);
  w->listeners = NULL;
  w->hooks = NULL;
}
