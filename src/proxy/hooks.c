/* hooks.c: the user's Lua hooks, called per request (see hooks.h).
 *
 * Calling convention, the same for the three hooks: a C "trampoline" runs
 * under lua_pcall with a message handler that appends a traceback. It
 * builds the arguments, starts the instruction budget, calls the user's
 * function, stops the budget and reads the results into a call_ctx the
 * caller owns. Doing the argument building and result reading inside the
 * protected call means a Lua error (including "not enough memory") can
 * never longjmp past C code that holds resources: anything the trampoline
 * allocates hangs off the call_ctx and is freed by the caller.
 *
 * Header fields are shown to Lua as case-insensitive proxy tables. That
 * part is a small Lua chunk (hooks_headers.lua, embedded at build time),
 * loaded once per state: metatables are far shorter to write in Lua than
 * through the C API, and it runs only when a hook touches headers. */
#include "proxy/hooks.h"
#include "common/log.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "common/common.h"
#include "proxy/hooks_lua.h"

enum hook_id { HOOK_SELECT, HOOK_MUNGE, HOOK_FINISHED, HOOK_COUNT };

static const char *const hook_names[HOOK_COUNT] = {
    "select_backends", "munge_headers", "on_backends_finished"};

struct kg_hooks {
  const kg_config *cfg;  /* borrowed; must outlive the hooks */
  lua_State *L;          /* owned; NULL when the config defines no hook */
  int ref[HOOK_COUNT];   /* registry refs to the hook functions, or
                            LUA_NOREF when that hook is not defined */
  int ref_hnew;          /* hooks_headers.lua's new(list, readonly) */
  int ref_hexport;       /* hooks_headers.lua's export(proxy) */
};

/* Everything one hook call needs and produces. Lives on the C caller's
 * stack; the trampoline gets it as a light userdata. */
typedef struct call_ctx {
  kg_hooks *h;
  enum hook_id id;
  const kg_req_view *req;
  /* munge_headers */
  const char *backend;
  const kg_hdrs *hdrs_in;   /* fields before the hook */
  kg_hdrs out;              /* fields after it; owned by the caller */
  /* on_backends_finished */
  const kg_resp_view *resps;
  size_t nresps;
  const kg_result_view *result; /* NULL: not compared */
  /* select_backends results */
  int listed;               /* 1: the hook returned a list */
  uint64_t mask;
  char unknown[64];         /* first unknown backend name, for the log */
  size_t nunknown;
  /* Set when the hook ran but returned or left something unusable. */
  char why[256];
} call_ctx;

/* ---- instruction budget ----------------------------------------------- */

/* Called by Lua every `hook_budget` instructions: the first call means the
 * budget is spent. From then on it fires on every instruction, so a hook
 * that catches the error with pcall cannot keep running: its next
 * instruction raises again. */
static void kg_hooks_budget_hook(lua_State *L, lua_Debug *ar) {
  kg_hooks *h = *(kg_hooks **)lua_getextraspace(L);
  lua_sethook(L, kg_hooks_budget_hook, LUA_MASKCOUNT, 1);
  luaL_error(L, "instruction budget exceeded (hook_budget = %d)",
             h->cfg->hook_budget);
}

/* lua_sethook also resets the instruction counter: a fresh budget per call. */
static void kg_hooks_budget_start(kg_hooks *h) {
  lua_sethook(h->L, kg_hooks_budget_hook, LUA_MASKCOUNT, h->cfg->hook_budget);
}

static void kg_hooks_budget_stop(lua_State *L) { lua_sethook(L, NULL, 0, 0); }

/* Message handler: runs where the error happened, so the traceback shows the
 * hook's frames. Never calls user code (no __tostring): it may run after the
 * budget is spent. */
static int kg_hooks_msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL)
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* ---- arguments -------------------------------------------------------- */

/* Pushes a headers proxy for hd (NULL: no fields). */
static void push_headers(kg_hooks *h, lua_State *L, const kg_hdrs *hd,
                         bool readonly) {
  size_t n = hd != NULL ? hd->n : 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_hnew);
  lua_createtable(L, (int)KG_MIN(n * 2, (size_t)INT32_MAX), 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushlstring(L, kg_hdrs_name(hd, i), hd->v[i].name_len);
    lua_rawseti(L, -2, (lua_Integer)(2 * i + 1));
    lua_pushlstring(L, kg_hdrs_value(hd, i), hd->v[i].value_len);
    lua_rawseti(L, -2, (lua_Integer)(2 * i + 2));
  }
  lua_pushboolean(L, readonly);
  lua_call(L, 2, 1);
}

