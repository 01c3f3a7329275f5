/* replay.c: the `kagami replay` command (see replay.h).
 *
 * One loop on the main thread does everything but comparing: it reads the
 * input into a small sorted window, paces sends with a timer, sends on the
 * client's pooled connections (replay_client.c), keeps the summary's
 * numbers, and redraws the progress line. Finished requests that have a
 * recorded response to compare with queue up; one batch at a time goes to
 * the thread pool, which compares them and writes their diff log lines
 * (one write) and store rows (one transaction), as exchange.c does for
 * live traffic.
 *
 * Ownership: a kg_rq (one replayed request) is made when its item leaves
 * the window and freed either when its response is counted (nothing to
 * compare) or after its batch's after-callback. The loop ends when the
 * input is done (or a stop was asked for), nothing is in flight, and no
 * batch is pending; every handle is then closed and the loop runs dry. */
#include "traffic/replay.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>
#include <uv.h>

#include "common/common.h"
#include "compare/compare.h"
#include "compare/htmldiff.h"
#include "config/config.h"
#include "results/difflog.h"
#include "compare/endpoint.h"
#include "results/epstats.h"
#include "common/histogram.h"
#include "http/http.h"
#include "traffic/replay_client.h"
#include "results/store.h"
#include "traffic/warc.h"

#undef uthash_malloc
#undef uthash_free
#define uthash_malloc(sz) kg_malloc(sz)
#define uthash_free(ptr, sz) free(ptr)

#define KG_REPLAY_WINDOW_BYTES ((size_t)32 << 20)
/* Comparisons waiting for the thread pool before sending pauses. */
#define KG_REPLAY_MAX_PENDING 1024
#define KG_REPLAY_MAX_PENDING_BYTES ((size_t)128 << 20)
/* Endpoints kept apart in the summary; the rest are "(other)". */
#define KG_REPLAY_MAX_ENDPOINTS 500
#define KG_REPLAY_MAX_ERROR_KINDS 16
#define KG_REPLAY_PROGRESS_MS 250
#define KG_REPLAY_DEFAULT_CONCURRENCY 64
#define KG_REPLAY_DEFAULT_TIMEOUT 30.0

static const char kg_replay_usage[] =
    "usage: kagami replay FILE --target http://host:port [options]\n"
    "\n"
    "Sends the requests in FILE to the target and reports throughput, latency per\n"
    "endpoint, status codes and errors. FILE is a WARC recording (kagami's\n"
    "`record = {...}`, or another tool's .warc / .warc.gz), a list of URLs (one per\n"
    "line), or an nginx access log in the combined format (GET requests only).\n"
    "\n"
    "options:\n"
    "  --target URL        where to send: http://host:port (required)\n"
    "  --rate N[/s]        send N requests per second\n"
    "  --speed K[x]        keep the recorded timing, K times faster (WARC, nginx log)\n"
    "                      (with neither, as fast as --concurrency allows)\n"
    "  --concurrency C     requests in flight at most (default 64)\n"
    "  --duration D        stop sending after D: 90, 30s, 5m, 1h\n"
    "  --filter GLOB       only requests whose endpoint ('GET /users/:id') or method\n"
    "                      and path match, e.g. 'GET /users/*' or '/api/*'\n"
    "  --compare           compare each response with the recorded one (WARC)\n"
    "  --config FILE.lua   noise rules, endpoints and limits for --compare\n"
    "  --diff-log FILE     append a JSON line per compared request (implies --compare)\n"
    "  --db FILE           write compared requests to a results store for `kagami\n"
    "                      report` and the dashboard (implies --compare)\n"
    "  --strict            a damaged input file is an error (exit status 2)\n"
    "  --format F          auto (default), warc, urls or nginx\n"
    "  --header 'N: V'     set a header field on every request (repeatable)\n"
    "  --timeout S         seconds a request may stay silent (default 30)\n"
    "  --json              print the summary as one JSON object\n"
    "\n"
    "Exit status: 0 when the run completed (even with differences or errors), 1 on\n"
    "usage or I/O errors, 2 when --strict is given and FILE is damaged. Where\n"
    "reading stopped in a damaged file is always printed.\n";

/* --- options ------------------------------------------------------------------ */

typedef struct kg_replay_opts {
  const char *file;
  const char *target;         /* as given */
  double rate;                /* requests per second; 0: not paced by rate */
  double speed;               /* recorded-time factor; 0: not timed */
  size_t concurrency;
  double duration;            /* seconds; 0: no limit */
  const char *filter;         /* glob, or NULL */
  bool compare;
  const char *config;
  const char *diff_log;
  const char *db;
  bool strict;
  bool json;
  kg_traffic_format format;
  double timeout;
  kg_hdrs headers;            /* --header fields (owned) */
} kg_replay_opts;

static int kg_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int kg_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("kagami replay: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\n(kagami replay --help for the options)\n", stderr);
  va_end(ap);
  return -1;
}

/* A positive finite number with an optional suffix from `suffixes`
 * (each with its multiplier); *out = number * multiplier. */
static bool kg_parse_number(const char *s, const char *const *suffixes,
                            const double *mult, size_t n, double *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno || !(v > 0) || !isfinite(v)) return false;
  if (*end == '\0') {
    *out = v;
    return true;
  }
  for (size_t i = 0; i < n; i++)
    if (strcmp(end, suffixes[i]) == 0) {
      *out = v * mult[i];
      return true;
    }
  return false;
}

