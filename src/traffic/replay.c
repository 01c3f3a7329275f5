/* replay.c: the replay engine (see replay.h; the command line is
 * src/cli/replay_cli.c).
 *
 * One loop on the main thread does everything but comparing: it reads the
 * input into a small sorted window, paces sends with a timer, sends on the
 * HTTP client's pooled connections (client/upstream.h), keeps the summary's
 * numbers, and redraws the progress line. Finished requests that have a
 * recorded response to compare with go through the results pipeline
 * (results/pipeline.h), as live exchanges do: compared in batches in the
 * thread pool, written to the sinks (diff log, store) that --diff-log and
 * --db ask for.
 *
 * Ownership: a kg_rq (one replayed request) is made when its item leaves
 * the window and freed either when its response is counted (nothing to
 * compare) or when the pipeline is done with it. The loop ends when the
 * input is done (or a stop was asked for), nothing is in flight, and no
 * batch is pending; every handle is then closed and the loop runs dry. */
#include "traffic/replay.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
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
#include "compare/endpoint.h"
#include "results/epstats.h"
#include "results/pipeline.h"
#include "results/sink.h"
#include "common/histogram.h"
#include "http/http.h"
#include "client/upstream.h"
#include "net/conn.h"
#include "net/tls.h"
#include "traffic/source.h"
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
#define KG_REPLAY_PROGRESS_MS 250

/* --- options ------------------------------------------------------------------ */

void kg_replay_opts_init(kg_replay_opts *o) {
  memset(o, 0, sizeof(*o));
  o->concurrency = KG_REPLAY_DEFAULT_CONCURRENCY;
  o->timeout = KG_REPLAY_DEFAULT_TIMEOUT;
}

/* Records why the run cannot start in sum and returns -1. */
static int kg_replay_fail(kg_replay_summary *sum, bool usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int kg_replay_fail(kg_replay_summary *sum, bool usage, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sum->error, sizeof(sum->error), fmt, ap);
  va_end(ap);
  sum->usage = usage;
  return -1;
}

/* "http[s]://host[:port][/]" -> "host:port" for kg_addr_parse, and
 * whether it is https. 0, or -1 with a usage error in sum. */
static int kg_replay_target(const char *url, char *out, size_t outlen, bool *tls,
                            kg_replay_summary *sum) {
  *tls = strncasecmp(url, "https://", 8) == 0;
  if (!*tls && strncasecmp(url, "http://", 7) != 0)
    return kg_replay_fail(sum, true,
                          "--target: expected http://host:port or https://host:port, got '%s'",
                          url);
  const char *h = url + (*tls ? 8 : 7);
  size_t n = strcspn(h, "/?#");
  if (h[n] != '\0' && strcmp(h + n, "/") != 0)
    return kg_replay_fail(sum, true,
                          "--target %s: a path is not supported (requests keep their own)", url);
  if (n == 0) return kg_replay_fail(sum, true, "--target %s: no host", url);
  /* Without a port, 80; an IPv6 literal without one is "[::1]". */
  const char *rb = h[0] == '[' ? memchr(h, ']', n) : NULL;
  bool has_port = h[0] == '[' ? (rb && (size_t)(rb - h) + 1 < n) : memchr(h, ':', n) != NULL;
  snprintf(out, outlen, "%.*s%s", (int)n, h, has_port ? "" : *tls ? ":443" : ":80");
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
  kg_source_item item;
  double key;                /* recorded time used for ordering */
  uint64_t seq;              /* input order, to keep ties stable */
  char *endpoint;            /* owned endpoint name */
} kg_slot;

typedef struct kg_replay kg_replay;

/* One replayed request. */
typedef struct kg_rq {
  kg_leg hc;                 /* the HTTP client request (embedded) */
  kg_replay *rp;
  kg_source_item item;       /* what was recorded (owned) */
  char *endpoint;            /* owned */
  kg_ep *ep;                 /* its summary row (loop thread only) */
  struct timespec sent_at;   /* wall clock, the result's ts */
  kg_pipeline_item link;     /* in the results pipeline */
  /* Set in the pool by the comparison; the result borrows them: */
  bool equal;                /* comparison outcome */
  char id[32];               /* the result's id */
  kg_resp_view views[2];     /* recorded (as the master), replayed */
  kg_pair_result pairs[2];   /* [1]: replayed vs recorded (owned) */
  kg_buf cut;                /* the replayed body cut like the recorded one */
  const char **suppressed;   /* owned array of pairs[1]'s strings */
} kg_rq;

