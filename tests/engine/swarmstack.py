"""The reference HA stack on the two-node loopback swarm (tests/swarm/README.md)
for the tests that run against it.

    SwarmStack(name)           -> the stack as swarm stack `name` (services
                                  <name>_api, <name>_db, <name>_lb) on free
                                  127.0.0.1 ports: LB_PORT, DB_PORT and an
                                  API_PORT_PREFIX whose PREFIX1 and PREFIX2
                                  are free
      .open()                  -> root, docker and the swarm (tools/swarm-up,
                                  idempotent) or unittest.SkipTest; the stack
                                  removed at exit and on SIGTERM
      .close()                 -> tests/stack/swarm/down for this stack only
      .script(UP|DOWN, settings) -> tests/stack/swarm/up or down with only the
                                  given settings over the test defaults
      .env(extra)              -> that environment (for halo too)
      .docker(node, args)      -> the docker client on node1 (the manager) or node2
      .service(svc)            -> `service inspect` of <name>_<svc>
      .api_env()               -> the api's Spec.TaskTemplate.ContainerSpec.Env
      .nodes()                 -> {halo.node label: {id, state, availability}}
      .tasks(svc)              -> the service's tasks that should run:
                                  [{id, slot, node (label), state, container}]
      .state()                 -> what must be as found after every run
      .wait_converged(timeout) -> until the api has 2 running tasks on 2
                                  nodes and no update in progress
      .psql(sql)               -> rows of a query on the stack's database

The swarm itself is shared (another stack may run on it): nothing here
stops or changes a node daemon, a node, or another stack's services.
"""
import atexit
import json
import os
import random
import signal
import subprocess
import time
import unittest

import dockerenv
import refstack
from halotest import HALO, SOURCE

SWARM_DIR = os.environ.get("SWARM_DIR") or "/var/lib/halo-swarm"
SWARM_UP = os.path.join(SOURCE, "tools", "swarm-up")
STACK_DIR = os.path.join(SOURCE, "tests", "stack")
UP = os.path.join(STACK_DIR, "swarm", "up")
DOWN = os.path.join(STACK_DIR, "swarm", "down")
STACK = os.path.join(STACK_DIR, "stack-swarm.lua")
ADMIN, EDITOR = "halo-test-admin-key", "halo-test-editor-key"
TOKEN_SECRET = "halo-test-editor-token-secret"

# Every variable tests/stack/swarm/up and swarm.lua read: none leaks in
# from the caller (SWARM_DIR is passed on as it is).
SETTINGS = ["SWARM_STACK", "API_PORT_PREFIX", "API1_PORT", "API2_PORT", "LB_PORT", "DB_PORT", "APP_VERSION",
            "API_KEY_ADMIN", "API_KEY_EDITOR", "API_KEY_ADMIN_PREVIOUS", "API_KEY_EDITOR_PREVIOUS",
            "EDITOR_TOKEN_SECRET", "EDITOR_TOKEN_TTL_MINUTES", "MULTI_TENANT_ENABLED",
            "TENANT_STATUS_CACHE_TTL_MS", "SCHEDULER_TICK_MS", "DATABASE_URL", "STANDIN_STRICT",
            "LB_UPSTREAM_TIMEOUT_S", "COMPOSE_PROJECT_NAME", "PROXY_PORT", "PROXY_BIN", "PROXY_LINKS",
            "ROTATION_MODE", "FAILOVER_RATE", "KEEP_ON_FAILURE", "STACK_UP_TIMEOUT"]


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _pick_ports():
    """(prefix, lb, db): PREFIX1, PREFIX2, lb and db all free, all distinct,
    and claimed (dockerenv.claim_port) against the compose stacks' picks."""
    while True:
        prefix = random.randrange(2000, 3000)
        if not (dockerenv.claim_port(prefix * 10 + 1) and dockerenv.claim_port(prefix * 10 + 2)):
            continue
        others = [p for p in (random.randrange(30000, 32000) for _ in range(2)) if dockerenv.claim_port(p)]
        if len(set(others)) == 2:
            return str(prefix), others[0], others[1]


