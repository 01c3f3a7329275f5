/* cliopt.h: the option syntax every kagami subcommand accepts. */
#ifndef KG_CLIOPT_H
#define KG_CLIOPT_H

/* Accepts "--opt VALUE" and "--opt=VALUE". Returns 1 when argv[*i] is
 * `name` (with *val set and *i advanced), 0 when it is not, -1 when its
 * value is missing. */
int kg_cli_opt(int argc, char **argv, int *i, const char *name, const char **val);

#endif
