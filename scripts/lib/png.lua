-- A valid PNG of random pixels, for the shared-asset check: large enough
-- to matter (hundreds of KB) and different every time, so no cache between
-- the client and the store can answer for a replica that cannot read it.
local pack, char, concat, random = string.pack, string.char, table.concat, math.random

local crc_table = {}
for n = 0, 255 do
  local c = n
  for _ = 1, 8 do c = (c & 1 == 1) and (0xEDB88320 ~ (c >> 1)) or (c >> 1) end
  crc_table[n] = c
end

local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = crc_table[(c ~ s:byte(i)) & 0xFF] ~ (c >> 8) end
  return c ~ 0xFFFFFFFF
end

local function adler32(s)
  local a, b = 1, 0
  for i = 1, #s do
    a = (a + s:byte(i)) % 65521
    b = (b + a) % 65521
  end
  return (b << 16) | a
end

local function chunk(kind, data)
  return pack(">I4", #data) .. kind .. data .. pack(">I4", crc32(kind .. data))
end

-- The image data as zlib "stored" blocks: no compression, so the size is
-- what was asked for and every byte is the random one written.
local function zlib_stored(raw)
  local out = { "\x78\x01" }
  local pos, n = 1, #raw
  while pos <= n do
    local len = math.min(65535, n - pos + 1)
    local last = (pos + len > n) and 1 or 0
    out[#out + 1] = char(last) .. pack("<I2I2", len, len ~ 0xFFFF) .. raw:sub(pos, pos + len - 1)
    pos = pos + len
  end
  out[#out + 1] = pack(">I4", adler32(raw))
  return concat(out)
end

-- png.random{ width = 300, height = 300 } -> bytes of an RGB PNG
return {
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
    return "\137PNG\r\n\26\n" .. chunk("IHDR", ihdr) .. chunk("IDAT", zlib_stored(concat(rows)))
        .. chunk("IEND", "")
  end,
}
