/* warc.h: the WARC container (ISO 28500, WARC 1.1) and the traffic sources
 * `kagami replay` reads.
 *
 * Three layers:
 *
 *  1. Records. kg_warc_format appends one record (version line, named
 *     fields, Content-Length, block, the two CRLFs) to a buffer, so a writer
 *     can hand the whole record to a single write(2). kg_warc_reader reads
 *     records one at a time from a file, plain or gzip-compressed (one gzip
 *     member per record, as .warc.gz files from other tools are, or one for
 *     the whole file), streaming: only the current record is in memory.
 *
 *  2. Damage. A record cut short (a kill -9 or a full disk while writing)
 *     or one whose framing is wrong (no "WARC/1.x" line, no or a bad
 *     Content-Length, no CRLF CRLF after the block) stops the reader. Every
 *     whole record before it has been returned; kg_warc_damage tells where
 *     the damaged record begins and why. The reader never resynchronises:
 *     bytes after damage are not trusted.
 *
 *  3. Traffic. kg_traffic turns a file into request items, each with the
 *     recorded response when there is one:
 *       - a WARC file: a `request` record and the `response` record next to
 *         it (either order, linked by WARC-Concurrent-To, or else by the
 *         same WARC-Target-URI) make one item; a `response` alone becomes a
 *         GET of its target URI; other record types (warcinfo, metadata,
 *         ...) are passed over;
 *       - a list of URLs, one per line ("/path?q", "http://host/path", or
 *         "METHOD /path"); blank lines and lines starting with '#' are
 *         skipped;
 *       - an nginx access log in the combined (or common) format: GET
 *         requests only, with the log's time, User-Agent and Referer.
 *     Lines that cannot be parsed are skipped and counted; so are WARC
 *     records that are well framed but hold no parseable HTTP message.
 *
 * Errors follow common.h: 0 / negative, messages in caller-provided
 * buffers. Nothing here is thread-safe; one reader per thread. */
#ifndef KG_WARC_H
#define KG_WARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "http/hdrs.h"

/* --- records ------------------------------------------------------------- */

/* Record blocks larger than this are not loaded: they are passed over and
 * counted (a replay item of 256 MiB is not something to send anyway). */
#define KG_WARC_MAX_BLOCK ((uint64_t)256 << 20)
/* A record header (version line and named fields) longer than this is
 * damage: real ones are a few hundred bytes. */
#define KG_WARC_MAX_HEADER (64 * 1024)

/* Length of a record ID such as "<urn:uuid:0f1e...>", with its NUL. */
#define KG_WARC_ID_LEN 48

/* Writes a new random (version 4) record ID, "<urn:uuid:...>", into out.
 * Random bytes come from getrandom(2). */
void kg_warc_new_id(char out[KG_WARC_ID_LEN]);

/* Formats seconds since the epoch as a WARC-Date with microseconds,
 * "2026-11-26T05:40:00.123456Z" (WARC 1.1 allows a fraction). out must
 * hold 32 bytes. */
void kg_warc_date(double unix_seconds, char out[32]);
/* Parses a WARC-Date ("YYYY-MM-DDThh:mm:ss[.fraction]Z"; WARC 1.0's plain
 * seconds too). Returns 0 and sets *out, or -1. */
int kg_warc_parse_date(const char *s, double *out);

/* Appends one WARC/1.1 record to out: the version line, then `fields` (in
 * order; the caller supplies WARC-Type, WARC-Record-ID, WARC-Date and
 * whatever else), then Content-Length (computed here: the caller must not
 * pass one), an empty line, the block, and CRLF CRLF. Field names and
 * values must not contain CR or LF (the caller's duty: they come from
 * kagami itself or from checked HTTP fields). */
void kg_warc_format(kg_buf *out, const kg_hdrs *fields, const char *block,
                    size_t block_len);

typedef struct kg_warc_record {
  uint64_t offset;   /* where the record's version line begins (in the
                        uncompressed stream) */
  uint64_t length;   /* bytes the whole record took */
  kg_hdrs fields;    /* named fields, as written (continuation lines
                        joined with one space) */
  kg_buf block;      /* the content block, Content-Length bytes */
} kg_warc_record;

void kg_warc_record_init(kg_warc_record *r);
void kg_warc_record_free(kg_warc_record *r);
/* The value of the first field called `name` (case-insensitive), or NULL. */
const char *kg_warc_field(const kg_warc_record *r, const char *name);

