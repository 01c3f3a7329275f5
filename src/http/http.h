/* http.h: the one adapter between kagami and the HTTP/1.x parser.
 *
 * Everything kagami knows about wire syntax goes through here, so that the
 * parser (http_parser today; llhttp has the same callback shape) can be
 * swapped in one file. The adapter collects the head of each message into a
 * kg_http_msg, streams body bytes to the owner, enforces head-size limits,
 * applies the request-framing rules of RFC 9112 section 6, and pauses after
 * every complete message so the owner decides when the next one is parsed
 * (pipelining is answered strictly in order). */
#ifndef KG_HTTP_H
#define KG_HTTP_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "http/hdrs.h"

typedef struct kg_http_msg {
  int method;             /* enum http_method (requests) */
  int status;             /* status code (responses) */
  int http_major, http_minor;
  kg_buf url;             /* request target, as received */
  kg_buf reason;          /* reason phrase (responses) */
  kg_hdrs hdrs;           /* header fields, as received */
  bool keep_alive;        /* the peer allows another message after this one */
  bool chunked;           /* body is chunked on the wire */
  bool has_length;        /* body length given by Content-Length */
  uint64_t content_length;
  bool upgrade;           /* the request asked for a protocol upgrade */
  bool expect_continue;   /* "Expect: 100-continue" */
} kg_http_msg;

void kg_http_msg_init(kg_http_msg *m);
void kg_http_msg_reset(kg_http_msg *m);
void kg_http_msg_free(kg_http_msg *m);
/* Moves src's contents into dst (dst's old contents freed); src is left
 * empty and reusable. */
void kg_http_msg_move(kg_http_msg *dst, kg_http_msg *src);

typedef struct kg_http_ops {
  /* The head is complete. Return 0 to go on, 1 to read no body (responses
   * to HEAD), or an HTTP status >= 400 to reject the message. */
  int (*on_head)(void *ud, kg_http_msg *m);
  /* Body bytes, already de-chunked. Return 0, or a status >= 400. */
  int (*on_body)(void *ud, const char *p, size_t n);
  /* (A complete message is reported by kg_http_feed returning PAUSED, so
   * that the owner acts on it outside the parser's callbacks.) */
} kg_http_ops;

typedef struct kg_http_limits {
  size_t max_head_bytes;  /* request line/status line + fields; 0 = none */
  size_t max_headers;     /* field count; 0 = none */
} kg_http_limits;

typedef enum kg_http_state {
  KG_HTTP_MORE = 0,   /* consumed everything, wants more bytes */
  KG_HTTP_PAUSED,     /* a message completed; stopped after it */
  KG_HTTP_ERROR,      /* invalid input: see error_status, error_text */
} kg_http_state;

typedef struct kg_http {
  http_parser parser;       /* the wrapped parser; data points to this */
  const kg_http_ops *ops;
  void *ud;                 /* owner, passed to every op */
  kg_http_limits limits;
  kg_http_msg msg;          /* the message being parsed */
  size_t head_bytes;        /* bytes of head seen so far */
  bool in_value;            /* last header callback was a value */
  bool in_message;          /* between message begin and complete */
  bool in_trailers;         /* the head is complete: field callbacks now
                               carry trailer fields, which are dropped */
  /* Chunked framing check (see kg_http_scan_chunked in http.c). */
  bool chunk_scan;          /* checking the framing bytes of a chunked body */
  bool chunk_last;          /* the chunk-size line being read is 0 */
  bool pause_internal;      /* paused after a chunked head to find its end */
  uint8_t chunk_state;      /* where in the chunked grammar we are */
  const char *scan_from;    /* framing bytes from here on are unchecked */
  int error_status;         /* 400/413/431/501/502 when state is ERROR */
  const char *error_text;   /* static string */
} kg_http;

/* type: HTTP_REQUEST or HTTP_RESPONSE. */
void kg_http_init(kg_http *h, enum http_parser_type type,
                  const kg_http_ops *ops, void *ud, kg_http_limits limits);
void kg_http_free(kg_http *h);

/* Parses up to n bytes. *used is set to how many were consumed; the rest
 * must be fed again after kg_http_resume (PAUSED) or dropped (ERROR). */
kg_http_state kg_http_feed(kg_http *h, const char *p, size_t n, size_t *used);
/* The peer closed. Completes a close-delimited response (PAUSED); a message
 * cut short is an ERROR; between messages it is MORE (a clean close). */
kg_http_state kg_http_eof(kg_http *h);
void kg_http_resume(kg_http *h);
/* True while a message has begun and not completed. */
static inline bool kg_http_in_message(const kg_http *h) { return h->in_message; }

/* RFC 9112 6.1-6.3 rules for a request's framing headers, applied before
 * any body byte is read. Returns 0 when the request may be parsed further,
 * or the status to reject it with (400, 501), with *why set. Exposed for
 * unit tests. */
int kg_http_check_request_framing(const kg_hdrs *h, int http_major,
                                  int http_minor, const char **why);

/* True for header fields that describe one connection, not the message
 * (RFC 9110 7.6.1), and that a proxy must not forward. */
bool kg_http_is_hop_by_hop(const char *name, size_t len);
/* True if `name` is listed as a token in any Connection field of h. */
bool kg_http_connection_lists(const kg_hdrs *h, const char *name, size_t len);
/* True if some Connection field of h lists a token other than keep-alive
 * (a hop-by-hop field anyway): only then do the other fields need
 * kg_http_connection_lists. "Connection: keep-alive" is the common case. */
bool kg_http_connection_lists_any(const kg_hdrs *h);

#endif
