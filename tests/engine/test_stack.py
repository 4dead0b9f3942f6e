"""The reference HA stack (tests/stack/) end to end: it comes up from
nothing, honours the Pulp Engine contract (docs/target-contract.md), every
fault switch breaks its own property while a sample of the others still
holds, and `down` leaves nothing behind.

The stack runs as compose project "halotest-stack" on four free 127.0.0.1
ports (LB_PORT, API1_PORT, API2_PORT, DB_PORT), brought up and down with
tests/stack/up and tests/stack/down exactly as an operator would; a fault
is switched on by running `up` again with its variable, which recreates
only the services whose configuration changed. The properties are probed
by halo itself: `halo exec --stack tests/stack/stack.lua tests/stack/probe.lua
PROPERTY...` (http, sql, docker and compose modules), plus a contract script
below; what the containers really did is read back with the docker CLI.

Docker comes from tools/docker-up.sh (dockerenv.ensure_docker: run as root
when `docker info` fails; the tests are skipped otherwise). The stack is
taken down on every path (tearDownClass, and `down` is idempotent).

Run: cd tests/engine && HALO_BIN=../../build/halo HALO_SOURCE=../.. \
     python3 -m unittest -v test_stack
"""
import hashlib
import json
import os
import re
import struct
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import zlib

from halotest import HALO, SOURCE
from refstack import (ADMIN, DOWN, LIB, PROBE, STACK, STACK_MULTI, UP, RefStack, RefStackTestCase,
                      docker, http_get)

PROJECT = "halotest-stack"
S = RefStack(PROJECT)
LB_PORT, API1_PORT, API2_PORT, DB_PORT = S.lb_port, S.api1_port, S.api2_port, S.db_port
PROXY_PORTS = tuple(range(S.proxy_port, S.proxy_port + 5))   # control, then the four links
stack_script, container_ids = S.script, S.container_ids


def halo(args, env=None, timeout=240, stack=STACK):
    env = S.env(env)
    env.update({"NO_COLOR": "1", "TERM": "dumb", "HALO_OPERATOR": "halo-tests"})
    p = subprocess.run([HALO, "exec", "--stack", stack, "--lib", LIB, "--timeout", str(timeout - 20)] + args,
                       capture_output=True, text=True, env=env, timeout=timeout, cwd=SOURCE,
                       stdin=subprocess.DEVNULL)
    return p


def tiny_png(width=16, height=8):
    """(a random RGB PNG, its IDAT payload)."""
    rows = b"".join(b"\0" + os.urandom(width * 3) for _ in range(height))
    idat = zlib.compress(rows, 6)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return png, idat


def last_json(p):
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON line in halo's output (rc {p.returncode}):\n{p.stdout}\n{p.stderr}")


