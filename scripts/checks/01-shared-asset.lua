-- Check 1 of the HA validation report: an asset uploaded through the load
-- balancer is readable, byte for byte, from every replica directly, and a
-- template that references it renders through the other replica.
local pulp = require "pulp"
local png = require "png"
local sha256 = require "sha256"

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
    local asset, res = t:step("upload it through the LB", function()
      return assert(lb:upload_asset(name, bytes, "image/png"))
    end)
    t:defer(function() assert(lb:delete_asset(asset.filename)) end)
    local uploader = res.headers["x-served-by"]
    t:evidence("asset", { id = asset.id, filename = asset.filename, size = asset.size, stored_by = uploader })
    t:expect(asset.size == #bytes, "the API says it stored %s bytes of %d", tostring(asset.size), #bytes)

    local names = {}
    for replica in pairs(stack.replicas) do names[#names + 1] = replica end
    table.sort(names)
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

    -- Render through a replica that did not store the upload: it must read
    -- the asset from the shared store, not from its own memory.
    local other = names[1] == uploader and names[2] or names[1]
    local key = pulp.unique("halo-check-1-template")
    t:step("create a template that references the asset", function()
      assert(lb:put_template(key, pulp.asset_template(asset.filename)))
    end)
    t:defer(function() assert(lb:delete_template(key)) end)
    local pdf, err = t:step("render it through " .. other, function()
      return pulp.replica(stack, other):render{ template = key, data = { title = "halo check 1" } }
    end)
    if t:expect(pdf, "%s cannot render a template referencing the asset: %s", other, tostring(err)) then
      t:expect(pdf:sub(1, 5) == "%PDF-", "%s answered the render with something that is not a PDF", other)
      t:expect(pdf:find(digest, 1, true), "the PDF %s rendered does not embed the uploaded asset (SHA-256 %s)",
               other, digest)
      t:evidence("rendered", { by = other, pdf_bytes = #pdf })
    end
  end,
}
