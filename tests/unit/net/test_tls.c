/* Loop-level tests of the TLS transport (net/tls.c) on 127.0.0.1, with
 * certificates generated here (a CA, leaves for the right and a wrong
 * host, an expired one, a self-signed one, one from an unknown CA): the
 * handshake both ways, writes and reads, plaintext held while the owner
 * stops reading, session resumption, each verification failure by its
 * reason, and the faults of the state machine (a peer closing
 * mid-handshake and mid-record, a handshake that never ends, a close
 * mid-handshake). Each test ends by asserting the loop closes cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/conn.h"
#include "net_test.h"
#include "net/tls.h"

static char test_rbuf[64 * 1024];
static char test_dir[] = "/tmp/kg-test-tls-XXXXXX";

/* --- certificates ----------------------------------------------------------- */

static EVP_PKEY *test_ca_key;
static X509 *test_ca;

/* A certificate for key named cn (subjectAltName san), valid from `from`
 * to `to` seconds from now, signed by the CA (or by itself). */
static X509 *test_cert(EVP_PKEY *key, const char *cn, const char *san, long from, long to,
                       bool self, bool ca) {
  static long serial = 1;
  X509 *x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), from);
  X509_gmtime_adj(X509_getm_notAfter(x), to);
  X509_set_pubkey(x, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             (const unsigned char *)cn, -1, -1, 0);
  X509 *issuer = self ? x : test_ca;
  X509_set_issuer_name(x, X509_get_subject_name(issuer));
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
  X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                                          ca ? "critical,CA:TRUE" : "CA:FALSE");
  X509_add_ext(x, e, -1);
  X509_EXTENSION_free(e);
  if (san) {
    e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
  }
  assert_true(X509_sign(x, self ? key : test_ca_key, EVP_sha256()) > 0);
  return x;
}

static void test_write_pem(const char *name, X509 *x, EVP_PKEY *key) {
  char path[256];
  snprintf(path, sizeof(path), "%s/%s.pem", test_dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  PEM_write_X509(f, x);
  fclose(f);
  if (key == NULL) return;
  snprintf(path, sizeof(path), "%s/%s.key", test_dir, name);
  f = fopen(path, "w");
  assert_non_null(f);
  PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
  fclose(f);
}

static const char *test_path(const char *name, const char *ext) {
  static char paths[8][256];
  static int next;
  char *p = paths[next++ % 8];
  snprintf(p, 256, "%s/%s.%s", test_dir, name, ext);
  return p;
}

/* CA, "good" (localhost, 127.0.0.1), "wronghost", "expired", "self"
 * (self-signed), "stranger" (from a CA nobody trusts: "otherca"). */
static int test_setup_certs(void **state) {
  (void)state;
  assert_non_null(mkdtemp(test_dir));
  const char *san = "DNS:localhost,IP:127.0.0.1";
  test_ca_key = EVP_EC_gen("P-256");
  test_ca = test_cert(test_ca_key, "kagami test CA", NULL, 0, 86400, true, true);
  test_write_pem("ca", test_ca, NULL);
  struct { const char *name, *san; long from, to; bool self; } leaves[] = {
      {"good", san, -60, 86400, false},
      {"wronghost", "DNS:other.example", -60, 86400, false},
      {"expired", san, -86400 * 30, -86400, false},
      {"self", san, -60, 86400, true},
  };
  for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = test_cert(k, leaves[i].name, leaves[i].san, leaves[i].from, leaves[i].to,
                        leaves[i].self, false);
    test_write_pem(leaves[i].name, x, k);
    X509_free(x);
    EVP_PKEY_free(k);
  }
  /* The stranger's CA is a second CA: swap it in, sign, swap back. */
  EVP_PKEY *ca_key = test_ca_key;
  X509 *ca = test_ca;
  test_ca_key = EVP_EC_gen("P-256");
  test_ca = test_cert(test_ca_key, "unknown CA", NULL, 0, 86400, true, true);
  EVP_PKEY *k = EVP_EC_gen("P-256");
  X509 *x = test_cert(k, "stranger", san, -60, 86400, false, false);
  test_write_pem("stranger", x, k);
  X509_free(x);
  EVP_PKEY_free(k);
  X509_free(test_ca);
  EVP_PKEY_free(test_ca_key);
  test_ca_key = ca_key;
  test_ca = ca;
  return 0;
}

