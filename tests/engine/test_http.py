"""The http module against real local servers: tests/servers/edge_server.py
(Python stdlib, 127.0.0.1 and a Unix socket; HTTPS with a throwaway CA) for
the edges, and a throwaway nginx (tests/servers/nginx.py) for keep-alive,
throughput and HTTP/2.

Every test runs a small Lua script through `halo exec SCRIPT BASE UNIX` and
reads back the one JSON line it emits; the request history is also checked
through `halo run --history` on tests/fixtures/http_checks. Cancellation and
timeouts run under valgrind (skipped when it is missing).

No traffic leaves loopback: the only names used are 127.0.0.1 and localhost,
and the dns error kind is not tested (it would need a resolver).
"""
import base64
import collections
import gzip
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from httptest import HALO, PRELUDE, SOURCE, EdgeServer, HaloTestCase, make_certs

FIXTURES = os.path.join(SOURCE, "tests", "fixtures", "http_checks")

# Lua helpers some scripts share, prepended after the PRELUDE.
BYTES = """
local function bytesum(s) local n = 0 for i = 1, #s do n = n + s:byte(i) end return n end
local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
-- byte i (from 0) is (i * mul + add) % 256: the Python side builds the same
local function pattern(n, mul, add)
  local t = {}
  for i = 0, n - 1 do t[#t + 1] = string.char((i * mul + add) % 256) end
  return table.concat(t)
end
"""


def pattern(n, mul, add):
    return bytes((i * mul + add) % 256 for i in range(n))


