/* report.h: `kagami report` and `kagami show`, reading the results store.
 *
 * Both only read (see storeq.h), so they can run while kagami writes.
 * Exit codes: 0 printed; 1 usage error or a store that cannot be read
 * (message on stderr); 2 nothing to print (no compared request matched,
 * or no result with that id), so scripts can tell "empty" from "failed". */
#ifndef KG_REPORT_H
#define KG_REPORT_H

/* `kagami report [--db FILE | --config FILE] [--since DURATION]
 * [--endpoint PATTERN] [--format text|json]`; argv holds what follows
 * "report". Returns the exit code. */
int kg_report_main(int argc, char **argv);

/* `kagami show ID [--db FILE | --config FILE] [--format text|json]`. */
int kg_show_main(int argc, char **argv);

#endif
