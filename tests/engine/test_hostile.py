"""The hostile-script corpus: tests/hostile/*.lua, one hostile check per file.

Every script runs in its own `halo run --checks DIR --format json`, next to
a well-behaved canary check (CANARY below) in the same directory, twice:
with `--parallel 2` (the canary runs beside it) and with `--parallel 1`
(the canary runs right after it, so a library table one check changed
would be seen by the next). For every script and both runs the test
asserts:

  - the hostile check's status and message, from the script's own header:
        -- expect: STATUS [regex]     (PASS, FAIL, ERROR or N/A; required)
        -- args: --max-mem 64M        (more arguments for both runs)
        -- log: regex                 (one of the check's log lines matches)
        -- nolog: regex               (none does: code that must not have run)
        -- margin: S                  (seconds; replaces MARGIN below)
    a check expected to PASS or ERROR records no t:expect failure;
  - the exit status that follows from it (0 PASS, 1 FAIL, 3 ERROR);
  - the canary PASSes, with the same fingerprint of the standard library,
    the string metatable and the globals as when it runs alone, and a
    random sequence of its own;
  - nothing is left behind: no process halo started (halotest's Running,
    as a subreaper), no connection to the test's own servers (both the
    servers' count of open connections and `ss` of established sockets),
    no listener opened by a process of the run, no request reaching the
    servers after halo exited, no request to a /forbidden path ever, the
    victim file untouched and the marker file not created;
  - the run ends within the check's timeout + GRACE + the margin, and its
    JSON report stays under REPORT_MAX however much the check wrote.

The servers the test starts on 127.0.0.1: an HTTP/1.1 server (/fast
answers at once, /slow?s=N after N seconds, /hang never; every request is
recorded) and a fake PostgreSQL server that accepts libpq's startup and
answers every query with an error, enough for sql.connect to return a real
connection object. The scripts find them in the stack file (stack.server,
stack.pg), which also names the victim and marker files and allows only
`sleep` for proc.run.

No test is marked expectedFailure: a script that shows an engine defect
keeps asserting the correct behaviour and fails. FOUND_DEFECTS below lists
the defects this corpus found (all fixed since): should one come back, the
failure message says what it was and where.

Two more tests generate check files at test time (not kept in the
repository): a check file of several megabytes, and one bigger than
--max-mem.

Run: cd tests/engine && HALO_BIN=../../build/halo HALO_SOURCE=../.. \
     python3 -m unittest -v test_hostile
"""
import asyncio
import glob
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from halotest import SOURCE, HaloTestCase, become_subreaper, logs, parse_report, start

HOSTILE = os.path.join(SOURCE, "tests", "hostile")
GRACE = 2       # --grace for every run
MARGIN = 3.0    # seconds past timeout + grace: starting halo, the canary, the report
SETTLE = 3.0    # seconds the servers get to see the run's connections close
REPORT_MAX = 16 << 20  # bytes of JSON report a run of two checks may produce
LATE_WINDOW = (0.2, 0.6)  # seconds after halo exits in which no request may reach the servers
STATUS_EXIT = {"PASS": 0, "N/A": 0, "FAIL": 1, "ERROR": 3}
CANARY_ID = "zz-canary"  # named ids run after the hostile scripts' names