typedef struct kg_warc_reader kg_warc_reader;

/* Opens `path` for reading ("-" is not supported: damage offsets must mean
 * something). Returns 0, or -1 with a message naming the path in err. */
int kg_warc_open(const char *path, kg_warc_reader **out, char *err,
                 size_t errlen);
/* Reads the next record into rec (its old contents are replaced). Returns
 * 1 when a record was read, 0 at a clean end of the file, and -1 when the
 * next record is damaged (see kg_warc_damage; every later call returns -1
 * too). Records whose block is over KG_WARC_MAX_BLOCK are passed over and
 * counted (kg_warc_skipped_large). */
int kg_warc_read(kg_warc_reader *r, kg_warc_record *rec);
/* After -1: the offset where the damaged record begins and why, e.g.
 * "truncated: the block should be 1843 bytes, the file ends after 97". */
uint64_t kg_warc_damage(const kg_warc_reader *r, const char **why);
uint64_t kg_warc_skipped_large(const kg_warc_reader *r);
/* Bytes consumed so far and the file's size (compressed bytes for gzip
 * input, so the ratio is progress either way). */
void kg_warc_progress(const kg_warc_reader *r, uint64_t *done, uint64_t *total);
/* True when the file is gzip-compressed (offsets are then positions in
 * the decompressed stream). */
bool kg_warc_compressed(const kg_warc_reader *r);
void kg_warc_close(kg_warc_reader *r);

/* --- traffic --------------------------------------------------------------- */

typedef enum kg_traffic_format {
  KG_TRAFFIC_AUTO = 0,  /* decide from the file's first bytes/line */
  KG_TRAFFIC_WARC,
  KG_TRAFFIC_URLS,
  KG_TRAFFIC_NGINX,
} kg_traffic_format;

/* "warc", "urls", "nginx" (and "auto"); NULL for an unknown value. */
const char *kg_traffic_format_name(kg_traffic_format f);
int kg_traffic_format_parse(const char *s, kg_traffic_format *out);

/* One request to replay, with what was answered when it was recorded. */
typedef struct kg_traffic_item {
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
} kg_traffic_item;

void kg_traffic_item_init(kg_traffic_item *it);
void kg_traffic_item_free(kg_traffic_item *it);
/* Bytes the item holds (bodies and fields), for queue bounds. */
size_t kg_traffic_item_size(const kg_traffic_item *it);

typedef struct kg_traffic kg_traffic;

/* What reading found, so far. */
typedef struct kg_traffic_status {
  kg_traffic_format format;  /* the one in use (never AUTO) */
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
} kg_traffic_status;

/* Opens `path` as `format` (AUTO: a file starting with "WARC/" once
 * decompressed is WARC; otherwise its first line that is neither blank nor
 * a comment decides between an nginx log and a URL list). With strict,
 * damage is an error (kg_traffic_next returns -1); without, it ends the
 * input like a clean end and is reported in the status. Returns 0, or -1
 * with a message in err. */
int kg_traffic_open(const char *path, kg_traffic_format format, bool strict,
                    kg_traffic **out, char *err, size_t errlen);
/* The next item (it is initialised here; the caller frees it with
 * kg_traffic_item_free when 1 is returned). Returns 1, 0 at the end of
 * the input (including, when not strict, a stop at damage), -1 on damage
 * when strict or on a read error (message in err). */
int kg_traffic_next(kg_traffic *t, kg_traffic_item *it, char *err,
                    size_t errlen);
void kg_traffic_status_get(const kg_traffic *t, kg_traffic_status *out);
void kg_traffic_close(kg_traffic *t);

/* --- line parsers, exposed for the unit tests ------------------------------ */

/* Parses one line of a URL list (without its newline) into it (method,
 * url, host). Returns 1 for an item, 0 for a line to pass over (blank,
 * comment), -1 for a line that is not a URL. */
int kg_traffic_parse_url_line(const char *line, size_t len,
                              kg_traffic_item *it);
/* Parses one line of an nginx combined/common log. Returns 1 for a GET
 * item (method, url, ts, User-Agent and Referer fields), 0 for a
 * well-formed line of another method (or blank), -1 for a line that is not
 * in the format. */
int kg_traffic_parse_nginx_line(const char *line, size_t len,
                                kg_traffic_item *it);

#endif
