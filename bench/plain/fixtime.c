/*
 * fixtime.c -- an LD_PRELOAD library for bench/plain/count.sh: time()
 * returns $FIXTIME_AT.  Lua seeds its string hashes from time() (and
 * addresses, which are the same from run to run under valgrind), and the
 * seed decides the order of each item's attributes, which moves the
 * instruction counts by up to 15%; fixed, a run counts the same
 * instructions every time.  Only time() is replaced.
 */
#include <stdlib.h>
#include <time.h>

time_t time(time_t *t) {
  const char *s = getenv("FIXTIME_AT");
  time_t v = s ? (time_t)strtoll(s, NULL, 10) : 0;
  if (t) *t = v;
  return v;
}
