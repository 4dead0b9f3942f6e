"""The docker module against the real Docker daemon, and its log-frame
demultiplexer on its own.

The daemon comes from tools/docker-up.sh (Debian's docker.io, no bridge, no
iptables, the locally built hostroot:local image; tests/engine/dockerenv.py
runs it when `docker info` fails, as root, and skips otherwise). The target
is the two-service compose project in tests/docker/ (web: python3 with a
healthcheck; logger: "out N" on stdout, "err N" on stderr), run as
"halotest-<random>" on host networking with a free 127.0.0.1 port, and
removed (`docker-compose down -v`, then by label) on every path.

Scripts run through `halo exec`/`halo eval` with a stack file naming the
project, or as checks through `halo run`, and print `RESULT <json>`; what
the daemon really did is read back with the docker CLI.

Run: cd tests/engine && HALO_BIN=../../build/halo HALO_SOURCE=../.. \
     python3 -m unittest -v test_docker
"""
import datetime
import http.server
import json
import os
import re
import secrets
import shutil
import socketserver
import tempfile
import textwrap
import threading
import unittest

import dockerenv
from halotest import HALO, HaloTestCase, logs, run, run_json

RESULT = "RESULT "
PRELUDE = 'local function emit(value) print("RESULT " .. json.encode(value)) end\n'


def result_of(res):
    lines = [l for l in res.out.splitlines() if l.startswith(RESULT)]
    if not lines:
        raise AssertionError(f"no RESULT line in the output: {res!r}")
    return json.loads(lines[-1][len(RESULT):])


