/* admin_cli.h: `kagami admin`, the dashboard and the admin API served
 * straight from a results store, with no proxy: a fleet's PostgreSQL
 * store (every instance's, or one's with ?instance=NAME), or an SQLite
 * file. It only reads: nothing it does writes to the store. */
#ifndef KG_ADMIN_CLI_H
#define KG_ADMIN_CLI_H

/* `kagami admin (--db FILE|URL | --db-env NAME | --db-file PATH |
 * --config FILE) [--listen ADDR] [--token-file FILE]`; argv holds what
 * follows "admin". Runs until SIGINT or SIGTERM; returns the exit code: 0
 * after a signal, 1 on a usage error, a store that cannot be read, or an
 * address that cannot be bound (message on stderr). */
int kg_admin_cli_main(int argc, char **argv);

#endif
