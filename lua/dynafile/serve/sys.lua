--- dynafile.serve.sys: the few system calls the server needs, through
-- LuaJIT's FFI (nginx's Lua is LuaJIT): directory fsync and removal, an
-- exclusive lock on the data directory, process liveness, and tying the
-- nginx master's life to the `dynafile serve` process that started it.
--
-- Invariant: every function returns nil and a message (strerror) on
-- failure and never raises, except when loaded outside LuaJIT.
-- @module dynafile.serve.sys

local ffi = require "ffi"

local C = ffi.C
local string_format = string.format

ffi.cdef [[
int open(const char *path, int flags, ...);
int close(int fd);
int fsync(int fd);
int ftruncate(int fd, int64_t length);
long write(int fd, const void *buf, size_t n);
int unlink(const char *path);
int rmdir(const char *path);
int mkdir(const char *path, unsigned int mode);
int flock(int fd, int op);
int kill(int pid, int sig);
int getppid(void);
int getpid(void);
int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
char *strerror(int errnum);
typedef struct dynafile_serve_DIR dynafile_serve_DIR;
dynafile_serve_DIR *opendir(const char *name);
int closedir(dynafile_serve_DIR *d);
struct dynafile_serve_dirent {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[256];
};
struct dynafile_serve_dirent *readdir(dynafile_serve_DIR *d);
]]

local M = {}

local O_RDONLY, O_WRONLY, O_CREAT, O_DIRECTORY, O_CLOEXEC = 0, 1, 64, 65536, 524288
local LOCK_EX, LOCK_NB = 2, 4
local ENOENT, ESRCH, EEXIST = 2, 3, 17
local PR_SET_PDEATHSIG = 1
local DT_DIR = 4

local function fail(what)
  local e = ffi.errno()
  return nil, string_format("%s: %s", what, ffi.string(C.strerror(e))), e
end

--- fsync a directory, so the entries created, renamed or removed in it
-- survive a crash of the machine.
function M.fsync_dir(path)
  local fd = C.open(path, O_RDONLY + O_DIRECTORY + O_CLOEXEC)
  if fd < 0 then return fail("open " .. path) end
  local rc = C.fsync(fd)
  local ok, msg = true, nil
  if rc ~= 0 then ok, msg = fail("fsync " .. path) end
  C.close(fd)
  return ok, msg
end

--- Create a directory (mode 0755); an existing one is fine.
function M.mkdir(path)
  if C.mkdir(path, tonumber("755", 8)) ~= 0 then
    if ffi.errno() == EEXIST then return true end
    return fail("mkdir " .. path)
  end
  return true
end

--- The names in a directory (without . and ..), with is_dir flags; nil
-- and a message when it cannot be read, an empty list when it is missing.
function M.list_dir(path)
  local d = C.opendir(path)
  if d == nil then
    if ffi.errno() == ENOENT then return {}, {} end
    return fail("opendir " .. path)
  end
  local names, dirs = {}, {}
  while true do
    local e = C.readdir(d)
    if e == nil then break end
    local name = ffi.string(e.d_name)
    if name ~= "." and name ~= ".." then
      names[#names + 1] = name
      dirs[name] = (e.d_type == DT_DIR)
    end
  end
  C.closedir(d)
  return names, dirs
end

--- Remove a directory and everything in it (it holds files and
-- directories of files: a database, or a tree of them).  A missing path
-- is fine.
function M.remove_tree(path)
  local names, dirs = M.list_dir(path)
  if not names then return nil, dirs end
  for _, name in ipairs(names) do
    local p = path .. "/" .. name
    if dirs[name] then
      local ok, msg = M.remove_tree(p)
      if not ok then return nil, msg end
    elseif C.unlink(p) ~= 0 and ffi.errno() ~= ENOENT then
      return fail("unlink " .. p)
    end
  end
  if C.rmdir(path) ~= 0 and ffi.errno() ~= ENOENT then return fail("rmdir " .. path) end
  return true
end

--- Take an exclusive lock on a file (created when missing), without
-- waiting.  The descriptor stays open, so the lock is held by this process
-- and by the processes it forks until all of them exit.
-- @treturn number|nil the descriptor; nil, message, errno when the file
--   is locked (EWOULDBLOCK) or cannot be opened
function M.lock_file(path)
  local fd = C.open(path, O_WRONLY + O_CREAT, tonumber("644", 8))
  if fd < 0 then return fail("open " .. path) end
  if C.flock(fd, LOCK_EX + LOCK_NB) ~= 0 then
    local r1, r2, r3 = fail("lock " .. path)
    C.close(fd)
    return r1, r2, r3
  end
  -- the holder's pid, for a message (and to know a reload of nginx)
  local pid = tostring(C.getpid()) .. "\n"
  if C.ftruncate(fd, 0) == 0 then C.write(fd, pid, #pid) end
  return fd
end

--- The pid written into a lock file by its holder (lock_file), or nil.
function M.lock_holder(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("l")
  f:close()
  return tonumber(s or "")
end

--- Whether a process exists.
function M.alive(pid)
  if C.kill(pid, 0) == 0 then return true end
  return ffi.errno() ~= ESRCH
end

--- Send a signal.
function M.kill(pid, sig)
  if C.kill(pid, sig) ~= 0 then return fail("kill") end
  return true
end

--- This process's id and its parent's.
function M.getpid() return C.getpid() end
function M.getppid() return C.getppid() end

--- Ask the kernel to send `sig` to this process when its parent exits.
function M.die_with_parent(sig)
  if C.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) ~= 0 then return fail("prctl") end
  return true
end

return M