struct kg_replay {
  const kg_replay_opts *o;   /* borrowed for the run */
  kg_config *cfg;            /* owned */
  kg_addr target;            /* resolved --target */
  kg_tls_ctx *tls;           /* owned: an https target's TLS context */
  kg_source *src;           /* owned input */
  kg_sinks sinks;            /* owned: --diff-log, --db */
  kg_epstats *epstats;       /* latency regression flags, for the results */
  kg_rule filter;            /* --filter as a rule (only endpoint is set) */
  uv_loop_t loop;
  kg_pool pool;              /* the HTTP client's connections to the target */
  char readbuf[64 * 1024];   /* where every response read lands */
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
  kg_pipeline results;       /* responses to compare, to the sinks */
  uint64_t id_seq;           /* for result ids */
  /* numbers for the summary */
  uint64_t sent, answered, errors, filtered;
  uint64_t skipped;          /* method not allowed: counted, not sent */
  uint64_t sat_since;        /* uv_hrtime() when in-flight reached
                                concurrency, 0 while below it */
  uint64_t sat_ns;           /* time spent at the concurrency cap */
  uint64_t held;             /* due items kept waiting by the cap */
  double rec_busy;           /* seconds of recorded master time */
  double rec_first, rec_last; /* recorded arrival times, for their span */
  char skipped_method[KG_REPLAY_MAX_SKIPPED_KINDS][16];
  uint64_t skipped_count[KG_REPLAY_MAX_SKIPPED_KINDS];
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

static bool kg_replay_slot_less(const kg_slot *a, const kg_slot *b) {
  if (a->key != b->key) return a->key < b->key;
  return a->seq < b->seq;
}

static void kg_replay_heap_push(kg_replay *rp, kg_slot *s) {
  rp->heap = kg_realloc(rp->heap, (rp->nheap + 1) * sizeof(kg_slot *));
  size_t i = rp->nheap++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!kg_replay_slot_less(s, rp->heap[parent])) break;
    rp->heap[i] = rp->heap[parent];
    i = parent;
  }
  rp->heap[i] = s;
  rp->heap_bytes += kg_source_item_size(&s->item);
}

static kg_slot *kg_replay_heap_pop(kg_replay *rp) {
  kg_slot *top = rp->heap[0];
  kg_slot *last = rp->heap[--rp->nheap];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const kg_slot *best = last;
    if (l < rp->nheap && kg_replay_slot_less(rp->heap[l], best)) m = l, best = rp->heap[l];
    if (r < rp->nheap && kg_replay_slot_less(rp->heap[r], best)) m = r;
    if (m == i) break;
    rp->heap[i] = rp->heap[m];
    i = m;
  }
  if (rp->nheap > 0) rp->heap[i] = last;
  rp->heap_bytes -= kg_source_item_size(&top->item);
  return top;
}

static void kg_replay_slot_free(kg_slot *s) {
  kg_source_item_free(&s->item);
  free(s->endpoint);
  free(s);
}

/* True when the item passes --filter: its endpoint name, or its method
 * and raw path, match the glob. */
static bool kg_replay_wanted(kg_replay *rp, const kg_source_item *it, const char *endpoint) {
  if (rp->o->filter == NULL) return true;
  if (kg_rule_matches(&rp->filter, endpoint)) return true;
  kg_buf raw = KG_BUF_INIT;
  kg_buf_appendf(&raw, "%s %.*s", it->method, (int)strcspn(it->url, "?"), it->url);
  bool ok = kg_rule_matches(&rp->filter, raw.data);
  kg_buf_free(&raw);
  return ok;
}