# Scripts that fail because of an engine defect found with this corpus
# (the engine is not changed here; the scripts assert the right behaviour).
# Shown with the failure, so whoever fixes one knows where to look.
FOUND_DEFECTS = {
    "unpack-spawn-args": "sched.c sched_spawn moves the arguments onto the new thread without lua_checkstack: "
                         "more than ~40 arguments overrun its stack (SIGSEGV, or arguments corrupted)",
    "unpack-task-returns-many": "sched.c finish() moves a finished task's results onto the host thread "
                                "without lua_checkstack: ~100 results overrun it (SIGSEGV)",
    "unpack-run-returns-many": "the same finish() overrun for the run itself: `return table.unpack(list)` "
                               "with 100 values kills the worker (SIGABRT)",
    "type-headers-index-number": "http.c headers_index does lua_rawget(L, 1) without checking that 1 is a table, "
                                 "and res.headers' metatable is not hidden: index(5, 'x') is a SIGSEGV",
    "cpu-error-handler-loops": "a hook-raised deadline error leaves L->allowhook off while Lua runs the xpcall "
                               "message handler: a handler that loops runs with no hook until the hard deadline",
    "mem-background-task": "the memory limit stops only the thread that hit it: the run (asleep) wakes and "
                           "runs on to its end",
    "host-close-after-end": "errors of __close handlers run by the host's cancel of leftover tasks are "
                            "dropped (sched.c sched_cancel ignores lua_resetthread's status)",
    "host-close-raises-at-cancel": "the same: a __close error during the host's cancel is dropped, the check PASSes",
    "host-close-loops-at-cancel": "the same path: the deadline stops the spin, but the outcome was decided before "
                                  "the cancel and the kill reason set during it is never read (run_cleanup's "
                                  "rearm clears it): PASS after the whole timeout",
    "lib-math-randomseed": "math.random's seed is time(NULL) and the address of the state, the same in every "
                           "forked worker: checks of one run draw the same 'random' numbers",
    "mem-one-huge-allocation": "a single allocation refused by the cap is reported as Lua's bare "
                               "'not enough memory', without the cap",
    "mem-table-concat": "the same bare 'not enough memory'",
    "generated-file-past-cap": "the same bare 'not enough memory', for a check file, without the file's name",
    "type-fake-name-sql": "luaL_checkudata's message takes __name from the forged metatable: "
                          "'halo.sql.conn expected, got halo.sql.conn'",
    "escape-require-nul": "require.c valid_module_name checks the name only up to its first NUL: "
                          "require('json\\0/../../x') returns json",
    "err-expect-message-tostring-raises": "context.lua message() calls tostring(fmt) unprotected when there are "
                                          "no format arguments: the failure becomes an ERROR from inside t:expect",
    "err-huge-message": "the error message is not cut at FIELD_MAX like log fields: 20 MB twice in the report",
    "flood-log-megabytes": "no byte budget per check: 5000 log lines of 256 KiB each are kept",
    "flood-failures": "no byte budget per check for failures (5000 kept, each up to the field cap)",
    "flood-evidence": "no limit on the number of evidence keys",
}

