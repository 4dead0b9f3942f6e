---@meta zlib
-- LuaCATS annotations for halo's `zlib` module (docs/modules.md#zlib).

---@class halo.ZlibOpts
---@field format? "zlib"|"gzip"|"raw"|"auto" default "zlib"; "auto" for inflate only
---@field level? integer 0 (stored) to 9 (smallest), deflate and gzip
---@field max? integer the most bytes inflate's output may have

---@class halo.zliblib
local zlib = {}

---`out, consumed`, or `nil, err` (kind corrupt, truncated, too_large).
---@param data string
---@param opts? halo.ZlibOpts
---@return string? out
---@return integer|halo.Error consumed_or_err
function zlib.inflate(data, opts) end

---The compressed stream.
---@param data string
---@param opts? halo.ZlibOpts
---@return string
function zlib.deflate(data, opts) end

---`deflate` with format gzip.
---@param data string
---@param opts? { level?: integer }
---@return string
function zlib.gzip(data, opts) end

---`inflate` with format gzip: `out, consumed`, or `nil, err`.
---@param data string
---@param opts? { max?: integer }
---@return string? out
---@return integer|halo.Error consumed_or_err
function zlib.gunzip(data, opts) end

---The CRC-32 of `data`; pass the value so far as `crc` to go on.
---@param data string
---@param crc? integer
---@return integer
function zlib.crc32(data, crc) end

---The Adler-32 of `data`, the same way.
---@param data string
---@param adler? integer
---@return integer
function zlib.adler32(data, adler) end

return zlib
