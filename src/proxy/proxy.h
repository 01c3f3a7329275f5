/* proxy.h: client connections: accept, parse requests, answer in order.
 *
 * One kg_client per accepted connection. Requests on a connection are
 * handled one at a time, in order: while an exchange owes this client its
 * response, further pipelined bytes are kept unparsed (bounded), and parsing
 * resumes once the response is complete. */
#ifndef KG_PROXY_H
#define KG_PROXY_H

#include <stdbool.h>
#include <uv.h>

#include "http/http.h"

typedef struct kg_worker kg_worker;
typedef struct kg_exchange kg_exchange;
typedef struct kg_client kg_client;

/* Listener callback: accepts one connection on `server`. */
void kg_proxy_on_connection(uv_stream_t *server, int status);
/* Graceful stop: idle clients are closed now; busy ones after their
 * current response. */
void kg_proxy_stop_clients(kg_worker *w);
/* Starts the worker's once-per-iteration response writer. */
void kg_proxy_init_flush(kg_worker *w);
/* Closes every client at once (the graceful stop ran out of time). */
void kg_proxy_close_all(kg_worker *w);

/* The exchange's calls into the client, for the master's response. Each
 * returns without closing the client synchronously. */
/* A 1xx interim response from the master, passed on to HTTP/1.1 clients
 * (never to HTTP/1.0 ones, which do not know them). */
void kg_client_master_interim(kg_client *c, const kg_http_msg *msg);
void kg_client_master_head(kg_client *c, const kg_http_msg *resp,
                           bool head_request);
void kg_client_master_body(kg_client *c, const char *p, size_t n);
/* The response is complete; the client stops referring to the exchange. */
void kg_client_master_end(kg_client *c);
/* The master failed: a 502/504 if nothing was sent yet, else the
 * connection is closed. The client stops referring to the exchange. */
void kg_client_master_failed(kg_client *c, int status);

#endif