class SwarmStack:
    def __init__(self, name):
        self.name = name
        self.prefix, self.lb_port, self.db_port = _pick_ports()
        self.api_ports = (int(self.prefix + "1"), int(self.prefix + "2"))
        self.ports = {"API_PORT_PREFIX": self.prefix, "LB_PORT": str(self.lb_port), "DB_PORT": str(self.db_port)}
        self.manager = f"unix://{SWARM_DIR}/node1.sock"
        self.closed = True

    # ---- processes ---------------------------------------------------------------

    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items() if k not in SETTINGS and not k.startswith("HALO_")
               and not k.startswith("FAULT_")}
        env.update(self.ports, SWARM_STACK=self.name, SWARM_DIR=SWARM_DIR, TENANT_STATUS_CACHE_TTL_MS="1500")
        env.update(extra or {})
        return env

    def script(self, path, settings=None, timeout=600):
        t0 = time.monotonic()
        p = subprocess.run([path], capture_output=True, text=True, env=self.env(settings), timeout=timeout,
                           stdin=subprocess.DEVNULL, cwd=SOURCE)
        p.seconds = time.monotonic() - t0
        return p

    def docker(self, node, *args, timeout=60, check=True):
        p = subprocess.run(["docker", "-H", f"unix://{SWARM_DIR}/node{node}.sock"] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"docker -H node{node} {' '.join(map(str, args))}: rc {p.returncode}: {p.stderr}")
        return p

    def open(self):
        if not os.access(HALO, os.X_OK):
            raise unittest.SkipTest(f"no halo binary at {HALO} (set HALO_BIN)")
        if os.geteuid() != 0:
            raise unittest.SkipTest("the swarm tests need root: tools/swarm-up starts two dockerd")
        if subprocess.run(["sh", "-c", "command -v docker && command -v dockerd"], capture_output=True).returncode:
            raise unittest.SkipTest("no docker client or dockerd on this host")
        t0 = time.monotonic()
        p = subprocess.run([SWARM_UP], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                           env=dict(os.environ, SWARM_DIR=SWARM_DIR))
        if p.returncode != 0:
            raise unittest.SkipTest(f"tools/swarm-up cannot bring the swarm up (rc {p.returncode}): "
                                    f"{(p.stdout + p.stderr)[-1500:]}")
        print(f"\n[swarmstack] tools/swarm-up: {time.monotonic() - t0:.1f} s", flush=True)
        self.closed = False
        # the stack goes whatever ends this process: failures (close in
        # tearDownClass), SIGTERM (a ctest timeout) and Ctrl-C (atexit)
        atexit.register(self.close)
        signal.signal(signal.SIGTERM, _interrupt)
        # a stack of this name left by an earlier run that was killed
        p = self.script(DOWN, timeout=180)
        if p.returncode != 0:
            raise AssertionError(f"tests/stack/swarm/down failed:\n{p.stdout}\n{p.stderr}")

    def close(self):
        if self.closed:
            return
        self.closed = True
        p = self.script(DOWN, timeout=180)
        print(f"\n[swarmstack] tests/stack/swarm/down {self.name}: rc {p.returncode}, {p.seconds:.1f} s", flush=True)
        if p.returncode != 0:
            print(p.stdout + p.stderr, flush=True)

    # ---- what the swarm says -------------------------------------------------------

    def service(self, svc):
        return json.loads(self.docker(1, "service", "inspect", f"{self.name}_{svc}").stdout)[0]

    def api_env(self):
        return self.service("api")["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or []

    def nodes(self):
        ids = self.docker(1, "node", "ls", "-q").stdout.split()
        out = {}
        for raw in json.loads(self.docker(1, "node", "inspect", *ids).stdout):
            label = (raw["Spec"].get("Labels") or {}).get("halo.node", raw["ID"])
            out[label] = {"id": raw["ID"], "state": raw["Status"]["State"],
                          "availability": raw["Spec"]["Availability"]}
        return out

    def tasks(self, svc="api"):
        ids = self.docker(1, "service", "ps", "-q", "--no-trunc", "--filter", "desired-state=running",
                          f"{self.name}_{svc}").stdout.split()
        if not ids:
            return []
        by_id = {n["id"]: label for label, n in self.nodes().items()}
        out = []
        for raw in json.loads(self.docker(1, "inspect", "--type", "task", *ids).stdout):
            st = raw.get("Status") or {}
            out.append({"id": raw["ID"], "slot": raw.get("Slot"), "node": by_id.get(raw.get("NodeID"), raw.get("NodeID")),
                        "state": st.get("State"), "container": (st.get("ContainerStatus") or {}).get("ContainerID")})
        return sorted(out, key=lambda t: (t["slot"] or 0, t["id"]))

    def update_state(self, svc="api"):
        return (self.service(svc).get("UpdateStatus") or {}).get("State")

    def state(self):
        """What every run must leave as found: the nodes, the api's running
        tasks (slot -> node) and its environment, no update in progress."""
        running = [t for t in self.tasks("api") if t["state"] == "running"]
        return {"nodes": {k: (v["state"], v["availability"]) for k, v in self.nodes().items()},
                "api running tasks": len(running),
                "api nodes": sorted({t["node"] for t in running}),
                "api update": self.update_state("api") if self.update_state("api") in ("updating", "paused",
                                                                                        "rollback_started",
                                                                                        "rollback_paused") else None,
                "api env": self.api_env()}

    def wait_converged(self, timeout=120):
        """Until 2 running api tasks on 2 nodes, no update in progress;
        returns the seconds waited (or raises AssertionError)."""
        t0 = time.monotonic()
        while True:
            running = [t for t in self.tasks("api") if t["state"] == "running"]
            upd = self.update_state("api")
            if len(running) == 2 and len({t["node"] for t in running}) == 2 and upd not in ("updating",
                                                                                            "rollback_started"):
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"api not converged after {timeout} s: tasks {self.tasks('api')}, update {upd}")
            time.sleep(0.5)

    def psql(self, sql):
        return refstack.psql(self.db_port, sql)
