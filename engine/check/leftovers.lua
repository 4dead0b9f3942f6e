-- `halo cleanup`: restore what runs that were killed outright (kill -9, a
-- crash of the host) left changed in their targets. Each run journals the
-- faults it injected and the fixtures it created and has not undone
-- (core/undo.c's journal, one file per process under the state
-- directory); a file whose process is gone is replayed here — a killed
-- container started, a paused one unpaused, a service recreated with other
-- environment brought back with a plain compose up, a fixture removed with
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

local left, failed = 0, 0
for _, path in ipairs(paths) do
  local doc = json.decode(internal.read_head(path, 1 << 20) or "")
  if type(doc) ~= "table" or type(doc.entries) ~= "table" then
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
