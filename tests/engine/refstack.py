"""The reference HA stack (tests/stack/) for the tests that run against it.

    RefStack(project)          -> the stack as compose project `project` on
                                  four free 127.0.0.1 ports (LB_PORT,
                                  API1_PORT, API2_PORT, DB_PORT)
      .open()                  -> Docker ready (dockerenv.ensure_docker),
                                  the stack taken down at exit and on SIGTERM
      .close()                 -> down, whatever is left of the project
                                  removed
      .script(UP|DOWN, settings) -> tests/stack/up or down run exactly as an
                                  operator would, with only the given
                                  settings over the test defaults
      .env(extra)              -> that environment (for halo too)
      .compose(args, settings) -> the compose client on the stack's file and
                                  project (settings win over its .env file)
      .container_ids()         -> service -> container id
      .wait_healthy(service)   -> until its healthcheck says healthy
      .psql(sql)               -> rows of a query on the stack's database
    RefStackTestCase           -> a TestCase class whose `refstack` (a
                                  RefStack) is opened before its tests and
                                  closed after them, with the whole time printed

Each project's settings are in its own tests/stack/.env.<project> (up
writes it, down removes it), so test suites on different projects, and a
developer's own stack, never read each other's and may run side by side.
"""
import atexit
import json
import os
import signal
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import dockerenv
from halotest import HALO, SOURCE

STACK_DIR = os.path.join(SOURCE, "tests", "stack")
UP, DOWN = os.path.join(STACK_DIR, "up"), os.path.join(STACK_DIR, "down")
STACK = os.path.join(STACK_DIR, "stack.lua")
STACK_MULTI = os.path.join(STACK_DIR, "stack-multi.lua")
PROBE = os.path.join(STACK_DIR, "probe.lua")
LIB = os.path.join(SOURCE, "scripts", "lib")
ADMIN, EDITOR = "halo-test-admin-key", "halo-test-editor-key"

# Every variable tests/stack/up reads: none leaks in from the caller.
SETTINGS = ["COMPOSE_PROJECT_NAME", "LB_PORT", "API1_PORT", "API2_PORT", "DB_PORT", "APP_VERSION",
            "API_KEY_ADMIN", "API_KEY_EDITOR", "API_KEY_ADMIN_PREVIOUS", "API_KEY_EDITOR_PREVIOUS",
            "EDITOR_TOKEN_SECRET", "EDITOR_TOKEN_TTL_MINUTES", "MULTI_TENANT_ENABLED",
            "TENANT_STATUS_CACHE_TTL_MS", "SCHEDULER_TICK_MS", "DATABASE_URL",
            "FAULT_ASSETS_LOCAL", "FAULT_SCHEDULE_EVERY_REPLICA", "FAULT_TOKEN_SECRET_PER_REPLICA",
            "FAULT_TENANT_CACHE_FOREVER", "FAULT_PREVIOUS_KEY_AS_API_KEY", "FAULT_LB_NO_FAILOVER",
            "FAULT_READY_BEFORE_SERVING", "FAULT_PREVIOUS_KEYS_LATE", "FAULT_STARTUP_DELAY_S", "STANDIN_STRICT",
            "PROXY_PORT", "PROXY_BIN", "PROXY_LINKS", "LB_UPSTREAM_TIMEOUT_S", "FAULT_READY_IGNORES_DB", "FAULT_DB_NO_RECONNECT",
            "FAULT_LB_NO_UPSTREAM_TIMEOUT", "FAULT_FIRE_TIME_LOCAL_CLOCK", "FAULT_SHUTDOWN_DROPS_INFLIGHT",
            "ROTATION_MODE", "FAILOVER_RATE"]


def _interrupt(signum, frame):
    # unittest records SystemExit as a test error and goes on; an interrupt
    # ends the run (and the running subprocess), then atexit takes the stack down
    raise KeyboardInterrupt(f"signal {signum}")


def free_ports(n):
    ports = set()
    while len(ports) < n:
        ports.add(dockerenv.free_port())
    return sorted(ports)