static int test_teardown_certs(void **state) {
  (void)state;
  X509_free(test_ca);
  EVP_PKEY_free(test_ca_key);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", test_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static kg_tls_ctx *test_server_ctx(const char *leaf) {
  kg_tls_settings s = {.server = true, .cert = test_path(leaf, "pem"),
                       .key = test_path(leaf, "key"), .min_version = 12};
  kg_tls_ctx *ctx = NULL;
  char err[512];
  if (kg_tls_ctx_new(&s, &ctx, err, sizeof(err)) != 0) fail_msg("%s", err);
  return ctx;
}

static kg_tls_ctx *test_client_ctx(const char *server_name, bool verify) {
  kg_tls_settings s = {.ca = test_path("ca", "pem"), .server_name = server_name,
                       .min_version = 12, .verify = verify};
  kg_tls_ctx *ctx = NULL;
  char err[512];
  if (kg_tls_ctx_new(&s, &ctx, err, sizeof(err)) != 0) fail_msg("%s", err);
  return ctx;
}

/* --- two ends on one loop ---------------------------------------------------- */

typedef struct test_end {
  kg_conn conn;
  char got[256 * 1024];
  size_t ngot;
  ssize_t read_error;
  int reads;
  int connects, connect_status;
  int deadlines;
  bool handshaking_at_deadline;
  int closes;
  bool stop_after_first_read;
} test_end;

static void test_on_read(kg_conn *c, ssize_t nread, const uv_buf_t *buf) {
  test_end *e = c->data;
  if (nread < 0) {
    if (e->read_error == 0) e->read_error = nread;
    return;
  }
  e->reads++;
  size_t room = sizeof(e->got) - e->ngot;
  size_t n = (size_t)nread < room ? (size_t)nread : room;
  memcpy(e->got + e->ngot, buf->base, n);
  e->ngot += n;
  if (e->stop_after_first_read) kg_conn_read_stop(c);
}

static void test_on_deadline(kg_conn *c) {
  test_end *e = c->data;
  e->deadlines++;
  e->handshaking_at_deadline = c->handshaking;
  kg_conn_close(c);
}

static void test_on_close(kg_conn *c) {
  test_end *e = c->data;
  e->closes++;
}

static const kg_conn_cbs test_cbs = {test_on_read, test_on_deadline, test_on_close};

typedef struct test_pair {
  uv_loop_t loop;
  uv_tcp_t listener;
  struct sockaddr_storage addr;
  kg_tls_ctx *server_ctx;    /* NULL: the server end is plain TCP */
  kg_tls_ctx *client_ctx;
  test_end client, server;
  bool accepted;
  bool server_reads;         /* start reading on accept */
} test_pair;

static void test_on_connection(uv_stream_t *l, int status) {
  test_pair *p = l->data;
  assert_int_equal(status, 0);
  kg_conn_init(&p->server.conn, l->loop, p->server_ctx ? &kg_conn_tls : &kg_conn_tcp,
               &test_cbs, &p->server, test_rbuf, sizeof(test_rbuf));
  p->server.conn.transport_ctx = p->server_ctx;
  assert_int_equal(kg_conn_accept(&p->server.conn, l), 0);
  if (p->server_reads) assert_int_equal(kg_conn_read_start(&p->server.conn), 0);
  p->accepted = true;
  uv_close((uv_handle_t *)&p->listener, NULL);
}

static void test_on_connect(kg_conn *c, int status) {
  test_end *e = c->data;
  e->connects++;
  e->connect_status = status;
  if (status == 0) assert_int_equal(kg_conn_read_start(c), 0);
}

