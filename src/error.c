/*
 * error.c -- the one table of error codes (DF_ERRORS in dynafile.h):
 * their messages, symbolic names and stable code strings; and message
 * formatting.
 *
 * Invariant: df_strerror, df_errname and df_error_name always return a
 * static, NUL-terminated string (never NULL), also for unknown codes;
 * df__fmt never writes more than cap bytes and always NUL-terminates
 * when cap > 0.
 */
#include <stdio.h>

#include "internal.h"

const char *df_strerror(int code) {
  switch (code) {
#define DF__MSG(name, value, msg, lua) \
  case value:                          \
    return msg;
    DF_ERRORS(DF__MSG)
#undef DF__MSG
    default:
      return "unknown error";
  }
}

const char *df_errname(int code) {
  switch (code) {
#define DF__NAME(name, value, msg, lua) \
  case value:                           \
    return #name;
    DF_ERRORS(DF__NAME)
#undef DF__NAME
    default:
      return "EUNKNOWN";
  }
}

const char *df_error_name(int code) {
  switch (code) {
#define DF__CODE(name, value, msg, lua) \
  case value:                           \
    return lua;
    DF_ERRORS(DF__CODE)
#undef DF__CODE
    default:
      return "Error";
  }
}

int df__fmt(char *buf, size_t cap, int code, const char *fmt, ...) {
  va_list ap;
  if (!buf || cap == 0) return code;
  if (!fmt) {
    buf[0] = '\0';
    return code;
  }
  va_start(ap, fmt);
  if (vsnprintf(buf, cap, fmt, ap) < 0) buf[0] = '\0';
  va_end(ap);
  return code;
}
