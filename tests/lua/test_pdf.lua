-- Unit tests of scripts/lib/pdf.lua and png.idat: check 1 finds an asset in
-- a PDF in each form a writer may choose (the bytes as they are, inside a
-- compressed stream, a PNG's IDAT data in an image stream), says which,
-- and says what it tried when none is there. The PDFs are built here with
-- the real zlib, one form each, so a form that check 1 stops finding fails
-- a test instead of a healthy stack.
-- Run: build/halo exec --lib tests/lua/lib --lib scripts/lib tests/lua/test_pdf.lua

local unit = require "unit"
local pdf, png = require "pdf", require "png"
local test, eq, noise = unit.test, unit.eq, unit.noise

-- A PDF whose object 6 is a stream with `dict` entries and `data`; the
-- rest is a page, as a writer makes one.
local function document(dict, data, opts)
  opts = opts or {}
  local length = opts.length or tostring(#data)
  local objs = {
    "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
    "2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n",
    "3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 5 0 R >>\nendobj\n",
    "5 0 obj\n<< /Length 22 >>\nstream\nBT (a report page) ET\nendstream\nendobj\n",
    "6 0 obj\n<< " .. dict .. " /Length " .. length .. " >>\nstream\n" .. data .. "\nendstream\nendobj\n",
  }
  if opts.length then objs[#objs + 1] = "7 0 obj\n" .. #data .. "\nendobj\n" end
  return "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" .. table.concat(objs) .. "trailer\n<< /Root 1 0 R >>\n%%EOF\n"
end

local asset = noise(50000, 11)

test("the bytes as they are", function()
  local form = pdf.embeds(document("/Type /EmbeddedFile", asset), asset)
  assert(form and form:find("as they are"), tostring(form))
end)

test("inside a FlateDecode stream", function()
  local doc = document("/Type /EmbeddedFile /Filter /FlateDecode", zlib.deflate(asset, { level = 9 }))
  assert(not doc:find(asset, 1, true), "the test PDF holds the raw bytes: it tests nothing")
  local form = pdf.embeds(doc, asset)
  assert(form and form:find("compressed stream of object 6 0") and form:find("FlateDecode"), tostring(form))
end)

test("a filter array, the short name, an indirect /Length, raw deflate", function()
  local packed = zlib.deflate(asset, { format = "raw" })
  for _, dict in ipairs({ "/Filter [/FlateDecode]", "/Filter /Fl", "/Filter [ /FlateDecode ]" }) do
    local form = pdf.embeds(document(dict, packed, { length = "7 0 R" }), asset)
    assert(form and form:find("object 6 0"), dict .. ": " .. tostring(form))
  end
end)

test("a stream whose data holds the word endstream, with a direct /Length", function()
  local tricky = "endstream\n" .. asset .. "\nendstream\n"
  local st = pdf.streams(document("/Type /EmbeddedFile", tricky))
  eq(#st, 2, "streams")
  eq(st[2].data, tricky, "the data of object 6, cut by its /Length")
end)

test("a PNG's compressed image data (IDAT) in an image XObject", function()
  local image = png.random{ width = 40, height = 30 }
  local idat = png.idat(image)
  eq(#zlib.inflate(idat), 30 * (1 + 40 * 3), "the IDAT data inflates to the filtered rows")
  local doc = document("/Type /XObject /Subtype /Image /Width 40 /Height 30 /ColorSpace /DeviceRGB " ..
                       "/BitsPerComponent 8 /Filter /FlateDecode /DecodeParms << /Predictor 15 /Colors 3 " ..
                       "/BitsPerComponent 8 /Columns 40 >>", idat)
  assert(not doc:find(image, 1, true), "the test PDF holds the PNG itself: it tests nothing")
  eq(pdf.embeds(doc, image), nil, "without the IDAT data nothing is found")
  local form = pdf.embeds(doc, image, idat)
  assert(form and form:find("IDAT") and form:find("object 6 0"), tostring(form))
end)

test("png.idat joins every IDAT chunk and refuses what is not a PNG", function()
  local image = png.random{ width = 4, height = 4 }
  local one = png.idat(image)
  -- the same image data split over two chunks
  local ihdr_end = 8 + 12 + 13
  local head, tail = image:sub(1, ihdr_end), image:sub(ihdr_end + 1)
  local length = string.unpack(">I4", tail)
  local data = tail:sub(9, 8 + length)
  local function chunk(kind, d) return string.pack(">I4", #d) .. kind .. d .. string.pack(">I4", zlib.crc32(kind .. d)) end
  local split = head .. chunk("IDAT", data:sub(1, 10)) .. chunk("IDAT", data:sub(11)) .. chunk("IEND", "")
  eq(png.idat(split), one, "two IDAT chunks")
  eq(png.idat("GIF89a..."), nil, "not a PNG")
end)

test("nothing there: nil, and what was tried", function()
  local other = noise(50000, 99)
  local doc = document("/Type /EmbeddedFile /Filter /FlateDecode", zlib.deflate(other))
  local form, tried = pdf.embeds(doc, asset, png.idat(png.random{ width = 8, height = 8 }))
  eq(form, nil, "form")
  assert(tried:find("as they are") and tried:find("1 compressed streams") and tried:find("of 2 streams")
         and tried:find("IDAT"), tried)
end)

test("streams that cannot be decoded are named, not fatal", function()
  local form, tried = pdf.embeds(document("/Filter /DCTDecode", noise(100, 3)), asset)
  eq(form, nil, "form")
  assert(tried:find("1 could not be decoded") and tried:find("DCTDecode"), tried)
  form, tried = pdf.embeds(document("/Filter /FlateDecode", "not a zlib stream at all"), asset)
  eq(form, nil, "form")
  assert(tried:find("could not be decoded"), tried)
end)

test("a decompression bomb stops at the cap", function()
  -- 100 MiB of zeros compress to about 100 KB; the cap is 64 MiB
  local bomb = zlib.deflate(string.rep("\0", 100 * 1024 * 1024), { level = 9 })
  local form, tried = pdf.embeds(document("/Filter /FlateDecode", bomb), asset)
  eq(form, nil, "form")
  assert(tried:find("passes max"), tried)
end)

unit.finish("test_pdf")
