-- expect: ERROR unpack-huge-range\.lua:9: too many results to unpack
-- table.unpack of a hundred million slots: refused before anything is
-- pushed.
return {
  title = "table.unpack(t, 1, 1e8)",
  timeout = 2,
  run = function(t)
    t:log(select("#", table.unpack({}, 1, 1e6 - 100)) .. " values in a million-slot unpack")
    return table.unpack({}, 1, 1e8)
  end,
}
