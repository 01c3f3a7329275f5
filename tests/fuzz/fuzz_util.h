/* fuzz_util.h: what the libFuzzer targets share.
 *
 * Each target reads its parameters (limits, chunk sizes, modes) from the
 * first bytes of the input and splits the rest into parts at a separator
 * line, so that seeds stay readable text and a mutation that keeps the
 * separator keeps the structure. Invariants are checked with FZ_CHECK, not
 * assert(): it must hold in every build, and say which one broke. */
#ifndef KG_FUZZ_UTIL_H
#define KG_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Separates the parts of one input: "a body\n-8<-\nanother body". Also in
 * the dictionaries, so mutations can insert it. */
#define FZ_SEP "\n-8<-\n"

#define FZ_CHECK(cond)                                                     \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond,        \
              __FILE__, __LINE__);                                         \
      abort();                                                             \
    }                                                                      \
  } while (0)

/* The unread rest of an input. */
typedef struct fz_in {
  const uint8_t *p;
  size_t n;
} fz_in;

/* Next parameter byte; 0 once the input is used up, so short inputs still
 * run with every parameter defined. */
static inline uint8_t fz_byte(fz_in *in) {
  if (in->n == 0) return 0;
  in->n--;
  return *in->p++;
}

/* Takes the bytes before the next separator (all the rest if there is
 * none) and moves past the separator. */
static inline fz_in fz_part(fz_in *in) {
  const size_t seplen = sizeof(FZ_SEP) - 1;
  fz_in part = *in;
  const uint8_t *hit = in->n >= seplen ? memmem(in->p, in->n, FZ_SEP, seplen) : NULL;
  if (hit == NULL) {
    in->p += in->n;
    in->n = 0;
    return part;
  }
  part.n = (size_t)(hit - in->p);
  in->n -= part.n + seplen;
  in->p = hit + seplen;
  return part;
}

/* A NUL-terminated copy of a part, for APIs that take C strings (the
 * terminator ends the string early if the part holds a NUL, which is fine:
 * those APIs never see NULs from kagami either). Free with free(). */
static inline char *fz_strdup(fz_in part) {
  char *s = malloc(part.n + 1);
  if (s == NULL) abort();
  if (part.n) memcpy(s, part.p, part.n);
  s[part.n] = '\0';
  return s;
}

/* A heap copy of exactly n bytes, so that ASan catches any read past the
 * end (libFuzzer's own buffer is exact too, but parts are slices of it). */
static inline char *fz_dup(fz_in part) {
  char *s = malloc(part.n ? part.n : 1);
  if (s == NULL) abort();
  if (part.n) memcpy(s, part.p, part.n);
  return s;
}

#endif