static int kg_replay_parse(int argc, char **argv, kg_replay_opts *o) {
  o->concurrency = KG_REPLAY_DEFAULT_CONCURRENCY;
  o->timeout = KG_REPLAY_DEFAULT_TIMEOUT;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || strcmp(a, "-") == 0) {
      if (o->file) return kg_usage_error("more than one input file ('%s' and '%s')", o->file, a);
      o->file = a;
      continue;
    }
    /* --name=value or --name value */
    char name[32];
    const char *val = NULL;
    const char *eq = strchr(a, '=');
    size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
    if (nlen >= sizeof(name)) return kg_usage_error("unknown option '%s'", a);
    memcpy(name, a, nlen);
    name[nlen] = '\0';
    static const char *const flags[] = {"--compare", "--strict", "--json", "--help", "-h"};
    bool is_flag = false;
    for (size_t k = 0; k < KG_ARRAY_SIZE(flags); k++) is_flag |= strcmp(name, flags[k]) == 0;
    if (is_flag) {
      if (eq) return kg_usage_error("%s takes no value", name);
      if (strcmp(name, "--compare") == 0) o->compare = true;
      else if (strcmp(name, "--strict") == 0) o->strict = true;
      else if (strcmp(name, "--json") == 0) o->json = true;
      else return 1; /* help */
      continue;
    }
    static const char *const valued[] = {
        "--target", "--rate", "--speed", "--concurrency", "--duration", "--timeout",
        "--filter", "--config", "--diff-log", "--db", "--format", "--header"};
    bool known = false;
    for (size_t k = 0; k < KG_ARRAY_SIZE(valued); k++) known |= strcmp(name, valued[k]) == 0;
    if (!known) return kg_usage_error("unknown option '%s'", name);
    if (eq) val = eq + 1;
    else if (i + 1 < argc) val = argv[++i];
    else return kg_usage_error("%s needs a value", name);
    if (strcmp(name, "--target") == 0) {
      o->target = val;
    } else if (strcmp(name, "--rate") == 0) {
      static const char *const sfx[] = {"/s", "/m", "/min"};
      static const double mul[] = {1.0, 1.0 / 60, 1.0 / 60};
      if (!kg_parse_number(val, sfx, mul, 3, &o->rate))
        return kg_usage_error("--rate: expected requests per second such as 100 or 100/s, "
                              "got '%s'", val);
    } else if (strcmp(name, "--speed") == 0) {
      static const char *const sfx[] = {"x", "X"};
      static const double mul[] = {1.0, 1.0};
      if (!kg_parse_number(val, sfx, mul, 2, &o->speed))
        return kg_usage_error("--speed: expected a factor such as 2x or 0.5x, got '%s'", val);
    } else if (strcmp(name, "--concurrency") == 0) {
      char *end = NULL;
      long v = strtol(val, &end, 10);
      if (end == val || *end || v < 1 || v > 100000)
        return kg_usage_error("--concurrency: expected 1 to 100000, got '%s'", val);
      o->concurrency = (size_t)v;
    } else if (strcmp(name, "--duration") == 0) {
      static const char *const sfx[] = {"s", "ms", "m", "min", "h"};
      static const double mul[] = {1, 0.001, 60, 60, 3600};
      if (!kg_parse_number(val, sfx, mul, 5, &o->duration))
        return kg_usage_error("--duration: expected a time such as 90, 30s, 5m or 1h, got '%s'",
                              val);
    } else if (strcmp(name, "--timeout") == 0) {
      static const char *const sfx[] = {"s", "ms"};
      static const double mul[] = {1, 0.001};
      if (!kg_parse_number(val, sfx, mul, 2, &o->timeout))
        return kg_usage_error("--timeout: expected seconds such as 10 or 500ms, got '%s'", val);
    } else if (strcmp(name, "--filter") == 0) {
      if (*val == '\0') return kg_usage_error("--filter: empty glob");
      o->filter = val;
    } else if (strcmp(name, "--config") == 0) {
      o->config = val;
    } else if (strcmp(name, "--diff-log") == 0) {
      o->diff_log = val;
    } else if (strcmp(name, "--db") == 0) {
      o->db = val;
    } else if (strcmp(name, "--format") == 0) {
      if (kg_traffic_format_parse(val, &o->format) != 0)
        return kg_usage_error("--format: expected auto, warc, urls or nginx, got '%s'", val);
    } else if (strcmp(name, "--header") == 0) {
      const char *colon = strchr(val, ':');
      bool ok = colon && colon > val;
      for (const char *p = val; ok && p < colon; p++)
        ok = *p > ' ' && *p < 0x7f;
      for (const char *p = colon ? colon : val; ok && *p; p++)
        ok = *p != '\r' && *p != '\n';
      if (!ok) return kg_usage_error("--header: expected 'Name: value', got '%s'", val);
      const char *v = colon + 1;
      while (*v == ' ' || *v == '\t') v++;
      kg_hdrs_add(&o->headers, val, (size_t)(colon - val), v, strlen(v));
    } else {
      return kg_usage_error("unknown option '%s'", name);
    }
  }
  if (o->file == NULL) return kg_usage_error("no input FILE given");
  if (o->target == NULL) return kg_usage_error("--target http://host:port is required");
  if (o->rate > 0 && o->speed > 0) return kg_usage_error("--rate and --speed exclude each other");
  if (o->diff_log || o->db) o->compare = true;
  return 0;
}

/* "http://host[:port][/]" -> "host:port" for kg_addr_parse. */
static int kg_replay_target(const char *url, char *out, size_t outlen) {
  if (strncasecmp(url, "https://", 8) == 0)
    return kg_usage_error("--target %s: https is not supported (TLS is not implemented)", url);
  if (strncasecmp(url, "http://", 7) != 0)
    return kg_usage_error("--target: expected http://host:port, got '%s'", url);
  const char *h = url + 7;
  size_t n = strcspn(h, "/?#");
  if (h[n] != '\0' && strcmp(h + n, "/") != 0)
    return kg_usage_error("--target %s: a path is not supported (requests keep their own)", url);
  if (n == 0) return kg_usage_error("--target %s: no host", url);
  /* Without a port, 80; an IPv6 literal without one is "[::1]". */
  const char *rb = h[0] == '[' ? memchr(h, ']', n) : NULL;
  bool has_port = h[0] == '[' ? (rb && (size_t)(rb - h) + 1 < n) : memchr(h, ':', n) != NULL;
  snprintf(out, outlen, "%.*s%s", (int)n, h, has_port ? "" : ":80");
  return 0;
}

/* --- state --------------------------------------------------------------------- */

/* One endpoint's numbers, touched on the loop thread only. */
typedef struct kg_ep {
  char *name;                /* owned key */
  uint64_t requests, errors, compared, differing;
  kg_hist lat;               /* replayed latency, microseconds */
  kg_hist rec;               /* recorded master latency, microseconds */
  UT_hash_handle hh;
} kg_ep;

/* An item in the read-ahead window. */
typedef struct kg_slot {
  kg_traffic_item item;
  double key;                /* recorded time used for ordering */
  uint64_t seq;              /* input order, to keep ties stable */
  char *endpoint;            /* owned endpoint name */
} kg_slot;

typedef struct kg_replay kg_replay;

/* One replayed request. */
typedef struct kg_rq {
  kg_rc_req hc;              /* the client request (embedded) */
  kg_replay *rp;
  kg_traffic_item item;      /* what was recorded (owned) */
  char *endpoint;            /* owned */
  kg_ep *ep;                 /* its summary row (loop thread only) */
  struct timespec sent_at;   /* wall clock, the result's ts */
  struct kg_rq *next;        /* the comparison queue */
  size_t bytes;              /* held, for the queue bound */
  bool equal;                /* comparison outcome (set in the pool) */
} kg_rq;

typedef struct kg_replay_batch {
  uv_work_t work;
  kg_replay *rp;
  kg_rq *head;
} kg_replay_batch;

