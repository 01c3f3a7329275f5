/* source.h: traffic sources, what `kagami replay` reads: a file turned
 * into a stream of request items, each with the recorded response when
 * there is one:
 *   - a WARC file (read with warc.h's reader): a `request` record and the
 *     `response` record next to it (either order, linked by
 *     WARC-Concurrent-To, or else by the same WARC-Target-URI) make one
 *     item; a `response` alone becomes a GET of its target URI; other
 *     record types (warcinfo, metadata, ...) are passed over;
 *   - a list of URLs, one per line ("/path?q", "http://host/path", or
 *     "METHOD /path"); blank lines and lines starting with '#' are
 *     skipped;
 *   - an nginx access log in the combined (or common) format: GET
 *     requests only, with the log's time, User-Agent and Referer.
 * Lines that cannot be parsed are skipped and counted; so are WARC records
 * that are well framed but hold no parseable HTTP message. Any of them may
 * be gzip-compressed. A new source (a HAR file, a pcap) is one more
 * kg_source_format and one more next-item function in source.c.
 *
 * Errors follow common.h: 0 / negative, messages in caller-provided
 * buffers. Not thread-safe; one source per thread. */
#ifndef KG_SOURCE_H
#define KG_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "http/hdrs.h"
#include "traffic/warc.h"

/* --- items ----------------------------------------------------------------- */

typedef enum kg_source_format {
  KG_SOURCE_AUTO = 0,  /* decide from the file's first bytes/line */
  KG_SOURCE_WARC,
  KG_SOURCE_URLS,
  KG_SOURCE_NGINX,
} kg_source_format;

/* "warc", "urls", "nginx" (and "auto"); NULL for an unknown value. */
const char *kg_source_format_name(kg_source_format f);
int kg_source_format_parse(const char *s, kg_source_format *out);

/* One request to replay, with what was answered when it was recorded. */
typedef struct kg_source_item {
  double ts;             /* Unix seconds when the request arrived; NAN when
                            the source has no time (URL lists) */
  char *method;          /* owned: "GET" */
  char *url;             /* owned: the request target, origin-form "/a?b"
                            (absolute URLs are reduced to their path) */
  char *host;            /* owned authority of an absolute URL or the
                            target URI ("example.com:8080"), or NULL; the
                            replayer sends it as Host when the fields do
                            not have one */
  kg_hdrs req_hdrs;      /* fields to send, minus the framing ones
                            (Content-Length, Transfer-Encoding) */
  kg_buf req_body;       /* de-chunked request body */
  bool has_response;     /* the fields below hold a recorded response */
  int status;
  char *reason;          /* owned, may be NULL */
  kg_hdrs resp_hdrs;     /* as recorded (Content-Length included) */
  kg_buf resp_body;      /* de-chunked body as recorded */
  bool resp_truncated;   /* WARC-Truncated: the body is only a prefix */
  bool resp_body_omitted; /* the recording kept no body at all (truncated
                            and empty: record.bodies = false) */
  double elapsed;        /* seconds the master took; NAN when unknown */
  char *error;           /* owned: why the master failed (no response was
                            recorded), or NULL */
  uint64_t offset;       /* where its first record or line begins */
} kg_source_item;

void kg_source_item_init(kg_source_item *it);
void kg_source_item_free(kg_source_item *it);
/* Bytes the item holds (bodies and fields), for queue bounds. */
size_t kg_source_item_size(const kg_source_item *it);

typedef struct kg_source kg_source;

/* What reading found, so far. */
typedef struct kg_source_status {
  kg_source_format format;   /* the one in use (never AUTO) */
  bool compressed;           /* gzip input */
  uint64_t items;            /* items returned */
  uint64_t unparseable;      /* lines or HTTP messages that did not parse */
  uint64_t skipped;          /* parseable but not replayed: nginx lines of
                                other methods, WARC blocks too large */
  uint64_t other_records;    /* WARC records of other types (warcinfo...) */
  bool damaged;              /* a damaged WARC record stopped reading */
  uint64_t damage_offset;    /* where it begins */
  char damage_why[256];      /* why, e.g. "truncated: ..." ("" if none) */
  uint64_t bytes_done, bytes_total; /* progress through the file */
} kg_source_status;

/* Opens `path` as `format` (AUTO: a file starting with "WARC/" once
 * decompressed is WARC; otherwise its first line that is neither blank nor
 * a comment decides between an nginx log and a URL list). With strict,
 * damage is an error (kg_source_next returns -1); without, it ends the
 * input like a clean end and is reported in the status. Returns 0, or -1
 * with a message in err. */
int kg_source_open(const char *path, kg_source_format format, bool strict,
                   kg_source **out, char *err, size_t errlen);
/* The next item (it is initialised here; the caller frees it with
 * kg_source_item_free when 1 is returned). Returns 1, 0 at the end of
 * the input (including, when not strict, a stop at damage), -1 on damage
 * when strict or on a read error (message in err). */
int kg_source_next(kg_source *t, kg_source_item *it, char *err, size_t errlen);
void kg_source_status_get(const kg_source *t, kg_source_status *out);
void kg_source_close(kg_source *t);

/* --- line parsers, exposed for the unit tests ------------------------------ */

/* Parses one line of a URL list (without its newline) into it (method,
 * url, host). Returns 1 for an item, 0 for a line to pass over (blank,
 * comment), -1 for a line that is not a URL. */
int kg_source_parse_url_line(const char *line, size_t len, kg_source_item *it);
/* Parses one line of an nginx combined/common log. Returns 1 for a GET
 * item (method, url, ts, User-Agent and Referer fields), 0 for a
 * well-formed line of another method (or blank), -1 for a line that is not
 * in the format. */
int kg_source_parse_nginx_line(const char *line, size_t len, kg_source_item *it);

#endif
