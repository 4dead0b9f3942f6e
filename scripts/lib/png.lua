-- A valid PNG of random pixels, for the shared-asset check: large enough
-- to matter (hundreds of KB) and different every time, so no cache between
-- the client and the store can answer for a replica that cannot read it.
local zlib = require "zlib"
local pack, unpack, char, concat, random = string.pack, string.unpack, string.char, table.concat, math.random
local crc32 = zlib.crc32

local function chunk(kind, data)
  return pack(">I4", #data) .. kind .. data .. pack(">I4", crc32(kind .. data))
end

-- The image data as zlib "stored" blocks (level 0): no compression, so the
-- size is what was asked for and every byte is the random one written.
local function zlib_stored(raw)
  return zlib.deflate(raw, { level = 0 })
end

local SIGNATURE = "\137PNG\r\n\26\n"

-- png.idat(bytes) -> the concatenated payload of the IDAT chunks (the
-- compressed image data, which PDF writers copy into an image stream as
-- it is), or nil when the bytes are not a PNG.
local function idat(bytes)
  if bytes:sub(1, 8) ~= SIGNATURE then return nil end
  local parts, pos = {}, 9
  while pos + 8 <= #bytes + 1 do
    local length, kind = unpack(">I4c4", bytes, pos)
    if kind == "IDAT" then parts[#parts + 1] = bytes:sub(pos + 8, pos + 7 + length) end
    if kind == "IEND" then break end
    pos = pos + 12 + length
  end
  return #parts > 0 and concat(parts) or nil
end

-- png.random{ width = 300, height = 300 } -> bytes of an RGB PNG
return {
  idat = idat,
  random = function(opts)
    opts = opts or {}
    local w, h = opts.width or 300, opts.height or 300
    local rows = {}
    for y = 1, h do
      local px = { "\0" } -- filter type 0 for each row
      for x = 1, w do px[x + 1] = char(random(0, 255), random(0, 255), random(0, 255)) end
      rows[y] = concat(px)
    end
    local ihdr = pack(">I4I4BBBBB", w, h, 8, 2, 0, 0, 0)
    return SIGNATURE .. chunk("IHDR", ihdr) .. chunk("IDAT", zlib_stored(concat(rows)))
        .. chunk("IEND", "")
  end,
}
