/* worker.c: one event loop with its listeners, pools and hooks (see worker.h). */
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "log.h"
#include "proxy.h"

#define KG_LISTEN_BACKLOG 1024

void kg_worker_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  kg_worker *w = h->loop->data;
  buf->base = w->readbuf;
  buf->len = sizeof(w->readbuf);
}

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
  for (size_t i = 0; i < w->cfg->nbackends; i++) kg_pool_close_idle(&w->pools[i]);
  /* In-flight master responses get until a backend would time out. */
  uint64_t grace = (uint64_t)(w->cfg->backend_timeout * 1000.0) + 1000;
  uv_timer_start(&w->stop_timer, kg_worker_on_stop_timer, grace, 0);
  kg_worker_maybe_finish(w);
}

void kg_worker_maybe_finish(kg_worker *w) {
  if (!w->stopping || w->finished || w->nclients || w->nexchanges ||
      w->nlisteners_open)
    return;
  w->finished = true;
  for (size_t i = 0; i < w->cfg->nbackends; i++) kg_pool_close_idle(&w->pools[i]);
  uv_close((uv_handle_t *)&w->stop_async, NULL);
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
  for (size_t i = 0; i < cfg->nbackends; i++)
    kg_pool_init(&w->pools[i], w, &cfg->backends[i], (int)i);
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
  uv_timer_init(&w->loop, &w->stop_timer);
  w->stop_timer.data = w;
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
  free(w->listeners);
  w->listeners = NULL;
  w->hooks = NULL;
}
