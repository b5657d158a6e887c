--- dynafile.serve.decimal: exact sums of DynamoDB number strings.
--
-- `add("12.5", "-0.25")` is "12.25", digit by digit, for the updates that
-- add numbers in Lua (AttributeUpdates ADD).  The inputs are DynamoDB's
-- canonical number strings (dynafile.types.number_string: plain digits,
-- optional sign and point); the result is one too.
--
-- Invariant: exact for any inputs; range and precision are the caller's
-- to check (dynafile.types.number_in_range).
-- @module dynafile.serve.decimal

local string_match, string_rep, string_sub, string_byte, string_char =
  string.match, string.rep, string.sub, string.byte, string.char
local string_gsub = string.gsub
local table_concat = table.concat

local M = {}

-- sign (1 or -1), integer digits, fraction digits
local function split(s)
  local sign, int, frac = string_match(s, "^(%-?)(%d*)%.?(%d*)$")
  if not sign then error("decimal: not a number string: " .. tostring(s), 2) end
  return sign == "-" and -1 or 1, int, frac
end

-- |a| vs |b| for equal-length digit strings
local function cmp(a, b)
  if a == b then return 0 end
  return a < b and -1 or 1
end

local function add_digits(a, b)
  local out, carry = {}, 0
  for i = #a, 1, -1 do
    local d = string_byte(a, i) + string_byte(b, i) - 96 + carry
    carry = d >= 10 and 1 or 0
    out[i] = string_char(48 + d % 10)
  end
  local s = table_concat(out)
  if carry > 0 then s = "1" .. s end
  return s
end

local function sub_digits(a, b) -- a >= b
  local out, borrow = {}, 0
  for i = #a, 1, -1 do
    local d = string_byte(a, i) - string_byte(b, i) - borrow
    borrow = d < 0 and 1 or 0
    out[i] = string_char(48 + (d + 10) % 10)
  end
  return table_concat(out)
end

--- a + b, exactly.
function M.add(a, b)
  local sa, ia, fa = split(a)
  local sb, ib, fb = split(b)
  local flen = #fa > #fb and #fa or #fb
  fa = fa .. string_rep("0", flen - #fa)
  fb = fb .. string_rep("0", flen - #fb)
  local ilen = #ia > #ib and #ia or #ib
  ia = string_rep("0", ilen - #ia) .. ia
  ib = string_rep("0", ilen - #ib) .. ib
  local x, y = ia .. fa, ib .. fb
  local sign, digits
  if sa == sb then
    sign, digits = sa, add_digits(x, y)
  else
    local c = cmp(x, y)
    if c == 0 then return "0" end
    if c > 0 then sign, digits = sa, sub_digits(x, y) else sign, digits = sb, sub_digits(y, x) end
  end
  local int = string_sub(digits, 1, #digits - flen)
  local frac = string_sub(digits, #digits - flen + 1)
  int = string_gsub(int, "^0+", "")
  frac = string_gsub(frac, "0+$", "")
  if int == "" then int = "0" end
  local s = frac ~= "" and (int .. "." .. frac) or int
  if s == "0" then return "0" end
  return (sign < 0 and "-" or "") .. s
end

return M
