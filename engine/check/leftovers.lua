-- `halo cleanup`: restore what runs that were killed outright (kill -9, a
-- crash of the host) left changed in their targets. Each run journals the
-- faults it injected and the fixtures it created and has not undone
-- (core/undo.c's journal, one file per process under the state
-- directory); a file whose process is gone is replayed here — a killed
-- container started, a paused one unpaused, a service recreated with other
-- environment (or a skewed clock) brought back with a plain compose up, a
-- container's lowered limits put back (mod/docker/faults.lua), a fixture removed with
-- the request its run registered (mod/undo.lua) — and removed once
-- everything in it is restored. Containers come first, so the stack serves
-- the requests that remove fixtures; fixtures go newest first, as the run
-- itself would have removed them (mod/undo.lua restores each entry).
local internal, dry_run = ...
local paths = { select(3, ...) }
local json = require "json"
require "undo" -- internal.restore_entry, describe_entry, ordered_entries (mod/undo.lua)

local format, tostring, pcall, ipairs, type = string.format, tostring, pcall, ipairs, type
local function pid_of(doc) return format("%d", math.tointeger(doc.pid) or 0) end

local time = require "time"

-- A worker whose runner is gone (killed outright; the worker missed it, or
-- is still undoing): it would go on injecting faults while this restores.
-- Asked to stop (SIGTERM: it cancels its check and undoes what it can),
-- then waited for; what it could not undo is left in its journal.
local ORPHAN_WAIT = 30
local function orphaned(doc)
  return doc.in_worker and math.tointeger(doc.runner) and doc.runner > 1
     and not internal.process_alive(doc.runner, doc.runner_start)
end

local function stop_orphan(doc, path)
  print(format("run %s: its worker %s outlived its runner: asking it to stop (it undoes its own changes first)",
               format("%d", math.tointeger(doc.runner)), pid_of(doc)))
  if dry_run == "dry-run" then return nil end
  internal.terminate(doc.pid, doc.start)
  local waited = 0
  while internal.process_alive(doc.pid, doc.start) and waited < ORPHAN_WAIT do
    time.sleep(0.1)
    waited = waited + 0.1
  end
  if internal.process_alive(doc.pid, doc.start) then
    print(format("worker %s still runs after %d s: left alone", pid_of(doc), ORPHAN_WAIT))
    return nil
  end
  print(format("worker %s stopped after %.1f s", pid_of(doc), waited))
  -- what it could not undo itself, if anything
  return internal.exists(path) and json.decode(internal.read_head(path, 1 << 20) or "") or false
end

local left, failed = 0, 0
for _, path in ipairs(paths) do
  local doc = json.decode(internal.read_head(path, 1 << 20) or "")
  local settled = false -- an orphan that undid everything, still runs, or a dry run: nothing to restore
  if type(doc) == "table" and type(doc.entries) == "table" and internal.process_alive(doc.pid, doc.start)
     and orphaned(doc) then
    local after = stop_orphan(doc, path)
    if type(after) == "table" then doc = after else settled = true end
  end
  if settled then
    -- said above
  elseif type(doc) ~= "table" or type(doc.entries) ~= "table" then
    print(path .. ": not a halo journal; left as it is")
  elseif internal.process_alive(doc.pid, doc.start) then
    print(format("run %s is still going: what it changed is its own to undo", pid_of(doc)))
  else
    local bad = 0
    for _, e in ipairs(internal.ordered_entries(doc.entries)) do
      left = left + 1
      if dry_run == "dry-run" then
        print(format("run %s (gone) left: %s", pid_of(doc), internal.describe_entry(e)))
      else
        local ok, what = pcall(internal.restore_entry, e)
        if ok then
          print(format("run %s (gone): %s", pid_of(doc), what))
        else
          bad = bad + 1
          print(format("run %s (gone): could not %s: %s", pid_of(doc), internal.describe_entry(e), tostring(what)))
        end
      end
    end
    if dry_run ~= "dry-run" and bad == 0 then internal.journal_forget(path) end
    failed = failed + bad
  end
end
if left == 0 then print("nothing left behind by a killed run") end
if failed > 0 then error(format("%d change%s could not be restored (the journal is kept)", failed, failed == 1 and "" or "s"), 0) end
