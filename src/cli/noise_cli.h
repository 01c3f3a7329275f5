/* noise_cli.h: `kagami noise`, what a running kagami learned as noise.
 *
 * Learned noise lives in the running process (it is not stored), so this
 * asks the admin listener's /api/noise, found through the config (`admin`
 * and `admin_token`) or given as --admin URL and --token. It prints a
 * table, the API's JSON (--format json), or the rules that would hide the
 * same locations (--export, see noise_export.h).
 * Exit codes, as `kagami report`'s: 0 printed; 1 usage error, no admin
 * listener configured, not reachable, token missing or refused, or a bad
 * answer (one line on stderr naming what to do); 2 nothing to show (no
 * learning, no noise pair yet, or nothing to export as a rule). */
#ifndef KG_NOISE_CLI_H
#define KG_NOISE_CLI_H

/* argv holds what follows "noise". Returns the exit code. */
int kg_noise_cli_main(int argc, char **argv);

#endif