/* req = { method, url, path, query, headers, body, connection = { id,
 * requests } }. The request's own headers are read-only everywhere: only
 * munge_headers' third argument changes what is sent. connection is what
 * Kage called the session: the client connection's number in this process
 * and this request's number on it (absent for requests with no client
 * connection). */
static void push_req(kg_hooks *h, lua_State *L, const kg_req_view *r) {
  const char *url = r->url != NULL ? r->url : "";
  const char *q = strchr(url, '?');
  lua_createtable(L, 0, 7);
  lua_pushstring(L, r->method != NULL ? r->method : "");
  lua_setfield(L, -2, "method");
  lua_pushstring(L, url);
  lua_setfield(L, -2, "url");
  if (r->path != NULL)
    lua_pushstring(L, r->path);
  else
    lua_pushlstring(L, url, q != NULL ? (size_t)(q - url) : strlen(url));
  lua_setfield(L, -2, "path");
  if (q != NULL) {
    lua_pushstring(L, q + 1);
    lua_setfield(L, -2, "query");
  }
  push_headers(h, L, r->hdrs, true);
  lua_setfield(L, -2, "headers");
  if (r->body != NULL)
    lua_pushlstring(L, r->body, r->body_len);
  else
    lua_pushliteral(L, "");
  lua_setfield(L, -2, "body");
  if (r->conn_id != 0) {
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)r->conn_id);
    lua_setfield(L, -2, "id");
    lua_pushinteger(L, (lua_Integer)r->conn_seq);
    lua_setfield(L, -2, "requests");
    lua_setfield(L, -2, "connection");
  }
}

/* responses = { [name] = { status, headers, body, elapsed, error } }. */
static void push_responses(kg_hooks *h, lua_State *L, const kg_resp_view *rs,
                           size_t n) {
  lua_createtable(L, 0, (int)KG_MIN(n, (size_t)INT32_MAX));
  for (size_t i = 0; i < n; i++) {
    const kg_resp_view *r = &rs[i];
    lua_createtable(L, 0, 5);
    if (r->status > 0) {
      lua_pushinteger(L, r->status);
      lua_setfield(L, -2, "status");
    }
    /* Always a table, so resp.headers[...] works on failed backends too. */
    push_headers(h, L, r->hdrs, true);
    lua_setfield(L, -2, "headers");
    if (r->body != NULL)
      lua_pushlstring(L, r->body, r->body_len);
    else
      lua_pushliteral(L, "");
    lua_setfield(L, -2, "body");
    lua_pushnumber(L, r->elapsed);
    lua_setfield(L, -2, "elapsed");
    if (r->error != NULL) {
      lua_pushstring(L, r->error);
      lua_setfield(L, -2, "error");
    }
    lua_setfield(L, -2, r->backend != NULL ? r->backend : "");
  }
}

static void kg_hooks_set_opt_string(lua_State *L, const char *key, const char *v) {
  if (v == NULL) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, key);
}