def parse_time(ts):
    """Docker's RFC 3339 nanosecond timestamp -> epoch seconds."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", ts)
    if not m:
        raise AssertionError(f"not an RFC 3339 UTC timestamp: {ts!r}")
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return base.timestamp() + float("0." + (m.group(2) or "0"))


class LuaCase(HaloTestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(HALO, os.X_OK):
            raise unittest.SkipTest(f"no halo binary at {HALO} (set HALO_BIN)")

    def script(self, code):
        path = self.tmp_path("script.lua")
        with open(path, "w", encoding="utf-8") as f:
            f.write(PRELUDE + textwrap.dedent(code))
        return path

    def write_stack(self, project=None, extra=""):
        path = self.tmp_path("stack.lua")
        with open(path, "w") as f:
            compose = f"compose = {{ project = {json.dumps(project)} }}, " if project else ""
            # checks here kill, stop and pause on purpose
            f.write(f"return {{ allow_faults = true, {compose}{extra} }}\n")
        return path

    def exec_lua(self, code, *args, stack=None, env=None, timeout=90):
        halo_args = ["--stack", stack] if stack else []
        return run(["exec", *halo_args, self.script(code), *args], env=env, timeout=timeout)

    def lua_result(self, code, *args, **kw):
        res = self.exec_lua(code, *args, **kw)
        self.assertEqual(res.rc, 0, repr(res))
        return result_of(res)


# ---- no daemon needed ---------------------------------------------------------------

class DemuxTest(LuaCase):
    """docker.demux(): frames split at every byte offset give the same lines."""

    def test_frames_split_at_every_offset(self):
        r = self.lua_result(r"""
            local function frame(stream, payload) return string.pack(">BxxxI4", stream, #payload) .. payload end
            local long = string.rep("x", 300)               -- a length with a non-zero second byte
            local frames = {
              frame(1, "out 1\nout 2 sp"),                   -- a line spanning two frames ...
              frame(1, "ans\n"),                             -- ... ends here
              frame(2, ""),                                  -- empty payloads
              frame(2, "err 1\n"),
              frame(1, ""),
              frame(1, long .. "\n"),
              frame(2, "err 2\nerr 3\n"),                    -- two lines in one frame
              frame(1, "tail without newline"),              -- flushed by finish()
            }
            local data = table.concat(frames)
            local function lines_of(feed)
              local d = docker.demux()
              feed(d)
              d.finish()
              local out = {}
              for _, l in ipairs(d.lines()) do out[#out + 1] = l.stream .. "|" .. l.text end
              return table.concat(out, "\n")
            end
            local whole = lines_of(function(d) d.feed(data) end)
            local bad = {}
            for k = 0, #data do
              local got = lines_of(function(d) d.feed(data:sub(1, k)) d.feed(data:sub(k + 1)) end)
              if got ~= whole then bad[#bad + 1] = { k = k, got = got } end
            end
            local bytewise = lines_of(function(d) for i = 1, #data do d.feed(data:sub(i, i)) end end)
            -- three-way splits around every frame boundary region, too
            local three_bad = 0
            for k = 1, #data - 1, 3 do
              for j = k, math.min(#data, k + 9) do
                local got = lines_of(function(d) d.feed(data:sub(1, k)) d.feed(data:sub(k + 1, j)) d.feed(data:sub(j + 1)) end)
                if got ~= whole then three_bad = three_bad + 1 end
              end
            end
            emit{ whole = whole, size = #data, n_bad = #bad, first_bad = bad[1], bytewise_same = bytewise == whole, three_bad = three_bad }
        """)
        expected = "\n".join([
            "stdout|out 1", "stdout|out 2 spans", "stderr|err 1", "stdout|" + "x" * 300, "stderr|err 2",
            "stderr|err 3", "stdout|tail without newline"])
        self.assertEqual(r["whole"], expected)
        self.assertEqual(r["n_bad"], 0, f"splits (of {r['size'] + 1}) that changed the lines; first: {r.get('first_bad')}")
        self.assertTrue(r["bytewise_same"], "fed byte by byte, the lines differ")
        self.assertEqual(r["three_bad"], 0)

    def test_partial_frame_at_the_end_is_flagged(self):
        r = self.lua_result(r"""
            local d = docker.demux()
            d.feed(string.pack(">BxxxI4", 1, 6) .. "out 1\n")
            d.feed(string.pack(">BxxxI4", 2, 100) .. "cut")   -- the stream ended mid-frame
            local before = #d.lines()
            d.finish()
            local last = d.lines()[#d.lines()]
            emit{ before = before, n = #d.lines(), first = d.lines()[1].text, partial = last.partial == true }
        """)
        self.assertEqual(r["before"], 1)
        self.assertEqual(r["first"], "out 1")
        self.assertTrue(r["partial"])


class SettingsFileTest(LuaCase):
    """compose.env_file as a list: the first candidate that exists is the
    settings file (an installed stack keeps it under the state directory,
    a source tree beside the stack); none: no --env-file at all."""

    def test_first_existing_candidate(self):
        here = self.tmp_path("settings.env")
        with open(here, "w") as f:
            f.write("X=1\n")
        r = self.lua_result(f"""
            local missing = "{self.tmp_path('missing.env')}"
            local p = docker.compose{{ files = {{ "c.yml" }}, project = "p", env_file = {{ missing, "{here}" }} }}
            local q = docker.compose{{ files = {{ "c.yml" }}, project = "p", env_file = {{ missing }} }}
            local one = docker.compose{{ files = {{ "c.yml" }}, project = "p", env_file = "{here}" }}
            local ok, err = pcall(docker.compose, {{ files = {{ "c.yml" }}, project = "p", env_file = {{ 5 }} }})
            emit{{ first = p:settings_file(), none = q:settings_file() == nil, one = one:settings_file(),
                   misuse = not ok and tostring(err) }}
        """)
        self.assertEqual(r["first"], here)
        self.assertTrue(r["none"])
        self.assertEqual(r["one"], here)
        self.assertIn("env_file[1] must be a path", r["misuse"])


class UnreachableDaemonTest(LuaCase):

    def test_nonexistent_socket_is_a_connect_error(self):
        r = self.lua_result("""
            local out = {}
            local v, err = docker.version()
            out.version = { ok = v ~= nil, kind = err and err.kind, message = err and err.message }
            local list, err2 = docker.containers{}
            out.containers = { ok = list ~= nil, kind = err2 and err2.kind, message = err2 and err2.message }
            local c, err3 = docker.container{ service = "web", project = "halotest-none" }
            out.container = { ok = c ~= nil, kind = err3 and err3.kind, message = err3 and err3.message }
            emit(out)
        """, env={"DOCKER_HOST": "unix:///nonexistent.sock"})
        for what in ("version", "containers", "container"):
            e = r[what]
            self.assertFalse(e["ok"], what)
            self.assertEqual(e["kind"], "connect", f"{what}: {e}")
            self.assertIn("/nonexistent.sock", e["message"], what)

    def test_bad_docker_host_scheme_raises(self):
        res = self.exec_lua("docker.version()\nemit('went on')\n", env={"DOCKER_HOST": "ssh://somewhere"})
        self.assertEqual(res.rc, 3, repr(res))
        self.assertIn("neither unix:// nor tcp://", res.err)


class NotADaemon(http.server.BaseHTTPRequestHandler):
    """A daemon gone wrong (or a proxy in front of one): /version as a
    daemon says it, every other path 200 with a body that is not the
    Engine API's JSON."""
    version = b'{"ApiVersion": "1.41", "Version": "x"}'
    answers = {
        "/containers/json": b'"not a list"',
        "/containers/web/json": b"<html>proxy error</html>",
        "/services": b"[1, 2]",
        "/nodes": b"7",
    }

    def do_GET(self):
        path = self.path.split("?")[0]
        body = self.version if path == "/version" else self.answers.get(re.sub(r"^/v[\d.]+", "", path), b"")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self):
        return "unix"

    def log_message(self, *args):
        pass


class NotDockerAtAll(NotADaemon):
    """Some other web server on the socket."""
    version = b"<html>hello</html>"


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class NotADaemonTest(LuaCase):
    """What a daemon answers that is not the Engine API's JSON is an error
    the script gets back (nil, err of kind "docker"), never a Lua error."""

    def serve(self, handler):
        path = self.tmp_path(handler.__name__ + ".sock")
        server = UnixHTTPServer(path, handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return "unix://" + path

    def test_answers_that_are_not_the_engine_api_are_errors(self):
        host = self.serve(NotADaemon)
        r = self.lua_result(f"""
            local d = docker.daemon{{ host = "{host}" }}
            local out = {{}}
            local function try(what, f)
              local ok, v, err = pcall(f)
              out[what] = {{ raised = not ok and tostring(v) or nil, got = ok and v ~= nil,
                            kind = err and err.kind, message = err and err.message }}
            end
            try("containers", function() return d:containers{{}} end)
            try("container", function() return d:container("web") end)
            try("services", function() return d:services() end)
            try("nodes", function() return d:nodes() end)
            emit(out)
        """, stack=self.write_stack("halotest-none"))
        for what, text in (("containers", '"not a list"'), ("container", "<html>proxy error</html>"),
                           ("services", "[1, 2]"), ("nodes", "7")):
            e = r[what]
            self.assertIsNone(e.get("raised"), f"{what}: {e}")
            self.assertFalse(e["got"], what)
            self.assertEqual(e["kind"], "docker", f"{what}: {e}")
            self.assertIn("not the Engine API's JSON", e["message"], what)
            self.assertIn(json.dumps(text), e["message"], what)

    def test_a_server_that_is_not_a_daemon(self):
        host = self.serve(NotDockerAtAll)
        r = self.lua_result("""
            local v, err = docker.version()
            local list, err2 = docker.containers{}
            emit({ got = v ~= nil or list ~= nil, kinds = { err.kind, err2.kind }, message = err.message })
        """, env={"DOCKER_HOST": host})
        self.assertFalse(r["got"], r)
        self.assertEqual(r["kinds"], ["docker", "docker"], r)
        self.assertIn("does not answer /version as a Docker daemon (HTTP 200)", r["message"])


# ---- against the daemon -----------------------------------------------------------------

_shared = {}


def shared_project():
    """The compose project of tests/docker/ the test classes share, up and
    healthy; `down -v` (and removal by label) in the module cleanup, which
    is registered before `up` so that a failed up is cleaned too."""
    if "project" not in _shared:
        project = dockerenv.Project()
        unittest.addModuleCleanup(project.down)
        project.up()
        _shared["project"] = project
        unittest.addModuleCleanup(_shared.pop, "project", None)
    return _shared["project"]


class DockerCase(LuaCase):
    """Tests against the shared project."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        dockerenv.ensure_docker()
        cls.project = shared_project()

    def setUp(self):
        # whatever a test did, the next one starts from a healthy web service
        st = self.project.state("web")
        if st.get("Paused"):
            dockerenv._docker("unpause", self.project.container_id("web"))
        elif not st.get("Running"):
            dockerenv._docker("start", self.project.container_id("web"))
        self.project.wait_healthy("web")
        self.stack = self.write_stack(self.project.name)

    def d_lua(self, code, *args, **kw):
        kw.setdefault("stack", self.stack)
        return self.lua_result(code, *args, **kw)


class ContainersTest(DockerCase):

    def test_containers_and_container_by_service(self):
        r = self.d_lua("""
            local out = {}
            local all = assert(docker.containers{})      -- the stack's project
            out.all = {}
            for _, c in ipairs(all) do out.all[#out.all + 1] = { service = c.service, project = c.project, id = c.id } end
            local webs = assert(docker.containers{ service = "web" })
            out.webs = #webs
            local web = assert(docker.container{ service = "web" })
            out.web = { id = web.id, name = web.name, service = web.service }
            out.by_name = assert(docker.container(web.name)).id
            out.by_short_id = assert(docker.container(web.id:sub(1, 12))).id
            out.logger = assert(docker.container{ service = "logger" }).id
            out.other_project = #assert(docker.containers{ project = "halotest-no-such-project" })
            local none, err = docker.container{ service = "nope" }
            out.nope = { ok = none ~= nil, kind = err and err.kind, message = err and err.message }
            local nobody, err2 = docker.container("halotest-no-such-container")
            out.missing = { ok = nobody ~= nil, kind = err2 and err2.kind }
            out.version = docker.version()
            out.state = web:inspect().State.Status
            emit(out)
        """)
        web_id, logger_id = self.project.container_id("web"), self.project.container_id("logger")
        self.assertEqual(sorted((c["service"], c["id"]) for c in r["all"]),
                         [("logger", logger_id), ("web", web_id)])
        self.assertEqual({c["project"] for c in r["all"]}, {self.project.name})
        self.assertEqual(r["webs"], 1)
        self.assertEqual(r["web"]["id"], web_id)
        self.assertEqual(r["web"]["service"], "web")
        self.assertIn(self.project.name, r["web"]["name"])
        self.assertEqual(r["by_name"], web_id)
        self.assertEqual(r["by_short_id"], web_id)
        self.assertEqual(r["logger"], logger_id)
        self.assertEqual(r["other_project"], 0)
        self.assertEqual(r["nope"]["kind"], "not_found")
        self.assertIn("nope", r["nope"]["message"])
        self.assertEqual(r["missing"]["kind"], "not_found")
        self.assertRegex(r["version"]["api"], r"^1\.\d+$")
        self.assertEqual(r["state"], "running")


class ActionsTest(DockerCase):

    def test_kill_start_wait_healthy(self):
        before = self.project.container_id("web")
        r = self.d_lua("""
            local web = assert(docker.container{ service = "web" })
            local out = {}
            out.kill = web:kill()
            assert(web:wait{ state = "exited", timeout = 10 })
            local st = web:inspect().State
            out.after_kill = { status = st.Status, running = st.Running, exit = st.ExitCode }
            local res, err = http.get(arg[1] .. "/health", { timeout = 1 })
            out.http_killed = res and res.status or err.kind
            out.start = web:start()
            local ok, took = web:wait{ state = "healthy", timeout = 30 }
            out.wait = { ok = ok, took = took }
            st = web:inspect().State
            out.after_wait = { status = st.Status, health = st.Health and st.Health.Status }
            res = http.get(arg[1] .. "/health", { timeout = 2 })
            out.http_back = res and res.status
            local timeout_ok, terr = web:wait{ state = "exited", timeout = 0.5 }
            out.wait_timeout = { ok_nil = timeout_ok == nil, kind = terr and terr.kind, message = terr and terr.message }
            emit(out)
        """, self.project.base)
        self.assertIs(r["kill"], True)
        self.assertEqual(r["after_kill"]["status"], "exited")
        self.assertIs(r["after_kill"]["running"], False)
        self.assertEqual(r["after_kill"]["exit"], 137)          # SIGKILL
        self.assertEqual(r["http_killed"], "connect")
        self.assertIs(r["start"], True)
        self.assertIs(r["wait"]["ok"], True)
        self.assertGreater(r["wait"]["took"], 0)
        self.assertEqual(r["after_wait"], {"status": "running", "health": "healthy"})
        self.assertEqual(r["http_back"], 200)
        self.assertTrue(r["wait_timeout"]["ok_nil"])
        self.assertEqual(r["wait_timeout"]["kind"], "timeout")
        self.assertIn("not exited", r["wait_timeout"]["message"])
        st = self.project.state("web")
        self.assertTrue(st["Running"])
        self.assertEqual(self.project.container_id("web"), before, "the container was recreated, not restarted")

    def test_pause_unpause(self):
        r = self.d_lua("""
            local web = assert(docker.container{ service = "web" })
            local out = {}
            out.pause = web:pause()
            out.paused_state = web:inspect().State.Paused
            local t0 = time.mono()
            local res, err = http.get(arg[1] .. "/health", { timeout = 1 })
            out.while_paused = { status = res and res.status, kind = err and err.kind, took = time.mono() - t0 }
            out.unpause = web:unpause()
            out.unpaused_state = web:inspect().State.Paused
            res, err = http.get(arg[1] .. "/health", { timeout = 2 })
            out.after = { status = res and res.status, body = res and res.body, kind = err and err.kind }
            emit(out)
        """, self.project.base)
        self.assertIs(r["pause"], True)
        self.assertIs(r["paused_state"], True)
        self.assertEqual(r["while_paused"]["kind"], "timeout", r["while_paused"])
        self.assertGreaterEqual(r["while_paused"]["took"], 0.9)
        self.assertIs(r["unpause"], True)
        self.assertIs(r["unpaused_state"], False)
        self.assertEqual(r["after"]["status"], 200, r["after"])
        self.assertEqual(r["after"]["body"], "ok")
        self.assertFalse(self.project.state("web")["Paused"])

    def test_stop_and_restart(self):
        r = self.d_lua("""
            local web = assert(docker.container{ service = "web" })
            local out = {}
            out.stop = web:stop{ timeout = 5 }
            local st = web:inspect().State
            out.stopped = { status = st.Status, exit = st.ExitCode }
            out.start = web:start()
            assert(web:wait{ state = "running", timeout = 10 })
            local started = web:inspect().State.StartedAt
            out.restart = web:restart{ timeout = 5 }
            out.restarted = web:inspect().State.StartedAt ~= started
            out.healthy = web:wait{ state = "healthy", timeout = 30 }
            emit(out)
        """)
        self.assertIs(r["stop"], True)
        self.assertEqual(r["stopped"], {"status": "exited", "exit": 0})  # web.py exits 0 on SIGTERM
        self.assertIs(r["start"], True)
        self.assertIs(r["restart"], True)
        self.assertIs(r["restarted"], True)
        self.assertIs(r["healthy"], True)

    def test_logs_since_with_streams_told_apart(self):
        r = self.d_lua("""
            local lg = assert(docker.container{ service = "logger" })
            time.sleep(0.3)
            local since = time.now()
            time.sleep(1.5)
            local upto = time.now()
            local lines = assert(lg:logs{ since = since })
            local window = assert(lg:logs{ since = since, ["until"] = since + 0.7 })
            local everything = assert(lg:logs{})
            local tail = assert(lg:logs{ tail = 4 })
            emit{ since = since, upto = upto, lines = lines, window = window, n_all = #everything,
                  first_all = everything[1] and everything[1].text, tail = tail }
        """)
        lines = r["lines"]
        self.assertGreaterEqual(len(lines), 8, lines)   # ~5 per second on each stream for 1.5 s
        streams = {l["stream"] for l in lines}
        self.assertEqual(streams, {"stdout", "stderr"})
        for l in lines:
            want = {"stdout": r"^out \d+$", "stderr": r"^err \d+$"}[l["stream"]]
            self.assertRegex(l["text"], want, f"{l} is on the wrong stream")
            t = parse_time(l["time"])
            self.assertGreaterEqual(t, r["since"] - 0.05, f"{l} is older than since={r['since']}")
            self.assertLessEqual(t, r["upto"] + 1.0)
        nums = {s: [int(l["text"].split()[1]) for l in lines if l["stream"] == s] for s in ("stdout", "stderr")}
        for s, ns in nums.items():
            self.assertEqual(ns, sorted(ns), f"{s} lines out of order")
            self.assertEqual(ns, list(range(ns[0], ns[0] + len(ns))), f"{s} lines missing: {ns}")
        # since really filtered: the logger's first lines are in the full log only
        self.assertGreater(r["n_all"], len(lines))
        self.assertIn(r["first_all"], ("out 0", "err 0"))
        self.assertNotIn("out 0", [l["text"] for l in lines])
        # until bounds the window
        self.assertGreater(len(r["window"]), 0)
        self.assertLess(len(r["window"]), len(lines))
        for l in r["window"]:
            self.assertLessEqual(parse_time(l["time"]), r["since"] + 0.75)
        self.assertEqual(len(r["tail"]), 4)

    def test_action_outside_the_project_is_refused(self):
        before = self.project.state("web")
        other = self.write_stack("halotest-other-" + secrets.token_hex(3))
        r = self.lua_result(f"""
            local web = assert(docker.container{{ service = "web", project = "{self.project.name}" }})
            local out = {{ inspect = web:inspect().State.Status }}       -- reading is not restricted
            for _, action in ipairs{{ "kill", "stop", "pause", "start", "restart", "unpause" }} do
              local ok, err = pcall(web[action], web)
              out[action] = ok and "allowed" or tostring(err)
            end
            emit(out)
        """, stack=other)
        self.assertEqual(r["inspect"], "running")
        for action in ("kill", "stop", "pause", "start", "restart", "unpause"):
            self.assertIn(f"refusing to {action}", r[action], action)
            self.assertIn(f"it belongs to project '{self.project.name}'", r[action])
        after = self.project.state("web")
        self.assertTrue(after["Running"])
        self.assertFalse(after["Paused"])
        self.assertEqual(after["StartedAt"], before["StartedAt"], "the refused actions touched the container")
        # a stack file without a compose project refuses too
        res = self.exec_lua(f"""
            local web = assert(docker.container{{ service = "web", project = "{self.project.name}" }})
            web:kill()
            emit("went on")
        """, stack=self.write_stack(None))
        self.assertEqual(res.rc, 3, repr(res))
        self.assertIn("refusing to kill", res.err)
        self.assertIn("names no compose project", res.err)
        self.assertEqual(self.project.state("web")["StartedAt"], before["StartedAt"])


class UndoTest(DockerCase):
    """Faults a check (or an eval) leaves behind are undone when it ends."""

    def run_check(self, source):
        checks = self.checks_dir({"01-fault.lua": textwrap.dedent(source)})
        return run_json(["--checks", checks, "--stack", self.stack])

    def test_check_that_kills_then_errors_is_undone(self):
        before_started = self.project.state("web")["StartedAt"]
        rep = self.run_check("""
            local docker = require "docker"
            return {
              title = "kill, then boom", timeout = 30,
              run = function(t)
                local web = assert(docker.container{ service = "web" })
                assert(web:kill())
                assert(web:wait{ state = "exited", timeout = 10 })
                error("boom")
              end,
            }
        """)
        c = self.assertCheck(rep, 1, "ERROR", r"boom")
        st = self.project.state("web")   # right after halo exited: no waiting
        self.assertTrue(st["Running"], f"the killed container was not started again: {st}")
        self.assertNotEqual(st["StartedAt"], before_started, "it was never killed?")
        actions = [a["action"] for a in c["actions"]]
        self.assertEqual(actions[0], "kill SIGKILL", c["actions"])
        self.assertEqual(c["actions"][0].get("undo"), "start")
        self.assertIn("start", actions[1:], c["actions"])
        self.project.wait_healthy("web")

    def test_check_that_kills_then_times_out_is_undone(self):
        rep = self.run_check("""
            local docker = require "docker"
            local time = require "time"
            return {
              title = "kill, then hang", timeout = 2,
              run = function(t)
                local web = assert(docker.container{ service = "web" })
                assert(web:kill())
                time.sleep(30)
              end,
            }
        """)
        self.assertCheck(rep, 1, "ERROR", r"timeout")
        self.assertLess(rep.result.seconds, 2 + 8)
        st = self.project.state("web")
        self.assertTrue(st["Running"], f"the container killed by a timed-out check stayed down: {st}")

    def test_worker_killed_at_the_hard_deadline_on_another_daemon(self):
        """A check that killed a container through docker.daemon{} and then
        never ended (stuck in C past timeout + grace): the runner starts it
        again on that daemon, not on the default one (DOCKER_HOST points
        nowhere here)."""
        sock = "/var/run/docker.sock"
        if not os.path.exists(sock):
            self.skipTest(f"the daemon is not on {sock}")
        checks = self.checks_dir({"01-fault.lua": textwrap.dedent(f"""
            local docker = require "docker"
            return {{
              title = "kill on a daemon, then stuck", timeout = 2,
              run = function(t)
                local web = assert(docker.daemon{{ host = "unix://{sock}" }}:container{{ service = "web" }})
                assert(web:kill())
                t:log("killed")
                return string.rep("a", 30000):find(string.rep("a*", 30) .. "b")
              end,
            }}
        """)})
        rep = run_json(["--checks", checks, "--stack", self.stack, "--grace", "1"],
                       env={"DOCKER_HOST": "unix:///nonexistent.sock"})
        c = self.assertCheck(rep, 1, "ERROR", r"^hard deadline")
        said = "\n".join(logs(c))
        self.assertRegex(said, r"runner undo: did start \S*web", said)
        self.assertNotIn("could not", said)
        st = self.project.state("web")
        self.assertTrue(st["Running"], f"the container killed through docker.daemon{{}} stayed down: {st}")
        self.project.wait_healthy("web")

    def test_check_that_pauses_and_finishes_is_unpaused(self):
        rep = self.run_check("""
            local docker = require "docker"
            return {
              title = "pause and walk away", timeout = 30,
              run = function(t)
                local web = assert(docker.container{ service = "web" })
                assert(web:pause())
                t:expect(web:inspect().State.Paused == true, "not paused")
              end,
            }
        """)
        c = self.assertCheck(rep, 1, "PASS")
        st = self.project.state("web")
        self.assertFalse(st["Paused"], "the paused container was left paused")
        self.assertTrue(st["Running"])
        self.assertEqual(self.project.get("/health")[0], 200)
        self.assertEqual([a["action"] for a in c["actions"]], ["pause", "unpause"])

    def test_check_that_undoes_itself_is_not_undone_twice(self):
        rep = self.run_check("""
            local docker = require "docker"
            return {
              title = "kill and start", timeout = 30,
              run = function(t)
                local web = assert(docker.container{ service = "web" })
                assert(web:kill())
                assert(web:start())
                assert(web:wait{ state = "healthy", timeout = 30 })
              end,
            }
        """)
        c = self.assertCheck(rep, 1, "PASS")
        self.assertEqual([a["action"] for a in c["actions"]], ["kill SIGKILL", "start", "healthy"])

    def test_undo_false_leaves_the_fault(self):
        self.addCleanup(lambda: dockerenv._docker("start", self.project.container_id("web")))
        res = run(["eval", "--stack", self.stack,
                   'local w = assert(docker.container{ service = "web" }) assert(w:kill{ undo = false }) return "killed"'])
        self.assertEqual(res.rc, 0, repr(res))
        self.assertFalse(self.project.state("web")["Running"], "undo = false was undone anyway")

    def test_eval_that_kills_is_restarted_on_exit(self):
        res = run(["eval", "--stack", self.stack,
                   'local w = assert(docker.container{ service = "web" }) assert(w:kill()) '
                   'assert(w:wait{ state = "exited", timeout = 10 }) return w:inspect().State.Status'])
        self.assertEqual(res.rc, 0, repr(res))
        self.assertEqual(res.out.strip(), "exited")   # as the eval saw it ...
        st = self.project.state("web")
        self.assertTrue(st["Running"], f"... and started again when eval exited: {st}")


class ComposeTest(LuaCase):
    """docker.compose up/down of a project of its own."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        dockerenv.ensure_docker()

    def test_compose_up_with_env_override_then_down(self):
        project = dockerenv.Project()
        self.addCleanup(project.down)
        tmpdir = tempfile.mkdtemp(prefix="halo-compose-tmp-")
        self.addCleanup(shutil.rmtree, tmpdir, True)
        greeting = "hello " + secrets.token_hex(4)
        stack = self.write_stack(project.name)
        r = self.lua_result(f"""
            local file, port, greeting = arg[1], arg[2], arg[3]
            local base = "http://127.0.0.1:" .. port
            local p = docker.compose{{ files = {{ file }}, env = {{ HALOTEST_WEB_PORT = port }} }}
            local out = {{}}
            out.up = {{ p:up{{}} }}
            local web = assert(docker.container{{ service = "web" }})
            out.healthy1 = web:wait{{ state = "healthy", timeout = 30 }}
            local res = http.get(base .. "/env/HALO_GREETING")
            out.before = {{ status = res.status, body = res.body }}
            local logger_id, web_id = assert(docker.container{{ service = "logger" }}).id, web.id
            out.up2 = {{ p:up{{ services = {{ "web" }}, no_deps = true, env = {{ web = {{ HALO_GREETING = greeting }} }} }} }}
            out.healthy2 = web:wait{{ state = "healthy", timeout = 30 }}
            res = http.get(base .. "/env/HALO_GREETING")
            out.after = {{ status = res.status, body = res.body }}
            out.web_recreated = web.id ~= web_id
            out.logger_kept = assert(docker.container{{ service = "logger" }}).id == logger_id
            local ps = p:ps()
            out.ps = {{}}
            for _, c in ipairs(ps) do out.ps[#out.ps + 1] = c.service end
            local lines = assert(p:logs{{ services = {{ "logger" }} }})
            out.log_services = {{}}
            for _, l in ipairs(lines) do out.log_services[l.service] = true end
            out.n_logs = #lines
            out.volumes_before = proc.run{{ argv = {{ "docker", "volume", "ls", "-q", "--filter",
                                              "label=com.docker.compose.project=" .. p.project }} }}.stdout
            out.down = {{ p:down{{ volumes = true }} }}
            out.after_down = #assert(docker.containers{{ all = true }})
            emit(out)
        """, dockerenv.COMPOSE_FILE, str(project.port), greeting, stack=stack, env={"TMPDIR": tmpdir},
            timeout=180)
        self.assertEqual(r["up"], [True])
        self.assertIs(r["healthy1"], True)
        self.assertEqual(r["before"], {"status": 404, "body": "unset"})
        self.assertEqual(r["up2"], [True])
        self.assertIs(r["healthy2"], True)
        self.assertEqual(r["after"], {"status": 200, "body": greeting}, "the web service does not see the new env")
        self.assertIs(r["web_recreated"], True)
        self.assertIs(r["logger_kept"], True, "no_deps/services: the logger was recreated too")
        self.assertEqual(sorted(r["ps"]), ["logger", "web"])
        self.assertEqual(r["log_services"], {"logger": True})
        self.assertGreater(r["n_logs"], 0)
        self.assertEqual(r["volumes_before"].split(), [f"{project.name}_scratch"])
        self.assertEqual(r["down"], [True])
        self.assertEqual(r["after_down"], 0)
        # seen from outside: nothing of the project is left, and the override
        # file (and halo's temporary directory) is gone
        self.assertEqual(project.container_ids(), [])
        self.assertEqual(project.volumes(), [])
        left = [os.path.join(dp, f) for dp, _, fs in os.walk(tmpdir) for f in fs]
        self.assertEqual(left, [], "halo left temporary files (the compose override?)")

    def test_compose_failure_is_data(self):
        project_name = "halotest-" + secrets.token_hex(4)
        self.addCleanup(dockerenv.remove_project, project_name)
        stack = self.write_stack(project_name)
        r = self.lua_result("""
            local p = docker.compose{ files = { "/nonexistent/halotest-compose.yml" } }
            local ok, err = p:up{}
            emit{ ok_nil = ok == nil, kind = err and err.kind, message = err and err.message }
        """, stack=stack)
        self.assertTrue(r["ok_nil"])
        self.assertEqual(r["kind"], "compose")
        self.assertIn("compose up -d", r["message"])


if __name__ == "__main__":
    unittest.main()
