-- expect: PASS
-- Option tables that fight back: an __index that raises, one that waits
-- (it cannot, inside the C call), one that spins a little, headers with
-- CR/LF in them, a URL with a scheme curl must not follow (file://).
-- Each request fails with a message or is refused; nothing is read from
-- the file system; no crash.
local http = require "http"
return {
  title = "http options that fight back",
  timeout = 2,
  run = function(t, stack)
    local ok, err = pcall(http.request, setmetatable({}, { __index = function() error("options exploded") end }))
    t:expect(not ok and tostring(err):match("options exploded"), "a raising __index gave %s", tostring(err))
    ok, err = pcall(http.request, setmetatable({ url = stack.server .. "/fast" }, { __index = function()
      require("time").sleep(1) end }))
    t:expect(not ok and tostring(err):match("yield across a C%-call boundary"), "a waiting __index gave %s", tostring(err))
    ok, err = pcall(http.get, stack.server .. "/forbidden/header", { headers = { ["x-evil"] = "a\r\nX-Injected: 1" } })
    t:expect(not ok and tostring(err):match("contains a newline"), "CR/LF in a header gave %s", tostring(err))
    ok, err = pcall(http.get, stack.server .. "/forbidden/header", { headers = { ["x-evil\r\nX-Injected"] = "1" } })
    t:expect(not ok and tostring(err):match("newline"), "CR/LF in a header name gave %s", tostring(err))
    for _, url in ipairs { "file:///etc/passwd", "gopher://127.0.0.1:1/", "dict://127.0.0.1:1/", "FILE:///etc/passwd" } do
      ok, err = pcall(http.get, url)
      t:expect(not ok and tostring(err):match("url must start with http:// or https://"), "%s gave %s", url, tostring(err))
    end
    local res, e = http.get(stack.server .. "/fast", { follow = true, headers = { host = "example.invalid" } })
    t:expect(res and res.status == 200, "a plain request after the abuse failed: %s", tostring(e))
  end,
}
