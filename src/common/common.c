/* common.c: allocation wrappers and tiny helpers shared by every module. */
#include "common/common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void kg_oom(size_t n) {
  fprintf(stderr, "kagami: out of memory allocating %zu bytes\n", n);
  abort();
}

void *kg_malloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) kg_oom(n);
  return p;
}

void *kg_calloc(size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (p == NULL) kg_oom(count * size);
  return p;
}

void *kg_realloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (q == NULL) kg_oom(n);
  return q;
}

char *kg_strndup(const char *s, size_t n) {
  char *d = kg_malloc(n + 1);
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *kg_strdup(const char *s) { return kg_strndup(s, strlen(s)); }

bool kg_str_ieq(const char *a, size_t alen, const char *b) {
  return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

void kg_put_hex(char *out, uint64_t v, int digits) {
  static const char hex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; i--) {
    out[i] = hex[v & 15];
    v >>= 4;
  }
}

void kg_put_dec3(char *out, uint64_t v) {
  out[0] = (char)('0' + v / 100 % 10);
  out[1] = (char)('0' + v / 10 % 10);
  out[2] = (char)('0' + v % 10);
}

bool kg_read_digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    char c = (*p)[i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *p += n;
  *out = v;
  return true;
}

uint64_t kg_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void kg_thread_name(const char *name) {
  char n[16];
  snprintf(n, sizeof(n), "%s", name); /* the kernel keeps 15 bytes */
  pthread_setname_np(pthread_self(), n);
}