struct kg_replay {
  kg_replay_opts *o;
  kg_config *cfg;            /* owned */
  kg_addr target;            /* resolved --target */
  kg_traffic *src;           /* owned input */
  kg_difflog *difflog;       /* owned, or NULL */
  kg_store *store;           /* owned, or NULL */
  kg_epstats *epstats;       /* latency regression flags, for the records */
  kg_rule filter;            /* --filter as a rule (only endpoint is set) */
  uv_loop_t loop;
  kg_rc *client;
  uv_timer_t pace;           /* wakes the pump when the next send is due */
  uv_timer_t progress;       /* redraws the progress line */
  uv_timer_t deadline;       /* --duration */
  uv_signal_t sigint, sigterm;
  bool progress_on;          /* stderr is a terminal */
  bool handles_closed;
  /* the window: a binary min-heap by (key, seq) */
  kg_slot **heap;
  size_t nheap, heap_bytes;
  uint64_t seq;
  double last_key;           /* for items without a time */
  bool input_done;           /* the source has no more items */
  bool input_failed;         /* strict and damaged, or a read error */
  char input_error[512];
  /* pacing */
  uint64_t t0;               /* uv_hrtime() at the first send */
  double ts0;                /* recorded time of the first timed item */
  bool have_ts0;
  bool stopping;             /* no more sends */
  const char *stop_reason;   /* "end of input", "duration", "signal", "damaged input" */
  /* in flight and queued */
  size_t inflight;
  kg_rq *pend_head, *pend_tail;
  size_t npending, pending_bytes;
  bool batch_running;
  uint64_t id_seq;           /* for result ids */
  /* numbers for the summary */
  uint64_t sent, answered, errors, filtered;
  uint64_t compared, equal, differing, not_compared;
  uint64_t status[600];      /* by status code; others in status_other */
  uint64_t status_other;
  const char *error_kind[KG_REPLAY_MAX_ERROR_KINDS];
  uint64_t error_count[KG_REPLAY_MAX_ERROR_KINDS];
  kg_ep *eps;                /* uthash */
  size_t neps;
  kg_hist all;               /* every replayed latency */
  uint64_t t_end;            /* uv_hrtime() when the last response came */
  uint64_t connections;      /* opened by the client, read before it closes */
  uint64_t last_offset;      /* input offset of the latest item sent */
  int signals;               /* SIGINT/SIGTERM received */
};

/* --- the window ----------------------------------------------------------------- */

static bool kg_slot_less(const kg_slot *a, const kg_slot *b) {
  if (a->key != b->key) return a->key < b->key;
  return a->seq < b->seq;
}

static void kg_heap_push(kg_replay *rp, kg_slot *s) {
  rp->heap = kg_realloc(rp->heap, (rp->nheap + 1) * sizeof(kg_slot *));
  size_t i = rp->nheap++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!kg_slot_less(s, rp->heap[parent])) break;
    rp->heap[i] = rp->heap[parent];
    i = parent;
  }
  rp->heap[i] = s;
  rp->heap_bytes += kg_traffic_item_size(&s->item);
}

static kg_slot *kg_heap_pop(kg_replay *rp) {
  kg_slot *top = rp->heap[0];
  kg_slot *last = rp->heap[--rp->nheap];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const kg_slot *best = last;
    if (l < rp->nheap && kg_slot_less(rp->heap[l], best)) m = l, best = rp->heap[l];
    if (r < rp->nheap && kg_slot_less(rp->heap[r], best)) m = r;
    if (m == i) break;
    rp->heap[i] = rp->heap[m];
    i = m;
  }
  if (rp->nheap > 0) rp->heap[i] = last;
  rp->heap_bytes -= kg_traffic_item_size(&top->item);
  return top;
}

static void kg_slot_free(kg_slot *s) {
  kg_traffic_item_free(&s->item);
  free(s->endpoint);
  free(s);
}

/* True when the item passes --filter: its endpoint name, or its method
 * and raw path, match the glob. */
static bool kg_replay_wanted(kg_replay *rp, const kg_traffic_item *it, const char *endpoint) {
  if (rp->o->filter == NULL) return true;
  if (kg_rule_matches(&rp->filter, endpoint)) return true;
  kg_buf raw = KG_BUF_INIT;
  kg_buf_appendf(&raw, "%s %.*s", it->method, (int)strcspn(it->url, "?"), it->url);
  bool ok = kg_rule_matches(&rp->filter, raw.data);
  kg_buf_free(&raw);
  return ok;
}

/* Reads from the input until the window is full or the input ends. */
static void kg_replay_fill(kg_replay *rp) {
  while (!rp->input_done && rp->nheap < KG_REPLAY_WINDOW &&
         rp->heap_bytes < KG_REPLAY_WINDOW_BYTES) {
    kg_slot *s = kg_calloc(1, sizeof(*s));
    int rc = kg_traffic_next(rp->src, &s->item, rp->input_error, sizeof(rp->input_error));
    if (rc != 1) {
      free(s);
      rp->input_done = true;
      if (rc < 0) rp->input_failed = true;
      break;
    }
    kg_buf ep = KG_BUF_INIT;
    kg_endpoint_of(s->item.method, s->item.url, rp->cfg->endpoints, &ep);
    if (!kg_replay_wanted(rp, &s->item, ep.data)) {
      rp->filtered++;
      kg_buf_free(&ep);
      kg_slot_free(s);
      continue;
    }
    s->endpoint = kg_buf_steal(&ep, NULL);
    if (isfinite(s->item.ts)) rp->last_key = s->item.ts;
    s->key = isfinite(s->item.ts) ? s->item.ts : rp->last_key;
    s->seq = rp->seq++;
    kg_heap_push(rp, s);
  }
}

/* --- summary numbers ----------------------------------------------------------- */

static kg_ep *kg_replay_ep(kg_replay *rp, const char *name) {
  kg_ep *e = NULL;
  HASH_FIND_STR(rp->eps, name, e);
  if (e) return e;
  if (rp->neps >= KG_REPLAY_MAX_ENDPOINTS) {
    name = "(other)";
    HASH_FIND_STR(rp->eps, name, e);
    if (e) return e;
  }
  e = kg_calloc(1, sizeof(*e));
  e->name = kg_strdup(name);
  kg_hist_init(&e->lat);
  kg_hist_init(&e->rec);
  HASH_ADD_KEYPTR(hh, rp->eps, e->name, strlen(e->name), e);
  rp->neps++;
  return e;
}

static void kg_replay_count_error(kg_replay *rp, const char *why) {
  for (size_t i = 0; i < KG_REPLAY_MAX_ERROR_KINDS; i++) {
    if (rp->error_kind[i] == NULL) rp->error_kind[i] = why;
    if (strcmp(rp->error_kind[i], why) == 0) {
      rp->error_count[i]++;
      return;
    }
  }
}

/* --- comparing (thread pool) --------------------------------------------------- */

static void kg_replay_views(const kg_rq *q, kg_resp_view v[2], kg_buf *cut) {
  const kg_traffic_item *it = &q->item;
  const kg_rc_req *r = &q->hc;
  v[0] = (kg_resp_view){.backend = "recorded",
                        .status = it->status,
                        .hdrs = &it->resp_hdrs,
                        .body = it->resp_body.data ? it->resp_body.data : "",
                        .body_len = it->resp_body.len,
                        .elapsed = isfinite(it->elapsed) ? it->elapsed : 0,
                        .bytes = it->resp_body.len,
                        .truncated = it->resp_truncated};
  v[1] = (kg_resp_view){.backend = "replay",
                        .status = r->error ? 0 : r->resp.status,
                        .error = r->error,
                        .hdrs = r->error ? NULL : &r->resp.hdrs,
                        .body = r->body.data ? r->body.data : "",
                        .body_len = r->body.len,
                        .elapsed = (double)(r->t_end - r->t_start) / 1e9,
                        .bytes = r->body_bytes,
                        .truncated = r->truncated};
  /* A recording without bodies can only say whether status and fields
   * agree; one whose body was cut is compared on the part it kept. */
  if (it->resp_body_omitted) {
    v[1].body = "";
    v[1].body_len = 0;
    v[1].truncated = 1;
  } else if (it->resp_truncated && v[1].body_len > it->resp_body.len) {
    kg_buf_append(cut, v[1].body, it->resp_body.len);
    v[1].body = cut->data;
    v[1].body_len = cut->len;
    v[1].truncated = 1;
  }
}

