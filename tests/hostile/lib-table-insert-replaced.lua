-- expect: PASS
-- Replaces the table library's functions with ones that misbehave and
-- plants a member; t keeps working on its own captured functions. The
-- canary must find the table library pristine.
return {
  title = "table.insert replaced",
  timeout = 2,
  run = function(t)
    table.insert = function(list, v) list[#list + 1] = "tampered" end
    table.concat = function() return "tampered" end
    table.sort = function() error("tampered table.sort") end
    table.unpack, table.remove = nil, nil
    table.HALO_HOSTILE = "planted"
    local l = {}
    table.insert(l, "x")
    t:expect(l[1] == "tampered", "table.insert was not replaced")
    t:log("logging still works", 1, 2)
    t:evidence("list", { 1, 2, 3 })
  end,
}
