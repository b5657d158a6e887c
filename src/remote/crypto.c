/* crypto.c -- module dynafile.remote.crypto: SHA-256 and HMAC-SHA256 from
 * OpenSSL 3's libcrypto, for the DynamoDB backend's SigV4 signer
 * (lua/dynafile/remote/sigv4.lua).
 *
 * luaossl makes a new digest or HMAC object for every call, and OpenSSL 3
 * then looks the algorithm up in its providers again: more set-up than
 * hashing a request.  Here the algorithms are fetched once per Lua state,
 * one digest context is reused, and an HMAC key is keyed once and only
 * re-initialised per message.  Each function hashes the concatenation of
 * its string arguments, so a canonical request is hashed without being
 * built as one string, and answers in lower-case hex (or raw bytes).
 *
 * Invariant: every function answers what OpenSSL's one-shot SHA-256 and
 * HMAC-SHA256 give for the concatenation of its arguments (sigv4.lua
 * compares with luaossl before using the module), or raises. */
#include <lauxlib.h>
#include <lua.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

#define STATE_MT "dynafile.remote.crypto.state"
#define KEY_MT "dynafile.remote.crypto.hmac_key"

/* The algorithms and the reused digest context of one Lua state (the
 * functions' first upvalue). */
struct crypto_state {
  EVP_MD *md;
  EVP_MAC *mac;
  EVP_MD_CTX *md_ctx;
};

/* An HMAC-SHA256 context keyed once (userdata KEY_MT). */
struct hmac_key {
  EVP_MAC_CTX *ctx;
};

static const char HEX_DIGITS[] = "0123456789abcdef";

static void push_hex(lua_State *L, const unsigned char *bytes, size_t n) {
  char out[2 * EVP_MAX_MD_SIZE];
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = HEX_DIGITS[bytes[i] >> 4];
    out[2 * i + 1] = HEX_DIGITS[bytes[i] & 15];
  }
  lua_pushlstring(L, out, 2 * n);
}

static struct crypto_state *state_of(lua_State *L) {
  return (struct crypto_state *)lua_touserdata(L, lua_upvalueindex(1));
}

/* The SHA-256 of the concatenation of the arguments from index `first`. */
static void digest_args(lua_State *L, int first, unsigned char *out) {
  struct crypto_state *st = state_of(L);
  int n = lua_gettop(L);
  int ok = EVP_DigestInit_ex(st->md_ctx, st->md, NULL) == 1;
  for (int i = first; ok && i <= n; i++) {
    size_t len;
    const char *s = luaL_checklstring(L, i, &len);
    ok = EVP_DigestUpdate(st->md_ctx, s, len) == 1;
  }
  unsigned int outl = 0;
  if (!ok || EVP_DigestFinal_ex(st->md_ctx, out, &outl) != 1 || outl != 32)
    luaL_error(L, "dynafile: OpenSSL's SHA-256 failed");
}

/* sha256_hex(...) -> the hex SHA-256 of the arguments' concatenation */
static int crypto_sha256_hex(lua_State *L) {
  unsigned char out[EVP_MAX_MD_SIZE] = {0};
  digest_args(L, 1, out);
  push_hex(L, out, 32);
  return 1;
}

/* sha256(...) -> the raw SHA-256 of the arguments' concatenation */
static int crypto_sha256(lua_State *L) {
  unsigned char out[EVP_MAX_MD_SIZE];
  digest_args(L, 1, out);
  lua_pushlstring(L, (const char *)out, 32);
  return 1;
}

/* hmac_key(key) -> an HMAC-SHA256 context keyed with `key` */
static int crypto_hmac_key(lua_State *L) {
  struct crypto_state *st = state_of(L);
  size_t len;
  const char *key = luaL_checklstring(L, 1, &len);
  struct hmac_key *k = (struct hmac_key *)lua_newuserdata(L, sizeof *k);
  k->ctx = NULL;
  luaL_getmetatable(L, KEY_MT);
  lua_setmetatable(L, -2);
  k->ctx = EVP_MAC_CTX_new(st->mac);
  if (k->ctx == NULL) return luaL_error(L, "dynafile: out of memory");
  char digest_name[] = "SHA256";
  OSSL_PARAM params[2];
  params[0] =
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0);
  params[1] = OSSL_PARAM_construct_end();
  if (EVP_MAC_init(k->ctx, (const unsigned char *)key, len, params) != 1)
    return luaL_error(L, "dynafile: OpenSSL's HMAC failed");
  return 1;
}

