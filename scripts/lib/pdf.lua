-- Does a PDF hold a file's bytes? What the contract promises for a render
-- is "a PDF that embeds the uploaded bytes", not how: a writer may copy
-- them as they are, compress them into a stream, or (for a PNG) copy its
-- compressed image data into an image XObject. pdf.embeds looks for each
-- of those forms, so a check rests on the bytes themselves and not on one
-- writer's habits (such as printing a digest on the page).
local zlib = require "zlib"

local find, sub, format, concat = string.find, string.sub, string.format, table.concat

local M = {}

-- Largest decoded stream worth looking into: a page of a report is not a
-- gigabyte, and a hostile PDF could be a decompression bomb.
local MAX_DECODED = 64 * 1024 * 1024

-- pdf.streams(doc) -> { { object = "12 0", dict = "<< ... >>", data = raw bytes }, ... }
-- Every `stream ... endstream` of the file, found by scanning the bytes
-- (no cross-reference table is trusted: a broken one must not hide an
-- asset). A direct /Length is used when it lands on `endstream`; else the
-- next `endstream` ends the data.
function M.streams(doc)
  local out = {}
  local pos = 1
  while true do
    local s, e = find(doc, "stream\r?\n", pos)
    if not s then break end
    if sub(doc, s - 3, s - 1) ~= "end" then
      local head_start = 1
      local from = math.max(1, s - 4096)
      local window = sub(doc, from, s - 1)
      local last_obj
      for o in window:gmatch("()%d+%s+%d+%s+obj") do last_obj = o end
      if last_obj then head_start = from + last_obj - 1 end
      local head = sub(doc, head_start, s - 1)
      local object = head:match("^(%d+%s+%d+)%s+obj") or "?"
      local dict = head:gsub("^%d+%s+%d+%s+obj%s*", "")
      local data_start = e + 1
      local data
      local length = tonumber(dict:match("/Length%s+(%d+)%s*[/>]"))
      if length and find(doc, "^%s*endstream", data_start + length) then
        data = sub(doc, data_start, data_start + length - 1)
        pos = data_start + length
      else
        local es = find(doc, "endstream", data_start, true)
        if not es then break end
        data = sub(doc, data_start, es - 1):gsub("\r?\n$", "")
        pos = es + 9
      end
      out[#out + 1] = { object = object, dict = dict, data = data }
    else
      pos = e + 1
    end
  end
  return out
end

-- The stream's filters, in order: "/Filter /FlateDecode" or
-- "/Filter [/FlateDecode /ASCII85Decode]".
local function filters(dict)
  local list = dict:match("/Filter%s*%[([^%]]*)%]")
  local names = {}
  if list then
    for name in list:gmatch("/(%w+)") do names[#names + 1] = name end
  else
    local one = dict:match("/Filter%s*/(%w+)")
    if one then names[1] = one end
  end
  return names
end

-- pdf.decode(stream) -> bytes | nil, why: the stream's data with its
-- filters undone, FlateDecode (and its short name Fl) only; predictors are
-- left as they are (they reshape image rows, never a file's bytes).
function M.decode(stream)
  local data = stream.data
  for _, f in ipairs(filters(stream.dict)) do
    if f ~= "FlateDecode" and f ~= "Fl" then return nil, "filter " .. f .. " is not decoded here" end
    local out, err = zlib.inflate(data, { max = MAX_DECODED })
    if not out then
      out = zlib.inflate(data, { format = "raw", max = MAX_DECODED })   -- some writers omit the zlib header
      if not out then return nil, tostring(err) end
    end
    data = out
  end
  return data
end

-- pdf.embeds(doc, bytes [, png_idat]) -> form | nil, tried
-- Where the bytes are in the PDF: "as they are", "in the FlateDecode
-- stream of object N", or, given the PNG's concatenated IDAT data,
-- "as the PNG's image data (IDAT), object N" — the first form found. When
-- none is, `tried` says what was looked at.
function M.embeds(doc, bytes, png_idat)
  if #bytes > 0 and find(doc, bytes, 1, true) then return "as they are (the uploaded bytes occur in the PDF)" end
  local streams = M.streams(doc)
  local decoded, undecodable = 0, {}
  for _, st in ipairs(streams) do
    if #filters(st.dict) > 0 then
      local data, why = M.decode(st)
      if data then
        decoded = decoded + 1
        if #bytes > 0 and find(data, bytes, 1, true) then
          return format("in the compressed stream of object %s (%s), once decoded", st.object,
                        concat(filters(st.dict), ", "))
        end
      else
        undecodable[#undecodable + 1] = format("object %s: %s", st.object, why)
      end
    end
  end
  if png_idat and #png_idat > 0 then
    for _, st in ipairs(streams) do
      if find(st.data, png_idat, 1, true) then
        return format("as the PNG's compressed image data (IDAT), in the stream of object %s", st.object)
      end
    end
    if find(doc, png_idat, 1, true) then return "as the PNG's compressed image data (IDAT)" end
  end
  local tried = format("the bytes as they are in %d bytes of PDF; the bytes inside each of %d compressed streams, " ..
                       "decoded (of %d streams in all)", #doc, decoded, #streams)
  if #undecodable > 0 then tried = tried .. format("; %d could not be decoded (%s)", #undecodable, undecodable[1]) end
  if png_idat then tried = tried .. format("; the PNG's %d bytes of image data (IDAT)", #png_idat) end
  return nil, tried
end

return M
