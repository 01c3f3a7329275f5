/* record.h: recording the traffic kagami sees, for replay later.
 *
 * File format: WARC 1.1 (ISO 28500), the web archive container that many
 * tools read. Each recorded exchange is a `request` record (the request as
 * kagami forwarded it: re-framed with one Content-Length) followed by a
 * `response` record (the master's answer as HTTP/1.1 with its decoded body
 * and a Content-Length) that refers to it with WARC-Concurrent-To. kagami
 * adds WARC-Kagami-Elapsed (seconds the master took) and, when a body was
 * cut at max_capture_bytes or not recorded (record.bodies = false),
 * WARC-Truncated. A kill -9 can only leave the last record incomplete:
 * replay reads every whole record before it and says where it stopped.
 *
 * Writing never blocks the event loop: exchanges are handed to a writer
 * thread through a bounded queue; when the queue is full the item is
 * dropped and counted. The file is rotated (renamed with a timestamp
 * suffix) when it would grow past record.max_bytes. */
#ifndef KG_RECORD_H
#define KG_RECORD_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"
#include "config/config.h"
#include "http/hdrs.h"

/* One exchange to record. The recorder takes ownership of everything in
 * it (strings, header lists, buffers) and of the item itself. */
typedef struct kg_record_item {
  struct timespec ts;     /* when the request arrived (wall clock) */
  char *method;           /* "GET" */
  char *url;              /* request target as received */
  kg_hdrs req_hdrs;       /* request fields as forwarded (hop-by-hop gone) */
  kg_buf req_body;        /* de-chunked request body */
  int status;             /* master's status; 0 when the master failed */
  char *reason;           /* master's reason phrase, may be NULL */
  kg_hdrs resp_hdrs;      /* master's response fields */
  kg_buf resp_body;       /* master's decoded body (up to the capture cap) */
  bool resp_truncated;    /* resp_body is only the first part */
  double elapsed;         /* seconds the master took */
  char *error;            /* why the master failed, or NULL */
} kg_record_item;

typedef struct kg_recorder kg_recorder;

/* Opens cfg->record_file for appending (creating it) and starts the writer
 * thread. 0, or -1 with a message in err. */
int kg_recorder_open(const kg_config *cfg, kg_recorder **out, char *err,
                     size_t errlen);
/* Thread-safe. Queues item for writing and takes ownership of it; when the
 * queue is full the item is freed at once and counted as dropped. Returns
 * true when queued. Redaction (Authorization, Cookie and redact_headers,
 * unless record.keep_credentials) and record.bodies apply in the writer. */
bool kg_recorder_submit(kg_recorder *r, kg_record_item *item);
/* Frees an item that was not submitted. */
void kg_record_item_free(kg_record_item *item);
/* Counters, thread-safe. */
uint64_t kg_recorder_written(kg_recorder *r);
uint64_t kg_recorder_dropped(kg_recorder *r);
/* Writes what is queued, stops the thread, closes the file. NULL is fine. */
void kg_recorder_close(kg_recorder *r);

#endif