/* True when `method` is in the comma-separated list (or the list is "*"). */
static bool kg_replay_method_allowed(const char *list, const char *method) {
  if (strcmp(list, "*") == 0) return true;
  size_t n = strlen(method);
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, ",");
    if (len == n && memcmp(p, method, n) == 0) return true;
    p += len;
    if (*p == ',') p++;
  }
  return false;
}

/* Counts a request skipped for its method, by method (the last slot takes
 * every method past the first few). */
static void kg_replay_count_skipped(kg_replay *rp, const char *method) {
  rp->skipped++;
  const size_t last = KG_REPLAY_MAX_SKIPPED_KINDS - 1;
  size_t i = 0;
  while (i < last && rp->skipped_method[i][0] && strcmp(rp->skipped_method[i], method) != 0)
    i++;
  if (rp->skipped_method[i][0] == '\0')
    snprintf(rp->skipped_method[i], sizeof(rp->skipped_method[i]), "%s",
             i == last ? "other" : method);
  rp->skipped_count[i]++;
}

/* Reads from the input until the window is full or the input ends. */
static void kg_replay_fill(kg_replay *rp) {
  while (!rp->input_done && rp->nheap < KG_REPLAY_WINDOW &&
         rp->heap_bytes < KG_REPLAY_WINDOW_BYTES) {
    kg_slot *s = kg_calloc(1, sizeof(*s));
    int rc = kg_source_next(rp->src, &s->item, rp->input_error, sizeof(rp->input_error));
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
      kg_replay_slot_free(s);
      continue;
    }
    const char *methods = rp->o->methods ? rp->o->methods : KG_REPLAY_SAFE_METHODS;
    if (!kg_replay_method_allowed(methods, s->item.method)) {
      kg_replay_count_skipped(rp, s->item.method);
      kg_buf_free(&ep);
      kg_replay_slot_free(s);
      continue;
    }
    s->endpoint = kg_buf_steal(&ep, NULL);
    if (isfinite(s->item.ts)) rp->last_key = s->item.ts;
    s->key = isfinite(s->item.ts) ? s->item.ts : rp->last_key;
    s->seq = rp->seq++;
    kg_replay_heap_push(rp, s);
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
  const kg_source_item *it = &q->item;
  const kg_leg *r = &q->hc;
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

/* Thread pool (the pipeline's compare): the replayed response against
 * the recorded one, as a shadow against its master. The result borrows
 * from q. Batches run one at a time, which keeps rp->id_seq ours. */
static void kg_replay_compare(kg_pipeline_item *it, kg_result *out) {
  static const char *const roles[2] = {"master", "shadow"};
  kg_rq *q = KG_CONTAINER_OF(it, kg_rq, link);
  kg_replay *rp = q->rp;
  const kg_rule *rules[64];
  size_t nrules = kg_compare_rules(rp->cfg->rules, rp->cfg->nrules, q->endpoint, rules,
                                   KG_ARRAY_SIZE(rules));
  kg_compare_opts o = {.settings = &rp->cfg->compare, .max_body_bytes = rp->cfg->max_capture_bytes,
                       .rules = rules, .nrules = nrules};
  kg_resp_view *v = q->views;
  kg_replay_views(q, v, &q->cut);
  kg_pair_result *p = q->pairs;
  kg_compare_pair(&v[0], &v[1], &o, &p[1]);
  q->equal = p[1].equal;
  bool present[2] = {true, true}, failed[2] = {false, q->hc.error != NULL};
  uint64_t us[2] = {(uint64_t)(v[0].elapsed * 1e6), (uint64_t)(v[1].elapsed * 1e6)};
  uint64_t flagged = 0;
  kg_epstats_record(rp->epstats, q->endpoint, q->equal, present, failed, us, &flagged);
  size_t ns = p[1].body.nsuppressed + p[1].headers.nsuppressed;
  q->suppressed = kg_calloc(ns + 1, sizeof(char *));
  size_t k = 0;
  for (size_t j = 0; j < p[1].body.nsuppressed; j++) q->suppressed[k++] = p[1].body.suppressed[j];
  for (size_t j = 0; j < p[1].headers.nsuppressed; j++)
    q->suppressed[k++] = p[1].headers.suppressed[j];
  uint64_t ms = (uint64_t)q->sent_at.tv_sec * 1000u + (uint64_t)q->sent_at.tv_nsec / 1000000u;
  /* Like live ids (sortable by time), with "fe" where a worker number
   * stands so the two never collide in one store. */
  snprintf(q->id, sizeof(q->id), "%011" PRIx64 "fe%07" PRIx64, ms,
           (uint64_t)((rp->id_seq++) & 0xfffffffULL));
  *out = (kg_result){.id = q->id,
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
                     .suppressed = q->suppressed,
                     .nsuppressed = ns,
                     .regression = (flagged & 2) ? 2 : 0};
}

static void kg_replay_rq_free(kg_rq *q) {
  kg_leg_free(&q->hc);
  kg_source_item_free(&q->item);
  free(q->endpoint);
  kg_pair_result_free(&q->pairs[1]);
  kg_buf_free(&q->cut);
  free(q->suppressed);
  free(q);
}

/* Loop thread (the pipeline's done): counts the outcome, frees q. */
static void kg_replay_done(kg_pipeline_item *it, bool compared) {
  kg_rq *q = KG_CONTAINER_OF(it, kg_rq, link);
  kg_replay *rp = q->rp;
  if (compared) {
    rp->compared++;
    q->ep->compared++;
    if (q->equal) rp->equal++;
    else rp->differing++, q->ep->differing++;
  }
  kg_replay_rq_free(q);
}

static void kg_replay_pump(kg_replay *rp);

/* A batch ended: sending may resume. */
static void kg_replay_drained(kg_pipeline *p) { kg_replay_pump(p->data); }

static const kg_pipeline_ops kg_replay_pipeline_ops = {
    .compare = kg_replay_compare,
    .done = kg_replay_done,
    .drained = kg_replay_drained,
};

/* --- sending -------------------------------------------------------------------- */

static bool kg_replay_method_has_body(const char *m) {
  return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
}

/* The request as the target gets it: the recorded fields minus those that
 * describe a connection or framing, --header fields instead of recorded
 * ones of the same name, a Host when there is none, and one
 * Content-Length for the body. Nothing else is added (not even a
 * User-Agent): the target should see what production saw. */
static void kg_replay_build(const kg_replay *rp, const kg_source_item *it, kg_buf *b) {
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
  if (it->req_body.len || kg_replay_method_has_body(it->method))
    kg_buf_appendf(b, "Content-Length: %zu\r\n", it->req_body.len);
  kg_buf_append(b, "\r\n", 2);
  kg_buf_append(b, it->req_body.data, it->req_body.len);
}

/* Time at the cap: while the replay keeps `concurrency` requests in
 * flight, the target queues what the replay itself sends. */
static void kg_replay_saturation(kg_replay *rp, uint64_t now) {
  bool at_cap = rp->inflight >= rp->o->concurrency;
  if (at_cap && rp->sat_since == 0) rp->sat_since = now;
  if (!at_cap && rp->sat_since) {
    rp->sat_ns += now - rp->sat_since;
    rp->sat_since = 0;
  }
}

static void kg_replay_on_response(kg_leg *r) {
  kg_rq *q = KG_CONTAINER_OF(r, kg_rq, hc);
  kg_replay *rp = q->rp;
  rp->inflight--;
  kg_replay_saturation(rp, uv_hrtime());
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
    q->link.bytes = kg_source_item_size(&q->item) + r->body.len + r->resp.hdrs.data.len;
    /* Unbounded, so it cannot fail: the pump bounds the queue instead. */
    kg_pipeline_submit(&rp->results, &q->link);
  } else {
    if (rp->o->compare) rp->not_compared++;
    kg_replay_rq_free(q);
  }
  kg_replay_pump(rp);
}

