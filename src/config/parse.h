/* parse.h: the config's pure parsers, for every module that reads the same
 * notations from elsewhere (a command line, a query string, a WARC file).
 *
 * No Lua and no config state: addresses ("host:port"), sizes ("8MiB") and
 * durations ("15m", "1.5h", seconds as numbers). Errors are returned, never
 * printed; messages carry no FILE:LINE prefix (the caller adds its own). */
#ifndef KG_CONFIG_PARSE_H
#define KG_CONFIG_PARSE_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct kg_addr {
  char *text;                   /* owned: as written, e.g. "127.0.0.1:8090" */
  char *host;                   /* owned: host part, e.g. "127.0.0.1" */
  uint16_t port;
  struct sockaddr_storage sa;   /* resolved at load time */
  socklen_t salen;
} kg_addr;

/* Parses "host:port" (IPv4, [IPv6] or a name) and resolves it. Returns 0,
 * or -1 with a message (no FILE:LINE prefix) in err. On success the
 * caller frees *out's strings with kg_addr_free; on failure nothing is
 * held. */
int kg_addr_parse(const char *text, kg_addr *out, char *err, size_t errlen);
/* Parses the path of a Unix domain socket ("/run/app.sock"; a relative
 * path is taken from the working directory, made absolute here so that
 * logs say which file). text becomes "unix:/abs/path", host "localhost"
 * (there is no host: requests carry the client's Host), port 0, sa a
 * struct sockaddr_un. The socket need not exist yet. Returns 0, or -1 with
 * a message in err (empty, too long for a socket address, NUL-free by
 * construction); the caller frees with kg_addr_free. */
int kg_addr_parse_unix(const char *path, kg_addr *out, char *err, size_t errlen);
void kg_addr_free(kg_addr *a);

/* Parses "512", "64KiB", "8 MiB", "2GiB" (binary units only) into bytes:
 * 0, -1 (syntax) or -2 (does not fit 64 bits). */
int kg_config_parse_size(const char *s, uint64_t *out);

/* Parses "30s", "15m", "2h", "7d", "1w" or plain seconds ("90", "1.5h").
 * Returns 0 and seconds in *out, or -1. `kagami report --since` and the
 * admin API's `since` read durations this way. */
int kg_config_parse_duration(const char *s, double *out);

/* Seconds as the config writes them (any positive finite number, fractions
 * included) -> whole milliseconds, the unit timers take. Truncates as the
 * users did before the config stored milliseconds; very large values are
 * capped at KG_CONFIG_MAX_MS so adding a grace period cannot wrap. */
#define KG_CONFIG_MAX_MS ((uint64_t)1 << 53)
uint64_t kg_config_seconds_to_ms(double seconds);

#endif
