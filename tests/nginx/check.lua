-- tests/nginx/check.lua -- the client side of tests/nginx.sh: writes the
-- curl request lists of each phase and checks the answers.
--
--   lua5.4 check.lua plan DIR BASE CLIENTS KEYS
--       DIR/<phase>.<client>.cfg: curl config files (url + output) for the
--       phases put_a, get_a, put_b, read_b, keys 1..KEYS spread over
--       CLIENTS clients (a different spread in each phase)
--   lua5.4 check.lua check DIR PHASE CLIENTS KEYS
--       reads DIR/<PHASE>.<client>.out (curl -w lines "code url x-v
--       x-items x-worker") and prints one line per finding:
--       "ok <what>" or "FAIL <what>: <why>"; keeps DIR/acked (the value
--       each key must have now) up to date.
local cmd, dir = arg[1], arg[2]

local function partition(k) return "p" .. (k % 50) end

local function write(path, s)
  local f = assert(io.open(path, "w"))
  f:write(s)
  f:close()
end

local function read_acked(keys)
  local acked = {}
  local f = io.open(dir .. "/acked")
  if f then
    for line in f:lines() do
      local k, v = line:match("^(%d+) (%S+)$")
      acked[tonumber(k)] = v
    end
    f:close()
  end
  for k = 1, keys do acked[k] = acked[k] or false end
  return acked
end

local function write_acked(acked, keys)
  local out = {}
  for k = 1, keys do
    if acked[k] then out[#out + 1] = k .. " " .. acked[k] end
  end
  write(dir .. "/acked", table.concat(out, "\n") .. "\n")
end

if cmd == "plan" then
  local base, clients, keys = arg[3], tonumber(arg[4]), tonumber(arg[5])
  local phases = {
    { "put_a", function(k) return "/kv/" .. k .. "?v=a" .. k end, 0 },
    { "get_a", function(k) return "/kv/" .. k end, 3 },
    { "put_b", function(k) return "/kv/" .. k .. "?v=b" .. k end, 5 },
  }
  for _, ph in ipairs(phases) do
    local lists = {}
    for c = 1, clients do lists[c] = {} end
    for k = 1, keys do
      local c = (k + ph[3]) % clients + 1
      local l = lists[c]
      l[#l + 1] = 'url = "' .. base .. ph[2](k) .. '"\noutput = "/dev/null"'
    end
    for c = 1, clients do
      write(string.format("%s/%s.%d.cfg", dir, ph[1], c), table.concat(lists[c], "\n") .. "\n")
    end
  end
  -- read_b: GETs of keys 1..keys*4/5 and, for every fifth request, a
  -- query of one partition (keys requests in all)
  local lists = {}
  for c = 1, clients do lists[c] = {} end
  for i = 1, keys do
    local c = (i + 6) % clients + 1
    local path
    if i % 5 == 0 then path = "/q/" .. partition(math.floor(i / 5))
    else path = "/kv/" .. (i - math.floor(i / 5)) end
    local l = lists[c]
    l[#l + 1] = 'url = "' .. base .. path .. '"\noutput = "/dev/null"'
  end
  for c = 1, clients do
    write(string.format("%s/read_b.%d.cfg", dir, c), table.concat(lists[c], "\n") .. "\n")
  end
  os.exit(0)
end

assert(cmd == "check")
local phase, clients, keys = arg[3], tonumber(arg[4]), tonumber(arg[5])
local acked = read_acked(keys)
local lines, codes, workers, bad, first = 0, {}, {}, 0, nil
local function wrong(why)
  bad = bad + 1
  first = first or why
end
local err -- the X-Error header of the answer being checked
for c = 1, clients do
  local f = io.open(string.format("%s/%s.%d.out", dir, phase, c))
  if f then
    for line in f:lines() do
      local code, url, v, items, worker
      code, url, v, items, worker, err = line:match("^(%d+) (%S+) (%S*) (%S*) (%S*) ?(.*)$")
      if not code then
        wrong("unparsable curl line: " .. line)
      else
        lines = lines + 1
        codes[code] = (codes[code] or 0) + 1
        workers[worker] = true
        local path = url:match("^https?://[^/]+(/.*)$") or url
        local k, val = path:match("^/kv/(%d+)%?v=(%w+)$")
        if k then -- a PUT: acknowledged writes are remembered
          if code == "200" and v == val then acked[tonumber(k)] = val
          elseif code ~= "200" then wrong(path .. ": PUT answered " .. code) end
        elseif path:match("^/kv/%d+$") then
          local want = acked[tonumber(path:match("%d+"))]
          if want and (code ~= "200" or v ~= want) then
            wrong(string.format("%s: want %s, got %s %s (worker %s) %s", path, want, code, v,
              worker, err))
          elseif not want and code ~= "404" then
            wrong(path .. ": want 404, got " .. code)
          end
        elseif path:match("^/q/p%d+$") then
          local p = tonumber(path:match("%d+"))
          local got = {}
          for sk, x in items:gmatch("(%d+)=(%w+)") do got[tonumber(sk)] = x end
          for key = 1, keys do
            if key % 50 == p and acked[key] and got[key] ~= acked[key] then
              wrong(string.format("%s: key %d want %s, got %s (worker %s)", path, key,
                acked[key], tostring(got[key]), worker))
              break
            end
          end
        else
          wrong("unexpected url " .. url)
        end
      end
    end
    f:close()
  end
end
local nworkers = 0
for w in pairs(workers) do if w ~= "" then nworkers = nworkers + 1 end end
write_acked(acked, keys)
local summary = {}
for code, n in pairs(codes) do summary[#summary + 1] = code .. ":" .. n end
table.sort(summary)
print(string.format("%s %s: %d answers (%s) from %d workers", lines == keys and "ok" or "FAIL",
  phase, lines, table.concat(summary, " "), nworkers))
if bad == 0 then
  print("ok " .. phase .. ": every answer is right")
else
  print(string.format("FAIL %s: %d wrong answers, first: %s", phase, bad, first))
end