CANARY = r'''
-- The canary: a well-behaved check run beside and after every hostile
-- script. It asserts that the world it sees is the pristine sandbox --
-- globals, library tables, the string metatable, host modules -- and does
-- a little task work. Its fingerprint (evidence) must equal the one of a
-- run of the canary alone.
local task, time, json = require "task", require "time", require "json"

-- drawn first, before anything else can touch the generator
local draws = string.format("%.17g %.17g %.17g", math.random(), math.random(), math.random())

local GLOBALS = "_G _VERSION assert collectgarbage coroutine debug error getmetatable ipairs load " ..
                "math next os pairs pcall print rawequal rawget rawlen rawset require select " ..
                "setmetatable string table tonumber tostring type utf8 warn xpcall"
local LIBS = {
  string = "byte char find format gmatch gsub len lower match pack packsize rep reverse sub unpack upper",
  table = "concat insert move pack remove sort unpack",
  math = "abs acos asin atan atan2 ceil cos cosh deg exp floor fmod frexp huge ldexp log log10 max " ..
         "maxinteger min mininteger modf pi pow rad random randomseed sin sinh sqrt tan tanh tointeger type ult",
  utf8 = "char charpattern codepoint codes len offset",
  coroutine = "close create isyieldable resume running status wrap yield",
  os = "clock date difftime time",
  debug = "traceback",
}

local function keys(tbl)
  local list = {}
  for k, v in pairs(tbl) do list[#list + 1] = tostring(k) end
  table.sort(list)
  return table.concat(list, " ")
end

return {
  id = "zz-canary",
  title = "canary: the world is pristine",
  timeout = 5,
  run = function(t)
    t:evidence("random", draws)
    math.randomseed(42)
    local seeded = string.format("%.17g %.17g %.17g", math.random(), math.random(), math.random())
    t:expect(draws ~= seeded, "math.random was seeded with 42 before the canary ran: %s", draws)

    -- globals: exactly the sandbox's, no more, no less
    t:expect(keys(_G) == GLOBALS, "globals differ: %s", keys(_G))
    t:expect(getmetatable(_G) == nil, "_G has a metatable: %s", tostring(getmetatable(_G)))
    t:expect(_ENV == _G, "_ENV is not _G")
    for _, name in ipairs { "io", "package", "dofile", "loadfile", "HALO_STASH", "HALO_HOSTILE" } do
      t:expect(rawget(_G, name) == nil, "global %s is set: %s", name, tostring(rawget(_G, name)))
    end

    -- library tables: the same members, each of the right type
    local fingerprint = { "globals: " .. GLOBALS, "_VERSION: " .. tostring(_VERSION) }
    for _, lib in ipairs { "string", "table", "math", "utf8", "coroutine", "os", "debug" } do
      local tbl = _G[lib]
      t:expect(type(tbl) == "table", "%s is a %s", lib, type(tbl))
      if type(tbl) == "table" then
        t:expect(keys(tbl) == LIBS[lib], "%s has: %s", lib, keys(tbl))
        local members = {}
        for k, v in pairs(tbl) do members[#members + 1] = k .. ":" .. type(v) end
        table.sort(members)
        fingerprint[#fingerprint + 1] = lib .. ": " .. table.concat(members, " ")
      end
    end
    for _, name in ipairs { "assert", "error", "ipairs", "next", "pairs", "pcall", "print", "rawequal",
                            "rawget", "rawlen", "rawset", "select", "setmetatable", "getmetatable",
                            "tonumber", "tostring", "type", "xpcall", "load", "require", "collectgarbage" } do
      t:expect(type(_G[name]) == "function", "%s is a %s", name, type(_G[name]))
    end

    -- behaviour of what hostile scripts replace
    t:expect(string.rep("ab", 3) == "ababab", "string.rep is broken")
    t:expect(("ab"):rep(2, "-") == "ab-ab", "the string methods' rep is broken")
    t:expect(string.format("%d-%s-%5.2f", 7, "x", 1.5) == "7-x- 1.50", "string.format is broken")
    t:expect(("%d"):format(3) == "3", "the string methods' format is broken")
    t:expect(("Hello"):upper() == "HELLO" and ("Hello"):lower() == "hello", "upper/lower are broken")
    t:expect(("a,b,c"):gsub(",", ";") == "a;b;c", "gsub is broken")
    t:expect(("key=value"):match("^(%w+)=(%w+)$") == "key", "match is broken")
    t:expect(("abc"):find("b", 1, true) == 2, "find is broken")
    t:expect(("abc"):len() == 3 and #"abc" == 3, "len is broken")
    t:expect(("abc"):sub(2) == "bc" and ("abc"):byte(1) == 97, "sub/byte are broken")
    t:expect(("abc"):reverse() == "cba", "reverse is broken")
    local list = {}
    table.insert(list, "b")
    table.insert(list, 1, "a")
    t:expect(table.concat(list, ",") == "a,b", "table.insert/concat are broken: %s", table.concat(list, ","))
    table.sort(list, function(x, y) return x > y end)
    t:expect(list[1] == "b", "table.sort is broken")
    t:expect(table.remove(list) == "a" and #list == 1, "table.remove is broken")
    t:expect(select("#", table.unpack({ 1, 2, 3 })) == 3, "table.unpack is broken")
    t:expect(table.pack(1, nil, 3).n == 3, "table.pack is broken")
    t:expect(math.floor(2.5) == 2 and math.max(1, 3, 2) == 3 and math.abs(-2) == 2, "math is broken")
    t:expect(math.type(1) == "integer" and math.type(1.0) == "float", "math.type is broken")
    t:expect(math.pi > 3.14159 and math.pi < 3.1416, "math.pi is %s", tostring(math.pi))
    t:expect(math.huge > 1e308 and math.maxinteger == 0x7fffffffffffffff, "math constants changed")
    local r = math.random(1, 6)
    t:expect(r >= 1 and r <= 6, "math.random(1, 6) gave %s", tostring(r))
    t:expect(tostring(12) == "12" and tonumber("0x10") == 16, "tostring/tonumber are broken")
    t:expect(type(type) == "function" and select("#", 1, nil) == 2, "type/select are broken")
    local ok, err = pcall(error, "e", 0)
    t:expect(not ok and err == "e", "pcall/error are broken")
    t:expect(rawequal(list, list) and rawlen({ 1, 2 }) == 2, "rawequal/rawlen are broken")
    local n = 0
    for _ in pairs { a = 1, b = 2 } do n = n + 1 end
    for _ in ipairs { 1, 2, 3 } do n = n + 1 end
    t:expect(n == 5, "pairs/ipairs are broken")
    local proxy = setmetatable({}, { __index = function(_, k) return k .. "!" end })
    t:expect(proxy.x == "x!", "setmetatable/__index are broken")
    t:expect(utf8.char(72, 228) == "H\xC3\xA4" and utf8.len("H\xC3\xA4") == 2, "utf8 is broken")
    t:expect(os.date("!%Y-%m-%d", 0) == "1970-01-01" and type(os.time()) == "number", "os.date/time are broken")
    t:expect(load("return 1 + 1")() == 2, "load is broken")
    t:expect(load("return x", "=env", "t", { x = 5 })() == 5, "load with an env is broken")
    t:expect(type(collectgarbage("count")) == "number", "collectgarbage('count') is broken")
    t:expect(not pcall(collectgarbage, "stop"), "collectgarbage('stop') is allowed")
    t:expect(collectgarbage("isrunning") == true, "the collector does not run")
    t:expect(debug.traceback("x"):match("^x\nstack traceback:") ~= nil, "debug.traceback is broken")
    t:expect(json.encode({ 1, 2 }) == "[1,2]" and json.decode('{"a":1}').a == 1, "json is broken")

    -- the sandbox itself
    t:expect(getmetatable("").__index == string, "the string metatable's __index is %s", tostring(getmetatable("").__index))
    t:expect(("").rep == string.rep and ("").format == string.format, "string methods are not the string table's")
    t:expect(string.dump == nil and io == nil and package == nil, "the sandbox lost a restriction")
    t:expect(os.execute == nil and os.getenv == nil and os.exit == nil, "os has more than the clock functions")
    t:expect(debug.sethook == nil and debug.getregistry == nil, "debug has more than traceback")
    t:expect(select(2, load("\27Lua")) ~= nil, "a binary chunk loads")

    -- a little task work
    local started = time.mono()
    local a = task.spawn(function() time.sleep(0.05) return "a" end)
    local b = task.spawn(function(x) time.sleep(0.05) return x end, "b")
    t:expect(a:join() .. b:join() == "ab", "tasks are broken")
    local took = time.mono() - started
    t:expect(took >= 0.04 and took < 1, "two 0.05 s sleeps side by side took %.3f s", took)
    local gen = coroutine.wrap(function() for i = 1, 3 do time.sleep(0) coroutine.yield(i) end end)
    t:expect(gen() + gen() + gen() == 6, "coroutine.wrap around time.sleep is broken")

    t:evidence("fingerprint", table.concat(fingerprint, "\n"))
  end,
}
'''