static void test_pair_start(test_pair *p, kg_tls_ctx *server_ctx, kg_tls_ctx *client_ctx) {
  memset(p, 0, sizeof(*p));
  p->server_ctx = server_ctx;
  p->client_ctx = client_ctx;
  p->server_reads = true;
  assert_int_equal(uv_loop_init(&p->loop), 0);
  test_listen(&p->loop, &p->listener, p, &p->addr, test_on_connection);
  kg_conn_init(&p->client.conn, &p->loop, &kg_conn_tls, &test_cbs, &p->client, test_rbuf,
               sizeof(test_rbuf));
  p->client.conn.transport_ctx = client_ctx;
  assert_int_equal(kg_conn_connect(&p->client.conn, (const struct sockaddr *)&p->addr,
                                   test_on_connect), 0);
}

/* Closes both ends, runs the loop dry, checks it closes, frees the ctxs. */
static void test_pair_finish(test_pair *p) {
  kg_conn_close(&p->client.conn);
  if (p->accepted) kg_conn_close(&p->server.conn);
  else uv_close((uv_handle_t *)&p->listener, NULL);
  uv_run(&p->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&p->loop), 0);
  assert_int_equal(p->client.closes, 1);
  if (p->accepted) assert_int_equal(p->server.closes, 1);
  kg_tls_ctx_free(p->server_ctx);
  kg_tls_ctx_free(p->client_ctx);
}

static void test_on_write(kg_conn_write_req *wr, int status) {
  assert_int_equal(status, 0);
  (*(int *)wr->req.data)++;
}

/* --- tests ------------------------------------------------------------------- */

static void test_handshake_write_read(void **state) {
  (void)state;
  test_pair p;
  test_pair_start(&p, test_server_ctx("good"), test_client_ctx("localhost", true));
  RUN_UNTIL(&p, p.client.connects == 1);
  assert_int_equal(p.client.connect_status, 0);
  assert_false(p.client.conn.handshaking);
  /* A queued write: its callback runs once the ciphertext is written. */
  int written = 0;
  kg_conn_write_req wr;
  wr.req.data = &written;
  uv_buf_t b[2] = {uv_buf_init("GET / ", 6), uv_buf_init("HTTP/1.1\r\n", 10)};
  assert_int_equal(kg_conn_write(&p.client.conn, &wr, b, 2, test_on_write), 0);
  assert_int_equal(written, 0); /* never from inside kg_conn_write */
  RUN_UNTIL(&p, p.server.ngot == 16 && written == 1);
  assert_memory_equal(p.server.got, "GET / HTTP/1.1\r\n", 16);
  /* try_write takes every byte (the rest of the ciphertext is queued). */
  static char big[200 * 1024];
  memset(big, 'x', sizeof(big));
  uv_buf_t bb = uv_buf_init(big, sizeof(big));
  assert_int_equal(kg_conn_try_write(&p.server.conn, &bb, 1), (int)sizeof(big));
  RUN_UNTIL(&p, p.client.ngot == sizeof(big));
  assert_memory_equal(p.client.got, big, sizeof(big));
  uint64_t hs, resumed;
  kg_tls_ctx_counts(p.client_ctx, &hs, &resumed);
  assert_int_equal(hs, 1);
  test_pair_finish(&p);
}

/* Two records arrive together; the owner stops reading after the first:
 * the second stays in OpenSSL until read_start, and comes from the loop,
 * not from inside read_start. */
static void test_held_until_read_start(void **state) {
  (void)state;
  test_pair p;
  test_pair_start(&p, test_server_ctx("good"), test_client_ctx("127.0.0.1", true));
  RUN_UNTIL(&p, p.client.connects == 1);
  assert_int_equal(p.client.connect_status, 0);
  p.server.stop_after_first_read = true;
  uv_buf_t b[2] = {uv_buf_init("first", 5), uv_buf_init("second", 6)};
  assert_int_equal(kg_conn_try_write(&p.client.conn, b, 2), 11);
  RUN_UNTIL(&p, p.server.ngot == 5);
  for (int i = 0; i < 20; i++) uv_run(&p.loop, UV_RUN_NOWAIT);
  assert_int_equal(p.server.ngot, 5);
  p.server.stop_after_first_read = false;
  assert_int_equal(kg_conn_read_start(&p.server.conn), 0);
  assert_int_equal(p.server.ngot, 5);
  RUN_UNTIL(&p, p.server.ngot == 11);
  assert_memory_equal(p.server.got, "firstsecond", 11);
  test_pair_finish(&p);
}