/* result = { equal, kind, endpoint, differences, suppressed, diff }, or nil. */
static void push_result(lua_State *L, const kg_result_view *r) {
  if (r == NULL) {
    lua_pushnil(L);
    return;
  }
  lua_createtable(L, 0, 6);
  lua_pushboolean(L, r->equal);
  lua_setfield(L, -2, "equal");
  kg_hooks_set_opt_string(L, "kind", r->kind);
  kg_hooks_set_opt_string(L, "endpoint", r->endpoint);
  if (r->diff != NULL) { /* by length: a NUL byte of a body must not end it */
    lua_pushlstring(L, r->diff, r->diff_len);
    lua_setfield(L, -2, "diff");
  }
  lua_createtable(L, (int)KG_MIN(r->ndifferences, (size_t)INT32_MAX), 0);
  for (size_t i = 0; i < r->ndifferences; i++) {
    const kg_hook_difference *d = &r->differences[i];
    lua_createtable(L, 0, 4);
    kg_hooks_set_opt_string(L, "backend", d->backend);
    kg_hooks_set_opt_string(L, "where", d->where);
    kg_hooks_set_opt_string(L, "master", d->master);
    kg_hooks_set_opt_string(L, "shadow", d->shadow);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "differences");
  lua_createtable(L, (int)KG_MIN(r->nsuppressed, (size_t)INT32_MAX), 0);
  for (size_t i = 0; i < r->nsuppressed; i++) {
    lua_pushstring(L, r->suppressed[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "suppressed");
}

/* ---- results ---------------------------------------------------------- */

/* select_backends' return value at idx: nil, or a list of names. */
static void kg_hooks_read_selection(call_ctx *x, lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  int t = lua_type(L, idx);
  if (t == LUA_TNIL) return;
  if (t != LUA_TTABLE) {
    snprintf(x->why, sizeof(x->why),
             "expected a list of backend names or nil, got a %s",
             lua_typename(L, t));
    return;
  }
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    count++;
    lua_pop(L, 1);
  }
  if (count != n) {
    snprintf(x->why, sizeof(x->why),
             "expected a list of backend names or nil, got a table with "
             "other keys");
    return;
  }
  uint64_t mask = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    if (lua_type(L, -1) != LUA_TSTRING) {
      snprintf(x->why, sizeof(x->why),
               "entry %lld of the returned list is a %s, not a backend name",
               (long long)i, luaL_typename(L, -1));
      lua_pop(L, 1);
      return;
    }
    const char *name = lua_tostring(L, -1);
    int b = kg_config_backend_index(x->h->cfg, name);
    if (b >= 0) {
      mask |= 1ULL << b;
    } else if (x->nunknown++ == 0) {
      /* Keep the name printable: it goes to the log as is. */
      size_t j = 0;
      for (; name[j] && j + 1 < sizeof(x->unknown); j++)
        x->unknown[j] = (name[j] >= 0x20 && name[j] < 0x7f) ? name[j] : '?';
      x->unknown[j] = '\0';
    }
    lua_pop(L, 1);
  }
  x->listed = 1;
  x->mask = mask;
}

static bool kg_hooks_is_tchar(unsigned char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
         (ch >= 'A' && ch <= 'Z') || (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool kg_hooks_valid_name(const char *s, size_t n) {
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++)
    if (!kg_hooks_is_tchar((unsigned char)s[i])) return false;
  return true;
}

static bool kg_hooks_valid_value(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return false;
  return true;
}

static bool is_framing(const kg_hdrs *hd, size_t i) {
  const char *n = kg_hdrs_name(hd, i);
  return strcasecmp(n, "content-length") == 0 ||
         strcasecmp(n, "transfer-encoding") == 0;
}

/* The fields that decide where the request body ends must come out exactly
 * as they went in: if a hook could change them, the body we forward would be
 * read by the backend as a different request (request smuggling). */
static bool same_framing(const kg_hdrs *a, const kg_hdrs *b) {
  size_t i = 0, j = 0;
  for (;;) {
    while (i < a->n && !is_framing(a, i)) i++;
    while (j < b->n && !is_framing(b, j)) j++;
    if (i == a->n || j == b->n) return i == a->n && j == b->n;
    if (strcasecmp(kg_hdrs_name(a, i), kg_hdrs_name(b, j)) != 0 ||
        a->v[i].value_len != b->v[j].value_len ||
        memcmp(kg_hdrs_value(a, i), kg_hdrs_value(b, j), a->v[i].value_len) != 0)
      return false;
    i++, j++;
  }
}

/* After munge_headers: the proxy at idx back into x->out, checked. */
static void kg_hooks_read_headers(call_ctx *x, lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, x->h->ref_hexport);
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i + 1 <= n; i += 2) {
    size_t nlen, vlen;
    lua_rawgeti(L, -1, i);
    lua_rawgeti(L, -2, i + 1);
    const char *name = lua_tolstring(L, -2, &nlen);
    const char *value = lua_tolstring(L, -1, &vlen);
    if (name == NULL || value == NULL || !kg_hooks_valid_name(name, nlen) ||
        !kg_hooks_valid_value(value, vlen) || nlen > UINT32_MAX || vlen > UINT32_MAX) {
      snprintf(x->why, sizeof(x->why),
               "rejected an invalid header field (bad name, or CR/LF/NUL in "
               "the value); headers left unchanged");
      lua_pop(L, 3);
      return;
    }
    kg_hdrs_add(&x->out, name, nlen, value, vlen);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  if (!same_framing(x->hdrs_in, &x->out))
    snprintf(x->why, sizeof(x->why),
             "Content-Length and Transfer-Encoding cannot be changed by a "
             "hook; headers left unchanged");
}

/* ---- the protected call ----------------------------------------------- */

