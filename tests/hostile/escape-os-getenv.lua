-- expect: PASS
-- os keeps only its clock and calendar functions: getenv, remove, rename,
-- tmpname, setlocale, execute and exit are all absent, also in a chunk
-- loaded with load, and os.date refuses a bad conversion instead of
-- reading past its buffer.
return {
  title = "os has only time functions",
  timeout = 2,
  run = function(t)
    for _, name in ipairs { "getenv", "remove", "rename", "tmpname", "setlocale", "execute", "exit" } do
      t:expect(os[name] == nil, "os.%s is available", name)
      t:expect(load("return os." .. name)() == nil, "os.%s is available to a loaded chunk", name)
    end
    local names = {}
    for k in pairs(os) do names[#names + 1] = k end
    table.sort(names)
    t:expect(table.concat(names, ",") == "clock,date,difftime,time", "os has %s", table.concat(names, ","))
    local ok, err = pcall(os.date, "%Ez")
    t:expect(not ok and tostring(err):match("invalid conversion specifier"), "os.date('%%Ez') gave %s", tostring(err))
    t:expect(type(os.time()) == "number" and type(os.clock()) == "number", "the clock functions are broken")
  end,
}
