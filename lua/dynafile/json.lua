--- dynafile.json: JSON for the command line -- items as JSON Lines and as
-- DynamoDB JSON (the format of DynamoDB's export to S3).
--
-- Our own codec rather than a general one, for the properties the tools
-- need: integers stay integers and floats stay floats through a round trip
-- (42 and 42.0 are written differently and read back as they were written),
-- numbers keep every digit (a number no Lua number holds is written with
-- its exact digits and read back as a decimal value), object keys are
-- written sorted (so an export is byte-for-byte repeatable), and strings
-- that are not valid UTF-8 survive as base64 (`{"$b64": ...}` in JSON
-- Lines, `{"B": ...}` in DynamoDB JSON).  `dynafile.null` is JSON null; an
-- empty list marked with dynafile.array stays a list.
--
-- DynamoDB's other types in JSON Lines, each an object with one key:
-- `{"$B": base64}` a binary value, `{"$SS": [strings]}`, `{"$NS":
-- [numbers]}`, `{"$BS": [base64]}` sets (elements sorted).  DynamoDB JSON
-- goes through dynafile.ddbjson: every type, DynamoDB's canonical numbers
-- and its validation messages.
-- @module dynafile.json

local core = require "dynafile.core"
local types = require "dynafile.types"
local ddbjson = require "dynafile.ddbjson"

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local error, setmetatable, getmetatable, next, pcall =
  error, setmetatable, getmetatable, next, pcall
local string_format, string_byte, string_char, string_sub =
  string.format, string.byte, string.char, string.sub
local string_find, string_gsub, string_match = string.find, string.gsub, string.match
local table_concat, table_sort = table.concat, table.sort
local math_type = math.type
local math_tointeger = math.tointeger
local math_floor, math_huge = math.floor, math.huge

local NULL = core.null
local ARRAY_MT = core.array_mt

local M = {}

---------------------------------------------------------------- base64

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_INDEX = {}
for i = 1, 64 do B64_INDEX[string_byte(B64, i)] = i - 1 end

function M.base64_encode(s)
  local out, n = {}, #s
  for i = 1, n, 3 do
    local a, b, c = string_byte(s, i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math_floor(v / 262144) % 64
    local c2 = math_floor(v / 4096) % 64
    local c3 = math_floor(v / 64) % 64
    local c4 = v % 64
    out[#out + 1] = string_sub(B64, c1 + 1, c1 + 1) .. string_sub(B64, c2 + 1, c2 + 1)
      .. (b and string_sub(B64, c3 + 1, c3 + 1) or "=")
      .. (c and string_sub(B64, c4 + 1, c4 + 1) or "=")
  end
  return table_concat(out)
end

function M.base64_decode(s)
  if type(s) ~= "string" or #s % 4 ~= 0 or string_find(s, "[^%w%+/=]") then
    return nil, "invalid base64"
  end
  local out = {}
  for i = 1, #s, 4 do
    local q = { string_byte(s, i, i + 3) }
    local v, pad = 0, 0
    for j = 1, 4 do
      local d = B64_INDEX[q[j]]
      if q[j] == 61 then pad = pad + 1; d = 0 elseif d == nil then return nil, "invalid base64" end
      v = v * 64 + d
    end
    local a = math_floor(v / 65536) % 256
    local b = math_floor(v / 256) % 256
    local c = v % 256
    if pad == 0 then out[#out + 1] = string_char(a, b, c)
    elseif pad == 1 then out[#out + 1] = string_char(a, b)
    else out[#out + 1] = string_char(a) end
  end
  return table_concat(out)
end

---------------------------------------------------------------- UTF-8

-- Does s hold only ASCII?  Under LuaJIT (nginx) a loop through the FFI
-- over eight bytes at a time for a long string, then the rest byte by
-- byte: a character-class string.find costs some 20 times as much there.
local ascii
do
  local has_ffi, ffi = pcall(require, "ffi")
  local has_bit, bit = pcall(require, "bit")
  if has_ffi and has_bit then
    local cast, bytes, words = ffi.cast, ffi.typeof("const uint8_t *"),
      ffi.typeof("const uint64_t *")
    local band, HIGH = bit.band, ffi.new("uint64_t", 0x80808080) * 0x100000000 + 0x80808080
    ascii = function(s)
      local n = #s
      local nw = 0
      if n >= 256 then -- (short ones: the byte loop costs less than the set-up)
        local w = cast(words, s)
        nw = (n - n % 8) / 8
        for i = 0, nw - 1 do
          if band(w[i], HIGH) ~= 0 then return false end
        end
      end
      local p = cast(bytes, s)
      for i = nw * 8, n - 1 do
        if p[i] >= 128 then return false end
      end
      return true
    end
  else
    ascii = function(s) return not string_find(s, "[\128-\255]") end
  end
end

--- Is s valid UTF-8 (no overlong forms, no surrogates, at most
-- U+10FFFF)?  A string of ASCII only is not walked.  The one check of the
-- CLI's JSON and of `dynafile serve`'s request bodies.
-- @tparam string s the bytes
-- @treturn boolean
function M.valid_utf8(s)
  if ascii(s) then return true end
  local i, n = 1, #s
  while i <= n do
    local c = string_byte(s, i)
    if c < 0x80 then
      i = i + 1
    else
      local len, min
      if c >= 0xC2 and c <= 0xDF then len, min = 2, 0x80
      elseif c >= 0xE0 and c <= 0xEF then len, min = 3, 0x800
      elseif c >= 0xF0 and c <= 0xF4 then len, min = 4, 0x10000
      else return false end
      if i + len - 1 > n then return false end
      local cp = c % (2 ^ (7 - len))
      for j = i + 1, i + len - 1 do
        local cc = string_byte(s, j)
        if cc < 0x80 or cc > 0xBF then return false end
        cp = cp * 64 + (cc - 0x80)
      end
      if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return false end
      i = i + len
    end
  end
  return true
end
local valid_utf8 = M.valid_utf8

---------------------------------------------------------------- encoding

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function esc_char(c)
  return ESC[c] or string_format("\\u%04x", string_byte(c))
end

local function quote(s)
  return '"' .. string_gsub(s, '[%c"\\]', esc_char) .. '"'
end

local function is_integer(v)
  if math_type then return math_type(v) == "integer" end
  return v == math_floor(v) and v > -2 ^ 63 and v < 2 ^ 63
end

--- Format a number so that reading it back gives the same number and
-- the same kind (integer or float); a decimal value or an int64 cdata as
-- its exact digits.
function M.number(v)
  if type(v) ~= "number" then return types.number_string(v) end
  if is_integer(v) then return string_format("%d", v) end
  if v ~= v then return nil end
  if v == math_huge then return "1e999" end
  if v == -math_huge then return "-1e999" end
  local s = string_format("%.17g", v)
  -- shortest form that reads back exactly
  for p = 1, 17 do
    local t = string_format("%." .. p .. "g", v)
    if tonumber(t) == v then s = t break end
  end
  if not string_find(s, "[%.eEn]") then s = s .. ".0" end
  return s
end

local function is_array(t)
  if getmetatable(t) == ARRAY_MT then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table_sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local encode_value

local function encode_string(s, out, ddb)
  if valid_utf8(s) then
    out[#out + 1] = quote(s)
  elseif ddb then
    error("binary string inside a DynamoDB JSON string", 0)
  else
    out[#out + 1] = '{"$b64":"' .. M.base64_encode(s) .. '"}'
  end
end

local function encode_list(list, out, each)
  out[#out + 1] = "["
  for i = 1, #list do
    if i > 1 then out[#out + 1] = "," end
    each(list[i])
  end
  out[#out + 1] = "]"
end

-- DynamoDB's types that plain JSON lacks, as one-key objects.
local function encode_typed(v, t, out)
  if t == "N" then
    out[#out + 1] = M.number(v)
  elseif t == "B" then
    out[#out + 1] = '{"$B":"' .. M.base64_encode(types.binary_bytes(v)) .. '"}'
  else
    local av = ddbjson.encode_value(v) -- sorted, canonical
    local list = av[t]
    if t == "NS" then -- the elements themselves: integers stay integers
      list = {}
      for i = 1, #v do list[i] = v[i] end
      table_sort(list, function(a, b) return types.compare_numbers(a, b) < 0 end)
    end
    out[#out + 1] = '{"$' .. t .. '":'
    encode_list(list, out, function(x)
      if t == "SS" then encode_string(x, out)
      elseif t == "NS" then out[#out + 1] = M.number(x)
      else out[#out + 1] = quote(x) end
    end)
    out[#out + 1] = "}"
  end
end

encode_value = function(v, out, depth)
  if depth > 40 then error("nesting too deep for JSON", 0) end
  local tv = type(v)
  local t = (tv == "table" or tv == "userdata" or tv == "cdata") and types.type(v)
  if t == "N" or t == "B" or t == "SS" or t == "NS" or t == "BS" then
    encode_typed(v, t, out)
  elseif tv == "string" then
    encode_string(v, out)
  elseif tv == "number" then
    local s = M.number(v)
    out[#out + 1] = s or "null"
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif v == NULL or v == nil then
    out[#out + 1] = "null"
  elseif tv == "table" then
    if is_array(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode_value(v[i], out, depth + 1)
      end
      out[#out + 1] = "]"
    else
      out[#out + 1] = "{"
      for i, k in ipairs(sorted_keys(v)) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = quote(tostring(k))
        out[#out + 1] = ":"
        encode_value(v[k], out, depth + 1)
      end
      out[#out + 1] = "}"
    end
  else
    error("cannot encode a " .. tv .. " as JSON", 0)
  end
end

--- Encode a Lua value as compact JSON (sorted keys).
function M.encode(v)
  local out = {}
  encode_value(v, out, 0)
  return table_concat(out)
end

---------------------------------------------------------------- DynamoDB JSON

-- Strings that are not valid UTF-8 cannot be S in JSON: they go out as B.
local function fix_strings(av)
  local k, v = next(av)
  if k == "S" and not valid_utf8(v) then return { B = M.base64_encode(v) } end
  if k == "L" then
    for i = 1, #v do v[i] = fix_strings(v[i]) end
  elseif k == "M" then
    for n, x in pairs(v) do v[n] = fix_strings(x) end
  elseif k == "SS" then
    for i = 1, #v do
      if not valid_utf8(v[i]) then
        error("a string set holds a string that is not UTF-8; DynamoDB JSON cannot carry it", 0)
      end
    end
  end
  return av
end

--- An item as a DynamoDB JSON line: {"Item": {...}}, every type and digit
-- as DynamoDB has it.
-- @raise a dynafile.ddbjson error object for what DynamoDB cannot hold
--   (NaN, an infinity, a number beyond its range, an empty set)
function M.encode_ddb(item)
  local m = ddbjson.encode_item(item)
  for k, v in pairs(m) do m[k] = fix_strings(v) end
  return M.encode({ Item = m })
end

---------------------------------------------------------------- decoding

local decode_value

local function skip_ws(s, i)
  return string_find(s, "[^ \t\r\n]", i) or #s + 1
end

local function decode_error(_, i, what)
  error(string_format("invalid JSON at character %d: %s", i, what), 0)
end

local function utf8_char(cp)
  if cp < 0x80 then return string_char(cp) end
  if cp < 0x800 then
    return string_char(0xC0 + math_floor(cp / 64), 0x80 + cp % 64)
  end
  if cp < 0x10000 then
    return string_char(0xE0 + math_floor(cp / 4096), 0x80 + math_floor(cp / 64) % 64,
      0x80 + cp % 64)
  end
  return string_char(0xF0 + math_floor(cp / 262144), 0x80 + math_floor(cp / 4096) % 64,
    0x80 + math_floor(cp / 64) % 64, 0x80 + cp % 64)
end

local UNESC = {
  ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t",
}

local function decode_string(s, i)
  local out = {}
  local j = i + 1
  while true do
    local k = string_find(s, '["\\%c]', j)
    if not k then decode_error(s, i, "unterminated string") end
    out[#out + 1] = string_sub(s, j, k - 1)
    local c = string_sub(s, k, k)
    if c == '"' then return table_concat(out), k + 1 end
    if c ~= "\\" then decode_error(s, k, "control character in string") end
    local e = string_sub(s, k + 1, k + 1)
    if e == "u" then
      local hex = string_match(s, "^%x%x%x%x", k + 2)
      if not hex then decode_error(s, k, "bad \\u escape") end
      local cp = tonumber(hex, 16)
      local nxt = k + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local lo = string_match(s, "^\\u(%x%x%x%x)", nxt)
        local lcp = lo and tonumber(lo, 16)
        if lcp and lcp >= 0xDC00 and lcp <= 0xDFFF then
          cp = 0x10000 + (cp - 0xD800) * 1024 + (lcp - 0xDC00)
          nxt = nxt + 6
        end
      end
      out[#out + 1] = utf8_char(cp)
      j = nxt
    elseif UNESC[e] then
      out[#out + 1] = UNESC[e]
      j = k + 2
    else
      decode_error(s, k, "bad escape")
    end
  end
end

local function decode_number(s, i)
  local num = string_match(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", i)
  if not num or num == "" or num == "-" then decode_error(s, i, "bad number") end
  local nxt = i + #num
  if not string_find(num, "[%.eE]") then
    local v = math_tointeger and math_tointeger(tonumber(num))
    if v and string_format("%d", v) == string_gsub(num, "^(-?)0+(%d)", "%1%2") then
      return v, nxt
    end
    -- beyond the Lua integers: the exact value (a decimal when no Lua
    -- number holds it)
    local x = types.parse_number(num)
    if x ~= nil then return x, nxt end
    local f = tonumber(num)
    if not f then decode_error(s, i, "bad number") end
    return f, nxt
  end
  local f = tonumber(num)
  if not f then decode_error(s, i, "bad number") end
  if math_type and math_type(f) == "integer" then f = f + 0.0 end
  -- a float: exact when the float's shortest digits are these digits
  local d = types.parse_number(num)
  if d ~= nil and type(d) ~= "number" then return d, nxt end
  return f, nxt
end

decode_value = function(s, i, depth)
  if depth > 40 then decode_error(s, i, "nesting too deep") end
  i = skip_ws(s, i)
  local c = string_sub(s, i, i)
  if c == "{" then
    local t = {}
    i = skip_ws(s, i + 1)
    if string_sub(s, i, i) == "}" then return t, i + 1 end
    while true do
      if string_sub(s, i, i) ~= '"' then decode_error(s, i, "expected a key") end
      local k
      k, i = decode_string(s, i)
      i = skip_ws(s, i)
      if string_sub(s, i, i) ~= ":" then decode_error(s, i, "expected ':'") end
      local v
      v, i = decode_value(s, i + 1, depth + 1)
      t[k] = v
      i = skip_ws(s, i)
      local d = string_sub(s, i, i)
      if d == "}" then break end
      if d ~= "," then decode_error(s, i, "expected ',' or '}'") end
      i = skip_ws(s, i + 1)
    end
    -- {"$b64": "..."} alone is a binary string; $B, $SS, $NS, $BS typed
    local only = next(t)
    if only ~= nil and next(t, only) == nil then
      local v = t[only]
      if only == "$b64" then
        local bytes = M.base64_decode(v)
        if bytes then return bytes, i + 1 end
      elseif only == "$B" and type(v) == "string" then
        local bytes = M.base64_decode(v)
        if bytes then return types.binary(bytes), i + 1 end
      elseif (only == "$SS" or only == "$NS" or only == "$BS") and type(v) == "table" then
        local kind = string_sub(only, 2, 2)
        local elems = {}
        for n, x in ipairs(v) do
          if kind == "B" then
            x = type(x) == "string" and M.base64_decode(x)
            if not x then decode_error(s, i, "bad base64 in " .. only) end
          end
          elems[n] = x
        end
        local ok, set = pcall(types.set, elems, kind)
        if not ok then decode_error(s, i, tostring(set)) end
        return set, i + 1
      end
    end
    return t, i + 1
  elseif c == "[" then
    local t = setmetatable({}, ARRAY_MT)
    i = skip_ws(s, i + 1)
    if string_sub(s, i, i) == "]" then return t, i + 1 end
    local n = 0
    while true do
      local v
      v, i = decode_value(s, i, depth + 1)
      n = n + 1
      t[n] = v
      i = skip_ws(s, i)
      local d = string_sub(s, i, i)
      if d == "]" then break end
      if d ~= "," then decode_error(s, i, "expected ',' or ']'") end
      i = i + 1
    end
    setmetatable(t, nil)
    return t, i + 1
  elseif c == '"' then
    return decode_string(s, i)
  elseif c == "-" or string_find(c, "%d") then
    return decode_number(s, i)
  elseif string_sub(s, i, i + 3) == "true" then
    return true, i + 4
  elseif string_sub(s, i, i + 4) == "false" then
    return false, i + 5
  elseif string_sub(s, i, i + 3) == "null" then
    return NULL, i + 4
  end
  decode_error(s, i, c == "" and "unexpected end" or ("unexpected '" .. c .. "'"))
end

--- Decode one JSON value (the whole string).  Raises "invalid JSON ...".
function M.decode(s)
  local v, i = decode_value(s, 1, 0)
  i = skip_ws(s, i)
  if i <= #s then decode_error(s, i, "trailing characters") end
  return v
end

-- A ddbjson error object as the CLI's message.
local function ddb_error(e)
  if ddbjson.is_error(e) then return "DynamoDB JSON: " .. e.message end
  return tostring(e)
end

--- Decode a DynamoDB JSON line ({"Item": {...}}) into an item: every type
-- and digit, refusing what DynamoDB refuses with its message.
-- @raise "DynamoDB JSON: <DynamoDB's message>" or "invalid JSON ..."
function M.decode_ddb(s)
  local t = M.decode(s)
  if type(t) ~= "table" or type(t.Item) ~= "table" then
    error("DynamoDB JSON: expected {\"Item\": {...}}", 0)
  end
  local ok, item = pcall(ddbjson.decode_item, t.Item)
  if not ok then error(ddb_error(item), 0) end
  return item
end

return M