static int kg_hooks_trampoline(lua_State *L) {
  call_ctx *x = lua_touserdata(L, 1);
  kg_hooks *h = x->h;
  luaL_checkstack(L, 10, NULL);
  switch (x->id) {
  case HOOK_SELECT:
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref[HOOK_SELECT]);
    push_req(h, L, x->req);
    kg_hooks_budget_start(h);
    lua_call(L, 1, 1);
    kg_hooks_budget_stop(L);
    kg_hooks_read_selection(x, L, -1);
    break;
  case HOOK_MUNGE:
    push_headers(h, L, x->hdrs_in, false); /* stack slot 2, read back below */
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref[HOOK_MUNGE]);
    lua_pushstring(L, x->backend != NULL ? x->backend : "");
    push_req(h, L, x->req);
    lua_pushvalue(L, 2);
    kg_hooks_budget_start(h);
    lua_call(L, 3, 0);
    kg_hooks_budget_stop(L);
    kg_hooks_read_headers(x, L, 2);
    break;
  case HOOK_FINISHED:
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref[HOOK_FINISHED]);
    lua_createtable(L, (int)KG_MIN(x->nresps, (size_t)INT32_MAX), 0);
    for (size_t i = 0; i < x->nresps; i++) {
      lua_pushstring(L, x->resps[i].backend != NULL ? x->resps[i].backend : "");
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    push_req(h, L, x->req);
    push_responses(h, L, x->resps, x->nresps);
    push_result(L, x->result);
    kg_hooks_budget_start(h);
    lua_call(L, 4, 0);
    kg_hooks_budget_stop(L);
    break;
  default:
    break;
  }
  return 0;
}

/* Runs one hook through the trampoline. Returns 0, or -1 after logging why
 * (a Lua error with its traceback, or a result we cannot use). */
static int kg_hooks_run_hook(call_ctx *x) {
  lua_State *L = x->h->L;
  const char *name = hook_names[x->id];
  int top = lua_gettop(L);
  lua_pushcfunction(L, kg_hooks_msgh);
  lua_pushcfunction(L, kg_hooks_trampoline);
  lua_pushlightuserdata(L, x);
  int st = lua_pcall(L, 1, 0, top + 1);
  kg_hooks_budget_stop(L); /* the error may have left the hook armed */
  /* kg_hooks_msgh, plus the error message on failure: nothing else may be left. */
  assert(lua_gettop(L) == top + (st == LUA_OK ? 1 : 2));
  if (st != LUA_OK) {
    const char *raw = lua_tostring(L, -1);
    kg_buf msg = KG_BUF_INIT;
    kg_config_lua_message(raw != NULL ? raw : "(no message)", x->h->cfg->path,
                          &msg);
    kg_log_warn("hook %s failed: %s", name, msg.data);
    kg_buf_free(&msg);
  }
  lua_settop(L, top);
  if (st != LUA_OK) return -1;
  if (x->why[0] != '\0') {
    kg_log_warn("hook %s failed: %s", name, x->why);
    return -1;
  }
  return 0;
}

/* ---- public API ------------------------------------------------------- */

int kg_hooks_select_backends(kg_hooks *h, const kg_req_view *req,
                             uint64_t *mask) {
  if (h == NULL || h->L == NULL || h->ref[HOOK_SELECT] == LUA_NOREF) return 0;
  call_ctx x = {.h = h, .id = HOOK_SELECT, .req = req};
  if (kg_hooks_run_hook(&x) != 0) return 0;
  if (x.nunknown > 0) {
    if (x.nunknown > 1)
      kg_log_warn("hook select_backends: unknown backend \"%s\" (and %zu "
                  "more) ignored",
                  x.unknown, x.nunknown - 1);
    else
      kg_log_warn("hook select_backends: unknown backend \"%s\" ignored",
                  x.unknown);
  }
  if (!x.listed) return 0;
  *mask = x.mask;
  return 1;
}

int kg_hooks_munge_headers(kg_hooks *h, const char *backend,
                           const kg_req_view *req, kg_hdrs *hdrs) {
  if (h == NULL || h->L == NULL || h->ref[HOOK_MUNGE] == LUA_NOREF) return 0;
  call_ctx x = {.h = h, .id = HOOK_MUNGE, .req = req, .backend = backend,
                .hdrs_in = hdrs};
  if (kg_hooks_run_hook(&x) != 0) {
    kg_hdrs_free(&x.out);
    return 0;
  }
  kg_hdrs_free(hdrs);
  *hdrs = x.out;
  return 1;
}