# ---- the test's own servers -----------------------------------------------------

def _pg_message(kind, payload=b""):
    return kind + struct.pack("!I", len(payload) + 4) + payload


_PG_ERROR = _pg_message(b"E", b"SERROR\0VERROR\0C0A000\0Mthe hostile tests' fake server runs no queries\0\0")
_PG_READY = _pg_message(b"Z", b"I")


class Servers:
    """An HTTP server and a fake PostgreSQL server on 127.0.0.1, on an
    asyncio loop in a thread. Counters are only written on that thread."""

    def __init__(self):
        self.requests = []   # (monotonic time, method, path)
        self.http_open = 0
        self.http_connections = 0
        self.pg_open = 0
        self.pg_connections = 0
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test servers did not start")

    def _main(self):
        asyncio.set_event_loop(self.loop)
        self._http = self.loop.run_until_complete(
            asyncio.start_server(self._serve_http, "127.0.0.1", 0, backlog=8192, limit=1 << 16))
        self._pg = self.loop.run_until_complete(asyncio.start_server(self._serve_pg, "127.0.0.1", 0))
        self.http_port = self._http.sockets[0].getsockname()[1]
        self.pg_port = self._pg.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()

    async def _serve_http(self, reader, writer):
        self.http_open += 1
        self.http_connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                if length:
                    await reader.readexactly(length)
                path, _, query = target.partition("?")
                self.requests.append((time.monotonic(), method, path))
                if path == "/hang":
                    await reader.read()  # until the client goes away
                    return
                if path == "/slow":
                    seconds = float(dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("s", "1"))
                    try:  # answer after `seconds`, unless the client goes away first
                        await asyncio.wait_for(reader.read(1), seconds)
                        return
                    except asyncio.TimeoutError:
                        pass
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            self.http_open -= 1
            writer.close()

    async def _serve_pg(self, reader, writer):
        self.pg_open += 1
        self.pg_connections += 1
        try:
            while True:  # SSLRequest / GSSENCRequest: "no"; then the startup message
                n = struct.unpack("!I", await reader.readexactly(4))[0]
                body = await reader.readexactly(n - 4)
                if struct.unpack("!I", body[:4])[0] in (80877103, 80877104):
                    writer.write(b"N")
                    continue
                break
            out = _pg_message(b"R", struct.pack("!I", 0))
            for k, v in (("server_version", "15.0"), ("client_encoding", "UTF8"), ("server_encoding", "UTF8"),
                         ("standard_conforming_strings", "on"), ("integer_datetimes", "on"),
                         ("DateStyle", "ISO, MDY")):
                out += _pg_message(b"S", k.encode() + b"\0" + v.encode() + b"\0")
            writer.write(out + _pg_message(b"K", struct.pack("!II", 4242, 4343)) + _PG_READY)
            failed = False
            while True:
                kind = await reader.readexactly(1)
                n = struct.unpack("!I", await reader.readexactly(4))[0]
                await reader.readexactly(n - 4)
                if kind == b"X":
                    return
                if kind == b"S":
                    writer.write(_PG_READY)
                    failed = False
                elif kind == b"Q":
                    writer.write(_PG_ERROR + _PG_READY)
                elif kind not in (b"H",) and not failed:
                    writer.write(_PG_ERROR)
                    failed = True
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.pg_open -= 1
            writer.close()

    def activity(self):
        """Changes whenever anything reaches either server."""
        return len(self.requests), self.http_connections, self.pg_connections

    def requests_since(self, since):
        return [r for r in list(self.requests) if r[0] > since]

    def wait_closed(self, timeout=SETTLE):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (self.http_open or self.pg_open):
            time.sleep(0.02)
        return self.http_open, self.pg_open

    def stop(self):
        def shut():
            self._http.close()
            self._pg.close()
            self.loop.stop()
        self.loop.call_soon_threadsafe(shut)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


