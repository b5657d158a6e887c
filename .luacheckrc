-- luacheck configuration for dynafile (make lint).
std = "max"
max_line_length = 100
exclude_files = { "build/**" }

-- busted's globals in the specs.
files["spec/**/*.lua"] = { std = "+busted" }
files["spec/*.lua"] = { std = "+busted" }

-- wrk's script globals (make bench-serve).
files["bench/serve/wrk.lua"] = { globals = { "wrk", "init", "request", "done" } }