/* The HMAC of the concatenation of the arguments after the key. */
static size_t mac_args(lua_State *L, unsigned char *out) {
  struct hmac_key *k = (struct hmac_key *)luaL_checkudata(L, 1, KEY_MT);
  int n = lua_gettop(L);
  /* a NULL key keeps the key and starts a new message */
  int ok = k->ctx != NULL && EVP_MAC_init(k->ctx, NULL, 0, NULL) == 1;
  for (int i = 2; ok && i <= n; i++) {
    size_t len;
    const char *s = luaL_checklstring(L, i, &len);
    ok = EVP_MAC_update(k->ctx, (const unsigned char *)s, len) == 1;
  }
  size_t outl = 0;
  if (!ok || EVP_MAC_final(k->ctx, out, &outl, EVP_MAX_MD_SIZE) != 1 ||
      outl != 32)
    luaL_error(L, "dynafile: OpenSSL's HMAC failed");
  return outl;
}

/* hmac_hex(key, ...) -> the hex HMAC-SHA256 of the arguments after key */
static int crypto_hmac_hex(lua_State *L) {
  unsigned char out[EVP_MAX_MD_SIZE] = {0};
  size_t n = mac_args(L, out);
  push_hex(L, out, n);
  return 1;
}

/* hmac(key, ...) -> the raw HMAC-SHA256 of the arguments after key */
static int crypto_hmac(lua_State *L) {
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t n = mac_args(L, out);
  lua_pushlstring(L, (const char *)out, n);
  return 1;
}

static int hmac_key_gc(lua_State *L) {
  struct hmac_key *k = (struct hmac_key *)luaL_checkudata(L, 1, KEY_MT);
  EVP_MAC_CTX_free(k->ctx);
  k->ctx = NULL;
  return 0;
}

static int state_gc(lua_State *L) {
  struct crypto_state *st =
      (struct crypto_state *)luaL_checkudata(L, 1, STATE_MT);
  EVP_MD_CTX_free(st->md_ctx);
  EVP_MD_free(st->md);
  EVP_MAC_free(st->mac);
  st->md_ctx = NULL;
  st->md = NULL;
  st->mac = NULL;
  return 0;
}

int luaopen_dynafile_remote_crypto(lua_State *L);
int luaopen_dynafile_remote_crypto(lua_State *L) {
  static const struct {
    const char *name;
    lua_CFunction fn;
  } functions[] = {
      {"sha256_hex", crypto_sha256_hex},
      {"sha256", crypto_sha256},
      {"hmac_key", crypto_hmac_key},
      {"hmac_hex", crypto_hmac_hex},
      {"hmac", crypto_hmac},
  };
  luaL_newmetatable(L, KEY_MT);
  lua_pushcfunction(L, hmac_key_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  lua_newtable(L);
  struct crypto_state *st =
      (struct crypto_state *)lua_newuserdata(L, sizeof *st);
  memset(st, 0, sizeof *st);
  luaL_newmetatable(L, STATE_MT);
  lua_pushcfunction(L, state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  st->md = EVP_MD_fetch(NULL, "SHA256", NULL);
  st->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  st->md_ctx = EVP_MD_CTX_new();
  if (st->md == NULL || st->mac == NULL || st->md_ctx == NULL)
    return luaL_error(L,
                      "dynafile.remote.crypto: libcrypto has "
                      "no SHA256 or HMAC");
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, functions[i].fn, 1);
    lua_setfield(L, -3, functions[i].name);
  }
  lua_pop(L, 1);
  return 1;
}