# ---- sockets ---------------------------------------------------------------------

def ss(args):
    try:
        return subprocess.run(["ss", "-H"] + args, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def established_to(ports):
    """Client-side sockets still connected to one of our servers' ports."""
    flt = " or ".join(f"dport = :{p}" for p in ports)
    return [line for line in ss(["-tnp", "state", "established", f"( {flt} )"]).splitlines() if line.strip()]


def listeners():
    """{local address: line} of every listening TCP socket."""
    out = {}
    for line in ss(["-tlnp"]).splitlines():
        parts = line.split()
        if len(parts) >= 4:
            out[parts[3]] = line
    return out


# ---- the corpus --------------------------------------------------------------------

HEADER = re.compile(r"^--\s*(expect|args|log|nolog|margin):\s*(.*?)\s*$")


def parse_script(path):
    """The header of a hostile script: {expect: (status, regex|None),
    args: [...], logs: [...], margin: float, timeout: float}."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    spec = {"expect": None, "args": [], "logs": [], "nologs": [], "margin": MARGIN}
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        m = HEADER.match(line)
        if not m:
            continue
        key, value = m.groups()
        if key == "expect":
            status, _, pattern = value.partition(" ")
            spec["expect"] = (status, pattern.strip() or None)
        elif key == "args":
            spec["args"] += value.split()
        elif key == "log":
            spec["logs"].append(value)
        elif key == "nolog":
            spec["nologs"].append(value)
        elif key == "margin":
            spec["margin"] = float(value)
    m = re.search(r"^\s*timeout\s*=\s*([0-9.]+)", text, re.M)
    spec["timeout"] = float(m.group(1)) if m else 60.0
    return spec


def scripts():
    return sorted(glob.glob(os.path.join(HOSTILE, "*.lua")))


class HostileCorpus(HaloTestCase):
    """One test per script in tests/hostile/ (added below the class)."""

    @classmethod
    def setUpClass(cls):
        become_subreaper()
        cls.servers = Servers()
        cls.dir = tempfile.mkdtemp(prefix="halo-hostile-")
        cls.victim = os.path.join(cls.dir, "victim")
        cls.marker = os.path.join(cls.dir, "escaped")
        cls.stack = os.path.join(cls.dir, "stack.lua")
        with open(cls.stack, "w") as f:
            f.write(f'''return {{
  server = "http://127.0.0.1:{cls.servers.http_port}",
  pg = "host=127.0.0.1 port={cls.servers.pg_port} user=halo dbname=halo sslmode=disable gssencmode=disable connect_timeout=5",
  victim = "{cls.victim}",
  marker = "{cls.marker}",
  allow_exec = {{ "sleep" }},
}}
''')
        cls.canary_fingerprint = None
        base = cls.run_dir_once({"zz-canary.lua": CANARY}, [])
        c = base["report"].check(CANARY_ID)
        if c["status"] != "PASS":
            raise AssertionError(f"the canary does not pass on its own: {json.dumps(c, indent=1)}")
        cls.canary_fingerprint = c["evidence"]["fingerprint"]

    @classmethod
    def tearDownClass(cls):
        cls.servers.stop()
        shutil.rmtree(cls.dir, True)

    @classmethod
    def run_dir_once(cls, files, args, hung=120):
        """Runs halo over a new checks directory holding `files`; returns
        what a test needs to judge the run, leftovers included."""
        with open(cls.victim, "w") as f:
            f.write("the hostile scripts must not touch this file\n")
        if os.path.exists(cls.marker):
            os.remove(cls.marker)
        d = tempfile.mkdtemp(prefix="checks-", dir=cls.dir)
        for name, text in files.items():
            with open(os.path.join(d, name), "w", encoding="utf-8") as f:
                f.write(text)
        listening_before = listeners()
        activity_before = cls.servers.activity()
        h = start(["run", "--checks", d, "--stack", cls.stack, "--format", "json", "--grace", str(GRACE)] + args)
        try:
            res = h.finish(timeout=hung)
            ended = time.monotonic()
            new_listeners = {a: l for a, l in listeners().items() if a not in listening_before}
            left = h.leftovers()
            left_cmd = {}
            for p in left:
                try:
                    with open(f"/proc/{p}/cmdline", "rb") as f:
                        left_cmd[p] = f.read().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    pass
        finally:
            h.kill()
        open_after = cls.servers.wait_closed()
        # Something that outlived halo and keeps sending would show up in
        # this window; a request halo sent just before it exited may still
        # be read from the server's backlog in the first moment after.
        # A run that never reached the servers has nothing to send later.
        if cls.servers.activity() != activity_before:
            time.sleep(max(0.0, ended + LATE_WINDOW[1] - time.monotonic()))
        return {
            "result": res,
            "report": parse_report(res.out, res),
            "ended": ended,
            "leftovers": left_cmd or left,
            "new_listeners": new_listeners,
            "open_after": open_after,
            "established": established_to([cls.servers.http_port, cls.servers.pg_port]),
            "late_requests": cls.servers.requests_since(ended + LATE_WINDOW[0]),
            "pids_seen": set(h.seen),
            "dir": d,
        }

    # ---- the assertions for one script in one run -------------------------------

    def check_run(self, name, spec, parallel, source=None):
        """Runs the script (or `source`) with the canary once; returns the
        list of everything that went wrong, empty when all held."""
        status, pattern = spec["expect"]
        if source is None:
            with open(os.path.join(HOSTILE, name + ".lua"), encoding="utf-8") as f:
                source = f.read()
        before = len(self.servers.requests)
        run = self.run_dir_once({name + ".lua": source, "zz-canary.lua": CANARY},
                                ["--parallel", str(parallel)] + spec["args"],
                                hung=spec["timeout"] + GRACE + spec["margin"] + 60)
        res, rep = run["result"], run["report"]
        problems = []

        def short(text, n=400):
            text = str(text)
            return text if len(text) <= n else text[:n] + f"... [{len(text)} chars]"

        # the hostile check: its status, its message, what ran and what did not
        found = rep.checks_with_id(name)
        hostile = found[0] if found else {"status": None, "message": None, "failures": [], "logs": [],
                                          "evidence": {}}
        got = (hostile["status"], short(hostile["message"]))
        if hostile["status"] != status:
            problems.append(f"status {hostile['status']}, expected {status}; message: {got[1]}")
        elif pattern and not re.search(pattern, hostile["message"] or ""):
            problems.append(f"message {got[1]!r} does not match {pattern!r}")
        if re.search(r"worker crashed|unprotected Lua error", hostile["message"] or ""):
            problems.append(f"the worker crashed: {got[1]}")
        if status in ("PASS", "ERROR") and hostile["failures"]:
            problems.append(f"unexpected t:expect failures: {short(hostile['failures'])}")
        texts = logs(hostile)
        for want in spec["logs"]:
            if not any(re.search(want, text) for text in texts):
                problems.append(f"no log line matches {want!r}: {short(texts)}")
        for unwanted in spec["nologs"]:
            if any(re.search(unwanted, text) for text in texts):
                problems.append(f"a log line matches {unwanted!r}: code ran that must not have")

        # the canary: passed, saw the pristine world, drew its own numbers
        found = rep.checks_with_id(CANARY_ID)
        canary = found[0] if found else None
        if not canary or canary["status"] != "PASS":
            problems.append(f"the canary did not pass: {short(canary and (canary['status'], canary['message']))}")
        elif canary["evidence"].get("fingerprint") != self.canary_fingerprint:
            problems.append("the canary's fingerprint of the standard library differs from a canary run alone")
        theirs = hostile["evidence"].get("random")
        if canary and theirs is not None and canary["evidence"].get("random") == theirs:
            problems.append(f"the canary drew the hostile check's math.random sequence ({theirs}): every "
                            f"worker's generator starts from the same seed")

        # the run as a whole
        if res.rc != STATUS_EXIT[status]:
            problems.append(f"exit status {res.rc}, expected {STATUS_EXIT[status]}")
        limit = spec["timeout"] + GRACE + spec["margin"]
        if res.seconds >= limit:
            problems.append(f"the run took {res.seconds:.2f} s, past timeout {spec['timeout']:g} + grace {GRACE}"
                            f" + margin {spec['margin']:g} s")
        if len(res.out) >= REPORT_MAX:
            problems.append(f"a {len(res.out) >> 20} MiB report: the check's logs, failures, evidence or "
                            f"message are not bounded")

        # nothing left behind
        if run["leftovers"]:
            problems.append(f"processes left behind: {run['leftovers']}")
        mine = {a: l for a, l in run["new_listeners"].items()
                if "halo" in l or any(f"pid={p}," in l for p in run["pids_seen"])}
        if mine:
            problems.append(f"listeners opened by the run: {mine}")
        if run["open_after"] != (0, 0):
            problems.append(f"(http, pg) connections still open at the test's servers after halo exited: "
                            f"{run['open_after']}")
        if run["established"]:
            problems.append(f"sockets still connected to the test's servers: {run['established']}")
        if run["late_requests"]:
            problems.append(f"{len(run['late_requests'])} requests reached the server after halo exited: "
                            f"{short(run['late_requests'])}")
        forbidden = [r for r in self.servers.requests[before:] if r[2].startswith("/forbidden")]
        if forbidden:
            problems.append(f"requests that must never be sent were sent: {short(forbidden)}")
        if not os.path.exists(self.victim):
            problems.append("the victim file was removed")
        else:
            with open(self.victim) as f:
                if "must not touch" not in f.read():
                    problems.append("the victim file was changed")
        if os.path.exists(self.marker):
            problems.append("the marker file was created: an escape worked")
        return problems, res.seconds

    def run_script(self, name, source=None, spec=None):
        spec = spec or parse_script(os.path.join(HOSTILE, name + ".lua"))
        self.assertIsNotNone(spec["expect"], f"{name}.lua has no '-- expect:' header line")
        took = []
        for parallel in (2, 1):
            with self.subTest(parallel=parallel):
                problems, seconds = self.check_run(name, spec, parallel, source=source)
                took.append(seconds)
                if problems:
                    note = f"\n  a defect found before (fixed since): {FOUND_DEFECTS[name]}" if name in FOUND_DEFECTS else ""
                    self.fail(f"{name} (--parallel {parallel}):\n  - " + "\n  - ".join(problems) + note)
        return took

    # ---- about the corpus itself ----------------------------------------------------

    def test_corpus_shape(self):
        paths = scripts()
        self.assertGreaterEqual(len(paths), 45, "the corpus should hold at least 45 scripts")
        for path in paths:
            with self.subTest(script=os.path.basename(path)):
                spec = parse_script(path)
                self.assertIsNotNone(spec["expect"], "no '-- expect: STATUS [regex]' header line")
                self.assertIn(spec["expect"][0], STATUS_EXIT)
                if spec["expect"][1]:
                    re.compile(spec["expect"][1])
                self.assertLessEqual(spec["timeout"], 10, "hostile checks keep short timeouts")
                with open(path, encoding="utf-8") as f:
                    self.assertNotRegex(f.read(), r"^\s*id\s*=", "the id comes from the file name")

    def test_huge_check_file(self):
        # A multi-megabyte check file, generated here rather than kept in the
        # repository: a comment block, a big table literal and long strings.
        # It loads within the 5 s load budget and passes; the canary too.
        parts = ["-- expect: PASS\n-- a generated check file of several megabytes\n"]
        parts.append("".join(f"-- filler comment line {i:07d} {'x' * 60}\n" for i in range(40000)))
        parts.append("local DATA = {\n")
        parts.append("".join(f'  "{i:07d}-{"y" * 80}",\n' for i in range(40000)))
        parts.append("}\nlocal LONG = [[" + ("z" * 1000 + "\n") * 2000 + "]]\n")
        parts.append('return { timeout = 2, run = function(t)\n'
                     '  t:expect(#DATA == 40000, "%d entries", #DATA)\n'
                     '  t:expect(#LONG == 2002000, "%d bytes", #LONG)\n'
                     'end }\n')
        source = "".join(parts)
        self.assertGreater(len(source), 8 << 20)
        spec = {"expect": ("PASS", None), "args": [], "logs": [], "nologs": [], "margin": MARGIN + 2, "timeout": 2.0}
        took = self.run_script("generated-huge-file", source=source, spec=spec)
        print(f"\n  huge check file ({len(source) >> 20} MiB): {', '.join(f'{s:.2f}' for s in took)} s", end="")

    def test_huge_check_file_past_the_memory_cap(self):
        # A check file bigger than --max-mem: the load fails as a clear
        # ERROR naming the file and the cap, not a crash (nor a bare "not
        # enough memory"), and the canary still passes.
        source = ("-- expect: ERROR\nlocal S = [[" + ("w" * 1023 + "\n") * (40 << 10) + "]]\n"
                  "return { timeout = 2, run = function(t) end }\n")
        spec = {"expect": ("ERROR", r"generated-file-past-cap\.lua.*memory limit of 16 MiB exceeded"), "args": ["--max-mem", "16M"],
                "logs": [], "nologs": [], "margin": MARGIN + 2, "timeout": 2.0}
        self.run_script("generated-file-past-cap", source=source, spec=spec)


def _make_test(path):
    name = os.path.basename(path)[:-4]

    def test(self):
        took = self.run_script(name)
        print(f"\n  {name}: {', '.join(f'{s:.2f}' for s in took)} s", end="")
    test.__doc__ = f"tests/hostile/{name}.lua"
    return test


for _path in scripts():
    setattr(HostileCorpus, "test_" + re.sub(r"\W", "_", os.path.basename(_path)[:-4]), _make_test(_path))


if __name__ == "__main__":
    unittest.main()
