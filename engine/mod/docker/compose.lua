-- docker.compose: a compose project's handle (mod/docker.lua loads this
-- file with internal.load). up with extra environment is a fault like a
-- kill: journalled before compose runs, undone by a plain up of the
-- service. Returns the Compose class and the journal keys it keeps, which
-- the clock skew (mod/docker/faults.lua) shares.
local M, internal, d = ...
local fail, may_inject, stack_project = d.fail, d.may_inject, d.stack_project
local check_options = internal.check_options
local json = require "json"
local time = require "time"
local proc = require "proc"

local type, error, pairs, ipairs, tostring, setmetatable, pcall, next = type, error, pairs, ipairs, tostring, setmetatable, pcall, next
local format, concat, sort = string.format, table.concat, table.sort
-- string functions as locals, never methods (see docker.lua)
local sub, match, gsub = string.sub, string.match, string.gsub

local Compose = {}
Compose.__index = Compose

local compose_cmd -- { "docker", "compose" } or { "docker-compose" }

local function find_compose()
  if compose_cmd then return compose_cmd end
  local ok, r = pcall(proc.run, { argv = { "docker", "compose", "version" }, timeout = 20 })
  if ok and r and r.code == 0 then
    compose_cmd = { "docker", "compose" }
  else
    compose_cmd = { "docker-compose" }
  end
  return compose_cmd
end

-- docker.compose{ files = {...}, project = name, env = { K = v }, cwd = dir, env_file = path or {paths} };
-- docker.compose() is the stack file's (stack.compose: files, project, env_file)
function M.compose(opts)
  if opts == nil then
    local sc = (internal.stack() or {}).compose
    if type(sc) ~= "table" or not sc.files then
      error("bad argument #1 to 'compose' (no table, and the stack file names no compose.files)", 2)
    end
    opts = { files = sc.files, project = sc.project, env_file = sc.env_file }
  end
  if type(opts) ~= "table" then error("bad argument #1 to 'compose' (table expected)", 2) end
  check_options("compose", 1, opts, { "files", "project", "env", "cwd", "env_file" })
  local files = opts.files
  if type(files) == "string" then files = { files } end
  if type(files) ~= "table" or #files == 0 then error("bad argument #1 to 'compose' (files must list compose files)", 2) end
  local project = opts.project or stack_project()
  if not project then error("bad argument #1 to 'compose' (no project, and the stack names none)", 2) end
  local env_file = opts.env_file
  if type(env_file) == "table" then
    for i, candidate in ipairs(env_file) do
      if type(candidate) ~= "string" then
        error(format("bad argument #1 to 'compose' (env_file[%d] must be a path)", i), 2)
      end
    end
  elseif env_file ~= nil and type(env_file) ~= "string" then
    error("bad argument #1 to 'compose' (env_file must be a path or a list of them)", 2)
  end
  return setmetatable({ files = files, project = project, env = opts.env or {}, cwd = opts.cwd,
                        env_file = opts.env_file }, Compose)
end

