/* parse.c: addresses, sizes and durations (see parse.h), and the two
 * small text helpers the config's messages need (quoting a bad value,
 * recognising digits). Pure: no Lua state, no config. */
#include "config/parse.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/common.h"
#include "config/config_int.h"

bool kg_cfg_all_digits(const char *s, size_t n) {
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

/* Writes s quoted like a Lua/C string literal, cut at 60 bytes, so odd
 * bytes in a bad value cannot garble the terminal or the message. */
void kg_cfg_quote(char *out, size_t outlen, const char *s, size_t len) {
  kg_buf b = KG_BUF_INIT;
  size_t max = 60;
  kg_buf_append(&b, "\"", 1);
  for (size_t i = 0; i < len && i < max; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\')
      kg_buf_appendf(&b, "\\%c", ch);
    else if (ch == '\n')
      kg_buf_appends(&b, "\\n");
    else if (ch == '\r')
      kg_buf_appends(&b, "\\r");
    else if (ch < 0x20 || ch >= 0x7f)
      kg_buf_appendf(&b, "\\x%02x", ch);
    else
      kg_buf_append(&b, &s[i], 1);
  }
  kg_buf_appends(&b, len > max ? "...\"" : "\"");
  snprintf(out, outlen, "%s", b.data);
  kg_buf_free(&b);
}

/* ---- addresses -------------------------------------------------------- */

void kg_addr_free(kg_addr *a) {
  if (a == NULL) return;
  free(a->text);
  free(a->host);
  memset(a, 0, sizeof(*a));
}

/* Parses "host:port" / "[v6]:port" and resolves the host. When a name has
 * both IPv4 and IPv6 addresses the IPv4 one is taken: "localhost" often
 * resolves to ::1 first while test and dev servers usually bind 127.0.0.1
 * only, and we keep a single address per backend. */
int kg_addr_parse_unix(const char *path, kg_addr *out, char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  if (path[0] == '\0') {
    snprintf(err, errlen, "expected unix:/path/to/socket, got an empty path");
    return -1;
  }
  kg_buf abs = KG_BUF_INIT;
  if (path[0] != '/') {
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) == NULL) {
      snprintf(err, errlen, "unix socket %s: the working directory is unknown (%s): "
               "give an absolute path", path, strerror(errno));
      return -1;
    }
    kg_buf_appendf(&abs, "%s/", strcmp(cwd, "/") == 0 ? "" : cwd);
  }
  kg_buf_appends(&abs, path);
  struct sockaddr_un *un = (struct sockaddr_un *)&out->sa;
  if (abs.len >= sizeof(un->sun_path)) {
    snprintf(err, errlen, "unix socket path %s is %zu bytes, longer than a socket "
             "address holds (%zu)", abs.data, abs.len, sizeof(un->sun_path) - 1);
    kg_buf_free(&abs);
    return -1;
  }
  un->sun_family = AF_UNIX;
  memcpy(un->sun_path, abs.data, abs.len + 1);
  out->salen = (socklen_t)sizeof(*un);
  out->text = kg_malloc(abs.len + 6);
  snprintf(out->text, abs.len + 6, "unix:%s", abs.data);
  out->host = kg_strdup("localhost");
  kg_buf_free(&abs);
  return 0;
}

