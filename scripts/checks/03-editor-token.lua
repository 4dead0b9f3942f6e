-- Check 3: an editor token minted on api1 verifies on api2 — for reads and
-- for a mutation, in both header forms — the audit credits the minter, and
-- a tampered token is refused by both replicas.
local pulp = require "pulp"

return {
  title = "Editor token minted on api1 verifies on api2",
  tags = { "auth" },
  timeout = 60,
  run = function(t, stack)
    local keys = stack.keys or {}
    local api1 = pulp.replica(stack, "api1", { key = keys.editor or keys.admin })
    local actor = pulp.unique("halo-check-3")

    local token, tenant = t:step("mint an editor token on api1", function()
      return assert(api1:mint_editor_token{ actor = actor })
    end)
    t:evidence("token parts", pulp.parts(token))
    t:evidence("tenantId", tenant)
    t:expect(pulp.parts(token) == 4, "the token has %d dot-separated parts, not 4", pulp.parts(token))

    local header_form = pulp.replica(stack, "api2", { token = token })
    local bearer_form = pulp.replica(stack, "api2", { token = token, bearer = true })
    for _, each in ipairs({ { "x-editor-token", header_form }, { "Authorization: Bearer", bearer_form } }) do
      local form, api2 = each[1], each[2]
      local res, err = t:step("read on api2 with " .. form, function() return api2:call("GET", "/templates") end)
      t:expect(res and res.status == 200, "api2 rejected a token minted on api1 (%s): %s", form,
               res and ("HTTP " .. res.status) or tostring(err))
    end

    local key = pulp.unique("halo-check-3-template")
    local admin = pulp.lb(stack)
    t:defer(function() assert(admin:delete_template(key)) end)
    local ok, err = t:step("mutate on api2 with the token", function()
      return bearer_form:put_template(key, pulp.plain_template("check 3"))
    end)
    t:expect(ok, "api2 refused a mutation with a token minted on api1: %s", tostring(err))

    if ok then
      local entries = t:step("read the audit", function() return assert(admin:audit(200)) end)
      local credited
      for _, e in ipairs(entries) do
        if e.actor == actor then credited = e end
      end
      t:expect(credited, "no audit record credits the token's actor %s for the mutation on api2", actor)
      if credited then t:evidence("audit record", credited) end
    end

    local forged = pulp.tamper(token)
    for _, replica in ipairs({ "api1", "api2" }) do
      local res, rerr = pulp.replica(stack, replica, { token = forged }):call("GET", "/templates")
      t:expect(res and res.status == 401, "%s accepted a tampered token: %s", replica,
               res and ("HTTP " .. res.status) or tostring(rerr))
    end
  end,
}
