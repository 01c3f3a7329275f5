/* warc.h: the WARC container (ISO 28500, WARC 1.1): writing records and
 * reading them back. What the records mean to kagami (an exchange, a
 * request to replay) is record.c's and source.c's business.
 *
 * Two layers:
 *
 *  1. Records. kg_warc_format appends one record (version line, named
 *     fields, Content-Length, block, the two CRLFs) to a buffer, so a writer
 *     can hand the whole record to a single write(2). kg_warc_reader reads
 *     records one at a time from a file, plain or gzip-compressed (one gzip
 *     member per record, as .warc.gz files from other tools are, or one for
 *     the whole file), streaming: only the current record is in memory.
 *     The same reader hands out lines (kg_warc_read_line), so a text source
 *     (a URL list, a log) is read through the same plain-or-gzip stream.
 *
 *  2. Damage. A record cut short (a kill -9 or a full disk while writing)
 *     or one whose framing is wrong (no "WARC/1.x" line, no or a bad
 *     Content-Length, no CRLF CRLF after the block) stops the reader. Every
 *     whole record before it has been returned; kg_warc_damage tells where
 *     the damaged record begins and why. The reader never resynchronises:
 *     bytes after damage are not trusted. kg_warc_file_whole checks the
 *     same framing on a file about to be appended to.
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
/* Appends the field `name: value` to fields (both NUL-terminated). */
void kg_warc_add_field(kg_hdrs *fields, const char *name, const char *value);
/* A copy of s (owned by the caller) with every control byte replaced by a
 * space, so text from outside (a reason phrase, an error, a file name)
 * cannot break a record header or a message head. */
char *kg_warc_clean_value(const char *s);
/* Appends the warcinfo record that starts a file: a new record ID, the
 * current time, WARC-Filename (cleaned) and the application/warc-fields
 * block `info` (info_len bytes, "name: value" CRLF lines). */
void kg_warc_format_warcinfo(kg_buf *out, const char *filename, const char *info,
                             size_t info_len);
/* Checks that the `size` bytes of the file open at fd are whole records to
 * the end, reading only the headers (pread: fd's offset is left alone) and
 * seeking over the blocks. Returns true, or false with the offset of the
 * first record that is not whole in *bad. Plain files only. */
bool kg_warc_file_whole(int fd, uint64_t size, uint64_t *bad);

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
 * "truncated: the block should be 1843 bytes, the file ends after 97";
 * *why (when why is not NULL) is NULL while nothing is damaged. */
uint64_t kg_warc_damage(const kg_warc_reader *r, const char **why);
uint64_t kg_warc_skipped_large(const kg_warc_reader *r);
/* Bytes consumed so far and the file's size (compressed bytes for gzip
 * input, so the ratio is progress either way). */
void kg_warc_progress(const kg_warc_reader *r, uint64_t *done, uint64_t *total);
/* True when the file is gzip-compressed (offsets are then positions in
 * the decompressed stream). */
bool kg_warc_compressed(const kg_warc_reader *r);
void kg_warc_close(kg_warc_reader *r);

/* --- the reader's byte stream, for sources that are not WARC ------------- */

/* Makes at least `need` unread bytes available (fewer only at the end of
 * the file) without consuming them, points *p at them and returns how many
 * there are: that may be more than need (what has been read ahead). Valid
 * until the next call on r. */
size_t kg_warc_peek(kg_warc_reader *r, size_t need, const char **p);
/* Reads the next line: *line and *len (without its LF or CRLF, valid
 * until the next call on r) and the offset where it begins. A line longer
 * than 1 MiB is consumed whole and returned empty with *toolong set (it
 * is unparseable, and holding it would be unbounded). Returns 1, 0 at a
 * clean end, or -1 when the file ends on a read error (a gzip stream cut
 * short): that is latched as damage at the cut, as for records. */
int kg_warc_read_line(kg_warc_reader *r, const char **line, size_t *len,
                      uint64_t *off, bool *toolong);
/* The read error when nothing at all could be read from the file (not a
 * gzip stream after all, an I/O error), else NULL. */
const char *kg_warc_unreadable(const kg_warc_reader *r);

#endif