static void kg_replay_batch_work(uv_work_t *w) {
  kg_replay_batch *b = KG_CONTAINER_OF(w, kg_replay_batch, work);
  kg_replay *rp = b->rp;
  const kg_config *cfg = rp->cfg;
  static const char *const roles[2] = {"master", "shadow"};
  size_t n = 0;
  for (kg_rq *q = b->head; q; q = q->next) n++;
  kg_record *recs = kg_calloc(n, sizeof(kg_record));
  const kg_record **ptrs = kg_calloc(n, sizeof(kg_record *));
  kg_pair_result *pairs = kg_calloc(2 * n, sizeof(kg_pair_result));
  kg_resp_view *views = kg_calloc(2 * n, sizeof(kg_resp_view));
  kg_buf *cuts = kg_calloc(n, sizeof(kg_buf));
  const char ***sup = kg_calloc(n, sizeof(char **));
  char (*ids)[32] = kg_calloc(n, sizeof(*ids));
  size_t i = 0;
  for (kg_rq *q = b->head; q; q = q->next, i++) {
    const kg_rule *rules[64];
    size_t nrules = 0;
    for (size_t k = 0; k < cfg->nrules && nrules < KG_ARRAY_SIZE(rules); k++)
      if (kg_rule_matches(&cfg->rules[k], q->endpoint)) rules[nrules++] = &cfg->rules[k];
    kg_compare_opts o = {.settings = &cfg->compare, .max_body_bytes = cfg->max_capture_bytes, .rules = rules, .nrules = nrules};
    kg_resp_view *v = &views[2 * i];
    kg_replay_views(q, v, &cuts[i]);
    kg_pair_result *p = &pairs[2 * i];
    kg_compare_pair(&v[0], &v[1], &o, &p[1]);
    q->equal = p[1].equal;
    bool present[2] = {true, true}, failed[2] = {false, q->hc.error != NULL};
    uint64_t us[2] = {(uint64_t)(v[0].elapsed * 1e6), (uint64_t)(v[1].elapsed * 1e6)};
    uint64_t flagged = 0;
    kg_epstats_record(rp->epstats, q->endpoint, q->equal, present, failed, us, &flagged);
    size_t ns = p[1].body.nsuppressed + p[1].headers.nsuppressed;
    sup[i] = kg_calloc(ns + 1, sizeof(char *));
    size_t k = 0;
    for (size_t j = 0; j < p[1].body.nsuppressed; j++) sup[i][k++] = p[1].body.suppressed[j];
    for (size_t j = 0; j < p[1].headers.nsuppressed; j++) sup[i][k++] = p[1].headers.suppressed[j];
    uint64_t ms = (uint64_t)q->sent_at.tv_sec * 1000u + (uint64_t)q->sent_at.tv_nsec / 1000000u;
    /* Like live ids (sortable by time), with "fe" where a worker number
     * stands so the two never collide in one store. */
    snprintf(ids[i], sizeof(ids[i]), "%011" PRIx64 "fe%07" PRIx64, ms,
             (uint64_t)((rp->id_seq++) & 0xfffffffULL)); /* batches run one at a time */
    recs[i] = (kg_record){.id = ids[i],
                          .ts = q->sent_at,
                          .method = q->item.method,
                          .url = q->item.url,
                          .endpoint = q->endpoint,
                          .req_hdrs = &q->item.req_hdrs,
                          .resps = v,
                          .roles = roles,
                          .pairs = p,
                          .n = 2,
                          .equal = q->equal,
                          .truncated = v[0].truncated || v[1].truncated,
                          .kind = p[1].kind,
                          .suppressed = sup[i],
                          .nsuppressed = ns,
                          .regression = (flagged & 2) ? 2 : 0};
    ptrs[i] = &recs[i];
  }
  if (rp->difflog) kg_difflog_write(rp->difflog, ptrs, n);
  if (rp->store) kg_store_write(rp->store, ptrs, n);
  for (i = 0; i < n; i++) {
    kg_pair_result_free(&pairs[2 * i + 1]);
    kg_buf_free(&cuts[i]);
    free(sup[i]);
  }
  free(ids);
  free(sup);
  free(cuts);
  free(views);
  free(pairs);
  free(ptrs);
  free(recs);
}

static void kg_rq_free(kg_rq *q) {
  kg_rc_req_free(&q->hc);
  kg_traffic_item_free(&q->item);
  free(q->endpoint);
  free(q);
}

static void kg_replay_pump(kg_replay *rp);
static void kg_replay_start_batch(kg_replay *rp);

static void kg_replay_batch_after(uv_work_t *w, int status) {
  kg_replay_batch *b = KG_CONTAINER_OF(w, kg_replay_batch, work);
  kg_replay *rp = b->rp;
  kg_rq *next;
  for (kg_rq *q = b->head; q; q = next) {
    next = q->next;
    if (status == 0) {
      rp->compared++;
      q->ep->compared++;
      if (q->equal) rp->equal++;
      else rp->differing++, q->ep->differing++;
    }
    kg_rq_free(q);
  }
  free(b);
  rp->batch_running = false;
  if (rp->pend_head) kg_replay_start_batch(rp);
  kg_replay_pump(rp);
}

static void kg_replay_start_batch(kg_replay *rp) {
  kg_replay_batch *b = kg_calloc(1, sizeof(*b));
  b->rp = rp;
  b->head = rp->pend_head;
  rp->pend_head = rp->pend_tail = NULL;
  rp->npending = 0;
  rp->pending_bytes = 0;
  rp->batch_running = true;
  uv_queue_work(&rp->loop, &b->work, kg_replay_batch_work, kg_replay_batch_after);
}

/* --- sending -------------------------------------------------------------------- */

static bool kg_method_has_body(const char *m) {
  return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
}

/* The request as the target gets it: the recorded fields minus those that
 * describe a connection or framing, --header fields instead of recorded
 * ones of the same name, a Host when there is none, and one
 * Content-Length for the body. Nothing else is added (not even a
 * User-Agent): the target should see what production saw. */