# The contract beyond the probes: status codes, error bodies, headers.
CONTRACT = r'''
local LB, A1, A2 = stack.lb, stack.replicas.api1.url, stack.replicas.api2.url
local admin = { ["x-api-key"] = stack.keys.admin }
local editor = { ["x-api-key"] = stack.keys.editor }
local out = {}
local function st(res) return { status = res.status, served_by = res.headers["X-Served-By"], body = res.body,
                                 ctype = res.headers["Content-Type"] } end
out.health = st(http.get(A1 .. "/health"))
out.health2 = st(http.get(A2 .. "/health"))
out.health_lb = st(http.get(LB .. "/health"))
out.ready = st(http.get(A2 .. "/health/ready"))
out.no_credentials = st(http.get(LB .. "/templates"))
out.unknown_key = st(http.get(LB .. "/templates", { headers = { ["x-api-key"] = "nope" } }))
out.not_found = st(http.get(A1 .. "/nope", { headers = admin }))
out.templates = st(http.get(LB .. "/templates", { headers = admin }))
out.audit_as_editor = st(http.get(LB .. "/audit", { headers = editor }))
out.tenants_single = st(http.get(LB .. "/tenants", { headers = admin }))
out.mint_without_key = st(http.post(LB .. "/auth/editor-token", { json = { actor = "x" } }))
out.mint_without_actor = st(http.post(LB .. "/auth/editor-token", { headers = admin, json = {} }))
local key = "contract-" .. math.floor(time.now() * 1000)
out.put_created = st(http.put(A1 .. "/templates/" .. key, { headers = admin, json = { definition = { content = { { asset = "missing.png" } } } } }))
out.audit_as_admin = st(http.get(LB .. "/audit", { headers = admin, query = { limit = 1 } }))
out.put_updated = st(http.put(A2 .. "/templates/" .. key, { headers = admin, json = { definition = { content = { { asset = "{{a}}" } } } } }))
out.get_template = st(http.get(A1 .. "/templates/" .. key, { headers = admin }))
out.render_missing_template = st(http.post(A1 .. "/render", { headers = admin, json = { template = key .. "-none" } }))
out.render_missing_asset = st(http.post(A2 .. "/render", { headers = admin, json = { template = key, data = { a = "none.png" } } }))
out.upload_without_file = st(http.post(LB .. "/assets", { headers = admin, multipart = { { name = "other", data = "x" } } }))
out.bad_cron = st(http.post(LB .. "/schedules", { headers = admin, json = { template = key, cron = "61 * * * *" } }))
local five = http.post(LB .. "/schedules", { headers = admin, json = { template = key, cron = "0 0 1 1 *" } })
out.five_field_cron = st(five)
if five.status == 201 then
  local id = five:json().id
  out.schedule_get = st(http.get(A2 .. "/schedules/" .. id, { headers = admin }))
  out.schedule_list = st(http.get(A1 .. "/schedules", { headers = admin }))
  out.schedule_executions = st(http.get(A1 .. "/schedules/" .. id .. "/executions", { headers = admin }))
  out.schedule_delete = st(http.delete(A2 .. "/schedules/" .. id, { headers = admin }))
  out.schedule_gone = st(http.get(A1 .. "/schedules/" .. id, { headers = admin }))
end
out.delete_template = st(http.delete(A2 .. "/templates/" .. key, { headers = admin }))
out.delete_template_again = st(http.delete(A1 .. "/templates/" .. key, { headers = admin }))
local db = assert(sql.connect(stack.database))
out.tables = db:query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
out.unique_on_executions = db:query([[SELECT count(*)::int AS n FROM pg_indexes
  WHERE tablename = 'schedule_executions' AND indexdef ILIKE '%unique%' AND indexname <> 'schedule_executions_pkey']])[1].n
out.server_version = db:server_version()
db:close()
print(json.encode(out))
'''


