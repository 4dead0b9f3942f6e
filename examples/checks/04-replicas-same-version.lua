-- Example check (docs/writing-checks.md walks through it): every replica
-- runs the same version of the app. A rolling upgrade that stopped half
-- way leaves the LB mixing two versions, and every other HA check then
-- tests a stack that is not one thing. Copy it into scripts/checks/ (as
-- 07-replicas-same-version.lua) to make it part of every run.
local pulp = require "pulp"

return {
  title = "Every replica runs the same app version",
  tags = { "example", "version" },
  timeout = 30,
  requires = function(stack)
    if not stack.replicas then return false, "the stack file names no replicas" end
    return true
  end,
  run = function(t, stack)
    local versions, replicas_of = {}, {}
    for _, name in ipairs(pulp.replica_names(stack)) do
      local health, err = t:step("read /health on " .. name, function()
        return pulp.replica(stack, name):health()
      end)
      if t:expect(health, "%s does not answer /health: %s", name, tostring(err)) then
        local version = tostring(health.version)
        versions[name] = version
        replicas_of[version] = replicas_of[version] or {}
        table.insert(replicas_of[version], name)
      end
    end
    t:evidence("versions", versions)

    local seen = {}
    for version, names in pairs(replicas_of) do
      seen[#seen + 1] = string.format("%s on %s", version, table.concat(names, ", "))
    end
    table.sort(seen)
    t:expect(#seen <= 1, "the replicas run %d versions: %s", #seen, table.concat(seen, "; "))
  end,
}