static void kg_replay_build(const kg_replay *rp, const kg_traffic_item *it, kg_buf *b) {
  const kg_hdrs *h = &it->req_hdrs, *set = &rp->o->headers;
  kg_buf_appendf(b, "%s %s HTTP/1.1\r\n", it->method, it->url);
  bool host = false;
  for (size_t i = 0; i < h->n; i++) {
    const char *name = kg_hdrs_name(h, i);
    size_t nlen = h->v[i].name_len;
    if (kg_http_is_hop_by_hop(name, nlen) || kg_http_connection_lists(h, name, nlen) ||
        kg_str_ieq(name, nlen, "content-length") || kg_str_ieq(name, nlen, "expect") ||
        kg_hdrs_find(set, name) >= 0)
      continue;
    host |= kg_str_ieq(name, nlen, "host");
    kg_buf_append(b, name, nlen);
    kg_buf_append(b, ": ", 2);
    kg_buf_append(b, kg_hdrs_value(h, i), h->v[i].value_len);
    kg_buf_append(b, "\r\n", 2);
  }
  for (size_t i = 0; i < set->n; i++) {
    host |= kg_str_ieq(kg_hdrs_name(set, i), set->v[i].name_len, "host");
    kg_buf_appendf(b, "%s: %s\r\n", kg_hdrs_name(set, i), kg_hdrs_value(set, i));
  }
  if (!host) kg_buf_appendf(b, "Host: %s\r\n", it->host ? it->host : rp->target.text);
  if (it->req_body.len || kg_method_has_body(it->method))
    kg_buf_appendf(b, "Content-Length: %zu\r\n", it->req_body.len);
  kg_buf_append(b, "\r\n", 2);
  kg_buf_append(b, it->req_body.data, it->req_body.len);
}

static void kg_replay_on_response(kg_rc_req *r) {
  kg_rq *q = KG_CONTAINER_OF(r, kg_rq, hc);
  kg_replay *rp = q->rp;
  rp->inflight--;
  rp->t_end = uv_hrtime();
  kg_ep *ep = q->ep;
  ep->requests++;
  if (r->error) {
    rp->errors++;
    ep->errors++;
    kg_replay_count_error(rp, r->error);
  } else {
    rp->answered++;
    int st = r->resp.status;
    if (st >= 0 && st < 600) rp->status[st]++;
    else rp->status_other++;
    uint64_t us = (r->t_end - r->t_start) / 1000;
    kg_hist_add(&ep->lat, us);
    kg_hist_add(&rp->all, us);
  }
  if (q->item.has_response && isfinite(q->item.elapsed))
    kg_hist_add(&ep->rec, (uint64_t)(q->item.elapsed * 1e6));
  if (rp->o->compare && q->item.has_response) {
    q->bytes = kg_traffic_item_size(&q->item) + r->body.len + r->resp.hdrs.data.len;
    q->next = NULL;
    if (rp->pend_tail) rp->pend_tail->next = q;
    else rp->pend_head = q;
    rp->pend_tail = q;
    rp->npending++;
    rp->pending_bytes += q->bytes;
    if (!rp->batch_running) kg_replay_start_batch(rp);
  } else {
    if (rp->o->compare) rp->not_compared++;
    kg_rq_free(q);
  }
  kg_replay_pump(rp);
}

static void kg_replay_send(kg_replay *rp, kg_slot *s) {
  kg_rq *q = kg_calloc(1, sizeof(*q));
  kg_rc_req_init(&q->hc);
  q->rp = rp;
  q->item = s->item;
  q->endpoint = s->endpoint;
  free(s); /* its contents moved into q */
  q->ep = kg_replay_ep(rp, q->endpoint);
  kg_replay_build(rp, &q->item, &q->hc.bytes);
  q->hc.head = strcmp(q->item.method, "HEAD") == 0;
  q->hc.retry_ok = strcmp(q->item.method, "POST") != 0 && strcmp(q->item.method, "PATCH") != 0;
  q->hc.max_capture = rp->cfg->max_capture_bytes;
  q->hc.done = kg_replay_on_response;
  clock_gettime(CLOCK_REALTIME, &q->sent_at);
  rp->inflight++;
  rp->sent++;
  rp->last_offset = KG_MAX(rp->last_offset, q->item.offset);
  kg_rc_send(rp->client, &q->hc);
}

/* When the next item is due, in uv_hrtime() nanoseconds. */
static uint64_t kg_replay_due(kg_replay *rp, const kg_slot *s) {
  if (rp->o->rate > 0) return rp->t0 + (uint64_t)((double)rp->sent * 1e9 / rp->o->rate);
  if (rp->o->speed > 0 && isfinite(s->item.ts)) {
    if (!rp->have_ts0) {
      rp->ts0 = s->item.ts;
      rp->have_ts0 = true;
    }
    double d = (s->item.ts - rp->ts0) / rp->o->speed;
    return rp->t0 + (d > 0 ? (uint64_t)(d * 1e9) : 0);
  }
  return 0;
}

static void kg_replay_finish(kg_replay *rp);

static void kg_replay_on_pace(uv_timer_t *t) { kg_replay_pump(t->data); }

/* Sends every item that is due, as far as concurrency and the comparison
 * backlog allow; otherwise arms the pace timer for the next due time. */
static void kg_replay_pump(kg_replay *rp) {
  while (!rp->stopping) {
    if (rp->inflight >= rp->o->concurrency) break;
    if (rp->npending >= KG_REPLAY_MAX_PENDING ||
        rp->pending_bytes >= KG_REPLAY_MAX_PENDING_BYTES)
      break; /* resumed by the batch's after-callback */
    kg_replay_fill(rp);
    if (rp->nheap == 0) {
      kg_traffic_status st;
      kg_traffic_status_get(rp->src, &st);
      rp->stopping = true;
      rp->stop_reason = st.damaged ? "damaged input" : "end of input";
      break;
    }
    uint64_t now = uv_hrtime();
    if (rp->t0 == 0) rp->t0 = now;
    uint64_t due = kg_replay_due(rp, rp->heap[0]);
    if (due > now) {
      uint64_t ms = (due - now + 999999) / 1000000;
      uv_timer_start(&rp->pace, kg_replay_on_pace, ms, 0);
      break;
    }
    kg_replay_send(rp, kg_heap_pop(rp));
  }
  kg_replay_finish(rp);
}

/* --- progress -------------------------------------------------------------------- */

static void kg_fmt_eta(double s, char *out, size_t n) {
  if (!(s >= 0) || !isfinite(s)) snprintf(out, n, "--");
  else if (s >= 3600) snprintf(out, n, "%d:%02d:%02d", (int)(s / 3600), (int)(fmod(s, 3600) / 60), (int)fmod(s, 60));
  else snprintf(out, n, "%d:%02d", (int)(s / 60), (int)fmod(s, 60));
}

