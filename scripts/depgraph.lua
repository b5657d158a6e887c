--- scripts/depgraph.lua: the file-level dependency graph of the C sources,
-- and the layering rules it must keep (`make lint` runs it).
--
--   lua5.4 scripts/depgraph.lua [--dot] [file ...]    (default: src/*.c src/*.h)
--
-- A file depends on another when
--   * it includes it (`#include "x.h"`), or
--   * it uses a function or variable with external linkage defined in it,
--     or
--   * it includes x.h and x.c exists: a header stands for the file it
--     declares (x.c including its own x.h is no dependency).
-- Sources are read as tokens (comments, strings and preprocessor lines
-- other than #include are skipped); a definition is a name followed by a
-- parameter list and a body at file level.
--
-- Printed: every file's layer (0 depends on nothing, n depends only on
-- layers below n), what it depends on, the files that call LMDB (`mdb_*`)
-- and the files that see lmdb.h.  With --dot, a Graphviz graph instead.
--
-- Exit status 1 (with the reason on stderr) when
--   * the graph has a cycle (each cycle's files are listed),
--   * more than MDB_FILES_MAX files call LMDB,
--   * a file sees lmdb.h (directly or through its headers) without calling
--     LMDB itself.
-- These are the rules of the README's "Inside dynafile".
local MDB_FILES_MAX = 5

local args = { ... }
local dot = false
local files = {}
for _, a in ipairs(args) do
  if a == "--dot" then dot = true else files[#files + 1] = a end
end
if #files == 0 then
  local p = assert(io.popen("ls src/*.c src/*.h 2>/dev/null"))
  for f in p:lines() do files[#files + 1] = f end
  p:close()
end
table.sort(files)

local function base(path) return (path:gsub("^.*/", "")) end

--- Tokens of a C source: identifiers and single punctuation characters,
-- with the local includes and the system headers it names.
local function scan(text)
  local toks, includes, system = {}, {}, {}
  local i, n = 1, #text
  local at_line_start = true
  while i <= n do
    local c = text:sub(i, i)
    if c == "\n" then
      at_line_start = true
      i = i + 1
    elseif c:match("%s") then
      i = i + 1
    elseif c == "#" and at_line_start then
      -- a preprocessor line, with its continuations
      local j = i
      repeat
        local e = text:find("\n", j, true) or n + 1
        local line_end = e
        j = e + 1
        if text:sub(line_end - 1, line_end - 1) ~= "\\" then break end
      until j > n
      local line = text:sub(i, j - 1)
      local q = line:match('^#%s*include%s*"([^"]+)"')
      if q then includes[#includes + 1] = base(q) end
      local s = line:match("^#%s*include%s*<([^>]+)>")
      if s then system[#system + 1] = s end
      i = j
      at_line_start = true
    elseif text:sub(i, i + 1) == "/*" then
      local e = text:find("*/", i + 2, true)
      i = e and e + 2 or n + 1
    elseif text:sub(i, i + 1) == "//" then
      i = text:find("\n", i, true) or n + 1
    elseif c == '"' or c == "'" then
      local j = i + 1
      while j <= n do
        local d = text:sub(j, j)
        if d == "\\" then j = j + 2
        elseif d == c then break
        else j = j + 1 end
      end
      toks[#toks + 1] = "<lit>"
      i = j + 1
      at_line_start = false
    elseif c:match("[%a_]") then
      local w = text:match("^[%w_]+", i)
      toks[#toks + 1] = w
      i = i + #w
      at_line_start = false
    elseif c:match("%d") then
      local w = text:match("^[%w_.]+", i)
      toks[#toks + 1] = "<num>"
      i = i + #w
      at_line_start = false
    else
      toks[#toks + 1] = c
      i = i + 1
      at_line_start = false
    end
  end
  return toks, includes, system
end

--- Definitions with external linkage (name -> true) and every name used
-- (name -> true) in the tokens.
local function defs_and_uses(toks)
  local defs, uses = {}, {}
  local depth = 0
  local decl_static = false -- "static" seen in this file-level declaration
  local in_init = false     -- after "=" in a file-level declaration
  local externs = 0 -- open `extern "C" {` blocks: they hold file-level code
  local i, n = 1, #toks
  while i <= n do
    local t = toks[i]
    if depth == 0 and t == "extern" and toks[i + 1] == "<lit>" and toks[i + 2] == "{" then
      externs = externs + 1
      i = i + 2
    elseif depth == 0 and t == "}" and externs > 0 then
      externs = externs - 1
    elseif t == "{" then
      depth = depth + 1
    elseif t == "}" then
      depth = depth - 1
      if depth == 0 then decl_static, in_init = false, false end
    elseif depth == 0 and t == ";" then
      decl_static, in_init = false, false
    elseif depth == 0 and t == "=" then
      in_init = true
    elseif depth == 0 and t == "static" then
      decl_static = true
    elseif t:match("^[%a_]") then
      if depth == 0 and not in_init and toks[i + 1] == "(" then
        -- a declaration or a definition: find the closing parenthesis
        local j, p = i + 1, 0
        repeat
          if toks[j] == "(" then p = p + 1 elseif toks[j] == ")" then p = p - 1 end
          j = j + 1
        until p == 0 or j > n
        if toks[j] == "{" and not decl_static then defs[t] = true end
        -- the parameter list names types, not dependencies worth a call edge
        -- (types are reached through the includes)
        i = j - 1
      elseif depth > 0 or in_init then
        uses[t] = true
      end
    end
    i = i + 1
  end
  return defs, uses
end

local info = {} -- file -> {includes, system, defs, uses, mdb}
local owner = {} -- function name -> file defining it
local present = {}
for _, f in ipairs(files) do present[base(f)] = f end
for _, f in ipairs(files) do
  local h = assert(io.open(f, "rb"))
  local text = h:read("a")
  h:close()
  local toks, includes, system = scan(text)
  local defs, uses = defs_and_uses(toks)
  local mdb = false
  for name in pairs(uses) do
    if name:match("^mdb_") then mdb = true end
  end
  info[base(f)] = { includes = includes, system = system, defs = defs, uses = uses,
                    mdb = mdb }
  for name in pairs(defs) do
    if owner[name] and owner[name] ~= base(f) then
      io.stderr:write(string.format("depgraph: %s is defined in both %s and %s\n",
        name, owner[name], base(f)))
    end
    owner[name] = base(f)
  end
end

-- Edges: file -> set of files, with the reason of the first edge found.
local names = {}
for name in pairs(info) do names[#names + 1] = name end
table.sort(names)
local edges, why = {}, {}
local function edge(a, b, reason)
  if a == b or not info[b] then return end
  edges[a] = edges[a] or {}
  if not edges[a][b] then
    edges[a][b] = true
    why[a .. ">" .. b] = reason
  end
end
for _, f in ipairs(names) do
  local fi = info[f]
  for _, inc in ipairs(fi.includes) do
    local c = inc:gsub("%.h$", ".c")
    if c ~= f then -- x.c including its own x.h is no dependency
      edge(f, inc, "includes")
      edge(f, c, "includes " .. inc)
    end
  end
  local calls = {}
  for name in pairs(fi.uses) do
    local o = owner[name]
    if o and o ~= f then
      calls[o] = calls[o] or {}
      calls[o][#calls[o] + 1] = name
    end
  end
  for o, list in pairs(calls) do
    table.sort(list)
    edge(f, o, "uses " .. table.concat(list, ", "))
  end
end
-- a header stands for its .c file
for _, f in ipairs(names) do
  if f:match("%.h$") then
    local c = f:gsub("%.h$", ".c")
    if info[c] then edge(f, c, "declares") end
  end
end

-- Strongly connected components (Tarjan): a component of more than one
-- file is a cycle.
local index, low, onstack, stack, comps, counter = {}, {}, {}, {}, {}, 0
local function strong(v)
  counter = counter + 1
  index[v], low[v] = counter, counter
  stack[#stack + 1] = v
  onstack[v] = true
  local out = {}
  for w in pairs(edges[v] or {}) do out[#out + 1] = w end
  table.sort(out)
  for _, w in ipairs(out) do
    if not index[w] then
      strong(w)
      if low[w] < low[v] then low[v] = low[w] end
    elseif onstack[w] and index[w] < low[v] then
      low[v] = index[w]
    end
  end
  if low[v] == index[v] then
    local comp = {}
    repeat
      local w = table.remove(stack)
      onstack[w] = false
      comp[#comp + 1] = w
    until w == v
    table.sort(comp)
    comps[#comps + 1] = comp
  end
end
for _, f in ipairs(names) do
  if not index[f] then strong(f) end
end
local comp_of = {}
for i, c in ipairs(comps) do
  for _, f in ipairs(c) do comp_of[f] = i end
end

-- The graph among .c files: A.c -> B.c when A uses B, or reaches B.c
-- through the headers it includes.
local cdeps = {}
for _, f in ipairs(names) do
  if f:match("%.c$") then
    local out, seen = {}, {}
    local function walk(v)
      for w in pairs(edges[v] or {}) do
        if not seen[w] then
          seen[w] = true
          if w:match("%.c$") then
            if w ~= f then out[w] = true end
          else
            walk(w)
          end
        end
      end
    end
    walk(f)
    cdeps[f] = out
  end
end

-- Layer of each .c file: 0 without dependencies, else 1 + the highest
-- layer it depends on (files of one cycle share a layer).
local layer = {}
local function layer_of(f, seen)
  if layer[f] then return layer[f] end
  seen = seen or {}
  if seen[f] then return 0 end
  seen[f] = true
  local l = 0
  for w in pairs(cdeps[f] or {}) do
    if comp_of[w] ~= comp_of[f] then
      local lw = layer_of(w, seen) + 1
      if lw > l then l = lw end
    end
  end
  layer[f] = l
  return l
end
for f in pairs(cdeps) do layer_of(f) end

-- Who sees lmdb.h: directly or through the headers it includes.
local function sees_lmdb(f, seen)
  seen = seen or {}
  if seen[f] then return false end
  seen[f] = true
  local fi = info[f]
  for _, s in ipairs(fi.system) do if s == "lmdb.h" then return true end end
  for _, inc in ipairs(fi.includes) do
    if info[inc] and sees_lmdb(inc, seen) then return true end
  end
  return false
end

local problems = {}

if dot then
  print("digraph dynafile {")
  print("  rankdir=BT; node [shape=box, fontname=monospace];")
  for _, f in ipairs(names) do
    for _, w in ipairs((function()
      local l = {}
      for x in pairs(edges[f] or {}) do l[#l + 1] = x end
      table.sort(l)
      return l
    end)()) do
      print(string.format('  "%s" -> "%s";', f, w))
    end
  end
  print("}")
else
  print("C dependency graph (scripts/depgraph.lua)")
  print(".c files by layer: file [layer] -> the .c files it depends on")
  local by_layer, max_layer = {}, 0
  for _, f in ipairs(names) do
    local l = layer[f]
    if l then
      by_layer[l] = by_layer[l] or {}
      table.insert(by_layer[l], f)
      if l > max_layer then max_layer = l end
    end
  end
  for l = 0, max_layer do
    for _, f in ipairs(by_layer[l] or {}) do
      local deps = {}
      for w in pairs(cdeps[f]) do deps[#deps + 1] = w end
      table.sort(deps, function(a, b)
        if layer[a] ~= layer[b] then return layer[a] < layer[b] end
        return a < b
      end)
      print(string.format("  %-14s [%d] -> %s", f, l,
        #deps > 0 and table.concat(deps, " ") or "(nothing)"))
    end
  end
  print("headers: header -> what it includes (a header stands for its .c)")
  for _, f in ipairs(names) do
    if f:match("%.h$") then
      local fi = info[f]
      local incs = {}
      for _, inc in ipairs(fi.includes) do incs[#incs + 1] = inc end
      for _, sys in ipairs(fi.system) do
        if sys == "lmdb.h" then incs[#incs + 1] = "<lmdb.h>" end
      end
      print(string.format("  %-14s -> %s", f,
        #incs > 0 and table.concat(incs, " ") or "(nothing)"))
    end
  end
end

for _, c in ipairs(comps) do
  if #c > 1 then
    local lines = {}
    for _, a in ipairs(c) do
      for _, b in ipairs(c) do
        if edges[a] and edges[a][b] then
          local r = why[a .. ">" .. b]
          if #r > 70 then r = r:sub(1, 67) .. "..." end
          lines[#lines + 1] = string.format("    %s -> %s (%s)", a, b, r)
        end
      end
    end
    problems[#problems + 1] = "cycle among " .. table.concat(c, " ") .. ":\n"
      .. table.concat(lines, "\n")
  end
end

local mdb_files, lmdb_seers = {}, {}
for _, f in ipairs(names) do
  if info[f].mdb then mdb_files[#mdb_files + 1] = f end
  if f:match("%.c$") and sees_lmdb(f) then
    lmdb_seers[#lmdb_seers + 1] = f
    if not info[f].mdb then
      problems[#problems + 1] = f .. " sees lmdb.h but calls no mdb_ function"
    end
  end
end
if #mdb_files > MDB_FILES_MAX then
  problems[#problems + 1] = string.format("%d files call LMDB (at most %d): %s",
    #mdb_files, MDB_FILES_MAX, table.concat(mdb_files, " "))
end
if not dot then
  print(string.format("LMDB (mdb_*) called in %d files: %s", #mdb_files,
    table.concat(mdb_files, " ")))
  print(string.format("lmdb.h seen by %d .c files: %s", #lmdb_seers,
    table.concat(lmdb_seers, " ")))
  local ncycles = 0
  for _, c in ipairs(comps) do if #c > 1 then ncycles = ncycles + 1 end end
  print(string.format("cycles: %d", ncycles))
end

if #problems > 0 then
  for _, p in ipairs(problems) do io.stderr:write("depgraph: ", p, "\n") end
  os.exit(1)
end
