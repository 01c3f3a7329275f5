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

#endif
