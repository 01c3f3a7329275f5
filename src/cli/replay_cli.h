/* replay_cli.h: `kagami replay FILE --target URL [options]`, the command
 * line of the replay engine (traffic/replay.h). */
#ifndef KG_REPLAY_CLI_H
#define KG_REPLAY_CLI_H

/* Runs the command; argv holds what follows "replay". Prints the summary
 * on stdout (text, or one JSON object with --json) and returns the exit
 * status: 0 when the run completed, whatever the target answered; 1 on
 * usage or I/O errors; 2 when --strict and the input is damaged. */
int kg_replay_cli_main(int argc, char **argv);

#endif