class StackTest(RefStackTestCase):
    refstack = S

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.first_down = stack_script(DOWN)
        cls.first_up = stack_script(UP)
        if cls.first_up.returncode != 0:
            S.close()
            raise AssertionError(f"tests/stack/up failed ({cls.first_up.returncode}):\n"
                                 f"{cls.first_up.stdout}\n{cls.first_up.stderr}")

    # ---- helpers -------------------------------------------------------------------

    def up(self, **settings):
        p = stack_script(UP, settings)
        self.assertEqual(p.returncode, 0, f"tests/stack/up {settings} failed:\n{p.stdout}\n{p.stderr}")
        faults = sorted(k for k, v in settings.items() if k.startswith("FAULT_") and v == "1")
        self.assertIn(f"faults: {' '.join(faults) if faults else 'none'}", p.stdout)
        print(f"\n[test_stack] up {settings or '(healthy)'}: {p.seconds:.1f} s", flush=True)
        return p

    def probe(self, *props, env=None, stack=STACK, timeout=240):
        p = halo([PROBE] + list(props), env=env, stack=stack, timeout=timeout)
        self.assertEqual(p.returncode, 0, f"probe {props}: rc {p.returncode}\n{p.stdout}\n{p.stderr}")
        return last_json(p)

    def assertHolds(self, result, *props):
        for prop in props:
            self.assertIs(result[prop].get("ok"), True, f"{prop} should hold: {json.dumps(result[prop], indent=1)}")

    def assertBroken(self, result, prop):
        self.assertIs(result[prop].get("ok"), False, f"{prop} should be broken: {json.dumps(result[prop], indent=1)}")
        self.assertNotIn("error", result[prop], f"{prop}: the probe itself failed: {result[prop]}")

    def logs(self, service, since=None):
        cid = container_ids()[service]
        args = ["logs"] + (["--since", str(since)] if since else []) + [cid]
        p = docker(*args)
        return (p.stdout + p.stderr).splitlines()

    # ---- healthy stack ---------------------------------------------------------------

    def test_01_up_from_nothing(self):
        self.assertEqual(self.first_down.returncode, 0, self.first_down.stdout + self.first_down.stderr)
        out = self.first_up.stdout
        m = re.search(r"stack up in ([\d.]+) s", out)
        self.assertIsNotNone(m, out)
        print(f"\n[test_stack] up from nothing: {self.first_up.seconds:.1f} s (script says {m.group(1)} s)", flush=True)
        ids = container_ids()
        self.assertEqual(sorted(ids), ["api1", "api2", "db", "lb", "proxy"])
        for svc, cid in ids.items():
            info = json.loads(docker("inspect", cid).stdout)[0]
            self.assertEqual(info["HostConfig"]["NetworkMode"], "host", svc)
            # the fault proxy has no healthcheck: up asked its control API
            self.assertEqual(info["State"].get("Health", {}).get("Status"), None if svc == "proxy" else "healthy", svc)
            self.assertEqual(info["Config"]["Image"], "hostroot:local", svc)
        # each port answers on 127.0.0.1 and on nothing else
        listeners = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
        for port in (LB_PORT, API1_PORT, API2_PORT, DB_PORT) + PROXY_PORTS:
            local = [l.split()[3] for l in listeners.splitlines() if l.split()[3].endswith(f":{port}")]
            self.assertEqual(local, [f"127.0.0.1:{port}"], f"listeners on port {port}: {local}")
        with open(S.envfile) as f:
            recorded = f.read()
        self.assertIn(f"COMPOSE_PROJECT_NAME={PROJECT}\n", recorded)
        self.assertIn(f"LB_PORT={LB_PORT}\n", recorded)
        self.assertEqual(os.stat(S.envfile).st_mode & 0o777, 0o600)
        # idempotent: up again changes nothing
        again = self.up()
        self.assertEqual(container_ids(), ids, again.stdout)
        self.assertRegex(again.stdout, r"is up-to-date")
        print(f"\n[test_stack] up again (warm, nothing to do): {again.seconds:.1f} s", flush=True)

    def test_02_contract(self):
        path = tempfile.mktemp(prefix="halo-contract-", suffix=".lua")
        with open(path, "w") as f:
            f.write(CONTRACT)
        self.addCleanup(os.remove, path)
        p = halo([path])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        c = last_json(p)
        health = json.loads(c["health"]["body"])
        self.assertEqual(health, {"status": "ok", "version": "1.0.0-standin", "replica": "api1", "multiTenant": False})
        self.assertEqual(json.loads(c["health2"]["body"])["replica"], "api2")
        self.assertIn(c["health_lb"]["served_by"], ("api1", "api2"))
        self.assertEqual(c["ready"]["status"], 200)
        for name in ("no_credentials", "unknown_key", "mint_without_key"):
            self.assertEqual(c[name]["status"], 401, name)
            self.assertEqual(json.loads(c[name]["body"])["error"], "unauthorized", name)
        self.assertEqual((c["not_found"]["status"], c["not_found"]["served_by"]), (404, "api1"))
        self.assertEqual((c["templates"]["status"], c["templates"]["body"]), (200, "[]"))
        self.assertEqual(c["audit_as_editor"]["status"], 403)
        self.assertEqual(c["audit_as_admin"]["status"], 200)
        self.assertEqual(len(json.loads(c["audit_as_admin"]["body"])), 1)
        self.assertEqual(c["tenants_single"]["status"], 404)
        self.assertEqual(c["mint_without_actor"]["status"], 400)
        self.assertEqual(c["put_created"]["status"], 201)
        self.assertEqual(c["put_updated"]["status"], 200)
        self.assertEqual(json.loads(c["get_template"]["body"])["definition"], {"content": [{"asset": "{{a}}"}]})
        self.assertEqual(c["render_missing_template"]["status"], 404)
        self.assertEqual(json.loads(c["render_missing_template"]["body"])["error"], "template not found")
        self.assertEqual(c["render_missing_asset"]["status"], 422)
        self.assertEqual(json.loads(c["render_missing_asset"]["body"]),
                         {"error": "asset not found", "asset": "none.png", "template": json.loads(c["get_template"]["body"])["key"]})
        self.assertEqual(c["upload_without_file"]["status"], 400)
        self.assertEqual(c["bad_cron"]["status"], 422)
        self.assertEqual(c["five_field_cron"]["status"], 201)
        self.assertEqual(c["schedule_get"]["status"], 200)
        self.assertEqual(c["schedule_executions"]["body"], "[]")
        self.assertEqual(c["schedule_delete"]["status"], 204)
        self.assertEqual(c["schedule_gone"]["status"], 404)
        self.assertEqual((c["delete_template"]["status"], c["delete_template_again"]["status"]), (204, 404))
        for name, res in c.items():
            if isinstance(res, dict) and "status" in res:
                self.assertIn(res["served_by"], ("api1", "api2"), f"{name}: no X-Served-By")
                if res["status"] != 204:
                    self.assertTrue(res["ctype"], f"{name}: no Content-Type")
        self.assertEqual([t["table_name"] for t in c["tables"]],
                         ["assets", "audit_log", "schedule_executions", "schedules", "templates", "tenants"])
        self.assertEqual(c["unique_on_executions"], 0, "exactly-once must not come from a unique index")
        self.assertTrue(c["server_version"].startswith("15."), c["server_version"])
        # every 401 is logged as exactly one Auth failure line, and nothing else says 401
        lines = self.logs("api1") + self.logs("api2")
        auth = [l for l in lines if '"msg":"Auth failure"' in l]
        any401 = [l for l in lines if '"statusCode":401' in l]
        self.assertGreaterEqual(len(auth), 2, "\n".join(lines[-20:]))
        self.assertEqual(auth, any401)
        for line in auth:
            self.assertTrue(line.startswith('{"msg":"Auth failure","statusCode":401,'), line)
            self.assertNotIn(ADMIN, line)

    def test_03_assets_tokens_schedule(self):
        r = self.probe("assets", "tokens", "schedule", "tenants")
        self.assertHolds(r, "assets", "tokens", "schedule")
        self.assertEqual(r["tenants"]["skipped"], "single-tenant stack")
        for replica in ("api1", "api2"):
            a = r["assets"]["replicas"][replica]
            self.assertEqual((a["status"], a["size"], a["render"]), (200, r["assets"]["size"], 200))
        self.assertGreater(r["assets"]["size"], 100_000)
        self.assertEqual(r["tokens"]["minted_by"], "api1")
        self.assertEqual(r["tokens"]["write_served_by"], "api2")
        s = r["schedule"]
        self.assertGreaterEqual(s["fire_times"], 3)
        self.assertEqual(s["sql_rows"], s["sql_distinct_fire_times"])
        # the probes left nothing behind
        status, _, body = http_get(f"http://127.0.0.1:{LB_PORT}/templates", {"x-api-key": ADMIN})
        self.assertEqual((status, body), (200, b"[]"))
        status, _, body = http_get(f"http://127.0.0.1:{LB_PORT}/assets", {"x-api-key": ADMIN})
        self.assertEqual((status, body), (200, b"[]"))

    def test_04_failover(self):
        r = self.probe("failover")
        self.assertHolds(r, "failover")
        self.assertGreater(r["failover"]["sent"], 100)

    def test_05_rotation(self):
        """Check 6's playbook: replicas recreated one at a time with a new key
        and the old one as previous, with traffic; then the original keys."""
        before = container_ids()
        r = self.probe("rotation")
        self.assertHolds(r, "rotation")
        rot = r["rotation"]
        self.assertEqual(rot["probes"], {"new_key": 200, "old_token": 200, "old_key": 401, "old_key_mints": 401,
                                         "ok": True})
        self.assertEqual(rot["auth_failures_in_logs"], 0)
        self.assertEqual(rot["traffic"]["failures"], 0)
        after = container_ids()
        self.assertEqual(after["db"], before["db"])
        self.assertEqual(after["lb"], before["lb"])
        self.assertNotEqual(after["api1"], before["api1"])
        # restored: the replicas run with no previous key again
        for svc in ("api1", "api2"):
            env = json.loads(docker("inspect", after[svc]).stdout)[0]["Config"]["Env"]
            self.assertIn(f"API_KEY_ADMIN={ADMIN}", env)
            self.assertIn("API_KEY_ADMIN_PREVIOUS=", env)

    def test_06_multi_tenant(self):
        before = container_ids()
        self.up(MULTI_TENANT_ENABLED="true")
        self.assertEqual(container_ids()["db"], before["db"], "the database was recreated")
        r = self.probe("tenants", "tokens", stack=STACK_MULTI)
        self.assertHolds(r, "tenants", "tokens")
        t = r["tenants"]
        self.assertEqual(t["api1_at_once"], 403)
        self.assertLessEqual(t["api2_rejects_after"], 1.5 + 0.5)
        self.assertGreaterEqual(t["api2_rejects_after"], 0.5, "api2 did not cache the tenant status at all")

    # ---- one fault at a time ----------------------------------------------------------

    def test_10_fault_tenant_cache_forever(self):
        self.up(MULTI_TENANT_ENABLED="true", FAULT_TENANT_CACHE_FOREVER="1")
        r = self.probe("tenants", "assets", "tokens", stack=STACK_MULTI)
        self.assertBroken(r, "tenants")
        self.assertEqual(r["tenants"]["api1_at_once"], 403)
        self.assertIsNone(r["tenants"]["api2_rejects_after"])
        self.assertHolds(r, "assets", "tokens")

    def test_11_fault_assets_local(self):
        before = container_ids()
        self.up(FAULT_ASSETS_LOCAL="1")
        after = container_ids()
        self.assertEqual((after["db"], after["lb"]), (before["db"], before["lb"]), "db or lb was recreated")
        self.assertNotEqual(after["api1"], before["api1"])
        r = self.probe("assets", "tokens", "schedule")
        self.assertBroken(r, "assets")
        a = r["assets"]
        statuses = sorted(a["replicas"][x]["status"] for x in ("api1", "api2"))
        self.assertEqual(statuses, [200, 404], a)
        other = "api1" if a["uploaded_via"] == "api2" else "api2"
        self.assertEqual(a["replicas"][other]["render"], 422)
        self.assertHolds(r, "tokens", "schedule")

    def test_12_fault_schedule_every_replica(self):
        self.up(FAULT_SCHEDULE_EVERY_REPLICA="1")
        r = self.probe("schedule", "assets", "tokens")
        self.assertBroken(r, "schedule")
        s = r["schedule"]
        self.assertGreaterEqual(len(s["duplicates"]), 2, s)
        # both replicas record every fire time (one of them may be a tick ahead when read)
        self.assertLessEqual(abs(s["by_replica"]["api1"] - s["by_replica"]["api2"]), 1, s)
        self.assertGreater(s["sql_rows"], s["sql_distinct_fire_times"])
        self.assertHolds(r, "assets", "tokens")

    def test_13_fault_token_secret_per_replica(self):
        self.up(FAULT_TOKEN_SECRET_PER_REPLICA="1")
        r = self.probe("tokens", "assets")
        self.assertBroken(r, "tokens")
        t = r["tokens"]
        self.assertEqual((t["read_x_editor_token"], t["read_bearer"], t["write"]), (401, 401, 401))
        self.assertEqual(t["tampered"], {"api1": 401, "api2": 401})
        self.assertHolds(r, "assets")

    def test_14_fault_previous_key_as_api_key(self):
        self.up()
        token = self.probe("mint")["mint"]["token"]
        new = "halo-test-rotated-admin-key"
        rotated = {"API_KEY_ADMIN": new, "API_KEY_ADMIN_PREVIOUS": ADMIN}
        self.up(FAULT_PREVIOUS_KEY_AS_API_KEY="1", **rotated)
        r = self.probe("keyrules", token, ADMIN, new, "assets", "tokens", env={"API_KEY_ADMIN": new})
        self.assertBroken(r, "keyrules")
        self.assertEqual(r["keyrules"], {"new_key": 200, "old_token": 200, "old_key": 200, "old_key_mints": 200,
                                         "ok": False})
        self.assertHolds(r, "assets", "tokens")
        # the same rotated keys without the fault: the contract's 200/200/401/401
        self.up(**rotated)
        r = self.probe("keyrules", token, ADMIN, new, env={"API_KEY_ADMIN": new})
        self.assertHolds(r, "keyrules")

    def test_15_fault_lb_no_failover(self):
        self.up()
        before = container_ids()
        self.up(FAULT_LB_NO_FAILOVER="1")
        after = container_ids()
        for svc in ("db", "api1", "api2"):
            self.assertEqual(after[svc], before[svc], f"{svc} was recreated for an LB fault")
        self.assertNotEqual(after["lb"], before["lb"])
        r = self.probe("failover", "assets", "tokens")
        self.assertBroken(r, "failover")
        f = r["failover"]
        self.assertGreater(f["failures"], 10, f)
        self.assertIn("502", f["by_status"], f)
        self.assertHolds(r, "assets", "tokens")

    def request(self, method, port, path, headers=None, body=None, ctype=None):
        """(status, headers, body) of one request straight to 127.0.0.1:port."""
        h = dict(headers or {})
        if ctype:
            h["Content-Type"] = ctype
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def restarted_and_ready(self, service):
        """Restart a replica, then poll its /health/ready until 200: the
        moment a client is told it may use it. Seconds from the restart."""
        port = API1_PORT if service == "api1" else API2_PORT
        t0 = time.monotonic()
        self.assertEqual(docker("restart", "-t", "5", container_ids()[service]).returncode, 0)
        while time.monotonic() - t0 < 30:
            try:
                if self.request("GET", port, "/health/ready")[0] == 200:
                    return port, time.monotonic() - t0
            except OSError:
                pass
            time.sleep(0.05)
        self.fail(f"{service} did not report ready within 30 s of its restart")

    def test_16_fault_ready_before_serving(self):
        """Ready at once, 503 on every API route for FAULT_STARTUP_DELAY_S;
        the LB retries those on the other replica, so its clients see 200."""
        self.up(FAULT_READY_BEFORE_SERVING="1", FAULT_STARTUP_DELAY_S="6")
        port, took = self.restarted_and_ready("api1")
        key = {"x-api-key": ADMIN}
        self.assertEqual(self.request("GET", port, "/health")[0], 200)
        self.assertEqual(self.request("GET", port, "/templates", key)[0], 503, f"api1 served {took:.1f} s in")
        for _ in range(10):
            self.assertEqual(self.request("GET", LB_PORT, "/templates", key)[0], 200, "through the LB")
        deadline = time.monotonic() + 15
        while self.request("GET", port, "/templates", key)[0] != 200:
            self.assertLess(time.monotonic(), deadline, "api1 never served after its startup delay")
            time.sleep(0.2)

    def test_17_fault_previous_keys_late(self):
        """Tokens minted with a key that is now *_PREVIOUS: 401 for the first
        FAULT_STARTUP_DELAY_S of the process, 200 after."""
        self.up()
        token = self.probe("mint")["mint"]["token"]
        new = "halo-test-rotated-admin-key"
        self.up(FAULT_PREVIOUS_KEYS_LATE="1", FAULT_STARTUP_DELAY_S="8", API_KEY_ADMIN=new,
                API_KEY_ADMIN_PREVIOUS=ADMIN)
        port, took = self.restarted_and_ready("api2")
        status, _, body = self.request("GET", port, "/templates", {"x-editor-token": token})
        self.assertEqual(status, 401, f"the old token {took:.1f} s after the restart: {body!r}")
        self.assertEqual(self.request("GET", port, "/templates", {"x-api-key": new})[0], 200, "the new key")
        deadline = time.monotonic() + 15
        while self.request("GET", port, "/templates", {"x-editor-token": token})[0] != 200:
            self.assertLess(time.monotonic(), deadline, "the old token never verified once the keys were loaded")
            time.sleep(0.2)
        self.assertTrue(any('"msg":"Auth failure"' in line for line in self.logs("api2")), "no Auth failure line")
        self.up()   # the original keys, no fault

    def test_18_strict_mode(self):
        """STANDIN_STRICT=1: every (stand-in) convenience gone or done
        another way, the contract still honoured."""
        self.up(STANDIN_STRICT="1")
        key = {"x-api-key": ADMIN}
        for port in (API1_PORT, LB_PORT):
            status, headers, _ = self.request("GET", port, "/templates", key)
            self.assertEqual(status, 200)
            names = {k.lower() for k in headers}
            self.assertNotIn("x-served-by", names, port)
            self.assertNotIn("x-upstream", names, port)
        self.assertEqual(set(json.loads(self.request("GET", API2_PORT, "/health")[2])), {"status", "version"})
        self.assertEqual(json.loads(self.request("GET", API2_PORT, "/health/ready")[2]), {"status": "ready"})
        status, _, body = self.request("GET", API1_PORT, "/templates/none", key)
        self.assertEqual((status, json.loads(body)), (404, {"error": "template not found"}))
        # a token wins over an x-api-key sent alongside (the stand-in's default: the key)
        token = self.probe("mint")["mint"]["token"]
        self.assertEqual(self.request("GET", API1_PORT, "/templates",
                                      {"x-editor-token": token, "x-api-key": "not-a-key"})[0], 200)
        # lists in no fixed order
        prefix = f"strict-{int(time.time())}"
        for i in range(6):
            self.assertIn(self.request("PUT", API1_PORT, f"/templates/{prefix}-{i}", key,
                                       json.dumps({"definition": {"text": "x"}}).encode(), "application/json")[0],
                          (200, 201))
        orders = {tuple(t["key"] for t in json.loads(self.request("GET", API2_PORT, "/templates", key)[2]))
                  for _ in range(8)}
        self.assertGreater(len(orders), 1, "the list came back in one order every time")
        # a PNG asset rendered: no digest or filename on the page, compressed streams,
        # the PNG's IDAT data in an image stream, the PNG file itself nowhere
        png, idat = tiny_png()
        boundary = "halo-strict-boundary"
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{prefix}.png\"\r\n"
                f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
        status, headers, body = self.request("POST", LB_PORT, "/assets", key, form,
                                             f"multipart/form-data; boundary={boundary}")
        self.assertEqual(status, 201, body)
        self.assertEqual(self.request("GET", API2_PORT, f"/assets/{prefix}.png", key)[2], png)
        self.assertNotIn("x-asset-sha256", {k.lower() for k in self.request("GET", API2_PORT,
                                                                             f"/assets/{prefix}.png", key)[1]})
        self.request("PUT", API1_PORT, f"/templates/{prefix}-pdf", key,
                     json.dumps({"definition": {"text": "strict", "blocks": [{"asset": f"{prefix}.png"}]}}).encode(),
                     "application/json")
        status, _, pdf = self.request("POST", API2_PORT, "/render", key,
                                      json.dumps({"template": f"{prefix}-pdf"}).encode(), "application/json")
        self.assertEqual(status, 200, pdf[:200])
        self.assertTrue(pdf.startswith(b"%PDF-"))
        self.assertNotIn(png, pdf)
        self.assertIn(idat, pdf)
        self.assertNotIn(hashlib.sha256(png).hexdigest().encode(), pdf)
        self.assertNotIn(b"sha256", pdf)
        self.assertIn(b"/Subtype /Image", pdf)
        self.assertIn(b"/FlateDecode", pdf)
        self.assertNotIn(b"BT ", pdf, "the page's text stream is not compressed")
        for i in range(6):
            self.request("DELETE", API1_PORT, f"/templates/{prefix}-{i}", key)
        self.request("DELETE", API1_PORT, f"/templates/{prefix}-pdf", key)
        self.request("DELETE", API1_PORT, f"/assets/{prefix}.png", key)
        self.up()   # the default mode again

    # ---- down --------------------------------------------------------------------------

    def test_99_down_leaves_nothing(self):
        p = stack_script(DOWN)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        print(f"\n[test_stack] down: {p.seconds:.1f} s", flush=True)
        label = f"label=com.docker.compose.project={PROJECT}"
        self.assertEqual(docker("ps", "-aq", "--filter", label).stdout.strip(), "")
        self.assertEqual(docker("volume", "ls", "-q", "--filter", label).stdout.strip(), "")
        self.assertFalse(os.path.exists(S.envfile), f"{S.envfile} is left")
        listeners = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
        for port in (LB_PORT, API1_PORT, API2_PORT, DB_PORT) + PROXY_PORTS:
            self.assertNotRegex(listeners, rf":{port}\b", f"something still listens on {port}")
        # no process of the stack is left on the host (container processes are host processes)
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    environ = f.read()
            except OSError:
                continue
            self.assertNotIn(f"PORT={API1_PORT}\0".encode(), environ, f"pid {pid} of the stack is still running")
        again = stack_script(DOWN)
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)


if __name__ == "__main__":
    unittest.main()