def docker(*args, timeout=60):
    return subprocess.run(["docker"] + list(args), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def psql(port, sql):
    """Rows of a query on a reference stack's database (trust on 127.0.0.1)."""
    p = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "pulp", "-d", "pulp",
                        "-AtX", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise AssertionError(f"psql {sql!r}: {p.stderr}")
    return [line.split("\t") for line in p.stdout.splitlines()]


def http_get(url, headers=None, timeout=5):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class RefStack:
    def __init__(self, project):
        self.project = project
        self.lb_port, self.api1_port, self.api2_port, self.db_port = free_ports(4)
        self.ports = {"LB_PORT": str(self.lb_port), "API1_PORT": str(self.api1_port),
                      "API2_PORT": str(self.api2_port), "DB_PORT": str(self.db_port)}
        # the fault proxy: its control port and the four link ports after it
        self.proxy_port = dockerenv.free_port_block(5)
        self.ports["PROXY_PORT"] = str(self.proxy_port)
        self.ports["PROXY_BIN"] = HALO
        self.lb = f"http://127.0.0.1:{self.lb_port}"
        self.envfile = os.path.join(STACK_DIR, ".env." + project)
        self.closed = False

    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items() if k not in SETTINGS and not k.startswith("HALO_")}
        env.update(self.ports, COMPOSE_PROJECT_NAME=self.project, TENANT_STATUS_CACHE_TTL_MS="1500")
        env.update(extra or {})
        return env

    def script(self, path, settings=None, timeout=600):
        t0 = time.monotonic()
        p = subprocess.run([path], capture_output=True, text=True, env=self.env(settings), timeout=timeout,
                           stdin=subprocess.DEVNULL)
        p.seconds = time.monotonic() - t0
        return p

    def open(self):
        dockerenv.ensure_docker()
        # the stack goes whatever ends this process: failures (close in
        # tearDownClass), SIGTERM (a ctest timeout) and Ctrl-C (atexit)
        atexit.register(self.close)
        signal.signal(signal.SIGTERM, _interrupt)

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.script(DOWN, timeout=120)
        finally:
            dockerenv.remove_project(self.project)

    def compose(self, args, settings=None, timeout=180):
        cmd = dockerenv.compose_cmd() + ["--env-file", self.envfile, "-p", self.project,
                                         "-f", os.path.join(STACK_DIR, "docker-compose.yml")]
        return subprocess.run(cmd + list(args), capture_output=True, text=True, env=self.env(settings),
                              cwd=STACK_DIR, timeout=timeout, stdin=subprocess.DEVNULL)

    def not_up(self):
        """The services not up as they should be, {service: (status, health)}:
        each running, and healthy but the fault proxy, which has no
        healthcheck (tests/stack/docker-compose.yml says why)."""
        out = {}
        for svc, cid in self.container_ids().items():
            state = json.loads(docker("inspect", cid).stdout)[0]["State"]
            got = (state["Status"], state.get("Health", {}).get("Status"))
            if got != ("running", None if svc == "proxy" else "healthy"):
                out[svc] = got
        return out

    def wait_healthy(self, service, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            cid = self.container_ids().get(service)
            if cid:
                state = json.loads(docker("inspect", cid).stdout)[0]["State"]
                if state.get("Health", {}).get("Status") == "healthy":
                    return
            time.sleep(0.3)
        raise AssertionError(f"{service} did not become healthy in {timeout} s")

    def container_ids(self):
        """service -> container id of the project's containers."""
        out = docker("ps", "-a", "--no-trunc", "--filter", f"label=com.docker.compose.project={self.project}",
                     "--format", '{{.ID}} {{.Label "com.docker.compose.service"}}').stdout
        return {svc: cid for cid, svc in (l.split() for l in out.splitlines() if l.strip())}

    def container_env(self, service):
        cid = self.container_ids()[service]
        env = json.loads(docker("inspect", cid).stdout)[0]["Config"]["Env"]
        return dict(e.split("=", 1) for e in env)

    def psql(self, sql):
        return psql(self.db_port, sql)


class RefStackTestCase(unittest.TestCase):
    refstack = None  # the subclass's RefStack
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if not os.access(HALO, os.X_OK):
            raise unittest.SkipTest(f"no halo binary at {HALO} (set HALO_BIN)")
        cls.refstack.open()
        cls.t_start = time.monotonic()

    @classmethod
    def tearDownClass(cls):
        cls.refstack.close()
        print(f"\n[{cls.__module__}] whole run {time.monotonic() - cls.t_start:.1f} s", flush=True)
