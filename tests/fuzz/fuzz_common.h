/* Helpers shared by the fuzz targets (header only: each target is one .c
 * file plus, for some, fake_ws_edge.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A property the code under test promises; a failure is a finding (abort:
 * libFuzzer saves the input as a crash, the replay test fails). */
#define FUZZ_CHECK(cond)                                                                    \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      fprintf(stderr, "fuzz: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);       \
      abort();                                                                              \
    }                                                                                       \
  } while (0)

/* Inputs made of several parts (two SDPs, several SIP messages) separate
 * them with this byte: 0xff never occurs in UTF-8 text, so SIP and SDP text
 * (NUL bytes included) passes through whole. */
#define FUZZ_SEPARATOR 0xff

/* The next part of [*p, end): its start and length; *p moves past it and its
 * separator.  False when nothing is left. */
static inline bool fuzz_next_part(const uint8_t **p, const uint8_t *end, const uint8_t **part,
                                  size_t *len)
{
  if (*p >= end)
    return false;
  const uint8_t *sep = memchr(*p, FUZZ_SEPARATOR, (size_t)(end - *p));
  *part = *p;
  *len = (size_t)((sep ? sep : end) - *p);
  *p = sep ? sep + 1 : end;
  return true;
}
