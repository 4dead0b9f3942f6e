-- Example check: a JSON document survives an encode/decode round trip, the
-- way a check reads an API's answer.
local json = require "json"

return {
  title = "JSON round trip keeps values and nulls",
  tags = { "example" },
  timeout = 5,
  run = function(t)
    local doc = { token = "a.b.c.d", tenantId = "default", parts = { 1, 2, 3 }, missing = json.null }
    local text = t:step("encode", json.encode, doc)
    local back = t:step("decode", json.decode, text)
    t:expect(back.token == doc.token, "token changed: %s", tostring(back.token))
    t:expect(back.missing == json.null, "null did not survive the round trip")
    t:expect(#back.parts == 3, "array has %d items", #back.parts)
    local bad, err = json.decode("{not json")
    t:expect(bad == nil and err ~= nil, "invalid JSON was accepted")
    t:evidence("encoded bytes", #text)
  end,
}