-- The settings file compose reads: env_file itself, or the first of its
-- candidates that exists (the reference stack's `up` writes it beside the
-- stack in a source tree, else under the user's state directory).
function Compose:settings_file()
  local f = self.env_file
  if type(f) ~= "table" then return f end
  for _, candidate in ipairs(f) do
    if internal.exists(candidate) then return candidate end
  end
  return nil
end

local STDERR_IN_MESSAGE = 2000 -- bytes of a failed compose's stderr in its error message

function Compose:run(args, extra_files, timeout)
  local argv = {}
  for _, a in ipairs(find_compose()) do argv[#argv + 1] = a end
  local env_file = self:settings_file()
  if env_file then
    argv[#argv + 1] = "--env-file"
    argv[#argv + 1] = env_file
  end
  argv[#argv + 1] = "-p"
  argv[#argv + 1] = self.project
  for _, f in ipairs(self.files) do argv[#argv + 1] = "-f" argv[#argv + 1] = f end
  for _, f in ipairs(extra_files or {}) do argv[#argv + 1] = "-f" argv[#argv + 1] = f end
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local r = proc.run{ argv = argv, env = self.env, cwd = self.cwd, timeout = timeout or 300 }
  if r.code ~= 0 then
    local why = r.timed_out and "timed out" or (r.code and ("exit " .. r.code) or ("signal " .. tostring(r.signal)))
    -- the end of what it said, where the reason is; all of it stays in err.stderr
    local said = gsub(r.stderr, "%s+$", "")
    if #said > STDERR_IN_MESSAGE then said = "…" .. sub(said, -STDERR_IN_MESSAGE) end
    return fail("compose", format("compose %s (%s): %s", concat(args, " "), why, said),
                { stdout = r.stdout, stderr = r.stderr })
  end
  return r
end

-- The compose file format version of the first file, so an override file
-- can declare the same (compose v1 refuses to merge mismatched versions).
local function file_version(path)
  local head = internal.read_head(path, 4096)
  return head and (match(head, "\nversion:%s*[\"']?([%d%.]+)") or match(head, "^version:%s*[\"']?([%d%.]+)"))
end

-- A double-quoted YAML scalar that compose takes literally: compose
-- interpolates $VAR in every value, and $$ is its escape for a plain $.
local function yaml_string(s)
  return '"' .. (gsub((gsub((gsub(tostring(s), '[\\"]', "\\%0")), "\n", "\\n")), "%$", "$$")) .. '"'
end

-- The journal keys of services recreated with other environment, by project.
local journalled = {}

-- :up{ services = {...}, no_deps = bool, env = { svc = { K = v } }, wait = bool }
function Compose:up(opts)
  opts = opts or {}
  check_options("up", 1, opts, { "services", "no_deps", "env", "timeout" })
  if opts.env and next(opts.env) then may_inject("recreate services of", "project " .. self.project) end
  local args = { "up", "-d" }
  if opts.no_deps then args[#args + 1] = "--no-deps" end
  local extra = {}
  if opts.env and next(opts.env) then
    local lines = {}
    local version = file_version(self.files[1])
    if version then lines[#lines + 1] = "version: " .. yaml_string(version) end
    lines[#lines + 1] = "services:"
    local services = {}
    for svc in pairs(opts.env) do services[#services + 1] = svc end
    sort(services)
    for _, svc in ipairs(services) do
      lines[#lines + 1] = "  " .. svc .. ":"
      -- which run changed it: `docker ps --filter label=io.halo.run` finds it
      lines[#lines + 1] = "    labels:"
      lines[#lines + 1] = "      io.halo.run: " .. yaml_string(internal.run_id())
      lines[#lines + 1] = "    environment:"
      local keys = {}
      for k in pairs(opts.env[svc]) do keys[#keys + 1] = k end
      sort(keys)
      for _, k in ipairs(keys) do lines[#lines + 1] = "      " .. k .. ": " .. yaml_string(opts.env[svc][k]) end
    end
    extra[1] = internal.temp_file(concat(lines, "\n") .. "\n", ".override.yml")
  end
  for _, s in ipairs(opts.services or {}) do args[#args + 1] = s end
  -- A service recreated with other environment stays changed until a plain
  -- `up` of it: journalled for `halo cleanup`, as container faults are —
  -- before compose runs, so a recreate cut short is restored too (a plain
  -- `up` of a service that was not changed changes nothing).
  journalled[self.project] = journalled[self.project] or {}
  for _, svc in ipairs(opts.services or {}) do
    local key = "compose " .. self.project .. " " .. svc
    if opts.env and opts.env[svc] then
      journalled[self.project][key] = true
      internal.journal(key, json.encode({ undo = "compose up", project = self.project, files = self.files,
                                          service = svc, cwd = self.cwd, env_file = self.env_file }))
    end
  end
  local r, err = self:run(args, extra, opts.timeout)
  for _, f in ipairs(extra) do internal.remove_temp(f) end
  if not r then return nil, err end
  for _, svc in ipairs(opts.services or {}) do
    local key = "compose " .. self.project .. " " .. svc
    if not (opts.env and opts.env[svc]) then
      journalled[self.project][key] = nil
      internal.journal(key, nil)
    end
  end
  internal.event("action", json.encode({ at = time.mono() - internal.origin(), action = "compose up",
                                         services = opts.services }))
  return true
end

-- :down{ volumes = bool }
function Compose:down(opts)
  opts = opts or {}
  may_inject("take down", "project " .. self.project)
  local args = { "down" }
  if opts.volumes then args[#args + 1] = "-v" end
  local r, err = self:run(args, nil, opts.timeout)
  if not r then return nil, err end
  -- its containers are gone, and with them anything there was to restore
  for key in pairs(journalled[self.project] or {}) do internal.journal(key, nil) end
  journalled[self.project] = nil
  return true
end

-- :ps() -> the project's containers (all states)
function Compose:ps()
  return M.containers{ project = self.project, all = true }
end

-- :logs{ services = {...}, since = t } -> lines from every container of the services
function Compose:logs(opts)
  opts = opts or {}
  local out = {}
  local list, err = M.containers{ project = self.project, all = true }
  if not list then return nil, err end
  local wanted
  if opts.services then
    wanted = {}
    for _, s in ipairs(opts.services) do wanted[s] = true end
  end
  for _, c in ipairs(list) do
    if not wanted or wanted[c.service] then
      local lines, lerr = c:logs{ since = opts.since }
      if not lines then return nil, lerr end
      for _, l in ipairs(lines) do l.service = c.service out[#out + 1] = l end
    end
  end
  return out
end

return Compose, journalled
