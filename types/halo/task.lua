---@meta task
-- LuaCATS annotations for halo's `task` module (docs/modules.md#task).

---A task handle; to-be-closed: `local bg <close> = task.spawn(...)`
---cancels it when the scope ends.
---@class halo.Task
local Task = {}

---The task's return values once it finishes; re-raises its error. With
---`timeout` (seconds), `nil, err` (kind `timeout`) if it has not finished.
---@param timeout? number
---@return any ...
function Task:join(timeout) end

---Stops the task; `true` if it was still running.
---@return boolean
function Task:cancel() end

---@return "ready"|"waiting"|"running"|"done"|"failed"|"cancelled"
function Task:status() end

---Its number.
---@return integer
function Task:id() end

---@class halo.tasklib
local task = {}

---A task running `fn(...)` side by side with the caller.
---@param fn fun(...): ...
---@param ... any
---@return halo.Task
function task.spawn(fn, ...) end

---The running task.
---@return halo.Task
function task.current() end

return task
