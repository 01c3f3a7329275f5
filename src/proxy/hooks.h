/* hooks.h: the user's Lua hooks, called per request.
 *
 * Each worker (event-loop thread) owns one kg_hooks with its own lua_State,
 * made by running the config file again; Lua states are not shared between
 * threads. When the config defines no hook, kg_hooks_new still succeeds and
 * every call below is a cheap no-op, so the hot path never enters the VM
 * unless the user asked for it.
 *
 * A hook that raises an error, returns something of the wrong shape, or
 * exceeds its instruction budget is logged with its Lua traceback and the
 * request goes on as if the hook were absent. */
#ifndef KG_HOOKS_H
#define KG_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "compare/result.h"
#include "config/config.h"
#include "http/hdrs.h"

typedef struct kg_hooks kg_hooks;

/* The comparison's outcome, for on_backends_finished's fourth argument. */
typedef struct kg_hook_difference {
  const char *backend;   /* the shadow */
  const char *where;     /* "$.items[3].price", "/html/body/p[2]/text()",
                            "line 12", "status", "header:etag" */
  const char *master;    /* NULL when absent on that side */
  const char *shadow;
} kg_hook_difference;

typedef struct kg_result_view {
  int equal;                            /* every shadow matched */
  const char *kind;                     /* "json", "html", "text", "binary" */
  const char *endpoint;                 /* "GET /users/:id" */
  const kg_hook_difference *differences;
  size_t ndifferences;
  const char *const *suppressed;        /* noise patterns that were hidden */
  size_t nsuppressed;
  const char *diff;                     /* unified diff text, diff_len bytes
                                           (a body's NUL bytes included) */
  size_t diff_len;
} kg_result_view;

/* Creates the hooks of `cfg` for one worker. Returns 0 or -1 with a message
 * in err. Free with kg_hooks_free. */
int kg_hooks_new(const kg_config *cfg, kg_hooks **out, char *err,
                 size_t errlen);
void kg_hooks_free(kg_hooks *h);

/* select_backends(req). Returns 1 and sets *mask (bit i = cfg->backends[i])
 * when the hook returned a list of names; 0 when it returned nil, is not
 * defined, or failed (the default rules decide). Unknown names in the list
 * are logged and skipped. The caller adds the master itself. */
int kg_hooks_select_backends(kg_hooks *h, const kg_req_view *req,
                             uint64_t *mask);

/* munge_headers(backend, req, headers). `hdrs` holds the fields about to be
 * sent to `backend`; on return it holds what the hook left (original order
 * kept for fields still present, new fields appended). Returns 1 when the
 * hook ran and changed nothing it was not allowed to, 0 when there is no
 * hook or it failed (then hdrs is left untouched). */
int kg_hooks_munge_headers(kg_hooks *h, const char *backend,
                           const kg_req_view *req, kg_hdrs *hdrs);

/* on_backends_finished(backends, req, responses, result): `backends` is the
 * list of names in resps order; responses[name] = {status, headers, body,
 * elapsed, error}; result = {equal, kind, endpoint, differences = {{backend,
 * where, master, shadow}, ...}, suppressed = {...}, diff}, or nil when the
 * request was not compared (result == NULL). Returns 1 if it ran, 0 if
 * absent or failed. */
int kg_hooks_backends_finished(kg_hooks *h, const kg_req_view *req,
                               const kg_resp_view *resps, size_t n,
                               const kg_result_view *result);

#endif
