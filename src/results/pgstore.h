/* pgstore.h: a fleet's shared results store in PostgreSQL (a sink).
 *
 * `store = "postgresql://user@host:port/db"` makes every kagami of a fleet
 * write into one database, each row marked with the writer's `instance`
 * (config; default the host name). What is written is what the SQLite
 * store keeps: per endpoint and minute the requests compared, differing
 * and failed; per endpoint, minute and backend the failures and a latency
 * histogram (storeagg.h's blob); per endpoint and minute the locations
 * differing results differed at; and results one by one where a person
 * looks (every differing or failed one, and the first
 * store_keep_equal_per_minute equal ones per endpoint and minute), each as
 * its diff log record.
 *
 * Writing never touches the proxy path: the sink's write (thread pool)
 * only sums its batch and queues the sums, bounded (past the bound the
 * batch is dropped and counted); one writer thread of its own talks to
 * the database: rows of kept results as they come, the aggregates every
 * 2 seconds, with the hour rows they are in (pgrollup.h; each instance
 * and process replaces its own rows: no contention, no read-modify-write). When the database is away the
 * results of the outage are dropped and counted, the writer retries with
 * back-off (0.5 s doubling to 30 s), and one line is logged per state
 * change. The schema is created (and upgraded) by kagami itself, in one
 * transaction under an advisory lock, so a fleet starting at once
 * creates it once.
 *
 * The password of the url is never logged: kg_pgstore_mask hides it. */
#ifndef KG_PGSTORE_H
#define KG_PGSTORE_H

#include "common/buf.h"
#include "results/sink.h"

/* The schema this build writes (table kagami_meta, key schema_version);
 * readers (pgread.h) refuse any other. */
#define KG_PGSTORE_SCHEMA_VERSION 2

/* Appends url to out with any password replaced by "***" (in the
 * user:password@ part and in a password= parameter). */
void kg_pgstore_mask(const char *url, kg_buf *out);

#endif
