/* notify.h: telling a service manager (systemd's Type=notify) what state
 * kagami is in, by the sd_notify(3) protocol: one datagram of
 * newline-separated VAR=value assignments to the AF_UNIX socket named by
 * $NOTIFY_SOCKET. Without $NOTIFY_SOCKET every call does nothing, so a
 * foreground run is unchanged. */
#ifndef KG_NOTIFY_H
#define KG_NOTIFY_H

/* Sends `state` (e.g. "READY=1") as one datagram. Returns 0 when sent or
 * when there is no manager to tell; a negative errno value when the socket
 * named cannot be reached (the caller logs it: a lost message leaves the
 * manager waiting, which its own timeout then reports). Never blocks: the
 * socket is non-blocking. */
int kg_notify_send(const char *state);

/* "RELOADING=1" with the MONOTONIC_USEC= stamp systemd asks a reload to
 * carry (sd_notify(3)); the same outcome as kg_notify_send. */
int kg_notify_reloading(void);

#endif
