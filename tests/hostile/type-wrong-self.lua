-- expect: PASS
-- Every host method called with the wrong self -- another kind of host
-- value, a plain table, a forged __name, json.null, nil, a number -- and
-- through the metatables that are visible. Each call fails with a "bad
-- argument" error (caught here), and the check goes on and passes.
local http, task, sql, json = require "http", require "task", require "sql", require "json"
return {
  title = "host methods with the wrong self",
  timeout = 2,
  run = function(t, stack)
    local h = task.spawn(function() return 1 end)
    local res = assert(http.get(stack.server .. "/fast"))
    local conn = assert(sql.connect(stack.pg))
    local client = http.client { base = stack.server }
    local fake = setmetatable({}, { __name = "halo.task" })
    local others = { h, res, conn, client, fake, json.null, 42, "text", false, {} }
    local methods = {
      ["task:join"] = h.join, ["task:cancel"] = h.cancel, ["task:status"] = h.status, ["task:id"] = h.id,
      ["conn:query"] = conn.query, ["conn:exec"] = conn.exec, ["conn:close"] = conn.close,
      ["conn:server_version"] = conn.server_version,
    }
    for name, method in pairs(methods) do
      local kind = name:match("^(%w+):")
      for i, other in ipairs(others) do
        local real = (kind == "task" and other == h) or (kind == "conn" and other == conn)
        if not real then
          local ok, err = pcall(method, other)
          t:expect(not ok and tostring(err):match("bad argument #1"), "%s with other #%d gave %s",
                   name, i, tostring(err))
        end
      end
    end
    for _, name in ipairs { "json", "header", "header_values" } do
      local ok, err = pcall(res[name], h, "x")
      t:expect(not ok and tostring(err):match("bad argument #1"), "res:%s with a task gave %s", name, tostring(err))
    end
    for _, name in ipairs { "get", "post", "request" } do
      local ok, err = pcall(client[name], conn, "/fast")
      t:expect(not ok and tostring(err):match("bad argument #1"), "client:%s with a conn gave %s", name, tostring(err))
    end
    t:expect(getmetatable(h) == false and getmetatable(conn) == false, "task/conn metatables are visible")
    t:expect(h:join() == 1, "the real task is broken after the confusion")
    conn:close()
  end,
}