def closed_port():
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_fixture(test, ids, history, wrapper=(), timeout=60):
    """halo run IDS on tests/fixtures/http_checks against test's edge server."""
    env = dict(os.environ, HALO_TEST_EDGE=test.edge.base, HALO_TEST_CLOSED="http://127.0.0.1:%d" % closed_port())
    out = os.path.join(test.tmp, "report.json")
    cmd = list(wrapper) + [HALO, "run"] + list(ids) + [
        "--checks", os.path.join(FIXTURES, "checks"), "--stack", os.path.join(FIXTURES, "stack.lua"),
        "--history", history, "--format", "json", "--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=test.tmp, env=env)
    with open(out) as f:
        report = json.load(f)
    with open(history) as f:
        records = [json.loads(line) for line in f if line.strip()]
    # the file also holds other records (docker actions): keep the requests
    lines = [r for r in records if r.get("type", "request") == "request"]
    return proc, report, lines


class Requests(HaloTestCase):
    """Options and response fields against the edge server."""

    def test_get_response_fields(self):
        r = self.lua_result("""
            local res = http.get(BASE .. "/ok")
            emit{ status = res.status, body = res.body, ctype = res.headers["Content-Type"],
                  clen = res:header("content-length"), version = res.http_version, url = res.url,
                  method = res.method, timing = res.timing, remote = res.remote,
                  header_list = res.header_list, str = tostring(res) }
        """)
        self.assertEqual(r["status"], 200)
        self.assertEqual(r["body"], "ok\n")
        self.assertEqual(r["ctype"], "text/plain")
        self.assertEqual(r["clen"], "3")
        self.assertEqual(r["version"], "1.1")
        self.assertEqual(r["url"], self.edge.url("/ok"))
        self.assertEqual(r["method"], "GET")
        self.assertEqual(r["remote"], {"ip": "127.0.0.1", "port": self.edge.port})
        names = [pair[0] for pair in r["header_list"]]
        self.assertEqual(names[:2], ["Server", "Date"])
        self.assertIn(["Content-Length", "3"], r["header_list"])
        t = r["timing"]
        self.assertEqual(set(t), {"dns", "connect", "tls", "first_byte", "total"})
        self.assertEqual(t["tls"], 0, "no TLS on plain http")
        # a fresh connection: each phase ends no earlier than the one before
        self.assertTrue(0 <= t["dns"] <= t["connect"] <= t["first_byte"] <= t["total"], t)
        self.assertGreater(t["total"], 0)
        self.assertLess(t["total"], 2)
        self.assertIn("HTTP 200", r["str"])
        self.assertIn(self.edge.url("/ok"), r["str"])

    def test_non_2xx_status_is_data(self):
        r = self.lua_result("""
            local out = {}
            for _, code in ipairs{ 201, 204, 301, 404, 500, 503 } do
              local res, err = http.get(BASE .. "/status/" .. code)
              out[#out + 1] = { res and res.status or err.kind, res and res.body }
            end
            emit(out)
        """)
        self.assertEqual([x[0] for x in r], [201, 204, 301, 404, 500, 503])
        self.assertEqual(r[3][1], "status 404\n")
        self.assertEqual(r[1][1], "", "204 has no body")

    def test_response_headers_case_insensitive_and_repeats_kept(self):
        r = self.lua_result("""
            local res = http.get(BASE .. "/set-cookies")
            emit{ lower = res.headers["set-cookie"], upper = res.headers["SET-COOKIE"],
                  mixed = res:header("Set-Cookie"), values = res:header_values("SET-cookie"),
                  absent = res.headers["x-absent"] == nil and res:header("x-absent") == nil,
                  none = #res:header_values("x-absent"),
                  listed = #res.header_list }
        """)
        self.assertEqual(r["lower"], "a=1; Path=/, b=2; HttpOnly")
        self.assertEqual(r["upper"], r["lower"])
        self.assertEqual(r["mixed"], r["lower"])
        self.assertEqual(r["values"], ["a=1; Path=/", "b=2; HttpOnly"])
        self.assertTrue(r["absent"])
        self.assertEqual(r["none"], 0)
        self.assertEqual(r["listed"], 6, "Server, Date, Content-Type, Content-Length and two Set-Cookie")

    def test_request_headers_sent(self):
        r = self.lua_result("""
            local res = http.get(BASE .. "/echo", { headers = { ["X-Api-Key"] = "k1", ["x-number"] = 42,
                                                               ["User-Agent"] = "probe/1" } })
            emit(res:json())
        """)
        headers = {k.lower(): v for k, v in r["headers"]}
        self.assertEqual(headers["x-api-key"], "k1")
        self.assertEqual(headers["x-number"], "42")
        self.assertEqual(headers["user-agent"], "probe/1", "a given User-Agent replaces halo's")

    def test_default_user_agent(self):
        r = self.lua_result("""emit(http.get(BASE .. "/echo"):json())""")
        headers = {k.lower(): v for k, v in r["headers"]}
        self.assertTrue(headers["user-agent"].startswith("halo/"), headers)

    def test_json_body_encoded_with_content_type(self):
        r = self.lua_result("""
            local a = http.post(BASE .. "/echo", { json = { name = "tpl", n = 3, tags = { "a", "b" }, ok = true } })
            local b = http.put(BASE .. "/echo", { json = { 1, 2 }, headers = { ["content-type"] = "application/vnd.x+json" } })
            emit{ a = a:json(), b = b:json() }
        """)
        a, b = r["a"], r["b"]
        self.assertEqual(a["method"], "POST")
        self.assertEqual(json.loads(a["body"]), {"name": "tpl", "n": 3, "tags": ["a", "b"], "ok": True})
        self.assertIn(["Content-Type", "application/json"], a["headers"])
        self.assertEqual(b["method"], "PUT")
        self.assertEqual(json.loads(b["body"]), [1, 2])
        ctypes = [v for k, v in b["headers"] if k.lower() == "content-type"]
        self.assertEqual(ctypes, ["application/vnd.x+json"], "a given content type is kept, not doubled")

    def test_form_body_encoded(self):
        r = self.lua_result("""
            emit(http.post(BASE .. "/echo", { form = { q = "a b&c=d", z = "\\u{e9}", n = 3, t = true } }):json())
        """)
        self.assertIn(["Content-Type", "application/x-www-form-urlencoded"], r["headers"])
        self.assertEqual(r["body"], "n=3&q=a%20b%26c%3Dd&t=true&z=%C3%A9", "keys sorted, values escaped")

    def test_query_encoded_and_appended(self):
        r = self.lua_result("""
            local a = http.get(BASE .. "/echo", { query = { q = "a b&c/d", page = 2, ["k y"] = "\\u{e9}" } })
            local b = http.get(BASE .. "/echo?x=1", { query = { y = "2" } })
            emit{ a = a:json(), b = b:json(), url = a.url }
        """)
        self.assertEqual(r["a"]["query"], {"q": ["a b&c/d"], "page": ["2"], "k y": ["\u00e9"]})
        self.assertEqual(r["a"]["raw_query"], "k%20y=%C3%A9&page=2&q=a%20b%26c%2Fd")
        self.assertEqual(r["b"]["raw_query"], "x=1&y=2", "appended with & to an existing query")
        self.assertTrue(r["url"].endswith("/echo?k%20y=%C3%A9&page=2&q=a%20b%26c%2Fd"), r["url"])

    def test_raw_body_binary_sent_byte_exact(self):
        data = b"\x00\x01\r\n\x00" + pattern(5000, 13, 0) + b"\xff\x00"
        r = self.lua_result(BYTES + """
            local data = "\\0\\1\\r\\n\\0" .. pattern(5000, 13, 0) .. "\\255\\0"
            emit(http.post(BASE .. "/echo", { body = data }):json())
        """)
        self.assertEqual(r["body_len"], len(data))
        self.assertEqual(r["sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(base64.b64decode(r["body_b64"]), data)

    def test_big_upload_byte_exact(self):
        # past 1 MiB curl asks "Expect: 100-continue" first
        data = pattern(3 * 1024 * 1024 + 7, 31, 5)
        r = self.lua_result(BYTES + """
            emit(http.put(BASE .. "/echo", { body = pattern(3 * 1024 * 1024 + 7, 31, 5) }):json())
        """)
        self.assertEqual(r["body_len"], len(data))
        self.assertEqual(r["sha256"], hashlib.sha256(data).hexdigest())

    def test_empty_header_value_is_sent(self):
        r = self.lua_result("""emit(http.get(BASE .. "/echo", { headers = { ["X-Empty"] = "" } }):json())""")
        self.assertIn(["X-Empty", ""], r["headers"])

    def test_methods_and_shorthands(self):
        r = self.lua_result("""
            local out = {}
            for _, m in ipairs{ "get", "post", "put", "patch", "delete" } do
              local opts = {}
              if m ~= "get" then opts.body = "x" end
              local res = http[m](BASE .. "/echo", opts)
              out[m] = { res.method, res:json().method, res:json().body }
            end
            local lower = http.request{ method = "options", url = BASE .. "/echo" }
            out.options = { lower.method, lower:json().method }
            local get_with_body = http.request{ method = "GET", url = BASE .. "/echo", body = "q" }
            out.get_body = { get_with_body:json().method, get_with_body:json().body }
            local empty_post = http.post(BASE .. "/echo")
            out.empty_post = { empty_post:json().method, empty_post:json().body_len }
            emit(out)
        """)
        self.assertEqual(r["get"], ["GET", "GET", ""])
        for m in ["post", "put", "patch", "delete"]:
            self.assertEqual(r[m], [m.upper(), m.upper(), "x"], m)
        self.assertEqual(r["options"], ["OPTIONS", "OPTIONS"], "methods are upper-cased")
        self.assertEqual(r["get_body"], ["GET", "q"], "a body does not turn GET into POST")
        self.assertEqual(r["empty_post"], ["POST", 0])

    def test_head_has_no_body(self):
        r = self.lua_result("""
            local res = http.head(BASE .. "/echo")
            local after = http.get(BASE .. "/ok")   -- the connection is still usable
            emit{ status = res.status, len = #res.body, clen = res.headers["content-length"],
                  method = res.method, after = after.body }
        """)
        self.assertEqual(r["status"], 200)
        self.assertEqual(r["len"], 0)
        self.assertGreater(int(r["clen"]), 0, "HEAD keeps the headers of the GET")
        self.assertEqual(r["method"], "HEAD")
        self.assertEqual(r["after"], "ok\n")

    def test_res_json(self):
        r = self.lua_result("""
            local good = http.get(BASE .. "/echo?a=1"):json()
            local v, err = http.get(BASE .. "/ok"):json()
            emit{ method = good.method, a = good.query.a[1], bad_value = v == nil, err = tostring(err) }
        """)
        self.assertEqual(r["method"], "GET")
        self.assertEqual(r["a"], "1")
        self.assertTrue(r["bad_value"], "a body that is not JSON gives nil, err")
        self.assertNotEqual(r["err"], "nil")

    def test_multipart_byte_exact_with_nul_bytes(self):
        parts = {
            "logo": pattern(70001, 7, 3),
            "tricky": b"\x00\r\n--not-the-boundary\r\n\x00" + pattern(1000, 1, 0) + b"\r\n",
            "note": "h\u00e9llo".encode(),
            "empty": b"",
        }
        r = self.lua_result(BYTES + """
            local res, err = http.post(BASE .. "/multipart-echo", { multipart = {
              { name = "logo", filename = "logo.bin", content_type = "application/octet-stream", data = pattern(70001, 7, 3) },
              { name = "tricky", filename = "t.bin", data = "\\0\\r\\n--not-the-boundary\\r\\n\\0" .. pattern(1000, 1, 0) .. "\\r\\n" },
              { name = "note", data = "h\\u{e9}llo", content_type = "text/plain; charset=utf-8" },
              { name = "empty", data = "" },
            } })
            assert(res, err and err.message)
            emit{ status = res.status, echo = res:json() }
        """)
        self.assertEqual(r["status"], 200)
        got = {p["name"]: p for p in r["echo"]["parts"]}
        self.assertEqual(list(got), ["logo", "tricky", "note", "empty"], "parts in order")
        for name, data in parts.items():
            self.assertEqual(got[name]["size"], len(data), name)
            self.assertEqual(got[name]["sha256"], hashlib.sha256(data).hexdigest(), name)
        self.assertEqual(got["logo"]["filename"], "logo.bin")
        self.assertEqual(got["logo"]["content_type"], "application/octet-stream")
        self.assertEqual(got["tricky"]["filename"], "t.bin")
        self.assertEqual(got["note"]["content_type"], "text/plain; charset=utf-8")
        self.assertIsNone(got["note"]["filename"])

    def test_non_utf8_body_byte_exact(self):
        expected = bytes(range(0x80, 0x100)) * 4
        r = self.lua_result(BYTES + """
            local res = http.get(BASE .. "/non-utf8")
            emit{ len = #res.body, sum = bytesum(res.body), hex = hex(res.body),
                  header_sum = tonumber(res.headers["x-byte-sum"]), first = res.body:byte(1), last = res.body:byte(-1) }
        """)
        self.assertEqual(r["len"], len(expected))
        self.assertEqual(r["sum"], sum(expected))
        self.assertEqual(r["sum"], r["header_sum"])
        self.assertEqual(bytes.fromhex(r["hex"]), expected)
        self.assertEqual((r["first"], r["last"]), (0x80, 0xFF))

    def test_big_body_whole(self):
        r = self.lua_result("""
            local res = http.get(BASE .. "/big?size=3000000")
            local exact = http.get(BASE .. "/big?size=5000", { max_body = 5000 })
            emit{ len = #res.body, allx = res.body:find("[^x]") == nil, exact = exact and #exact.body }
        """)
        self.assertEqual(r["len"], 3000000)
        self.assertTrue(r["allx"])
        self.assertEqual(r["exact"], 5000, "a body of exactly max_body bytes is fine")

    def test_chunked_response(self):
        r = self.lua_result("""
            local res = http.get(BASE .. "/chunked")
            emit{ status = res.status, body = res.body, te = res.headers["transfer-encoding"],
                  clen = res.headers["content-length"] or json.null }
        """)
        self.assertEqual(r["status"], 200)
        self.assertEqual(r["body"], "".join("chunk %d\n" % i for i in range(5)))
        self.assertEqual(r["te"], "chunked")
        self.assertIsNone(r["clen"])

    def test_http10_close_delimited_body(self):
        r = self.lua_result("""
            local res = http.get(BASE .. "/http10")
            local again = http.get(BASE .. "/http10")
            emit{ status = res.status, version = res.http_version, body = res.body,
                  connection = res.headers.connection, again = again.body == res.body }
        """)
        self.assertEqual(r["status"], 200)
        self.assertEqual(r["version"], "1.0")
        self.assertEqual(r["body"], "an HTTP/1.0 body that ends when the connection closes\n")
        self.assertEqual(r["connection"], "close")
        self.assertTrue(r["again"], "a closed connection is not reused for the next request")

    def test_gzip_body_is_not_decoded(self):
        # halo does not ask for compression and hands back the bytes as sent
        r = self.lua_result(BYTES + """
            local res = http.get(BASE .. "/gzip")
            emit{ hex = hex(res.body), encoding = res.headers["content-encoding"] }
        """)
        self.assertEqual(r["encoding"], "gzip")
        body = bytes.fromhex(r["hex"])
        self.assertEqual(body[:2], b"\x1f\x8b")
        self.assertEqual(gzip.decompress(body), b"halo gzip body\n" * 20)

    def test_unix_socket(self):
        r = self.lua_result("""
            local res, err = http.get("http://localhost/echo?via=unix", { unix_socket = UNIX })
            assert(res, err and err.message)
            local c = http.client{ base = "http://localhost", unix_socket = UNIX }
            local two = c:get("/replica?name=sock")
            emit{ status = res.status, echo = res:json(), two = two:header("x-served-by") }
        """)
        self.assertEqual(r["status"], 200)
        self.assertEqual(r["echo"]["query"], {"via": ["unix"]})
        self.assertEqual(r["two"], "sock")

    def test_unix_socket_missing_is_connect_error(self):
        r = self.lua_result("""
            local res, err = http.get("http://localhost/ok", { unix_socket = UNIX .. ".missing" })
            emit{ res = res == nil, kind = err.kind }
        """)
        self.assertTrue(r["res"])
        self.assertEqual(r["kind"], "connect")

    def test_redirects_not_followed_by_default(self):
        r = self.lua_result("""
            local res = http.get(BASE .. "/redirect?to=/ok")
            local followed = http.get(BASE .. "/redirect?to=/ok", { follow = true })
            local counted = http.get(BASE .. "/redirect?to=/redirect%3Fto%3D/ok", { follow = 2 })
            local short, err = http.get(BASE .. "/redirect?to=/redirect%3Fto%3D/ok", { follow = 1 })
            local off = http.get(BASE .. "/redirect?to=/ok", { follow = false })
            emit{ status = res.status, location = res.headers.location,
                  followed = { followed.status, followed.body, followed.url },
                  counted = counted.status, short = err and err.kind, off = off.status }
        """)
        self.assertEqual(r["status"], 302)
        self.assertEqual(r["location"], "/ok")
        self.assertEqual(r["followed"], [200, "ok\n", self.edge.url("/ok")], "res.url is the effective URL")
        self.assertEqual(r["counted"], 200)
        self.assertEqual(r["short"], "protocol", "more redirects than allowed")
        self.assertEqual(r["off"], 302)

    def test_client_base_joining_and_header_merge(self):
        r = self.lua_result("""
            local out = {}
            for _, base in ipairs{ BASE, BASE .. "/" } do
              local c = http.client{ base = base }
              out[#out + 1] = c:get("/echo").url
              out[#out + 1] = c:get("echo").url
            end
            local prefixed = http.client{ base = BASE .. "/status" }
            out[#out + 1] = prefixed:get("/418").status
            local c = http.client{ base = BASE, headers = { ["X-A"] = "client", ["X-B"] = "client" } }
            local res = c:get("/echo", { headers = { ["X-B"] = "call", ["X-C"] = "call" }, query = { q = 1 } })
            local posted = c:post("/echo", { json = { k = 1 } })
            local req = c:request{ url = "/echo?z=1", method = "PUT" }
            local absolute = c:get(BASE .. "/ok")
            local plain = c:get("/echo")
            emit{ urls = out, merged = res:json().headers, posted = posted:json(), req = { req.method, req.url },
                  absolute = absolute.body, plain = plain:json().headers }
        """)
        self.assertEqual(r["urls"][:4], [self.edge.url("/echo")] * 4, "one slash between base and path, whichever has it")
        self.assertEqual(r["urls"][4], 418, "a base with a path keeps it")
        merged = {k: v for k, v in r["merged"]}
        self.assertEqual((merged["X-A"], merged["X-B"], merged["X-C"]), ("client", "call", "call"))
        self.assertEqual(r["posted"]["method"], "POST")
        self.assertEqual(json.loads(r["posted"]["body"]), {"k": 1})
        self.assertIn(["X-A", "client"], r["posted"]["headers"])
        self.assertEqual(r["req"], ["PUT", self.edge.url("/echo?z=1")])
        self.assertEqual(r["absolute"], "ok\n", "an absolute URL ignores the base")
        plain = {k: v for k, v in r["plain"]}
        self.assertEqual(plain["X-B"], "client", "a call's headers do not stick to the client")
        self.assertNotIn("X-C", plain)

    def test_client_defaults_apply(self):
        r = self.lua_result("""
            local c = http.client{ base = BASE, timeout = 0.3, max_body = 10, follow = true }
            local t0 = time.mono()
            local _, slow = c:get("/slow-headers?delay=2")
            local took = time.mono() - t0
            local _, big = c:get("/big?size=100")
            local redirected = c:get("/redirect?to=/ok")
            local override = c:get("/big?size=100", { max_body = 100 })
            emit{ slow = slow.kind, took = took, big = big.kind, redirected = redirected.status,
                  override = override and override.status }
        """)
        self.assertEqual(r["slow"], "timeout")
        self.assertLess(r["took"], 1.5)
        self.assertEqual(r["big"], "too_large")
        self.assertEqual(r["redirected"], 200)
        self.assertEqual(r["override"], 200, "a call's option beats the client's default")

    def test_history_in_script(self):
        r = self.lua_result("""
            http.get(BASE .. "/ok")
            http.post(BASE .. "/replica?name=api2", { body = "x" })
            http.get(BASE .. "/status/401")
            http.get("http://127.0.0.1:%d/x")
            local other = task.spawn(function() return http.get(BASE .. "/replica?name=api1") end)
            other:join()
            emit(http.history())
        """ % closed_port())
        self.assertEqual(len(r), 5)
        self.assertEqual([h["id"] for h in r], [1, 2, 3, 4, 5])
        self.assertEqual([h["method"] for h in r], ["GET", "POST", "GET", "GET", "GET"])
        self.assertEqual([h.get("status") for h in r], [200, 200, 401, None, 200])
        self.assertEqual([h.get("error") for h in r], [None, None, None, "connect", None])
        self.assertEqual([h.get("replica") for h in r], [None, "api2", None, None, "api1"])
        self.assertEqual(r[0]["url"], self.edge.url("/ok"))
        self.assertEqual(r[0]["bytes"], 3)
        self.assertNotEqual(r[4]["task"], r[0]["task"], "the spawned task's request names its task")
        for a, b in zip(r, r[1:]):
            self.assertLessEqual(a["start"], a["end"])
            self.assertLessEqual(a["end"], b["start"] + 1e-6, "sequential requests do not overlap")

    def test_history_replica_headers(self):
        r = self.lua_result("""
            for _, h in ipairs{ "X-Served-By", "X-Replica", "X-Upstream", "x-replica", "X-Other" } do
              http.get(BASE .. "/replica?name=" .. h:lower() .. "&header=" .. h)
            end
            local out = {}
            for i, rec in ipairs(http.history()) do out[i] = rec.replica or json.null end
            emit(out)
        """)
        self.assertEqual(r, ["x-served-by", "x-replica", "x-upstream", "x-replica", None],
                         "X-Served-By, X-Replica and X-Upstream name the replica, in any case; others do not")

    def test_record_false_keeps_a_request_out_of_the_history(self):
        r = self.lua_result("""
            http.get(BASE .. "/ok", { record = false })
            local c = http.client{ base = BASE, record = false }
            c:get("/ok")
            http.get(BASE .. "/replica?name=seen")
            local h = http.history()
            emit{ n = #h, replica = h[1].replica }
        """)
        self.assertEqual(r, {"n": 1, "replica": "seen"})

    def test_user_coroutines_pass_through(self):
        # the scheduler's own yields go through a user coroutine untouched
        r = self.lua_result("""
            local co = coroutine.wrap(function()
              local res = http.get(BASE .. "/slow-headers?delay=0.2")
              coroutine.yield(res.status)
              local again = http.get(BASE .. "/ok")
              return again.body
            end)
            emit{ co(), co() }
        """)
        self.assertEqual(r, [200, "ok\n"])


class Errors(HaloTestCase):
    """Every error kind the local servers can produce, as data: nil, err."""

    def request_error(self, call):
        return self.lua_result("""
            local t0 = time.mono()
            local res, err = %s
            emit{ res = res ~= nil, kind = err and err.kind, message = err and err.message, url = err and err.url,
                  code = err and err.code, str = err and tostring(err), took = time.mono() - t0 }
        """ % call)

    def assertError(self, r, kind, url, method="GET"):
        self.assertFalse(r["res"], r)
        self.assertEqual(r["kind"], kind, r)
        self.assertIn(url, r["message"], "the message names the URL")
        self.assertIn(method, r["message"], "the message names the method")
        self.assertTrue(r["message"].startswith(kind + ":"), r["message"])
        self.assertEqual(r["url"], url)
        self.assertIsInstance(r["code"], int)
        self.assertEqual(r["str"], r["message"], "tostring(err) is its message")

    def test_connect_refused(self):
        url = "http://127.0.0.1:%d/nothing" % closed_port()
        r = self.request_error('http.post("%s", { body = "x" })' % url)
        self.assertError(r, "connect", url, "POST")
        self.assertEqual(r["code"], 7)

    def test_timeout_slow_headers(self):
        url = self.edge.url("/slow-headers?delay=3")
        r = self.request_error('http.get("%s", { timeout = 0.5 })' % url)
        self.assertError(r, "timeout", url)
        self.assertGreaterEqual(r["took"], 0.45)
        self.assertLess(r["took"], 1.5, "timeout=0.5 gave up after %.2f s" % r["took"])

    def test_connect_timeout(self):
        # A listener whose accept queue is full: further SYNs are dropped, so
        # the connect hangs (on loopback, no blackhole address needed).
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(0)
            port = listener.getsockname()[1]
            fillers = []
            try:
                for _ in range(3):
                    c = socket.socket()
                    c.setblocking(False)
                    try:
                        c.connect(("127.0.0.1", port))
                    except BlockingIOError:
                        pass
                    fillers.append(c)
                time.sleep(0.1)
                url = "http://127.0.0.1:%d/never" % port
                r = self.request_error('http.get("%s", { connect_timeout = 0.3, timeout = 5 })' % url)
            finally:
                for c in fillers:
                    c.close()
        self.assertError(r, "timeout", url)
        self.assertIn("connect", r["message"].lower())
        self.assertGreaterEqual(r["took"], 0.25)
        self.assertLess(r["took"], 1.5, "connect_timeout=0.3, not timeout=5")

    def test_timeout_covers_a_slow_body(self):
        url = self.edge.url("/drip?size=5")
        r = self.request_error('http.get("%s", { timeout = 0.5 })' % url)
        self.assertError(r, "timeout", url)
        self.assertLess(r["took"], 1.5, "the timeout is for the whole request, body included")

    def test_slow_body_within_timeout(self):
        r = self.lua_result("""
            local res = http.get(BASE .. "/slow-body?delay=0.3&size=20", { timeout = 5 })
            emit{ status = res.status, len = #res.body, first_byte = res.timing.first_byte, total = res.timing.total }
        """)
        self.assertEqual((r["status"], r["len"]), (200, 20))
        self.assertLess(r["first_byte"], 0.25, "the headers came at once")
        self.assertGreaterEqual(r["total"], 0.3, "the body came after the delay")

    def test_too_large(self):
        url = self.edge.url("/big?size=10000000")
        r = self.request_error('http.get("%s", { max_body = 1000 })' % url)
        self.assertError(r, "too_large", url)
        self.assertIn("1000", r["message"], "the message says the limit")
        self.assertLess(r["took"], 5, "the transfer stops at the limit")

    def test_max_body_zero(self):
        r = self.lua_result("""
            local _, err = http.get(BASE .. "/ok", { max_body = 0 })
            local empty = http.get(BASE .. "/status/204", { max_body = 0 })
            emit{ kind = err and err.kind, empty = empty and empty.status }
        """)
        self.assertEqual(r, {"kind": "too_large", "empty": 204})

    def test_default_max_body_is_64_mib(self):
        r = self.lua_result("""
            local res, err = http.get(BASE .. "/big?size=" .. (64 * 1024 * 1024 + 1))
            emit{ kind = err and err.kind }
        """, halo_args=["--max-mem", "1G"])
        self.assertEqual(r["kind"], "too_large")

    def test_protocol_bad_status_line(self):
        url = self.edge.url("/bad-status")
        r = self.request_error('http.get("%s")' % url)
        self.assertError(r, "protocol", url)

    def test_protocol_redirect_loop(self):
        url = self.edge.url("/redirect-loop")
        r = self.request_error('http.get("%s", { follow = true })' % url)
        self.assertError(r, "protocol", url)
        self.assertIn("redirect", r["message"].lower())

    def test_redirect_to_file_is_refused_and_not_read(self):
        for target in ["file:///etc/passwd", "ftp://127.0.0.1:%d/x" % closed_port()]:
            with self.subTest(target=target):
                url = self.edge.url("/redirect?to=" + target)
                r = self.request_error('http.get("%s", { follow = true })' % url)
                self.assertError(r, "protocol", url)
                self.assertNotIn("root:", json.dumps(r), "the file must never be read")

    def test_reset_mid_body_is_connect(self):
        # Documented: a connection reset by the peer mid-body (RST after some
        # of the promised bytes) is kind "connect" (curl: Recv failure, 56),
        # like a refused connection or an empty reply.
        url = self.edge.url("/reset")
        r = self.request_error('http.get("%s")' % url)
        self.assertError(r, "connect", url)
        self.assertEqual(r["code"], 56)
        self.assertIn("reset", r["message"].lower())

    def test_requests_work_after_errors(self):
        r = self.lua_result("""
            local kinds = {}
            for _, path in ipairs{ "/reset", "/bad-status", "/http10" } do
              local res, err = http.get(BASE .. path)
              kinds[#kinds + 1] = res and res.status or err.kind
            end
            kinds[#kinds + 1] = http.get(BASE .. "/ok").status
            emit(kinds)
        """)
        self.assertEqual(r, ["connect", "protocol", 200, 200])

    def test_secrets_redacted_from_errors_and_history(self):
        port = closed_port()
        stack = os.path.join(self.tmp, "secret_stack.lua")
        with open(stack, "w") as f:
            f.write('return { key = secret("HALO_HTTP_TEST_KEY"), lb = "http://op:pw-in-the-url@127.0.0.1:%d" }\n' % port)
        env_key = "s3cr3t-key-value"
        os.environ["HALO_HTTP_TEST_KEY"] = env_key
        try:
            r = self.lua_result("""
                local function leaks(s) return s:find("s3cr3t-key-value", 1, true) ~= nil or s:find("pw-in-the-url", 1, true) ~= nil end
                local _, e1 = http.get("http://127.0.0.1:%d/x", { query = { key = stack.key } })
                local _, e2 = http.get(stack.lb .. "/y")
                local hist = json.encode(http.history())
                emit{ kinds = { e1.kind, e2.kind },
                      leaks = { leaks(e1.message), leaks(e1.url), leaks(e2.message), leaks(e2.url), leaks(hist) },
                      starred = e1.message:find("***", 1, true) ~= nil and e2.url:find("***", 1, true) ~= nil }
            """ % port, halo_args=["--stack", stack])
        finally:
            del os.environ["HALO_HTTP_TEST_KEY"]
        self.assertEqual(r["kinds"], ["connect", "connect"])
        self.assertEqual(r["leaks"], [False] * 5, "message, url and history never show a secret")
        self.assertTrue(r["starred"])


class Misuse(HaloTestCase):
    """Programming errors raise: halo exec exits 3 with 'bad argument'."""

    CASES = [
        ('http.request{ url = BASE .. "/ok", bogus = 1 }', "unknown option 'bogus'"),
        ('http.get(BASE .. "/ok", { timeot = 1 })', "unknown option 'timeot'"),
        ('http.get("127.0.0.1/ok")', "url must start with http:// or https://"),
        ('http.get("ftp://127.0.0.1/ok")', "url must start with http:// or https://"),
        ('http.request{ method = "GET" }', "option 'url' is required"),
        ('http.get(BASE .. "/ok", { headers = "x-a: 1" })', "option 'headers' must be a table"),
        ('http.get(BASE .. "/ok", { headers = { ["x-a"] = {} } })', "headers must map names to strings"),
        ('http.get(BASE .. "/ok", { headers = { ["x-a"] = "1\\r\\nx-b: 2" } })', "newline"),
        ('http.post(BASE .. "/echo", { body = "a", json = { 1 } })', "give one of body, json, form, multipart"),
        ('http.post(BASE .. "/echo", { form = { a = 1 }, multipart = {} })', "give one of body, json, form, multipart"),
        ('http.get(BASE .. "/ok", { query = "a=b" })', "option 'query' must be a table"),
        ('http.get(BASE .. "/ok", { query = { a = {} } })', "query value"),
        ('http.get(BASE .. "/ok", { query = { "a", "b" } })', "query keys must be strings"),
        ('http.get(BASE .. "/ok", { timeout = -1 })', "option 'timeout' must be a positive number"),
        ('http.get(BASE .. "/ok", { connect_timeout = "soon" })', "option 'connect_timeout'"),
        ('http.get(BASE .. "/ok", { follow = "yes" })', "option 'follow'"),
        ('http.get(BASE .. "/ok", { max_body = 1.5 })', "option 'max_body'"),
        ('http.get(BASE .. "/ok", { verify = "no" })', "option 'verify'"),
        ('http.get(BASE .. "/ok", { record = "no" })', "option 'record'"),
        ('http.post(BASE .. "/echo", { multipart = { { data = "x" } } })', "needs a name"),
        ('http.post(BASE .. "/echo", { multipart = { { name = "a" } } })', "needs data"),
        ('http.post(BASE .. "/echo", { multipart = { { name = "a", data = "x", size = 1 } } })', "unknown option 'size'"),
        ('http.client{ base = BASE, nope = 1 }', "unknown option 'nope'"),
        ('http.client{ base = BASE }:get("/ok", { bogus = true })', "unknown option 'bogus'"),
        ('http.request("http://127.0.0.1/")', "bad argument #1 to 'request'"),
    ]

    def test_misuse_raises(self):
        for call, fragment in self.CASES:
            with self.subTest(call=call):
                self.assertRaisesBadArgument('local r, e = %s\nemit{ "went on", r ~= nil, e ~= nil }' % call, fragment)

    def test_misuse_names_the_script_line(self):
        run = self.assertRaisesBadArgument('\n\nhttp.get(BASE .. "/ok", { bogus = 1 })')
        line = PRELUDE.count("\n") + 3
        self.assertIn(".lua:%d: bad argument" % line, run.stderr, "the error points at the caller's line")

    def test_unknown_option_names_the_argument_and_what_is_known(self):
        """An unknown option is blamed, in Lua's wording (core/options.c), on
        the function and argument the script wrote, a client's table path
        included, and the message lists the options there are."""
        request = ("method, url, headers, query, body, json, form, multipart, timeout, connect_timeout, "
                   "follow, max_body, verify, ca_file, cert, key, unix_socket, record")
        client = ("base, headers, timeout, connect_timeout, follow, max_body, verify, ca_file, cert, key, "
                  "unix_socket, record")
        cases = [
            ('http.request{ url = BASE .. "/ok", timout = 1 }',
             "bad argument #1 to 'request' (unknown option 'timout'; known: %s)" % request),
            ('http.get(BASE .. "/ok", { timout = 1 })',
             "bad argument #2 to 'get' (unknown option 'timout'; known: %s)" % request),
            ('http.client{ base = BASE }:request{ url = "/ok", timout = 1 }',
             "bad argument #1 to 'request' (unknown option 'timout'; known: %s)" % request),
            ('http.client{ base = BASE }:get("/ok", { timout = 1 })',
             "bad argument #2 to 'get' (unknown option 'timout'; known: %s)" % request),
            # defaults that fail their checks: the client merges tables per request
            ('http.client{ base = BASE, timeout = -1 }:get("/ok", { timout = 1 })',
             "bad argument #2 to 'get' (unknown option 'timout'; known: %s)" % request),
            ('http.client{ base = BASE, timeout = -1 }:request{ url = "/ok", timout = 1 }',
             "bad argument #1 to 'request' (unknown option 'timout'; known: %s)" % request),
            ('http.client{ base = BASE, timout = 1 }',
             "bad argument #1 to 'client' (unknown option 'timout'; known: %s)" % client),
            ('http.post(BASE .. "/echo", { multipart = { { name = "a", data = "x", size = 1 } } })',
             "bad argument #2 to 'post' (unknown option 'size'; known: name, data, filename, content_type)"),
        ]
        for call, message in cases:
            with self.subTest(call=call):
                self.assertRaisesBadArgument('local r, e = %s\nemit{ "went on", r ~= nil, e ~= nil }' % call, message)


class Concurrency(HaloTestCase):
    def test_hundred_tasks_in_flight_together(self):
        run = self.run_lua("""
            local t0 = time.mono()
            local tasks = {}
            for i = 1, 100 do
              tasks[i] = task.spawn(function()
                local res, err = http.get(BASE .. "/slow-headers?delay=1")
                return res and res.status or err.kind
              end)
            end
            local statuses = {}
            for i = 1, 100 do local s = tasks[i]:join(); statuses[tostring(s)] = (statuses[tostring(s)] or 0) + 1 end
            emit{ seconds = time.mono() - t0, statuses = statuses }
        """)
        self.assertEqual(run.code, 0, repr(run))
        r = run.result()
        sys.stderr.write("[100 x /slow-headers?delay=1 took %.2f s] " % r["seconds"])
        self.assertEqual(r["statuses"], {"200": 100})
        self.assertGreaterEqual(r["seconds"], 1.0)
        self.assertLess(r["seconds"], 3.0, "100 one-second requests should overlap, took %.2f s" % r["seconds"])

    def test_cancel_in_flight_request(self):
        r = self.lua_result("""
            local t0 = time.mono()
            local bg = task.spawn(function() return http.get(BASE .. "/slow-headers?delay=3") end)
            time.sleep(0.3)
            local was_live = bg:cancel()
            local ok, err = pcall(bg.join, bg)
            local after = http.get(BASE .. "/ok")
            emit{ was_live = was_live, status = bg:status(), join_ok = ok, join_err = tostring(err),
                  after = after.status, took = time.mono() - t0, history = http.history() }
        """)
        self.assertTrue(r["was_live"])
        self.assertEqual(r["status"], "cancelled")
        self.assertFalse(r["join_ok"])
        self.assertIn("cancelled", r["join_err"])
        self.assertEqual(r["after"], 200)
        self.assertLess(r["took"], 2, "cancelling did not wait for the slow reply")
        self.assertEqual(len(r["history"]), 2)
        self.assertEqual(r["history"][0].get("error"), "cancelled")
        self.assertNotIn("status", r["history"][0])
        self.assertAlmostEqual(r["history"][0]["end"] - r["history"][0]["start"], 0.3, delta=0.2)

    def test_close_variable_cancels_request(self):
        r = self.lua_result("""
            local t0 = time.mono()
            do
              local bg <close> = task.spawn(function() return http.get(BASE .. "/slow-headers?delay=3") end)
              time.sleep(0.2)
            end
            emit{ took = time.mono() - t0, error = http.history()[1].error }
        """)
        self.assertLess(r["took"], 1.5)
        self.assertEqual(r["error"], "cancelled")

    def test_request_answered_but_not_yet_resumed_is_in_history(self):
        # Regression test (fixed engine bug): a transfer that completed (its task woken, not yet
        # resumed) when the task is cancelled is never recorded: request_done
        # is the only place that records a finished transfer, cancel_on() skips
        # the cancel hook for a READY task, and request_wait_gc frees the
        # transfer silently. The same race drops requests from --history when a
        # check's deadline strikes as its requests time out (their timeouts are
        # capped to that deadline). Every request must land in the history.
        r = self.lua_result("""
            local a = task.spawn(function() return http.get(BASE .. "/slow-headers?delay=0.1") end)
            local seen
            local c = task.spawn(function() time.sleep(0.15); seen = a:status(); a:cancel() end)
            time.sleep(0.02)                      -- a's request is on the wire
            local t0 = time.mono()
            while time.mono() - t0 < 0.3 do end   -- the reply arrives, c's timer expires
            time.sleep(0.2)                       -- one loop round wakes c, then a; c cancels a
            c:join()
            emit{ seen = seen, history = http.history() }
        """)
        self.assertEqual(r["seen"], "ready", "the setup did not reach the race")
        self.assertEqual(len(r["history"]), 1, "the answered request is missing from http.history()")
        self.assertTrue(r["history"][0].get("status") == 200 or r["history"][0].get("error") == "cancelled")


class HistoryFile(HaloTestCase):
    def test_history_file_one_line_per_request(self):
        history = os.path.join(self.tmp, "history.jsonl")
        proc, report, lines = run_fixture(self, ["1"], history)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(report["checks"][0]["status"], "PASS", report)
        self.assertEqual(len(lines), 5, lines)
        self.assertEqual({l["check"] for l in lines}, {"1"})
        self.assertEqual([l["id"] for l in lines], [1, 2, 3, 4, 5])
        self.assertEqual([l["method"] for l in lines], ["GET", "GET", "POST", "GET", "HEAD"])
        self.assertEqual([l["status"] for l in lines], [200, 200, 503, None, 200])
        self.assertEqual([l["error"] for l in lines], [None, None, None, "connect", None])
        self.assertEqual([l["replica"] for l in lines], [None, "api2", None, None, "api1"])
        self.assertEqual(lines[1]["url"], self.edge.url("/replica?name=api2"))
        self.assertEqual(lines[0]["bytes"], 3)
        self.assertNotEqual(lines[4]["task"], lines[0]["task"])
        for l in lines:
            self.assertLessEqual(l["start"], l["end"])


class Leaks(HaloTestCase):
    """Timeouts and cancellation free their transfers: valgrind finds no
    definitely-lost blocks. The option lists main.c leaks in every run are
    suppressed here (see test_plain_exec_leaks_nothing) so that these tests
    see the http module only."""

    SUPPRESSIONS = """\
{
   halo-main-option-lists
   Memcheck:Leak
   match-leak-kinds: definite
   fun:malloc
   fun:xrealloc
   fun:grow_array
   fun:strlist_add
}
"""

    @classmethod
    def setUpClass(cls):
        cls.valgrind = shutil.which("valgrind")
        if not cls.valgrind:
            raise unittest.SkipTest("valgrind is not installed: the leak tests need it")
        super().setUpClass()
        cls.supp = os.path.join(cls.tmp, "halo.supp")
        with open(cls.supp, "w") as f:
            f.write(cls.SUPPRESSIONS)

    def vg(self, logdir=None, suppress=True):
        cmd = [self.valgrind, "-q", "--leak-check=full", "--errors-for-leak-kinds=definite", "--error-exitcode=99"]
        if suppress:
            cmd.append("--suppressions=" + self.supp)
        if logdir:
            cmd.append("--log-file=" + os.path.join(logdir, "vg.%p.log"))
        return cmd

    def assertNoLeaks(self, run):
        self.assertNotEqual(run.code, 99, "valgrind found errors or definite leaks:\n" + run.stderr)
        self.assertNotIn("definitely lost", run.stderr, run.stderr)
        self.assertNotIn("Invalid read", run.stderr, run.stderr)
        self.assertNotIn("Invalid write", run.stderr, run.stderr)

    def test_cancelled_requests_free_everything(self):
        run = self.run_lua("""
            local tasks = {}
            for i = 1, 20 do
              tasks[i] = task.spawn(function()
                local path = i % 2 == 0 and "/slow-headers?delay=5" or "/slow-body?delay=5&size=50"
                return http.post(BASE .. path, { json = { i = i }, headers = { ["x-n"] = i } })
              end)
            end
            time.sleep(0.5)
            for i = 1, 20 do tasks[i]:cancel() end
            local cancelled = 0
            for _, h in ipairs(http.history()) do if h.error == "cancelled" then cancelled = cancelled + 1 end end
            local after = http.get(BASE .. "/ok")
            emit{ cancelled = cancelled, after = after.status }
        """, wrapper=self.vg(), timeout=120)
        self.assertNoLeaks(run)
        self.assertEqual(run.code, 0, repr(run))
        self.assertEqual(run.result(), {"cancelled": 20, "after": 200})

    def test_errors_free_everything(self):
        run = self.run_lua("""
            local kinds = {}
            local function try(path, opts)
              local res, err = http.get(BASE .. path, opts)
              kinds[#kinds + 1] = res and res.status or err.kind
            end
            try("/slow-headers?delay=3", { timeout = 0.3 })
            try("/big?size=1000000", { max_body = 100 })
            try("/bad-status")
            try("/reset")
            try("/redirect-loop", { follow = true })
            try("/ok", { unix_socket = UNIX })
            local _, raised = pcall(http.get, BASE .. "/ok", { bogus = 1 })   -- misuse frees its half-built transfer
            emit{ kinds = kinds, raised = tostring(raised):find("bad argument", 1, true) ~= nil }
        """, wrapper=self.vg(), timeout=120)
        self.assertNoLeaks(run)
        self.assertEqual(run.code, 0, repr(run))
        self.assertEqual(run.result(), {"kinds": ["timeout", "too_large", "protocol", "connect", "protocol", 200],
                                        "raised": True})

    def test_exec_timeout_during_request(self):
        run = self.run_lua("""
            task.spawn(function() return http.get(BASE .. "/slow-body?delay=5&size=10") end)
            while true do http.get(BASE .. "/slow-headers?delay=5") end
        """, wrapper=self.vg(), halo_args=["--timeout", "1"], timeout=120)
        self.assertNoLeaks(run)
        self.assertEqual(run.code, 3, repr(run))
        self.assertIn("timeout", run.stderr)

    def test_check_timeout_during_request(self):
        logdir = tempfile.mkdtemp(prefix="vg-", dir=self.tmp)
        history = os.path.join(self.tmp, "timeout-history.jsonl")
        proc, report, _ = run_fixture(self, ["2"], history, wrapper=self.vg(logdir), timeout=120)
        logs = ""
        for name in sorted(os.listdir(logdir)):
            with open(os.path.join(logdir, name)) as f:
                logs += f.read()
        self.assertGreaterEqual(len(os.listdir(logdir)), 2, "valgrind followed the runner and its worker")
        self.assertNotEqual(proc.returncode, 99, logs)
        self.assertNotIn("definitely lost", logs, logs)
        self.assertNotIn("Invalid ", logs, logs)
        check = report["checks"][0]
        self.assertEqual(check["status"], "ERROR")
        self.assertIn("timeout", check["message"])
        self.assertNotIn("worker", check["message"], "the worker ended the check itself, not the runner")

    def test_plain_exec_leaks_nothing(self):
        # Regression test (fixed engine bug): main.c cmd_eval_or_exec never frees its option lists
        # (o.rest, o.libs): `valgrind --leak-check=full halo eval 1` reports
        # 64 + 96 bytes definitely lost from strlist_add (main.c:78). Not the
        # http module's; the other leak tests suppress exactly this.
        run = self.run_lua("emit(1)", wrapper=self.vg(suppress=False), timeout=120)
        self.assertNoLeaks(run)


class TLS(HaloTestCase):
    """HTTPS against the edge server with a test CA: verify, ca_file, cert, key."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.certs = make_certs(cls.tmp)
            cls.tls = EdgeServer(tls_cert=cls.certs["server"], tls_key=cls.certs["server.key"])
            cls.mtls = EdgeServer(tls_cert=cls.certs["server"], tls_key=cls.certs["server.key"],
                                  client_ca=cls.certs["ca"])
        except BaseException:
            cls.edge.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.tls.stop()
        cls.mtls.stop()
        super().tearDownClass()

    def tls_result(self, code):
        return self.lua_result("""
            local TLS, MTLS, CA, CERT, KEY = arg[3], arg[4], arg[5], arg[6], arg[7]
            local function outcome(res, err)
              if res then return { status = res.status, tls = res.timing.tls, version = res.http_version, timing = res.timing } end
              return { kind = err.kind, message = err.message }
            end
        """ + code, extra_args=[self.tls.base, self.mtls.base, self.certs["ca"], self.certs["client"],
                                self.certs["client.key"]])

    def test_verify_on_by_default(self):
        r = self.tls_result('emit(outcome(http.get(TLS .. "/ok")))')
        self.assertEqual(r["kind"], "tls")
        self.assertIn(self.tls.url("/ok"), r["message"])

    def test_verify_false(self):
        r = self.tls_result('emit(outcome(http.get(TLS .. "/ok", { verify = false })))')
        self.assertEqual(r["status"], 200)
        self.assertGreater(r["tls"], 0, "timing.tls is the handshake")
        t = r["timing"]
        self.assertTrue(0 <= t["dns"] <= t["connect"] <= t["tls"] <= t["first_byte"] <= t["total"], t)

    def test_ca_file(self):
        r = self.tls_result("""
            local a = outcome(http.get(TLS .. "/ok", { ca_file = CA }))
            local b = outcome(http.get((TLS:gsub("127.0.0.1", "localhost")) .. "/ok", { ca_file = CA }))
            local c = outcome(http.get(TLS .. "/ok", { ca_file = CA .. ".missing" }))
            emit{ a = a, b = b, c = c }
        """)
        self.assertEqual(r["a"]["status"], 200)
        self.assertEqual(r["a"]["version"], "1.1")
        self.assertEqual(r["b"]["status"], 200, "the certificate names localhost too")
        self.assertEqual(r["c"]["kind"], "tls")

    def test_https_to_a_plain_server_is_tls(self):
        r = self.tls_result("""emit(outcome(http.get((BASE:gsub("^http:", "https:")) .. "/ok", { verify = false })))""")
        self.assertEqual(r["kind"], "tls")

    def test_client_certificate(self):
        r = self.tls_result("""
            local with = outcome(http.get(MTLS .. "/ok", { ca_file = CA, cert = CERT, key = KEY }))
            local c = http.client{ base = MTLS, ca_file = CA, cert = CERT, key = KEY }
            local via_client = outcome(c:get("/ok"))
            local missing = outcome(http.get(MTLS .. "/ok", { ca_file = CA, cert = CERT .. ".missing", key = KEY }))
            emit{ with = with, via_client = via_client, missing = missing }
        """)
        self.assertEqual(r["with"]["status"], 200)
        self.assertEqual(r["via_client"]["status"], 200)
        self.assertEqual(r["missing"]["kind"], "tls")

    def test_client_certificate_refused_is_tls(self):
        # Regression test (fixed engine bug): with TLS 1.3 the server's "certificate required" alert
        # arrives after the handshake, curl reports CURLE_RECV_ERROR (56) and
        # error_kind() maps that to "connect". The failure is TLS's: kind
        # should be "tls" (a check counting connect failures during a cert
        # rotation would count it as the server being down).
        r = self.tls_result('emit(outcome(http.get(MTLS .. "/ok", { ca_file = CA })))')
        self.assertEqual(r.get("kind"), "tls", r)


class Nginx(HaloTestCase):
    """Keep-alive, throughput and HTTP/2 against a throwaway nginx."""

    @classmethod
    def setUpClass(cls):
        import nginx
        if not nginx.nginx_binary():
            raise unittest.SkipTest("nginx is not installed")
        super().setUpClass()
        cls.root = os.path.join(cls.tmp, "www")
        os.makedirs(cls.root)
        with open(os.path.join(cls.root, "small.txt"), "w") as f:
            f.write("hello from nginx\n")
        cls.ngx = nginx.Nginx(cls.root)
        try:
            cls.ngx.start()
        except BaseException:
            cls.edge.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.ngx.stop()
        super().tearDownClass()

    def connections(self, uri):
        time.sleep(0.1)  # nginx writes the log line after the response
        log = [e for e in self.ngx.access_log() if e["uri"] == uri]
        return log, collections.Counter(e["connection"] for e in log)

    def test_client_reuses_its_connection(self):
        r = self.lua_result("""
            local c = http.client{ base = arg[3] }
            local ok = 0
            for i = 1, 50 do
              local res = c:get("/small.txt?seq")
              if res and res.status == 200 and res.body == "hello from nginx\\n" then ok = ok + 1 end
            end
            emit{ ok = ok }
        """, extra_args=[self.ngx.url("")])
        self.assertEqual(r["ok"], 50)
        log, conns = self.connections("/small.txt?seq")
        self.assertEqual(len(log), 50)
        sys.stderr.write("[50 sequential requests: %d connection(s)] " % len(conns))
        self.assertLessEqual(len(conns), 2, "50 sequential requests used %d connections" % len(conns))
        self.assertGreaterEqual(max(e["requests"] for e in log), 25, "one connection carried most of them")

    def test_throughput_smoke(self):
        run = self.run_lua("""
            local c = http.client{ base = arg[3] }
            local t0 = time.mono()
            local tasks = {}
            for w = 1, 50 do
              tasks[w] = task.spawn(function()
                local ok, bad = 0, {}
                for i = 1, 40 do
                  local res, err = c:get("/small.txt?tp")
                  if res and res.status == 200 and res.body == "hello from nginx\\n" then ok = ok + 1
                  else bad[#bad + 1] = res and res.status or err.message end
                end
                return ok, bad
              end)
            end
            local ok, bad = 0, {}
            for w = 1, 50 do
              local n, b = tasks[w]:join()
              ok = ok + n
              for _, x in ipairs(b) do bad[#bad + 1] = x end
            end
            emit{ ok = ok, bad = bad, seconds = time.mono() - t0 }
        """, extra_args=[self.ngx.url("")])
        self.assertEqual(run.code, 0, repr(run))
        r = run.result()
        self.assertEqual(r["ok"], 2000, str(r["bad"])[:1000])
        log, conns = self.connections("/small.txt?tp")
        self.assertEqual(len(log), 2000)
        self.assertTrue(all(e["status"] == 200 for e in log))
        sys.stderr.write("[2000 requests from 50 tasks: %.2f s, %d connections] " % (r["seconds"], len(conns)))
        self.assertLess(len(conns), 2000 // 2, "connections are reused")

    def test_concurrent_tasks_keep_their_connections(self):
        # Regression test (fixed engine bug): 50 tasks sending 40 requests each (never more than 50 in
        # flight) open 190-310 connections instead of ~50. http.c does not set
        # CURLMOPT_MAXCONNECTS, so curl sizes its connection cache at 4 x the
        # easy handles added *at that moment*; when few transfers are in flight
        # it closes the idle connections the other tasks are about to reuse.
        # With CURLMOPT_MAXCONNECTS = 512 (tried via an LD_PRELOAD shim) the
        # same run opens exactly 50 (and 10 tasks open exactly 10).
        run = self.run_lua("""
            local tasks = {}
            for w = 1, 50 do
              tasks[w] = task.spawn(function()
                for i = 1, 40 do http.get(arg[3] .. "/small.txt?keep") end
              end)
            end
            for w = 1, 50 do tasks[w]:join() end
            emit(true)
        """, extra_args=[self.ngx.url("")])
        self.assertEqual(run.code, 0, repr(run))
        log, conns = self.connections("/small.txt?keep")
        self.assertEqual(len(log), 2000)
        self.assertLessEqual(len(conns), 100, "50 tasks opened %d connections for 2000 requests" % len(conns))


class NginxHTTP2(HaloTestCase):
    @classmethod
    def setUpClass(cls):
        import nginx
        if not nginx.nginx_binary():
            raise unittest.SkipTest("nginx is not installed")
        super().setUpClass()
        try:
            cls.certs = make_certs(cls.tmp)
            root = os.path.join(cls.tmp, "www")
            os.makedirs(root)
            with open(os.path.join(root, "small.txt"), "w") as f:
                f.write("over h2\n")
            cls.ngx = nginx.Nginx(root, tls=(cls.certs["server"], cls.certs["server.key"])).start()
        except BaseException:
            cls.edge.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.ngx.stop()
        super().tearDownClass()

    def test_http2_over_tls(self):
        r = self.lua_result("""
            local c = http.client{ base = arg[3], ca_file = arg[4] }
            local res, err = c:get("/small.txt")
            assert(res, err and err.message)
            local tasks = {}
            for i = 1, 20 do tasks[i] = task.spawn(function() return c:get("/small.txt?mux").status end) end
            local ok = 0
            for i = 1, 20 do if tasks[i]:join() == 200 then ok = ok + 1 end end
            emit{ version = res.http_version, body = res.body, tls = res.timing.tls, ok = ok,
                  ctype = res.headers["content-type"] }
        """, extra_args=[self.ngx.url(""), self.certs["ca"]])
        self.assertEqual(r["version"], "2")
        self.assertEqual(r["body"], "over h2\n")
        self.assertGreater(r["tls"], 0)
        self.assertEqual(r["ok"], 20)
        self.assertEqual(r["ctype"], "text/plain", "HTTP/2 header names (lower-case) are found the same way")


if __name__ == "__main__":
    unittest.main()
