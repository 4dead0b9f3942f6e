---@meta http
-- LuaCATS annotations for halo's `http` module (docs/modules.md#http).

---Options of `http.request` (any other key raises).
---@class halo.HttpOpts
---@field url? string required by http.request; `http://` or `https://`
---@field method? string default GET
---@field headers? table<string, string>
---@field query? table<string, string|number|boolean>
---@field body? string
---@field json? any encoded; sets Content-Type: application/json unless given
---@field form? table<string, string|number>
---@field multipart? { name: string, filename?: string, content_type?: string, data: string }[]
---@field timeout? number seconds for the whole request (default 30)
---@field connect_timeout? number seconds to connect (default 10)
---@field follow? boolean|integer
---@field max_body? integer bytes (default 64 MiB)
---@field verify? boolean TLS peer verification, default true
---@field ca_file? string
---@field cert? string
---@field key? string
---@field unix_socket? string
---@field record? boolean false keeps the request out of the history

---@class halo.HttpTiming
---@field dns number
---@field connect number
---@field tls number
---@field first_byte number
---@field total number

---@class halo.HttpResponse
---@field status integer
---@field body string
---@field headers table<string, string> case-insensitive
---@field header_list { [1]: string, [2]: string }[]
---@field timing halo.HttpTiming
---@field remote { ip: string, port: integer }
---@field http_version string
---@field url string the effective URL, after redirects
---@field method string
local Response = {}

---One value (repeated headers joined with ", ").
---@param name string
---@return string?
function Response:header(name) end

---Every value of the header (e.g. each Set-Cookie).
---@param name string
---@return string[]
function Response:header_values(name) end

---The body decoded, or `nil, err`.
---@return any value
---@return halo.Error? err
function Response:json() end

---A request in `http.history()`.
---@class halo.HttpRecord
---@field id integer
---@field task integer
---@field start number seconds since the check started
---@field end number
---@field method string
---@field url string
---@field status? integer
---@field error? string the kind
---@field replica? string
---@field bytes integer

---@class halo.HttpClient
local Client = {}
---@param opts halo.HttpOpts
---@return halo.HttpResponse? res
---@return halo.Error? err
function Client:request(opts) end
---@param path string
---@param opts? halo.HttpOpts
---@return halo.HttpResponse? res
---@return halo.Error? err
function Client:get(path, opts) end
---@param path string
---@param opts? halo.HttpOpts
---@return halo.HttpResponse? res
---@return halo.Error? err
function Client:post(path, opts) end
---@param path string
---@param opts? halo.HttpOpts
---@return halo.HttpResponse? res
---@return halo.Error? err
function Client:put(path, opts) end
---@param path string
---@param opts? halo.HttpOpts
---@return halo.HttpResponse? res
---@return halo.Error? err
function Client:patch(path, opts) end
---@param path string
---@param opts? halo.HttpOpts
---@return halo.HttpResponse? res
---@return halo.Error? err
function Client:delete(path, opts) end
---@param path string
---@param opts? halo.HttpOpts
---@return halo.HttpResponse? res
---@return halo.Error? err
function Client:head(path, opts) end

---@class halo.httplib
local http = {}

---`res`, or `nil, err` (kind connect, dns, timeout, tls, too_large, protocol, cancelled).
---A non-2xx status is data, not an error.
---@param opts halo.HttpOpts
---@return halo.HttpResponse? res
---@return halo.Error? err
function http.request(opts) end

---@param url string
---@param opts? halo.HttpOpts
---@return halo.HttpResponse? res
---@return halo.Error? err
function http.get(url, opts) end
---@param url string
---@param opts? halo.HttpOpts
---@return halo.HttpResponse? res
---@return halo.Error? err
function http.post(url, opts) end
---@param url string
---@param opts? halo.HttpOpts
---@return halo.HttpResponse? res
---@return halo.Error? err
function http.put(url, opts) end
---@param url string
---@param opts? halo.HttpOpts
---@return halo.HttpResponse? res
---@return halo.Error? err
function http.patch(url, opts) end
---@param url string
---@param opts? halo.HttpOpts
---@return halo.HttpResponse? res
---@return halo.Error? err
function http.delete(url, opts) end
---@param url string
---@param opts? halo.HttpOpts
---@return halo.HttpResponse? res
---@return halo.Error? err
function http.head(url, opts) end

---A client whose methods join `path` to `base`, merge headers name by
---name, and share connections.
---@param opts halo.HttpOpts|{ base: string }
---@return halo.HttpClient
function http.client(opts) end

---Every request this check made so far.
---@return halo.HttpRecord[]
function http.history() end

---`true` when `opts` are options `http.request` would accept; raises as it
---would otherwise; sends nothing.
---@param opts halo.HttpOpts
---@return true
function http.validate(opts) end

return http
