-- seeds.lua -- writes the seed corpora in fuzz/corpus/ (checked in; run
-- again only to change them):
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua5.4/?.so;;" \
--     lua5.4 fuzz/seeds.lua
-- Items are encoded by dynafile itself, so the seeds are the bytes the
-- database really stores.
local dynafile = require "dynafile"

local dir = os.tmpname()
os.remove(dir)
local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
local function enc(t) return db._c:encode(t) end

local items = {
  { PK = "user#1", SK = 1, name = "Ann", age = 41, tags = { "a", "b" } },
  { PK = "p", SK = "s", data = { count = 3, items = { { x = 1 }, { x = 2.5 } } } },
  { PK = 7, SK = -1.5, flag = true, off = false, none = dynafile.null },
  { PK = "big", SK = 0, n = math.maxinteger, m = math.mininteger, f = 1e300,
    e = dynafile.array {} },
  { PK = "s", SK = "k", s = string.rep("x", 300), u = "\0\1\2", empty = {} },
  { PK = "deep", SK = 1, a = { b = { c = { d = { e = { f = "g" } } } } } },
}

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function mkdir(p) os.execute("mkdir -p " .. p) end
mkdir("fuzz/corpus/msgpack")
mkdir("fuzz/corpus/key")
mkdir("fuzz/corpus/expr")
mkdir("fuzz/corpus/lcodec")

-- msgpack: depth byte (34 -> DF_MAX_DEPTH), path length, path, document
local paths = { "PK", "data.items[1].x", "tags[0]", "a.b.c.d.e.f", "s", "none" }
for i, it in ipairs(items) do
  local p = paths[i]
  write(string.format("fuzz/corpus/msgpack/item%d", i),
        string.char(33, #p) .. p .. enc(it))
end
write("fuzz/corpus/msgpack/truncated", string.char(33, 1) .. "a" .. enc(items[1]):sub(1, 9))

-- key: count byte, then values: type (0 int, 1 uint, 2 float, 3 str;
-- +0x80 small/int-valued/bin), payload; then raw key bytes
local function i64(n) return string.pack("<i8", n) end
local function f64(x) return string.pack("<d", x) end
local function str(s) return string.char(3, #s) .. s end
write("fuzz/corpus/key/ints", string.char(4) .. string.char(0) .. i64(1) .. string.char(0) ..
      i64(-1) .. string.char(0) .. i64(math.maxinteger) .. string.char(0x80) .. i64(5))
write("fuzz/corpus/key/floats", string.char(4) .. string.char(2) .. f64(1.0) .. string.char(2) ..
      f64(-0.0) .. string.char(2) .. f64(1 / 0) .. string.char(2) .. f64(2 ^ 63))
write("fuzz/corpus/key/strings", string.char(4) .. str("") .. str("a") .. str("a\0b") ..
      str(string.rep("p", 70)))
write("fuzz/corpus/key/mixed", string.char(3) .. string.char(1) .. i64(-1) .. str("1") ..
      string.char(2) .. f64(1.5) .. "\16\191\240\0\0\0\0\0\0\0\0" .. "\32ab\0\1")

-- expr: source, NUL, item bytes
local exprs = {
  'name == "Ann" and age > 40',
  'data.count >= 3 or not exists(data.items[1].x)',
  'begins_with(PK, "user#") and contains(tags, "b")',
  'size(s) > 100 and s =~ /^x+$/',
  'flag != false and none == null and PK in [7, "p", 1.5]',
  'a.b.c.d.e.f =~ /G/i and `PK` <> "x"',
}
for i, e in ipairs(exprs) do
  write(string.format("fuzz/corpus/expr/expr%d", i), e .. "\0" .. enc(items[i]))
end

-- lcodec: an even byte, then item bytes to decode; or an odd byte, then
-- a program of fuzz_lcodec.c's stack machine that builds a value
for i, it in ipairs(items) do
  write(string.format("fuzz/corpus/lcodec/item%d", i), "\0" .. enc(it))
end
write("fuzz/corpus/lcodec/trailing", "\0" .. enc(items[1]) .. "\0")
-- {a = 1, b = {"x", 2.5, null}}, then a nested list marked empty
write("fuzz/corpus/lcodec/build-nested",
      "\1" .. "\6" .. "\0\1" .. "\7\0" .. "\6" .. "\2\1x" .. "\8" .. "\1" ..
      string.pack("<d", 2.5) .. "\8" .. "\4\8" .. "\7\1" .. "\6\12" .. "\7\2")
-- a table holding itself, a function, and a float key
write("fuzz/corpus/lcodec/build-refused",
      "\1" .. "\6\11" .. "\5\7\3" .. "\3\1\10\1")

-- DynamoDB's types (binary values, decimals at the range edges, sets),
-- each item twice: byte 0 = 0 decodes without the types' metatables, 2
-- with them (fuzz_lcodec.c)
local D = dynafile.decimal
local typed = {
  { PK = "b", SK = dynafile.binary("\0\255k"), bin = dynafile.binary(""),
    bins = dynafile.set { dynafile.binary("a"), dynafile.binary("\0") } },
  { PK = "d", SK = D "1E-130", max = D "9.9999999999999999999999999999999999999E+125",
    min = D "-9.9999999999999999999999999999999999999E+125", tiny = D "-1e-130",
    d38 = D "12345678901234567890123456789012345678", frac = D "0.1000000000000000000001" },
  { PK = "s", SK = 1, ss = dynafile.set { "a", "b", "" }, ns = dynafile.set { 1, 2.5,
    D "1.0000000000000000000000000001", D "-1e-130", 2 ^ 63 },
    nested = { l = { dynafile.set { "x" }, D "3.14159265358979323846264338327950288" } } },
  { PK = "u", SK = D "18446744073709551615", big = D "9223372036854775808",
    neg = D "-9223372036854775809" },
}
for i, it in ipairs(typed) do
  write(string.format("fuzz/corpus/lcodec/types%d", i), "\0" .. enc(it))
  write(string.format("fuzz/corpus/lcodec/types%d-mt", i), "\2" .. enc(it))
end

db:close()
os.execute("rm -rf " .. dir)