static void kg_replay_draw(kg_replay *rp) {
  double el = rp->t0 ? (double)(uv_hrtime() - rp->t0) / 1e9 : 0;
  kg_traffic_status st;
  kg_traffic_status_get(rp->src, &st);
  double rate = el > 0 ? (double)rp->sent / el : 0;
  double eta = NAN;
  if (rp->input_done) {
    /* What is left is in the window: count it. */
    double r = rp->o->rate > 0 ? rp->o->rate : rate;
    if (rp->o->speed > 0 && rp->have_ts0) {
      double last = rp->ts0;
      for (size_t i = 0; i < rp->nheap; i++) last = fmax(last, rp->heap[i]->key);
      eta = (last - rp->ts0) / rp->o->speed - el;
    } else if (r > 0) {
      eta = (double)rp->nheap / r;
    }
  } else if (st.bytes_total > 0 && el > 0.5) {
    /* How far through the file the sends are: the offset of the last
     * item sent (exact for plain files; gzip offsets are in the
     * decompressed stream, so there the bytes read stand in). */
    double done = st.compressed ? (double)st.bytes_done : (double)rp->last_offset;
    double frac = done / (double)st.bytes_total;
    if (frac > 0) eta = el * (1 - frac) / frac;
  }
  if (eta < 0) eta = 0;
  if (rp->o->duration > 0 && (isnan(eta) || eta > rp->o->duration - el))
    eta = rp->o->duration - el;
  char e[32];
  kg_fmt_eta(eta, e, sizeof(e));
  fprintf(stderr, "\r\033[Ksent %" PRIu64 "  %.1f/s  in flight %zu  errors %" PRIu64 "  ETA %s",
          rp->sent, rate, rp->inflight, rp->errors, e);
  fflush(stderr);
}

static void kg_replay_on_progress(uv_timer_t *t) { kg_replay_draw(t->data); }

/* --- start and stop ----------------------------------------------------------------- */

static void kg_replay_stop(kg_replay *rp, const char *why) {
  if (rp->stopping) return;
  rp->stopping = true;
  rp->stop_reason = why;
  uv_timer_stop(&rp->pace);
  kg_replay_finish(rp);
}

static void kg_replay_on_deadline(uv_timer_t *t) { kg_replay_stop(t->data, "duration"); }

static void kg_replay_on_signal(uv_signal_t *s, int signum) {
  kg_replay *rp = s->data;
  (void)signum;
  if (++rp->signals > 1) {
    fputs("\nkagami replay: second signal: exiting now\n", stderr);
    _exit(1);
  }
  kg_replay_stop(rp, "signal");
}

/* Ends the loop once nothing is left to do. */
static void kg_replay_finish(kg_replay *rp) {
  if (!rp->stopping || rp->handles_closed) return;
  if (rp->inflight > 0 || rp->batch_running || rp->pend_head) return;
  rp->handles_closed = true;
  uv_close((uv_handle_t *)&rp->pace, NULL);
  uv_close((uv_handle_t *)&rp->progress, NULL);
  uv_close((uv_handle_t *)&rp->deadline, NULL);
  uv_close((uv_handle_t *)&rp->sigint, NULL);
  uv_close((uv_handle_t *)&rp->sigterm, NULL);
  rp->connections = kg_rc_connections_opened(rp->client);
  kg_rc_close(rp->client);
  rp->client = NULL;
  if (rp->progress_on) fputs("\r\033[K", stderr);
}

/* --- the summary ------------------------------------------------------------------- */