static const kg_leg_cbs kg_replay_leg_cbs = {.on_done = kg_replay_on_response};

static void kg_replay_send(kg_replay *rp, kg_slot *s) {
  kg_rq *q = kg_calloc(1, sizeof(*q));
  q->rp = rp;
  q->item = s->item;
  q->endpoint = s->endpoint;
  free(s); /* its contents moved into q */
  q->ep = kg_replay_ep(rp, q->endpoint);
  kg_replay_build(rp, &q->item, &q->hc.req);
  q->hc.cbs = &kg_replay_leg_cbs;
  q->hc.data = q;
  q->hc.pool = &rp->pool;
  q->hc.capture = true;
  q->hc.head_request = strcmp(q->item.method, "HEAD") == 0;
  q->hc.retry_ok = strcmp(q->item.method, "POST") != 0 && strcmp(q->item.method, "PATCH") != 0;
  clock_gettime(CLOCK_REALTIME, &q->sent_at);
  rp->inflight++;
  kg_replay_saturation(rp, uv_hrtime());
  rp->sent++;
  if (isfinite(q->item.ts) && isfinite(q->item.elapsed)) {
    /* Little's law on the recording: master time over its span is how
     * many requests it had in flight on average. */
    if (rp->rec_busy == 0) rp->rec_first = q->item.ts;
    rp->rec_busy += q->item.elapsed;
    rp->rec_last = KG_MAX(rp->rec_last, q->item.ts);
  }
  rp->last_offset = KG_MAX(rp->last_offset, q->item.offset);
  kg_leg_start(&q->hc);
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
    if (rp->inflight >= rp->o->concurrency) {
      if (rp->nheap && kg_replay_due(rp, rp->heap[0]) <= uv_hrtime()) rp->held++;
      break;
    }
    size_t pending_bytes;
    if (kg_pipeline_pending(&rp->results, &pending_bytes) >= KG_REPLAY_MAX_PENDING ||
        pending_bytes >= KG_REPLAY_MAX_PENDING_BYTES)
      break; /* resumed when the running batch ends (kg_replay_drained) */
    kg_replay_fill(rp);
    if (rp->nheap == 0) {
      kg_source_status st;
      kg_source_status_get(rp->src, &st);
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
    kg_replay_send(rp, kg_replay_heap_pop(rp));
  }
  kg_replay_finish(rp);
}

