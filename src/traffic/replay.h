/* replay.h: the replay engine behind `kagami replay` (src/cli/replay_cli.c
 * is the command line: options in, summary out).
 *
 * Sends recorded traffic (a WARC recording, a URL list or an nginx access
 * log; see source.h) to a target on its own libuv loop, paced by a rate
 * (requests per second) or a speed (the recorded timing, scaled), with at
 * most `concurrency` requests in flight. Requests are sent in arrival
 * order: a window of the next KG_REPLAY_WINDOW items is kept sorted by
 * their recorded time, because a recording is written as exchanges finish,
 * not as they arrive.
 *
 * With compare, each replayed response is compared with the recorded
 * master response by the live comparison engine (kg_compare_pair, with the
 * noise rules of the config), and the results go to the same diff log
 * lines and store rows as live shadowing, with the backends named
 * "recorded" (the master) and "replay" (the shadow). Comparisons run in
 * libuv's thread pool; when they fall behind, sending waits (a replay,
 * unlike the proxy, can afford to wait rather than drop).
 *
 * The engine prints nothing but an optional progress line on stderr (and
 * a last word when a second SIGINT/SIGTERM ends the process); what the
 * run found comes back in a kg_replay_summary. */
#ifndef KG_REPLAY_H
#define KG_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/histogram.h"
#include "http/hdrs.h"
#include "traffic/source.h"

/* Items read ahead and sorted by recorded time before sending. */
#define KG_REPLAY_WINDOW 256
/* Distinct error kinds counted apart in the summary. */
#define KG_REPLAY_MAX_ERROR_KINDS 16
#define KG_REPLAY_DEFAULT_CONCURRENCY 64
#define KG_REPLAY_DEFAULT_TIMEOUT 30.0
/* What a replay sends unless told otherwise: a recording of production
 * holds writes, and replaying them into a deployment that shares a
 * database with production would apply them twice. */
#define KG_REPLAY_SAFE_METHODS "GET,HEAD,OPTIONS"
/* Methods counted apart among the skipped ones. */
#define KG_REPLAY_MAX_SKIPPED_KINDS 8

/* What to replay, where and how. Strings and headers are borrowed for the
 * length of kg_replay_run. */
typedef struct kg_replay_opts {
  const char *file;           /* the input */
  const char *target;         /* "http[s]://host[:port][/]" */
  const char *tls_ca;         /* https: trust anchors (PEM), NULL: system */
  bool tls_insecure;          /* https: do not verify the target */
  double rate;                /* requests per second; 0: not paced by rate */
  double speed;               /* recorded-time factor; 0: not timed */
  size_t concurrency;         /* requests in flight at most */
  double duration;            /* seconds of sending; 0: no limit */
  const char *filter;         /* endpoint or "METHOD /path" glob, or NULL */
  const char *methods;        /* comma-separated methods to send, "*" for
                                 any; NULL: the safe ones, as live
                                 shadowing sends by default
                                 (KG_REPLAY_SAFE_METHODS). Others are
                                 skipped and counted, never sent. */
  bool compare;               /* compare with the recorded responses
                                 (implied by diff_log and db) */
  const char *config;         /* Lua config for comparing, or NULL for the
                                 defaults with the target as backend */
  const char *diff_log;       /* JSON-lines diff log to append to, or NULL */
  const char *db;             /* results store to write to, or NULL */
  bool strict;                /* damaged input is an error */
  kg_source_format format;    /* KG_SOURCE_AUTO to detect it */
  double timeout;             /* seconds a request may stay silent */
  kg_hdrs headers;            /* fields set on every request */
  bool progress;              /* redraw a progress line on stderr */
} kg_replay_opts;

/* The defaults: concurrency and timeout set, everything else off. */
void kg_replay_opts_init(kg_replay_opts *o);

/* One endpoint's numbers. */
typedef struct kg_replay_endpoint {
  char *name;                 /* owned: "GET /users/:id", or "(other)" past
                                 the first 500 */
  uint64_t requests, errors, compared, differing;
  kg_hist lat;                /* replayed latency, microseconds */
  kg_hist rec;                /* recorded master latency, microseconds */
} kg_replay_endpoint;

/* What a run found. */
typedef struct kg_replay_summary {
  /* When kg_replay_run fails: why, and whether it is the options' fault
   * (a command line points at its help then). */
  char error[1024];
  bool usage;
  /* the run */
  const char *stop_reason;    /* "end of input", "duration", "signal" or
                                 "damaged input" (static) */
  double elapsed;             /* seconds from the first send to the last
                                 response */
  uint64_t sent, answered, errors, filtered;
  uint64_t skipped;           /* not sent: method not in opts.methods */
  /* The replay's own load: the share of the run it spent with
   * `concurrency` requests in flight, how many due requests waited for a
   * free slot, and how many requests the recording had in flight on
   * average (Little's law over its timings; 0 when unknown). A replay at
   * its cap most of the time measures the target queueing its own load. */
  double saturated_share;
  uint64_t held_back;
  double recorded_concurrency;
  char skipped_method[KG_REPLAY_MAX_SKIPPED_KINDS][16]; /* by method ("" ends) */
  uint64_t skipped_count[KG_REPLAY_MAX_SKIPPED_KINDS];
  uint64_t connections;       /* opened to the target */
  uint64_t compared, equal, differing, not_compared;
  uint64_t status[600];       /* responses by status code */
  uint64_t status_other;      /* ... and with codes outside 0-599 */
  const char *error_kind[KG_REPLAY_MAX_ERROR_KINDS]; /* static strings */
  uint64_t error_count[KG_REPLAY_MAX_ERROR_KINDS];
  kg_hist all;                /* every replayed latency, microseconds */
  kg_replay_endpoint *eps;    /* owned, busiest first */
  size_t neps;
  kg_source_status input;     /* what reading the file found */
  bool input_failed;          /* strict and damaged, or a read error */
  char input_error[512];      /* why, when input_failed */
} kg_replay_summary;

/* Runs a replay to its end (the input done, the duration over, or a
 * SIGINT/SIGTERM) on a loop of its own. Returns 0 with *sum filled, even
 * when the target failed every request or the input was damaged (see
 * sum->input_failed and sum->input.damaged); or -1 when it could not start
 * (sum->error says why; nothing was sent). Either way the caller frees
 * *sum with kg_replay_summary_free. */
int kg_replay_run(const kg_replay_opts *o, kg_replay_summary *sum);
void kg_replay_summary_free(kg_replay_summary *sum);

#endif
