---@meta
-- LuaCATS annotations for a stack file's globals (engine/check/stack.c,
-- docs/operator-guide.md): a stack file runs with data helpers only
-- (string, table, math, os, utf8, ...) and these.

---The environment variable's value, or `default`.
---@param name string
---@param default? string
---@return string?
function env(name, default) end

---The environment variable's value, registered for redaction: it never
---appears in halo's output. Raises when unset and no default is given, or
---shorter than 4 characters.
---@param name string
---@param default? string
---@return string
function secret(name, default) end

---The table another stack file returns; `file` is relative to this one.
---@param file string
---@return halo.Stack
function include(file) end

---The directory of the stack file being evaluated.
---@type string
stack_dir = ""