/* --- progress -------------------------------------------------------------------- */

static void kg_replay_fmt_eta(double s, char *out, size_t n) {
  if (!(s >= 0) || !isfinite(s)) snprintf(out, n, "--");
  else if (s >= 3600) snprintf(out, n, "%d:%02d:%02d", (int)(s / 3600), (int)(fmod(s, 3600) / 60), (int)fmod(s, 60));
  else snprintf(out, n, "%d:%02d", (int)(s / 60), (int)fmod(s, 60));
}

static void kg_replay_draw(kg_replay *rp) {
  double el = rp->t0 ? (double)(uv_hrtime() - rp->t0) / 1e9 : 0;
  kg_source_status st;
  kg_source_status_get(rp->src, &st);
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
  kg_replay_fmt_eta(eta, e, sizeof(e));
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
  if (rp->inflight > 0 || kg_pipeline_busy(&rp->results)) return;
  rp->handles_closed = true;
  kg_pipeline_close(&rp->results);
  uv_close((uv_handle_t *)&rp->pace, NULL);
  uv_close((uv_handle_t *)&rp->progress, NULL);
  uv_close((uv_handle_t *)&rp->deadline, NULL);
  uv_close((uv_handle_t *)&rp->sigint, NULL);
  uv_close((uv_handle_t *)&rp->sigterm, NULL);
  rp->connections = rp->pool.opened;
  kg_pool_close_idle(&rp->pool);
  if (rp->progress_on) fputs("\r\033[K", stderr);
}

/* --- the summary ------------------------------------------------------------------- */