int kg_addr_parse(const char *text, kg_addr *out, char *err, size_t errlen) {
  char q[128];
  memset(out, 0, sizeof(*out));
  kg_cfg_quote(q, sizeof(q), text, strlen(text));
  const char *host, *port;
  size_t hlen;
  bool v6 = false;
  if (text[0] == '[') {
    const char *rb = strchr(text, ']');
    if (rb == NULL || rb[1] != ':') {
      snprintf(err, errlen, "expected [ipv6]:port, got %s", q);
      return -1;
    }
    host = text + 1;
    hlen = (size_t)(rb - host);
    port = rb + 2;
    v6 = true;
  } else {
    const char *colon = strrchr(text, ':');
    if (colon == NULL) {
      snprintf(err, errlen, "expected host:port, got %s", q);
      return -1;
    }
    if (memchr(text, ':', (size_t)(colon - text)) != NULL) {
      snprintf(err, errlen,
               "IPv6 addresses go in brackets, e.g. \"[::1]:8080\", got %s", q);
      return -1;
    }
    host = text;
    hlen = (size_t)(colon - text);
    port = colon + 1;
  }
  if (hlen == 0) {
    snprintf(err, errlen, "missing host in %s", q);
    return -1;
  }
  size_t plen = strlen(port);
  long pnum = 0;
  if (plen >= 1 && plen <= 5 && kg_cfg_all_digits(port, plen))
    pnum = strtol(port, NULL, 10);
  if (pnum < 1 || pnum > 65535) {
    snprintf(err, errlen, "invalid port in %s (expected 1-65535)", q);
    return -1;
  }

  char *h = kg_strndup(host, hlen);
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = v6 ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (v6 ? AI_NUMERICHOST : 0);
  int rc = getaddrinfo(h, port, &hints, &res);
  if (rc != 0 || res == NULL) {
    char hq[128];
    kg_cfg_quote(hq, sizeof(hq), h, hlen);
    snprintf(err, errlen, "cannot resolve host %s: %s", hq,
             rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    if (res != NULL) freeaddrinfo(res);
    free(h);
    return -1;
  }
  const struct addrinfo *pick = res;
  for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
    if (ai->ai_family == AF_INET) {
      pick = ai;
      break;
    }
  memcpy(&out->sa, pick->ai_addr, pick->ai_addrlen);
  out->salen = (socklen_t)pick->ai_addrlen;
  freeaddrinfo(res);
  out->text = kg_strdup(text);
  out->host = h;
  out->port = (uint16_t)pnum;
  return 0;
}

/* ---- sizes ------------------------------------------------------------ */

/* "512", "64KiB", "8 MiB", "2GiB" -> bytes. Only binary (IEC) units: "8MB"
 * is ambiguous (10^6 or 2^20?) and rejected rather than guessed. */
int kg_config_parse_size(const char *s, uint64_t *out) {
  static const struct {
    const char *unit;
    unsigned shift;
  } units[] = {{"", 0},     {"B", 0},      {"KiB", 10},
               {"MiB", 20}, {"GiB", 30},   {"TiB", 40}};
  while (*s == ' ' || *s == '\t') s++;
  if (*s < '0' || *s > '9') return -1;
  uint64_t n = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (n > (UINT64_MAX - 9) / 10) return -2;
    n = n * 10 + (uint64_t)(*s - '0');
  }
  while (*s == ' ' || *s == '\t') s++;
  size_t ulen = strlen(s);
  while (ulen > 0 && (s[ulen - 1] == ' ' || s[ulen - 1] == '\t')) ulen--;
  for (size_t i = 0; i < KG_ARRAY_SIZE(units); i++) {
    if (strlen(units[i].unit) != ulen || strncasecmp(s, units[i].unit, ulen) != 0)
      continue;
    if (n > (UINT64_MAX >> units[i].shift)) return -2;
    *out = n << units[i].shift;
    return 0;
  }
  return -1;
}

/* ---- durations -------------------------------------------------------- */

/* A sign or a leading blank is refused before strtod, which would accept
 * them: "-5m" is not a duration, and " 5m" is more likely a quoting slip. */
int kg_config_parse_duration(const char *s, double *out) {
  char *end = NULL;
  if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || *s == ' ') return -1;
  double v = strtod(s, &end);
  if (end == s || !isfinite(v) || v < 0) return -1;
  double unit = 1;
  if (*end) {
    switch (*end) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: return -1;
    }
    if (end[1] != '\0') return -1;
  }
  *out = v * unit;
  return 0;
}

uint64_t kg_config_seconds_to_ms(double seconds) {
  double ms = seconds * 1000.0;
  if (!(ms > 0)) return 0;
  if (ms >= (double)KG_CONFIG_MAX_MS) return KG_CONFIG_MAX_MS;
  return (uint64_t)ms;
}
