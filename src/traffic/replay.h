/* replay.h: `kagami replay FILE --target URL [options]`.
 *
 * Sends recorded traffic (a WARC recording, a URL list or an nginx access
 * log; see warc.h) to a target on its own libuv loop, paced by --rate
 * (requests per second) or --speed (the recorded timing, scaled), with at
 * most --concurrency requests in flight. Requests are sent in arrival
 * order: a window of the next KG_REPLAY_WINDOW items is kept sorted by
 * their recorded time, because a recording is written as exchanges finish,
 * not as they arrive.
 *
 * With --compare, each replayed response is compared with the recorded
 * master response by the live comparison engine (kg_compare_pair, with the
 * noise rules of --config), and the results go to the same diff log lines
 * and store rows as live shadowing, with the backends named "recorded"
 * (the master) and "replay" (the shadow). Comparisons run in libuv's
 * thread pool; when they fall behind, sending waits (a replay, unlike the
 * proxy, can afford to wait rather than drop).
 *
 * A progress line is drawn on stderr when it is a terminal; a summary
 * (throughput, latency per endpoint, status codes, errors, comparison) is
 * printed on stdout at the end, as text or with --json as one object.
 *
 * Exit status: 0 when the run completed, whatever the target answered;
 * 1 on usage or I/O errors; 2 when --strict and the input is damaged.
 * Where reading stopped in a damaged file is always printed on stderr. */
#ifndef KG_REPLAY_H
#define KG_REPLAY_H

/* Items read ahead and sorted by recorded time before sending. */
#define KG_REPLAY_WINDOW 256

/* Runs the command; argv holds what follows "replay". Returns the exit
 * status. */
int kg_replay_main(int argc, char **argv);

#endif
