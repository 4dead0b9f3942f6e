-- Check 1 of the HA validation report: an asset uploaded through the load
-- balancer is readable, byte for byte, from every replica directly, and a
-- template that references it renders on every replica into a PDF that
-- embeds the uploaded bytes (as they are, in a compressed stream, or as a
-- PNG's image data: whatever form the writer chose).
local pulp = require "pulp"
local png = require "png"
local sha256 = require "sha256"
local pdf = require "pdf"

return {
  title = "Shared asset readability (upload via LB, fetch from every replica)",
  tags = { "assets" },
  timeout = 120,
  run = function(t, stack)
    local lb = pulp.lb(stack)

    local bytes = t:step("generate a PNG of random pixels", png.random, { width = 300, height = 300 })
    local digest = sha256(bytes)
    t:evidence("uploaded", { bytes = #bytes, sha256 = digest })

    local name = pulp.unique("halo-check-1") .. ".png"
    local asset = t:step("upload it through the LB", function()
      return assert(lb:upload_asset(name, bytes, "image/png"))
    end)
    t:defer(function() assert(lb:delete_asset(asset.filename)) end)
    t:evidence("asset", { id = asset.id, filename = asset.filename, size = asset.size })
    t:expect(asset.size == #bytes, "the API says it stored %s bytes of %d", tostring(asset.size), #bytes)

    local names = pulp.replica_names(stack)
    local fetched = {}
    for _, replica in ipairs(names) do
      local got, err = t:step("fetch it directly from " .. replica, function()
        return pulp.replica(stack, replica):get_asset(asset.filename)
      end)
      if t:expect(got, "%s cannot read the asset uploaded through the LB: %s", replica, tostring(err)) then
        local got_digest = sha256(got)
        fetched[replica] = { bytes = #got, sha256 = got_digest }
        t:expect(got_digest == digest, "%s returned other bytes: %d bytes with SHA-256 %s, uploaded %d bytes with %s",
                 replica, #got, got_digest, #bytes, digest)
      end
    end
    t:evidence("fetched", fetched)

    -- Render through every replica directly: whichever stored the upload,
    -- the others must read the asset from the shared store, not from their
    -- own memory. The PDF must hold the uploaded bytes in some form a PDF
    -- writer uses (pdf.lua), not merely mention them.
    local key = pulp.unique("halo-check-1-template")
    t:step("create a template that references the asset", function()
      assert(lb:put_template(key, pulp.asset_template(asset.filename)))
    end)
    t:defer(function() assert(lb:delete_template(key)) end)
    local idat = png.idat(bytes)
    local rendered = {}
    for _, replica in ipairs(names) do
      local doc, err = t:step("render it through " .. replica, function()
        return pulp.replica(stack, replica):render{ template = key, data = { title = "halo check 1" } }
      end)
      if t:expect(doc, "%s cannot render a template referencing the asset: %s", replica, tostring(err)) then
        if t:expect(doc:sub(1, 5) == "%PDF-", "%s answered the render with something that is not a PDF", replica) then
          local form, tried = pdf.embeds(doc, bytes, idat)
          rendered[replica] = { pdf_bytes = #doc, asset_found = form or "no" }
          t:expect(form, "the PDF %s rendered does not embed the uploaded asset (%d bytes, SHA-256 %s); looked for %s",
                   replica, #bytes, digest, tried)
        end
      end
    end
    t:evidence("rendered", rendered)
  end,
}