static int kg_ep_cmp(const void *a, const void *b) {
  const kg_ep *x = *(kg_ep *const *)a, *y = *(kg_ep *const *)b;
  if (x->requests != y->requests) return x->requests > y->requests ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* Endpoints, busiest first. Caller frees the array. */
static kg_ep **kg_replay_sorted(kg_replay *rp) {
  kg_ep **v = kg_calloc(rp->neps + 1, sizeof(kg_ep *));
  size_t k = 0;
  for (kg_ep *e = rp->eps; e; e = e->hh.next) v[k++] = e;
  qsort(v, k, sizeof(kg_ep *), kg_ep_cmp);
  return v;
}

static double kg_ms(uint64_t us) { return (double)us / 1000.0; }

static json_t *kg_pct_json(const kg_hist *h, double q) {
  return kg_hist_count(h) ? json_real(kg_ms(kg_hist_percentile(h, q))) : json_null();
}

static void kg_replay_summary_json(kg_replay *rp, double el, const kg_traffic_status *st) {
  json_t *j = json_object();
  json_object_set_new(j, "file", json_string(rp->o->file));
  json_object_set_new(j, "format", json_string(kg_traffic_format_name(st->format)));
  json_object_set_new(j, "target", json_string(rp->o->target));
  json_object_set_new(j, "stopped", json_string(rp->stop_reason ? rp->stop_reason : "end of input"));
  json_object_set_new(j, "sent", json_integer((json_int_t)rp->sent));
  json_object_set_new(j, "answered", json_integer((json_int_t)rp->answered));
  json_object_set_new(j, "errors", json_integer((json_int_t)rp->errors));
  json_object_set_new(j, "filtered_out", json_integer((json_int_t)rp->filtered));
  json_object_set_new(j, "elapsed_s", json_real(el));
  json_object_set_new(j, "throughput", json_real(el > 0 ? (double)rp->sent / el : 0));
  json_object_set_new(j, "connections", json_integer((json_int_t)rp->connections));
  json_t *lat = json_object();
  json_object_set_new(lat, "p50_ms", kg_pct_json(&rp->all, 50));
  json_object_set_new(lat, "p90_ms", kg_pct_json(&rp->all, 90));
  json_object_set_new(lat, "p99_ms", kg_pct_json(&rp->all, 99));
  json_object_set_new(lat, "max_ms", kg_pct_json(&rp->all, 100));
  json_object_set_new(j, "latency", lat);
  json_t *sts = json_object();
  for (int s = 0; s < 600; s++)
    if (rp->status[s]) {
      char k[16];
      snprintf(k, sizeof(k), "%d", s);
      json_object_set_new(sts, k, json_integer((json_int_t)rp->status[s]));
    }
  if (rp->status_other) json_object_set_new(sts, "other", json_integer((json_int_t)rp->status_other));
  json_object_set_new(j, "statuses", sts);
  json_t *errs = json_object();
  for (size_t i = 0; i < KG_REPLAY_MAX_ERROR_KINDS && rp->error_kind[i]; i++)
    json_object_set_new(errs, rp->error_kind[i], json_integer((json_int_t)rp->error_count[i]));
  json_object_set_new(j, "error_kinds", errs);
  json_t *eps = json_array();
  kg_ep **v = kg_replay_sorted(rp);
  for (size_t i = 0; i < rp->neps; i++) {
    kg_ep *e = v[i];
    json_t *o = json_object();
    json_object_set_new(o, "endpoint", json_string(e->name));
    json_object_set_new(o, "requests", json_integer((json_int_t)e->requests));
    json_object_set_new(o, "errors", json_integer((json_int_t)e->errors));
    json_object_set_new(o, "p50_ms", kg_pct_json(&e->lat, 50));
    json_object_set_new(o, "p90_ms", kg_pct_json(&e->lat, 90));
    json_object_set_new(o, "p99_ms", kg_pct_json(&e->lat, 99));
    json_object_set_new(o, "max_ms", kg_pct_json(&e->lat, 100));
    json_object_set_new(o, "recorded_p90_ms", kg_pct_json(&e->rec, 90));
    if (rp->o->compare) {
      json_object_set_new(o, "compared", json_integer((json_int_t)e->compared));
      json_object_set_new(o, "differing", json_integer((json_int_t)e->differing));
    }
    json_array_append_new(eps, o);
  }
  json_object_set_new(j, "endpoints", eps);
  if (rp->o->compare) {
    json_t *c = json_object();
    json_object_set_new(c, "compared", json_integer((json_int_t)rp->compared));
    json_object_set_new(c, "equal", json_integer((json_int_t)rp->equal));
    json_object_set_new(c, "differing", json_integer((json_int_t)rp->differing));
    json_object_set_new(c, "not_compared", json_integer((json_int_t)rp->not_compared));
    json_t *d = json_array();
    for (size_t i = 0; i < rp->neps; i++)
      if (v[i]->differing) json_array_append_new(d, json_string(v[i]->name));
    json_object_set_new(c, "differing_endpoints", d);
    json_object_set_new(j, "compare", c);
  }
  free(v);
  json_t *in = json_object();
  json_object_set_new(in, "items", json_integer((json_int_t)st->items));
  json_object_set_new(in, "unparseable", json_integer((json_int_t)st->unparseable));
  json_object_set_new(in, "skipped", json_integer((json_int_t)st->skipped));
  json_object_set_new(in, "damaged", json_boolean(st->damaged));
  if (st->damaged) {
    json_object_set_new(in, "stopped_at", json_integer((json_int_t)st->damage_offset));
    json_object_set_new(in, "why", json_string(st->damage_why));
  }
  json_object_set_new(j, "input", in);
  char *s = json_dumps(j, JSON_COMPACT);
  if (s) printf("%s\n", s);
  free(s);
  json_decref(j);
}

static void kg_replay_summary_text(kg_replay *rp, double el, const kg_traffic_status *st) {
  printf("kagami replay: %s (%s) -> %s\n", rp->o->file, kg_traffic_format_name(st->format),
         rp->o->target);
  printf("sent %" PRIu64 " requests in %.2f s (%.1f/s) on %" PRIu64
         " connection%s; %" PRIu64 " answered, %" PRIu64 " errors; stopped: %s\n",
         rp->sent, el, el > 0 ? (double)rp->sent / el : 0.0, rp->connections,
         rp->connections == 1 ? "" : "s", rp->answered, rp->errors,
         rp->stop_reason ? rp->stop_reason : "end of input");
  if (rp->filtered) printf("filtered out: %" PRIu64 " requests\n", rp->filtered);
  if (kg_hist_count(&rp->all))
    printf("latency: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
           kg_ms(kg_hist_percentile(&rp->all, 50)), kg_ms(kg_hist_percentile(&rp->all, 90)),
           kg_ms(kg_hist_percentile(&rp->all, 99)), kg_ms(kg_hist_max(&rp->all)));
  kg_buf b = KG_BUF_INIT;
  for (int s = 0; s < 600; s++)
    if (rp->status[s]) kg_buf_appendf(&b, "%s%d: %" PRIu64, b.len ? ", " : "", s, rp->status[s]);
  if (rp->status_other) kg_buf_appendf(&b, "%sother: %" PRIu64, b.len ? ", " : "", rp->status_other);
  if (b.len) printf("status codes: %s\n", b.data);
  kg_buf_reset(&b);
  for (size_t i = 0; i < KG_REPLAY_MAX_ERROR_KINDS && rp->error_kind[i]; i++)
    kg_buf_appendf(&b, "%s%s: %" PRIu64, b.len ? ", " : "", rp->error_kind[i], rp->error_count[i]);
  if (b.len) printf("errors: %s\n", b.data);
  kg_buf_free(&b);
  kg_ep **v = kg_replay_sorted(rp);
  if (rp->neps) {
    int w = 8;
    for (size_t i = 0; i < rp->neps; i++) w = KG_MAX(w, (int)KG_MIN(strlen(v[i]->name), 60));
    printf("\n%-*s %9s %7s %9s %9s %9s %9s", w, "endpoint", "requests", "errors", "p50 ms",
           "p90 ms", "p99 ms", "max ms");
    if (rp->o->compare) printf(" %9s %9s", "differing", "rec p90");
    printf("\n");
    for (size_t i = 0; i < rp->neps; i++) {
      const kg_ep *e = v[i];
      bool any = kg_hist_count(&e->lat) > 0;
      printf("%-*.*s %9" PRIu64 " %7" PRIu64, w, w, e->name, e->requests, e->errors);
      if (any)
        printf(" %9.2f %9.2f %9.2f %9.2f", kg_ms(kg_hist_percentile(&e->lat, 50)),
               kg_ms(kg_hist_percentile(&e->lat, 90)), kg_ms(kg_hist_percentile(&e->lat, 99)),
               kg_ms(kg_hist_max(&e->lat)));
      else
        printf(" %9s %9s %9s %9s", "-", "-", "-", "-");
      if (rp->o->compare) {
        printf(" %9" PRIu64, e->differing);
        if (kg_hist_count(&e->rec)) printf(" %9.2f", kg_ms(kg_hist_percentile(&e->rec, 90)));
        else printf(" %9s", "-");
      }
      printf("\n");
    }
  }
  if (rp->o->compare) {
    printf("\ncompared %" PRIu64 ": %" PRIu64 " equal, %" PRIu64 " differing", rp->compared,
           rp->equal, rp->differing);
    if (rp->not_compared)
      printf(" (%" PRIu64 " not compared: no recorded response)", rp->not_compared);
    printf("\n");
    if (rp->differing) {
      printf("differing endpoints:");
      for (size_t i = 0; i < rp->neps; i++)
        if (v[i]->differing)
          printf(" %s (%" PRIu64 "/%" PRIu64 ")", v[i]->name, v[i]->differing, v[i]->compared);
      printf("\n");
    }
    if (rp->o->diff_log) printf("diff log: %s\n", rp->o->diff_log);
    if (rp->o->db) printf("store: %s (kagami report --db %s)\n", rp->o->db, rp->o->db);
  }
  free(v);
  if (st->unparseable || st->skipped)
    printf("input: %" PRIu64 " unparseable, %" PRIu64 " skipped\n", st->unparseable, st->skipped);
  fflush(stdout);
}

/* --- setup ---------------------------------------------------------------------------- */

/* The comparison settings when no --config is given: the defaults of a
 * config with the target as its only backend, loaded by the real loader
 * so that every default (ignored headers, capture size, ...) is the one
 * live shadowing would use. */
static int kg_replay_default_config(const char *target_hostport, kg_config **out, char *err,
                                    size_t errlen) {
  const char *dir = getenv("TMPDIR");
  char path[512];
  snprintf(path, sizeof(path), "%s/kagami-replay-XXXXXX", dir && *dir ? dir : "/tmp");
  int fd = mkstemp(path);
  if (fd < 0) {
    snprintf(err, errlen, "cannot create a temporary config in %s: %s",
             dir && *dir ? dir : "/tmp", strerror(errno));
    return -1;
  }
  char text[512];
  int n = snprintf(text, sizeof(text),
                   "-- kagami replay's built-in defaults\n"
                   "return { backends = { replay = { url = \"http://%s\", master = true } },\n"
                   "         store = false }\n",
                   target_hostport);
  bool ok = n > 0 && (size_t)n < sizeof(text) && write(fd, text, (size_t)n) == n;
  close(fd);
  int rc = ok ? kg_config_load(path, out, err, errlen) : -1;
  if (!ok) snprintf(err, errlen, "cannot write a temporary config %s", path);
  unlink(path);
  return rc;
}

static void kg_replay_report_damage(kg_replay *rp, const kg_traffic_status *st) {
  if (!st->damaged) return;
  fprintf(stderr,
          "kagami replay: %s: reading stopped at %sbyte %" PRIu64 ": %s; %" PRIu64
          " request%s read before it%s\n",
          rp->o->file, st->compressed ? "uncompressed " : "", st->damage_offset,
          st->damage_why, st->items, st->items == 1 ? " was" : "s were",
          rp->o->strict ? " (--strict: exit status 2)" : "");
}

static void kg_replay_free(kg_replay *rp) {
  while (rp->nheap) kg_slot_free(kg_heap_pop(rp));
  free(rp->heap);
  kg_ep *e, *tmp;
  HASH_ITER(hh, rp->eps, e, tmp) {
    HASH_DEL(rp->eps, e);
    free(e->name);
    free(e);
  }
  kg_traffic_close(rp->src);
  kg_store_close(rp->store);
  kg_difflog_close(rp->difflog);
  kg_epstats_free(rp->epstats);
  kg_addr_free(&rp->target);
  kg_config_free(rp->cfg);
}

int kg_replay_main(int argc, char **argv) {
  kg_replay_opts o = {0};
  int prc = kg_replay_parse(argc, argv, &o);
  if (prc != 0) {
    if (prc > 0) fputs(kg_replay_usage, stdout);
    kg_hdrs_free(&o.headers);
    return prc > 0 ? 0 : 1;
  }
  kg_replay *rp = kg_calloc(1, sizeof(*rp));
  rp->o = &o;
  rp->ts0 = 0;
  kg_hist_init(&rp->all);
  int status = 1;
  char err[1024], hostport[300];
  if (kg_replay_target(o.target, hostport, sizeof(hostport)) != 0) goto out;
  if (kg_addr_parse(hostport, &rp->target, err, sizeof(err)) != 0) {
    fprintf(stderr, "kagami replay: --target %s: %s\n", o.target, err);
    goto out;
  }
  int crc = o.config ? kg_config_load(o.config, &rp->cfg, err, sizeof(err))
                     : kg_replay_default_config(hostport, &rp->cfg, err, sizeof(err));
  if (crc != 0) {
    fprintf(stderr, "kagami replay: %s\n", err);
    goto out;
  }
  if (kg_traffic_open(o.file, o.format, o.strict, &rp->src, err, sizeof(err)) != 0) {
    fprintf(stderr, "kagami replay: %s\n", err);
    goto out;
  }
  kg_traffic_status st;
  kg_traffic_status_get(rp->src, &st);
  if (o.speed > 0 && st.format == KG_TRAFFIC_URLS) {
    kg_usage_error("--speed needs recorded times; %s is a URL list (use --rate)", o.file);
    goto out;
  }
  if (o.compare && st.format != KG_TRAFFIC_WARC) {
    kg_usage_error("--compare needs a WARC recording with responses; %s is %s", o.file,
                   st.format == KG_TRAFFIC_URLS ? "a URL list" : "an nginx log");
    goto out;
  }
  if (o.diff_log) {
    int r = kg_difflog_open(o.diff_log, &rp->difflog);
    if (r < 0) {
      fprintf(stderr, "kagami replay: diff log %s: %s\n", o.diff_log, strerror(-r));
      goto out;
    }
  }
  if (o.db) {
    free(rp->cfg->store_path);
    rp->cfg->store_path = kg_strdup(o.db);
    if (kg_store_open(rp->cfg, &rp->store, err, sizeof(err)) != 0) {
      fprintf(stderr, "kagami replay: %s\n", err);
      goto out;
    }
  }
  if (o.compare) kg_htmldiff_global_init();
  rp->epstats = kg_epstats_new(2, rp->cfg->latency_regression);
  rp->filter.endpoint = (char *)o.filter;
  /* Result ids carry a sequence; starting it at a random point keeps two
   * replays in the same millisecond apart. */
  unsigned char rnd[4];
  char idbuf[KG_WARC_ID_LEN];
  kg_warc_new_id(idbuf);
  memcpy(rnd, idbuf + 10, sizeof(rnd));
  rp->id_seq = ((uint64_t)rnd[0] << 20) ^ ((uint64_t)rnd[1] << 12) ^ ((uint64_t)rnd[2] << 4) ^ rnd[3];

  /* Backend heads are not bounded by us; the parser's own global cap only
   * has to be generous. */
  http_parser_set_max_header_size(1024 * 1024);
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&rp->loop);
  rp->client = kg_rc_new(&rp->loop, (const struct sockaddr *)&rp->target.sa, rp->target.salen,
                         o.timeout);
  uv_timer_init(&rp->loop, &rp->pace);
  uv_timer_init(&rp->loop, &rp->progress);
  uv_timer_init(&rp->loop, &rp->deadline);
  rp->pace.data = rp->progress.data = rp->deadline.data = rp;
  uv_signal_init(&rp->loop, &rp->sigint);
  uv_signal_init(&rp->loop, &rp->sigterm);
  rp->sigint.data = rp->sigterm.data = rp;
  uv_signal_start(&rp->sigint, kg_replay_on_signal, SIGINT);
  uv_signal_start(&rp->sigterm, kg_replay_on_signal, SIGTERM);
  uv_unref((uv_handle_t *)&rp->sigint);
  uv_unref((uv_handle_t *)&rp->sigterm);
  rp->progress_on = isatty(STDERR_FILENO) == 1;
  if (rp->progress_on)
    uv_timer_start(&rp->progress, kg_replay_on_progress, KG_REPLAY_PROGRESS_MS,
                   KG_REPLAY_PROGRESS_MS);
  if (o.duration > 0)
    uv_timer_start(&rp->deadline, kg_replay_on_deadline, (uint64_t)(o.duration * 1000), 0);
  uv_unref((uv_handle_t *)&rp->progress);
  uv_unref((uv_handle_t *)&rp->deadline);
  kg_replay_pump(rp);
  uv_run(&rp->loop, UV_RUN_DEFAULT);
  if (!rp->handles_closed) {
    /* Nothing kept the loop alive yet we did not finish: cannot happen
     * while the invariants hold, but never leave handles behind. */
    kg_replay_stop(rp, rp->stop_reason ? rp->stop_reason : "end of input");
    uv_run(&rp->loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&rp->loop);

  double el = rp->t0 ? (double)((rp->t_end > rp->t0 ? rp->t_end : rp->t0) - rp->t0) / 1e9 : 0;
  kg_traffic_status_get(rp->src, &st);
  if (o.json) kg_replay_summary_json(rp, el, &st);
  else kg_replay_summary_text(rp, el, &st);
  kg_replay_report_damage(rp, &st);
  if (rp->input_failed && !st.damaged) fprintf(stderr, "kagami replay: %s\n", rp->input_error);
  status = rp->input_failed ? (st.damaged ? 2 : 1) : 0;
out:
  kg_replay_free(rp);
  free(rp);
  kg_hdrs_free(&o.headers);
  return status;
}
