/* tls.h: the settings behind the TLS transport (kg_conn_tls, conn.h).
 *
 * A kg_tls_ctx is an OpenSSL SSL_CTX built once from a kg_tls_settings
 * (the config builds one per https backend and per TLS listener; replay
 * one for its target) plus what its connections share: the name to check
 * and send as SNI, and the last session a client handshake got, so that a
 * pool refilling itself resumes instead of paying a full handshake. It is
 * shared by every worker (SSL_CTX is thread-safe to use; the session slot
 * has its own lock) and must outlive every conn that points to it. */
#ifndef KG_TLS_H
#define KG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kg_tls_ctx kg_tls_ctx;

typedef struct kg_tls_settings {
  bool server;             /* a listener's (accepts) or a client's */
  const char *cert;        /* PEM certificate chain: required for a server,
                              the client certificate (mTLS) for a client */
  const char *key;         /* PEM private key matching cert */
  const char *ca;          /* PEM trust anchors; NULL: the system store */
  const char *server_name; /* client: the name checked against the peer's
                              certificate and sent as SNI (an IP literal
                              is checked as an address, not sent) */
  const char *ciphers;     /* OpenSSL cipher list for TLS 1.2; NULL: default */
  int min_version;         /* 12 or 13 (TLS 1.2, TLS 1.3) */
  bool verify;             /* client: verify the peer's certificate */
} kg_tls_settings;

/* Builds a context (the files are read now). Returns 0 and *out (freed
 * with kg_tls_ctx_free), or -1 with a message naming the file and
 * OpenSSL's reason in err. */
int kg_tls_ctx_new(const kg_tls_settings *s, kg_tls_ctx **out, char *err,
                   size_t errlen);
void kg_tls_ctx_free(kg_tls_ctx *ctx);

/* Handshakes completed with this context, and how many of them resumed a
 * session (client side), for tests and the bench. */
void kg_tls_ctx_counts(kg_tls_ctx *ctx, uint64_t *handshakes, uint64_t *resumed);

#endif