int kg_hooks_backends_finished(kg_hooks *h, const kg_req_view *req,
                               const kg_resp_view *resps, size_t n,
                               const kg_result_view *result) {
  if (h == NULL || h->L == NULL || h->ref[HOOK_FINISHED] == LUA_NOREF) return 0;
  call_ctx x = {.h = h, .id = HOOK_FINISHED, .req = req, .resps = resps,
                .nresps = n, .result = result};
  return kg_hooks_run_hook(&x) == 0 ? 1 : 0;
}

static void kg_hooks_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void kg_hooks_set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* Loads the header helpers and keeps references to new() and export(). */
static int kg_hooks_load_helpers(kg_hooks *h, char *err, size_t errlen) {
  lua_State *L = h->L;
  int st = luaL_loadbufferx(L, kg_hooks_headers_lua, kg_hooks_headers_lua_len,
                            "=kagami.headers", "t");
  if (st == LUA_OK) st = lua_pcall(L, 0, 1, 0);
  if (st != LUA_OK) {
    kg_hooks_set_err(err, errlen, "kagami: internal error in header helpers: %s",
            lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  lua_getfield(L, -1, "new");
  h->ref_hnew = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, -1, "export");
  h->ref_hexport = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  return 0;
}

/* The config file runs again here, in this worker's state, so the hooks
 * keep their upvalues and helper functions. kg_config_load has validated
 * it; the file may still have changed since, hence the checks. */
int kg_hooks_new(const kg_config *cfg, kg_hooks **out, char *err,
                 size_t errlen) {
  *out = NULL;
  kg_hooks *h = kg_calloc(1, sizeof(*h));
  h->cfg = cfg;
  h->ref_hnew = h->ref_hexport = LUA_NOREF;
  for (int i = 0; i < HOOK_COUNT; i++) h->ref[i] = LUA_NOREF;
  const bool want[HOOK_COUNT] = {cfg->has_select_backends,
                                 cfg->has_munge_headers,
                                 cfg->has_on_backends_finished};
  if (!want[HOOK_SELECT] && !want[HOOK_MUNGE] && !want[HOOK_FINISHED]) {
    *out = h; /* no hooks: no Lua state, every call is a no-op */
    return 0;
  }

  lua_State *L = luaL_newstate();
  if (L == NULL) {
    kg_hooks_set_err(err, errlen, "%s: cannot create a Lua state (out of memory)",
            cfg->path);
    free(h);
    return -1;
  }
  h->L = L;
  *(kg_hooks **)lua_getextraspace(L) = h; /* for kg_hooks_budget_hook */
  /* Hook calls make many short-lived tables: the generational collector
   * reclaims those cheaply. */
  lua_gc(L, LUA_GCGEN, 0, 0);
  luaL_openlibs(L);
  if (kg_hooks_load_helpers(h, err, errlen) != 0) goto fail;

  int st = kg_config_lua_run(L, cfg->path);
  if (st != LUA_OK) {
    const char *raw = lua_tostring(L, -1);
    kg_buf msg = KG_BUF_INIT;
    kg_config_lua_message(raw != NULL ? raw : "config raised an error",
                          cfg->path, &msg);
    kg_hooks_set_err(err, errlen, "%s", msg.data);
    kg_buf_free(&msg);
    goto fail;
  }
  if (lua_type(L, -1) != LUA_TTABLE) {
    kg_hooks_set_err(err, errlen, "%s: the config no longer returns a table", cfg->path);
    goto fail;
  }
  for (int i = 0; i < HOOK_COUNT; i++) {
    if (!want[i]) continue;
    lua_pushstring(L, hook_names[i]);
    if (lua_rawget(L, -2) != LUA_TFUNCTION) {
      kg_hooks_set_err(err, errlen,
              "%s: %s is no longer a function (the file changed after it was "
              "checked?)",
              cfg->path, hook_names[i]);
      goto fail;
    }
    h->ref[i] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_settop(L, 0);
  kg_hooks_budget_stop(L); /* the config's; each hook call arms its own */

  /* debug.sethook would let a hook switch its budget off. Removed only now,
   * so the config's top level behaves as it did in kg_config_load. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  lua_pushliteral(L, "debug");
  if (lua_rawget(L, -2) == LUA_TTABLE) {
    lua_pushliteral(L, "sethook");
    lua_pushnil(L);
    lua_rawset(L, -3);
  }
  lua_settop(L, 0);
  *out = h;
  return 0;

fail:
  kg_hooks_free(h);
  return -1;
}

void kg_hooks_free(kg_hooks *h) {
  if (h == NULL) return;
  if (h->L != NULL) lua_close(h->L);
  free(h);
}
