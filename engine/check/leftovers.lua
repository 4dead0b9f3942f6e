-- `halo cleanup`: restore what runs that were killed outright (kill -9, a
-- crash of the host) left changed in their targets. Each run journals the
-- faults it injected and has not undone (internal.c's journal, one file
-- per process under the state directory); a file whose process is gone is
-- replayed here — a killed container started, a paused one unpaused, a
-- service recreated with other environment brought back with a plain
-- compose up — and removed once everything in it is restored.
local internal, dry_run = ...
local paths = { select(3, ...) }
local docker = require "docker"
local json = require "json"

local format, tostring, pcall, ipairs, type = string.format, tostring, pcall, ipairs, type
local function pid_of(doc) return format("%d", math.tointeger(doc.pid) or 0) end
local stack = internal.stack()

local function describe(e)
  if e.undo == "compose up" then
    return format("recreate service %s of project %s with its own configuration", tostring(e.service), tostring(e.project))
  end
  return format("%s container %s (project %s)", tostring(e.undo), tostring(e.container), tostring(e.project))
end

-- restore(e) -> what was done
local function restore(e)
  -- the docker module acts only inside the stack's project: this entry's
  stack.compose = { project = e.project, files = e.files }
  if e.undo == "compose up" then
    local compose = docker.compose{ files = e.files, project = e.project, cwd = e.cwd,
                                    env_file = type(e.env_file) == "string" and e.env_file or nil }
    assert(compose:up{ services = { e.service }, no_deps = true })
    return "recreated " .. e.service .. " with its own configuration"
  end
  local c = docker.container(e.id)
  if not c then return e.container .. " is gone: nothing to restore" end
  local info = assert(c:inspect())
  local state = info.State or {}
  if e.undo == "unpause" then
    if not state.Paused then return c.name .. " is not paused" end
    assert(c:unpause())
    return "unpaused " .. c.name
  end
  if state.Running then return c.name .. " is running" end
  assert(c:start())
  return "started " .. c.name
end

local left, failed = 0, 0
for _, path in ipairs(paths) do
  local doc = json.decode(internal.read_head(path, 1 << 20) or "")
  if type(doc) ~= "table" or type(doc.entries) ~= "table" then
    print(path .. ": not a halo journal; left as it is")
  elseif internal.process_alive(doc.pid, doc.start) then
    print(format("run %s is still going: what it changed is its own to undo", pid_of(doc)))
  else
    local bad = 0
    for _, e in ipairs(doc.entries) do
      left = left + 1
      if dry_run == "dry-run" then
        print(format("run %s (gone) left: %s", pid_of(doc), describe(e)))
      else
        local ok, what = pcall(restore, e)
        if ok then
          print(format("run %s (gone): %s", pid_of(doc), what))
        else
          bad = bad + 1
          print(format("run %s (gone): could not %s: %s", pid_of(doc), describe(e), tostring(what)))
        end
      end
    end
    if dry_run ~= "dry-run" and bad == 0 then internal.journal_forget(path) end
    failed = failed + bad
  end
end
if left == 0 then print("nothing left behind by a killed run") end
if failed > 0 then error(format("%d change%s could not be restored (the journal is kept)", failed, failed == 1 and "" or "s"), 0) end