/* A second connection with the same client context resumes the session
 * the first one got (a pool refill skips the full handshake). */
static void test_session_resumed(void **state) {
  (void)state;
  kg_tls_ctx *server = test_server_ctx("good");
  kg_tls_ctx *client = test_client_ctx("localhost", true);
  for (int round = 0; round < 2; round++) {
    test_pair p;
    test_pair_start(&p, server, client);
    RUN_UNTIL(&p, p.client.connects == 1);
    assert_int_equal(p.client.connect_status, 0);
    /* TLS 1.3 tickets come after the handshake: a round trip of data
     * makes sure the client has read them. */
    uv_buf_t b = uv_buf_init("ping", 4);
    assert_int_equal(kg_conn_try_write(&p.client.conn, &b, 1), 4);
    RUN_UNTIL(&p, p.server.ngot == 4);
    assert_int_equal(kg_conn_try_write(&p.server.conn, &b, 1), 4);
    RUN_UNTIL(&p, p.client.ngot == 4);
    p.server_ctx = p.client_ctx = NULL; /* kept for the next round */
    test_pair_finish(&p);
  }
  uint64_t hs, resumed;
  kg_tls_ctx_counts(client, &hs, &resumed);
  assert_int_equal(hs, 2);
  assert_int_equal(resumed, 1);
  kg_tls_ctx_free(server);
  kg_tls_ctx_free(client);
}

/* Each certificate problem is its own reason, through connect's status. */
static void test_verification_reasons(void **state) {
  (void)state;
  struct { const char *leaf, *name; int want; } cases[] = {
      {"expired", "localhost", KG_CONN_ETLS_EXPIRED},
      {"wronghost", "localhost", KG_CONN_ETLS_HOSTNAME},
      {"good", "other.example", KG_CONN_ETLS_HOSTNAME},
      {"good", "127.0.0.2", KG_CONN_ETLS_HOSTNAME},
      {"self", "localhost", KG_CONN_ETLS_SELF_SIGNED},
      {"stranger", "localhost", KG_CONN_ETLS_UNKNOWN_CA},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    test_pair p;
    test_pair_start(&p, test_server_ctx(cases[i].leaf), test_client_ctx(cases[i].name, true));
    RUN_UNTIL(&p, p.client.connects == 1);
    if (p.client.connect_status != cases[i].want)
      fail_msg("%s as %s: got %d (%s), want %s", cases[i].leaf, cases[i].name,
               p.client.connect_status, kg_conn_strerror(p.client.connect_status),
               kg_conn_strerror(cases[i].want));
    test_pair_finish(&p);
  }
  /* verify = false is what it says: the expired certificate is taken. */
  test_pair p;
  test_pair_start(&p, test_server_ctx("expired"), test_client_ctx("localhost", false));
  RUN_UNTIL(&p, p.client.connects == 1);
  assert_int_equal(p.client.connect_status, 0);
  test_pair_finish(&p);
  assert_string_equal(kg_conn_strerror(KG_CONN_ETLS_EXPIRED), "tls: certificate has expired");
  assert_string_equal(kg_conn_strerror(KG_CONN_ETLS_TIMEOUT), "tls: handshake timeout");
  assert_null(kg_conn_strerror(UV_ECONNREFUSED));
  assert_null(kg_conn_strerror(0));
}

/* A TCP peer that reads the ClientHello and hangs up: the handshake fails
 * with its own reason, once. */
static void test_peer_closes_mid_handshake(void **state) {
  (void)state;
  test_pair p;
  test_pair_start(&p, NULL, test_client_ctx("localhost", true));
  RUN_UNTIL(&p, p.server.ngot > 0);
  assert_int_equal((unsigned char)p.server.got[0], 0x16); /* a handshake record */
  assert_true(p.client.conn.handshaking);
  kg_conn_close(&p.server.conn);
  RUN_UNTIL(&p, p.client.connects == 1);
  assert_int_equal(p.client.connect_status, KG_CONN_ETLS_HANDSHAKE);
  assert_false(p.client.conn.handshaking);
  assert_int_equal(p.client.read_error, 0); /* told as connect's status only */
  test_pair_finish(&p);
}

