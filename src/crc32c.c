/*
 * crc32c.c -- CRC-32C (Castagnoli), the checksum of the redo log.
 *
 * df__crc32c(0, p, n) is the standard CRC-32C of p (reflected polynomial
 * 0x82F63B78, initial and final value inverted: "123456789" gives
 * 0xE3069283); passing a previous result as `crc` continues it over more
 * bytes.  On x86-64 processors with SSE4.2 the crc32 instruction computes
 * it (about 8 bytes per cycle); elsewhere a table-driven loop eight bytes
 * at a time.  Both give the same result for every input (tests/test_redo.c
 * compares them).
 *
 * Invariant: the table is built once (pthread_once) before any software
 * computation reads it; the processor check is made once the same way.
 * Nothing else here is mutable.
 */
#include <pthread.h>
#include <string.h>

#include "internal.h"

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_build(void) {
  uint32_t i, j, c;
  for (i = 0; i < 256; i++) {
    c = i;
    for (j = 0; j < 8; j++) c = (c >> 1) ^ (POLY & (0u - (c & 1u)));
    table[0][i] = c;
  }
  for (i = 0; i < 256; i++) {
    c = table[0][i];
    for (j = 1; j < 8; j++) {
      c = table[0][c & 0xff] ^ (c >> 8);
      table[j][i] = c;
    }
  }
}

/* Eight bytes at a time through eight tables ("slicing by 8"); the loaded
 * word is read little-endian, byte by byte, so any alignment works. */
static uint32_t crc_soft(uint32_t c, const unsigned char *p, size_t n) {
  pthread_once(&table_once, table_build);
  while (n >= 8) {
    uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                  (uint32_t)p[7] << 24;
    c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
        table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^ table[3][hi & 0xff] ^
        table[2][(hi >> 8) & 0xff] ^ table[1][(hi >> 16) & 0xff] ^
        table[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_HW 1
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c,
                                                         const unsigned char *p,
                                                         size_t n) {
  uint64_t c64;
  while (n > 0 && ((uintptr_t)p & 7) != 0) {
    c = __builtin_ia32_crc32qi(c, *p++);
    n--;
  }
  c64 = c;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c64 = __builtin_ia32_crc32di(c64, w);
    p += 8;
    n -= 8;
  }
  c = (uint32_t)c64;
  while (n--) c = __builtin_ia32_crc32qi(c, *p++);
  return c;
}

static int hw_ok;
static pthread_once_t hw_once = PTHREAD_ONCE_INIT;
static void hw_check(void) {
  __builtin_cpu_init();
  hw_ok = __builtin_cpu_supports("sse4.2") != 0;
}
#else
#define HAVE_HW 0
#endif

uint32_t df__crc32c(uint32_t crc, const void *p, size_t n) {
  const unsigned char *b = p;
  uint32_t c = ~crc;
#if HAVE_HW
  pthread_once(&hw_once, hw_check);
  if (hw_ok) return ~crc_hw(c, b, n);
#endif
  return ~crc_soft(c, b, n);
}

uint32_t df__crc32c_portable(uint32_t crc, const void *p, size_t n) {
  return ~crc_soft(~crc, p, n);
}
