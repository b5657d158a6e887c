/*
 * lerror.c -- how the binding reports failures.  Every failure is
 * returned, misuse included:
 *
 *   nil, message, code          an expected failure: the Lua layer
 *                               returns it (code: a stable string)
 *   nil, message, code, true    misuse -- an invalid item, key or key
 *                               value, a closed handle, a write a
 *                               read-only handle or this thread cannot
 *                               make: the Lua layer raises it
 *
 * The binding cannot raise misuse itself because the error must name the
 * function the user called, which only the Lua layer knows (one binding
 * method serves several public functions); it decides here what is
 * misuse, and the Lua layer adds "dynafile.<function>: " and raises.
 * Only what the Lua layer never causes (a method called on the wrong
 * object, corrupt stored bytes) is raised by the binding.
 *
 * Invariant: messages carry no function name.
 */
#include <stdarg.h>

#include "lbinding.h"

/* [-0, +1, v] */
int lerror_raise(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return lua_error(L);
}

/* [-0, +3, m] */
int lerror_fail(lua_State *L, int code, const char *msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg && msg[0] ? msg : df_strerror(code));
  lua_pushstring(L, df_error_name(code));
  return 3;
}

/* [-0, +4, m] */
int lerror_misuse(lua_State *L, int code, const char *msg) {
  lerror_fail(L, code, msg);
  lua_pushboolean(L, 1);
  return 4;
}

/* [-1, +4, m] */
int lerror_misuse_pushed(lua_State *L, int code) {
  lua_pushnil(L);
  lua_insert(L, -2);
  lua_pushstring(L, df_error_name(code));
  lua_pushboolean(L, 1);
  return 4;
}

/* [-0, +3|4, m] */
int lerror_core(lua_State *L, int code, const char *msg) {
  switch (code) {
    case DF_EVALIDATION: /* an item or key the core refused */
    case DF_EINVAL:
    case DF_ECLOSED:
    case DF_EBUSY:     /* this thread holds the write transaction */
    case DF_EREADONLY: /* a write to a read-only environment */
      return lerror_misuse(L, code, msg);
    default:
      return lerror_fail(L, code, msg);
  }
}
