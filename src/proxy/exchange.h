/* exchange.h: one request's fan-out to its backends, and its result.
 *
 * Lifetime: the client module creates an exchange for each complete
 * request (kg_exchange_new + kg_exchange_start). The exchange owns the
 * request and one leg per selected backend. It streams the master leg's
 * response to the client through the kg_exchange_client_ops the client
 * module registered (it knows no more of the client than that), detaches
 * from the client when the master is done, waits for the shadows, and
 * then, when compared, goes through the worker's results pipeline
 * (compared in the thread pool, written to the sinks), which frees it.
 *
 * If the client goes away while it is still owed the master's response,
 * the client calls kg_exchange_client_gone and the exchange is abandoned:
 * every leg is cancelled and no result is written. */
#ifndef KG_EXCHANGE_H
#define KG_EXCHANGE_H

#include <stdbool.h>
#include <time.h>
#include <uv.h>

#include "compare/compare.h"
#include "common/buf.h"
#include "http/http.h"
#include "client/upstream.h"
#include "results/pipeline.h"

typedef struct kg_worker kg_worker;
typedef struct kg_exchange kg_exchange;

/* The client connection as the exchange sees it: where the master's
 * response goes. `client` is the pointer given to kg_exchange_new. None of
 * these closes the client synchronously. */
typedef struct kg_exchange_client_ops {
  /* A 1xx interim response from the master (not 101). */
  void (*interim)(void *client, const kg_http_msg *msg);
  /* The master's response head. */
  void (*head)(void *client, const kg_http_msg *resp, bool head_request);
  /* Decoded master body bytes, in a buffer valid only for the call. */
  void (*body)(void *client, const char *p, size_t n);
  /* The response is complete; the exchange lets go of the client. */
  void (*end)(void *client);
  /* The master failed (502, or 504 on a timeout); the exchange lets go
   * of the client. */
  void (*failed)(void *client, int status);
} kg_exchange_client_ops;

/* What a leg is for (its kg_leg.role). */
typedef enum kg_role {
  KG_ROLE_MASTER = 0, /* its response goes to the client */
  KG_ROLE_SHADOW,     /* compared with the master */
  KG_ROLE_SECONDARY,  /* a second master instance: noise reference */
  KG_ROLE_REPEAT,     /* a shadow asked twice: noise reference */
} kg_role;

struct kg_exchange {
  kg_worker *w;            /* owning worker */
  const kg_config *cfg;    /* the config it started under (a reload does
                              not change a request in flight) */
  kg_pipeline_item link;   /* in the worker's results pipeline */
  void *client;            /* owed the master's response; NULL after */
  const kg_exchange_client_ops *client_ops; /* how to give it to it */
  char id[32];             /* unique, sortable by arrival */
  struct timespec arrived; /* wall clock at dispatch ("ts") */
  kg_http_msg req;         /* request head (owned) */
  kg_buf body;             /* request body, de-chunked (owned) */
  kg_buf path;             /* request path without the query (owned) */
  const char *method;      /* static name of req.method */
  uint64_t conn_id, conn_seq; /* the client connection and the request's
                                 number on it (hooks' req.connection) */
  kg_buf endpoint;         /* "GET /users/:id" (owned); set when compared */
  kg_leg *legs;            /* owned array; legs[0] is the master */
  size_t nlegs;
  size_t pending;          /* legs started and not yet done */
  bool compare;            /* shadows were selected: write a result */
  bool record;             /* recorded for replay (record.sample said so) */
  bool master_streaming;   /* the master's head went to the client */
  /* Filled by the comparison, in the thread pool: */
  kg_resp_view *views;     /* owned, one per leg, for comparison and hook */
  kg_pair_result *pairs;   /* owned, one per leg (used for shadows) */
  const char **roles;      /* owned, one per leg: the result's roles */
  bool equal;              /* every shadow matched */
  bool failed;             /* not equal only because the master or a shadow
                              failed: an error, not a difference */
  bool truncated;          /* some body was cut at the capture limit */
  kg_kind kind;            /* of the master's body */
  char **suppressed;       /* owned: noise hidden, all shadows */
  size_t nsuppressed;
  uint64_t regression;     /* backends flagged slower on this endpoint */
  uint64_t newly_flagged;  /* ... of which flagged by this very result */
};

/* Creates the exchange for a complete request, taking the contents of
 * *req and *body (both are left empty). conn_id and conn_seq say which
 * client connection it came on and its number there (for hooks). Backends
 * are selected here. */
kg_exchange *kg_exchange_new(kg_worker *w, const kg_exchange_client_ops *client_ops,
                             void *client, uint64_t conn_id, uint64_t conn_seq,
                             kg_http_msg *req, kg_buf *body);
/* Sends the request to every selected backend. */
void kg_exchange_start(kg_exchange *ex);
/* The client left while owed the response: abandon everything. */
void kg_exchange_client_gone(kg_exchange *ex);
/* Flow control of the master stream (the client reads slowly). */
void kg_exchange_pause_master(kg_exchange *ex);
void kg_exchange_resume_master(kg_exchange *ex);

/* Sets up w->results, the worker's results pipeline, for exchanges. */
void kg_exchange_pipeline_init(kg_worker *w);

#endif