/* A peer that never answers the ClientHello: the owner's deadline fires
 * while the conn says it is handshaking (what the HTTP client reports as
 * "tls: handshake timeout"), and closing then is clean. */
static void test_handshake_timeout(void **state) {
  (void)state;
  test_pair p;
  test_pair_start(&p, NULL, test_client_ctx("localhost", true));
  p.server_reads = false;
  kg_conn_set_deadline(&p.client.conn, 200);
  RUN_UNTIL(&p, p.client.deadlines == 1);
  assert_true(p.client.handshaking_at_deadline);
  assert_int_equal(p.client.connects, 0); /* closed first: never told */
  test_pair_finish(&p);
}

/* The owner closes while the handshake is in flight: no connect callback
 * after the close, one on_close, nothing leaked. */
static void test_close_mid_handshake(void **state) {
  (void)state;
  test_pair p;
  test_pair_start(&p, NULL, test_client_ctx("localhost", true));
  RUN_UNTIL(&p, p.server.ngot > 0);
  kg_conn_close(&p.client.conn);
  kg_conn_close(&p.client.conn); /* any number of times */
  RUN_UNTIL(&p, p.client.closes == 1);
  assert_int_equal(p.client.connects, 0);
  test_pair_finish(&p);
}

/* After the handshake the peer sends the start of a record and hangs up:
 * no plaintext comes out of half a record, and the end is one EOF. */
static void test_peer_closes_mid_record(void **state) {
  (void)state;
  test_pair p;
  test_pair_start(&p, test_server_ctx("good"), test_client_ctx("localhost", true));
  RUN_UNTIL(&p, p.client.connects == 1 && p.accepted);
  assert_int_equal(p.client.connect_status, 0);
  uv_buf_t b = uv_buf_init("ping", 4);
  assert_int_equal(kg_conn_try_write(&p.client.conn, &b, 1), 4);
  RUN_UNTIL(&p, p.server.ngot == 4); /* the server's handshake is done too */
  /* An application-data record header announcing 100 bytes, and 10. */
  static const char cut[] = "\x17\x03\x03\x00\x64" "0123456789";
  uv_buf_t raw = uv_buf_init((char *)cut, sizeof(cut) - 1);
  assert_int_equal(uv_try_write((uv_stream_t *)&p.server.conn.tcp, &raw, 1),
                   (int)sizeof(cut) - 1);
  kg_conn_close(&p.server.conn);
  RUN_UNTIL(&p, p.client.read_error != 0);
  assert_int_equal(p.client.read_error, UV_EOF);
  assert_int_equal(p.client.ngot, 0);
  test_pair_finish(&p);
}

/* What a context refuses to be built from, with the file named. */
static void test_ctx_errors(void **state) {
  (void)state;
  kg_tls_ctx *ctx = NULL;
  char err[512];
  kg_tls_settings s = {.server = true, .cert = test_path("good", "pem"),
                       .key = test_path("expired", "key"), .min_version = 12};
  assert_int_equal(kg_tls_ctx_new(&s, &ctx, err, sizeof(err)), -1);
  assert_null(ctx);
  assert_non_null(strstr(err, "does not match certificate"));
  s.key = test_path("good", "key");
  s.cert = test_path("ca", "key"); /* no such file */
  assert_int_equal(kg_tls_ctx_new(&s, &ctx, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "cannot use certificate"));
  s.cert = test_path("good", "pem");
  s.ciphers = "NO-SUCH-CIPHER";
  assert_int_equal(kg_tls_ctx_new(&s, &ctx, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "ciphers NO-SUCH-CIPHER"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake_write_read),
      cmocka_unit_test(test_held_until_read_start),
      cmocka_unit_test(test_session_resumed),
      cmocka_unit_test(test_verification_reasons),
      cmocka_unit_test(test_peer_closes_mid_handshake),
      cmocka_unit_test(test_handshake_timeout),
      cmocka_unit_test(test_close_mid_handshake),
      cmocka_unit_test(test_peer_closes_mid_record),
      cmocka_unit_test(test_ctx_errors),
  };
  return cmocka_run_group_tests(tests, test_setup_certs, test_teardown_certs);
}
