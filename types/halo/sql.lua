---@meta sql
-- LuaCATS annotations for halo's `sql` module (docs/modules.md#sql).

---@class halo.SqlQuery
---@field sql string
---@field params? any[] $1, $2, ...: strings, numbers, booleans, nil or json.null
---@field timeout? number seconds; past it `nil, err` (kind timeout), the query cancelled

---A connection; to-be-closed (`local conn <close> = ...`).
---@class halo.SqlConn
local Conn = {}

---`rows, columns` (each row keyed by column name), or `nil, err`.
---@param query string|halo.SqlQuery
---@param ... any parameters $1, $2, ...
---@return table<string, any>[]? rows
---@return string[]|halo.Error columns_or_err
function Conn:query(query, ...) end

---The number of rows affected, or `nil, err`.
---@param query string|halo.SqlQuery
---@param ... any
---@return integer? affected
---@return halo.Error? err
function Conn:exec(query, ...) end

---@return string version like "15.20"
function Conn:server_version() end

---Closes it (twice is fine).
function Conn:close() end

---@class halo.sqllib
local sql = {}

---A connection, or `nil, err` (kind connect, timeout, sql, too_large, closed).
---@param conninfo string a libpq conninfo string or a postgres:// URL
---@param opts? { connect_timeout?: number, max_rows?: integer, max_bytes?: integer }
---@return halo.SqlConn? conn
---@return halo.Error? err
function sql.connect(conninfo, opts) end

return sql
