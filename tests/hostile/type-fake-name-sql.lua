-- expect: ERROR type-fake-name-sql\.lua:14: bad argument #1 to 'query' \(halo\.sql\.conn expected, got table\)
-- Type confusion: a plain table whose metatable claims __name =
-- "halo.sql.conn" passed as the self of a real connection's query. It
-- must be refused, and the message must say what was really passed (a
-- table), not echo the forged name back ("halo.sql.conn expected, got
-- halo.sql.conn" tells an operator nothing).
local sql = require "sql"
return {
  title = "a fake halo.sql.conn",
  timeout = 2,
  run = function(t, stack)
    local conn = assert(sql.connect(stack.pg))
    local fake = setmetatable({}, { __name = "halo.sql.conn" })
    conn.query(fake, "SELECT 1")
  end,
}