static int kg_replay_ep_cmp(const void *a, const void *b) {
  const kg_ep *x = *(kg_ep *const *)a, *y = *(kg_ep *const *)b;
  if (x->requests != y->requests) return x->requests > y->requests ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* Endpoints, busiest first. Caller frees the array. */
static kg_ep **kg_replay_sorted(kg_replay *rp) {
  kg_ep **v = kg_calloc(rp->neps + 1, sizeof(kg_ep *));
  size_t k = 0;
  for (kg_ep *e = rp->eps; e; e = e->hh.next) v[k++] = e;
  qsort(v, k, sizeof(kg_ep *), kg_replay_ep_cmp);
  return v;
}

/* Moves what the run counted into sum; the endpoint rows leave rp's
 * index (their names move, their rows are freed as they are copied). */
static void kg_replay_summarize(kg_replay *rp, kg_replay_summary *sum) {
  sum->stop_reason = rp->stop_reason ? rp->stop_reason : "end of input";
  sum->elapsed =
      rp->t0 ? (double)((rp->t_end > rp->t0 ? rp->t_end : rp->t0) - rp->t0) / 1e9 : 0;
  sum->sent = rp->sent;
  sum->answered = rp->answered;
  sum->errors = rp->errors;
  sum->filtered = rp->filtered;
  sum->skipped = rp->skipped;
  if (rp->sat_since) rp->sat_ns += (rp->t_end > rp->sat_since ? rp->t_end : rp->sat_since) -
                                   rp->sat_since;
  sum->saturated_share = sum->elapsed > 0 ? (double)rp->sat_ns / 1e9 / sum->elapsed : 0;
  if (sum->saturated_share > 1) sum->saturated_share = 1;
  sum->held_back = rp->held;
  double span = rp->rec_last - rp->rec_first;
  sum->recorded_concurrency = span > 1 ? rp->rec_busy / span : 0;
  memcpy(sum->skipped_method, rp->skipped_method, sizeof(sum->skipped_method));
  memcpy(sum->skipped_count, rp->skipped_count, sizeof(sum->skipped_count));
  sum->connections = rp->connections;
  sum->compared = rp->compared;
  sum->equal = rp->equal;
  sum->differing = rp->differing;
  sum->not_compared = rp->not_compared;
  memcpy(sum->status, rp->status, sizeof(sum->status));
  sum->status_other = rp->status_other;
  memcpy(sum->error_kind, rp->error_kind, sizeof(sum->error_kind));
  memcpy(sum->error_count, rp->error_count, sizeof(sum->error_count));
  sum->all = rp->all;
  kg_ep **v = kg_replay_sorted(rp);
  sum->eps = kg_calloc(rp->neps + 1, sizeof(*sum->eps));
  for (size_t i = 0; i < rp->neps; i++) {
    kg_ep *e = v[i];
    sum->eps[i] = (kg_replay_endpoint){.name = e->name,
                                       .requests = e->requests,
                                       .errors = e->errors,
                                       .compared = e->compared,
                                       .differing = e->differing,
                                       .lat = e->lat,
                                       .rec = e->rec};
    HASH_DEL(rp->eps, e);
    free(e);
  }
  sum->neps = rp->neps;
  rp->neps = 0;
  free(v);
  kg_source_status_get(rp->src, &sum->input);
  sum->input_failed = rp->input_failed;
  snprintf(sum->input_error, sizeof(sum->input_error), "%s", rp->input_error);
}

void kg_replay_summary_free(kg_replay_summary *sum) {
  for (size_t i = 0; i < sum->neps; i++) free(sum->eps[i].name);
  free(sum->eps);
  sum->eps = NULL;
  sum->neps = 0;
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

static void kg_replay_free(kg_replay *rp) {
  while (rp->nheap) kg_replay_slot_free(kg_replay_heap_pop(rp));
  free(rp->heap);
  kg_ep *e, *tmp;
  HASH_ITER(hh, rp->eps, e, tmp) {
    HASH_DEL(rp->eps, e);
    free(e->name);
    free(e);
  }
  kg_source_close(rp->src);
  kg_sinks_close(&rp->sinks);
  kg_epstats_free(rp->epstats);
  kg_addr_free(&rp->target);
  kg_tls_ctx_free(rp->tls);
  kg_config_free(rp->cfg);
}

int kg_replay_run(const kg_replay_opts *opts, kg_replay_summary *sum) {
  memset(sum, 0, sizeof(*sum));
  kg_hist_init(&sum->all);
  /* A copy, so that diff_log and db can imply compare. */
  kg_replay_opts o = *opts;
  if (o.diff_log || o.db) o.compare = true;
  kg_replay *rp = kg_calloc(1, sizeof(*rp));
  rp->o = &o;
  rp->ts0 = 0;
  kg_hist_init(&rp->all);
  int status = -1;
  char err[1024], hostport[300];
  bool tls;
  if (kg_replay_target(o.target, hostport, sizeof(hostport), &tls, sum) != 0) goto out;
  if (kg_addr_parse(hostport, &rp->target, err, sizeof(err)) != 0) {
    kg_replay_fail(sum, false, "--target %s: %s", o.target, err);
    goto out;
  }
  /* An https target is verified as a backend is: the system store or
   * --ca, its host checked, unless --insecure says otherwise. */
  kg_tls_settings ts = {.ca = o.tls_ca, .server_name = rp->target.host,
                        .min_version = 12, .verify = !o.tls_insecure};
  if (tls && kg_tls_ctx_new(&ts, &rp->tls, err, sizeof(err)) != 0) {
    kg_replay_fail(sum, false, "--target %s: %s", o.target, err);
    goto out;
  }
  int crc = o.config ? kg_config_load(o.config, &rp->cfg, err, sizeof(err))
                     : kg_replay_default_config(hostport, &rp->cfg, err, sizeof(err));
  if (crc != 0) {
    kg_replay_fail(sum, false, "%s", err);
    goto out;
  }
  if (kg_source_open(o.file, o.format, o.strict, &rp->src, err, sizeof(err)) != 0) {
    kg_replay_fail(sum, false, "%s", err);
    goto out;
  }
  kg_source_status st;
  kg_source_status_get(rp->src, &st);
  if (o.speed > 0 && st.format == KG_SOURCE_URLS) {
    kg_replay_fail(sum, true, "--speed needs recorded times; %s is a URL list (use --rate)",
                   o.file);
    goto out;
  }
  if (o.compare && st.format != KG_SOURCE_WARC) {
    kg_replay_fail(sum, true, "--compare needs a WARC recording with responses; %s is %s",
                   o.file, st.format == KG_SOURCE_URLS ? "a URL list" : "an nginx log");
    goto out;
  }
  /* The sinks are what --diff-log and --db say, whatever a --config file
   * says about diff_log and store. */
  free(rp->cfg->diff_log);
  rp->cfg->diff_log = o.diff_log ? kg_strdup(o.diff_log) : NULL;
  free(rp->cfg->store_path);
  rp->cfg->store_path = o.db ? kg_strdup(o.db) : NULL;
  if (kg_sinks_open(rp->cfg, &rp->sinks, err, sizeof(err)) != 0) {
    kg_replay_fail(sum, false, "%s", err);
    goto out;
  }
  if (o.compare) kg_htmldiff_global_init();
  rp->epstats = kg_epstats_new(2, rp->cfg->latency_regression,
                                 (size_t)rp->cfg->max_endpoints);
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
  /* One batch at a time, started as soon as a response is in: sending
   * pauses while the queue is long (kg_replay_pump), nothing is dropped. */
  const kg_pipeline_limits lim = {.gather = 1};
  kg_pipeline_init(&rp->results, &rp->loop, &kg_replay_pipeline_ops, &lim, &rp->sinks, rp);
  /* One target, one pool: every connection it opens stays pooled (the
   * summary counts them), for as long as the target keeps it. */
  kg_upstream target = {.name = rp->target.text,
                        .host = rp->target.text,
                        .addr = rp->target.sa,
                        .transport = rp->tls ? &kg_conn_tls : &kg_conn_tcp,
                        .transport_ctx = rp->tls,
                        .timeout_ms = o.timeout > 0 ? (uint64_t)(o.timeout * 1000.0) : 30000,
                        .idle_timeout_ms = KG_CONN_NO_DEADLINE,
                        .max_idle = SIZE_MAX,
                        .max_capture = rp->cfg->max_capture_bytes};
  kg_pool_init(&rp->pool, &rp->loop, &target, rp->readbuf, sizeof(rp->readbuf));
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
  rp->progress_on = o.progress;
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
  kg_replay_summarize(rp, sum);
  status = 0;
out:
  kg_replay_free(rp);
  free(rp);
  return status;
}
