"""Docker for the docker tests: a daemon that answers, the hostroot:local
image, and throwaway compose projects that are always removed.

    ensure_docker()            -> makes sure `docker info` answers and the
                                  image exists, running tools/docker-up.sh
                                  (as root) when not; SkipTest otherwise
    Project(prefix)            -> a compose project "halotest-<random>" of
                                  tests/docker/docker-compose.yml with a free
                                  127.0.0.1 port for its web service
      .up() / .down()          -> docker-compose up -d / down -v (down is
                                  idempotent and also removes, by the
                                  project label, whatever compose missed)
      .container_id(service)   -> the id of the service's container
      .inspect(service)        -> `docker inspect` of it, parsed
      .get(path, timeout)      -> (status, body) of an HTTP GET to the web
                                  service, or (None, error text)

tools/docker-up.sh is idempotent and prints "dockerd: starting" when it
starts a daemon. A daemon a test run started is left running for the tests
that follow in the same CI run (tools/docker-down.sh stops exactly that one,
by the pid it recorded); a daemon somebody else started is never stopped.
Every project is removed in the tests' cleanups, and once more at exit, so
no container, network or volume of a test outlives the run.
"""
import atexit
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.environ.get("HALO_SOURCE") or os.path.join(HERE, "..", ".."))
DOCKER_UP = os.path.join(SOURCE, "tools", "docker-up.sh")
COMPOSE_DIR = os.path.join(SOURCE, "tests", "docker")
COMPOSE_FILE = os.path.join(COMPOSE_DIR, "docker-compose.yml")
IMAGE = "hostroot:local"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"

_state = {"checked": False, "started_dockerd": False, "note": None}
_projects = set()


def _docker(*args, timeout=60, check=False):
    return subprocess.run(["docker"] + list(args), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=check)


def _daemon_answers():
    if not shutil.which("docker"):
        return False
    try:
        return _docker("info", timeout=15).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _image_present():
    try:
        return _docker("image", "inspect", IMAGE, timeout=15).returncode == 0
    except (subprocess.TimeoutExpired, FileNotFoundError):
        return False


def compose_cmd():
    """docker-compose (v1, Debian 12's) or `docker compose` (v2)."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return ["docker", "compose"]


def ensure_docker():
    """Makes sure dockerd answers and hostroot:local exists (once per
    process). Runs tools/docker-up.sh as root when either is missing."""
    if _state["checked"]:
        return
    ok = _daemon_answers() and _image_present() and shutil.which("docker-compose")
    if not ok:
        if os.geteuid() != 0:
            raise unittest.SkipTest("the docker tests need a Docker daemon with the hostroot:local image and "
                                    "docker-compose; `docker info` fails or they are missing, and only root can "
                                    f"set them up with {DOCKER_UP}: run the tests as root (CI does)")
        t0 = time.monotonic()
        p = subprocess.run([DOCKER_UP], capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise RuntimeError(f"{DOCKER_UP} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        if "dockerd: starting" in p.stdout:
            _state["started_dockerd"] = True
            _state["note"] = (f"NOTE: {DOCKER_UP} started dockerd for these tests "
                              f"({time.monotonic() - t0:.1f} s); it is left running for the tests that follow, "
                              "tools/docker-down.sh stops it")
            sys.stderr.write(_state["note"] + "\n")
        if not (_daemon_answers() and _image_present()):
            raise RuntimeError(f"{DOCKER_UP} succeeded but docker still does not answer or has no {IMAGE}:\n"
                               f"{p.stdout}\n{p.stderr}")
    _state["checked"] = True


def started_dockerd():
    """True when this process's ensure_docker() started the daemon."""
    return _state["started_dockerd"]


# Ports handed to a stack are claimed for the whole test process: a stack
# picks its ports when its suite is imported and binds them minutes later,
# so a port merely free at the pick may meanwhile be another stack's, in
# this process (the swarm stack's API, picked beside the compose stacks) or
# in the lane beside it. A claim is a file per port made with O_EXCL,
# holding the claiming pid; a claim of a process gone is taken over.
PORT_CLAIMS = os.path.join(tempfile.gettempdir(), "halo-test-ports")
_claimed = set()


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def claim_port(port):
    """True if port is now this process's (and bindable on 127.0.0.1)."""
    os.makedirs(PORT_CLAIMS, exist_ok=True)
    path = os.path.join(PORT_CLAIMS, str(port))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    holder = int(f.read().strip() or "0")
            except (OSError, ValueError):
                return False
            if holder == 0 or _pid_alive(holder):
                return False
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        _claimed.add(path)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                return False  # in use by something else: stays claimed, so never picked again here
    return False


@atexit.register
def _release_ports():
    for path in _claimed:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def free_port():
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if claim_port(port):
            return port


def free_port_block(n):
    """A port whose next n-1 ports are free too (the fault proxy's control
    port and its links), from below the kernel's ephemeral range, where it
    hands out no ports of its own; all n claimed."""
    import random
    while True:
        base = random.randrange(20000, 30000)
        if all(claim_port(port) for port in range(base, base + n)):
            return base


def remove_project(name):
    """Everything labelled with the project goes: containers (forced),
    then its volumes and networks. Idempotent."""
    ids = _docker("ps", "-aq", "--filter", f"label={PROJECT_LABEL}={name}").stdout.split()
    if ids:
        _docker("rm", "-f", "-v", *ids, timeout=120)
    vols = _docker("volume", "ls", "-q", "--filter", f"label={PROJECT_LABEL}={name}").stdout.split()
    if vols:
        _docker("volume", "rm", "-f", *vols)
    nets = _docker("network", "ls", "-q", "--filter", f"label={PROJECT_LABEL}={name}").stdout.split()
    if nets:
        _docker("network", "rm", *nets)


class Project:
    """One compose project of tests/docker/ under a random name. Call
    down() in a cleanup registered *before* up(), so a failed up is
    cleaned too."""

    def __init__(self, prefix="halotest"):
        ensure_docker()
        self.name = f"{prefix}-{secrets.token_hex(4)}"
        self.port = free_port()
        self.env = dict(os.environ, HALOTEST_WEB_PORT=str(self.port))
        _projects.add(self.name)

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def compose(self, *args, timeout=180, check=True):
        argv = compose_cmd() + ["-p", self.name, "-f", COMPOSE_FILE] + list(args)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env, cwd=COMPOSE_DIR,
                           stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def up(self, wait_healthy=True):
        self.compose("up", "-d")
        if wait_healthy:
            self.wait_healthy("web")
            self.wait_running("logger")

    def down(self):
        try:
            self.compose("down", "-v", "--remove-orphans", check=False, timeout=120)
        finally:
            remove_project(self.name)
            _projects.discard(self.name)

    # ---- looking at it from outside halo ------------------------------------------

    def container_ids(self, service=None, all=True):
        args = ["ps", "-q", "--no-trunc", "--filter", f"label={PROJECT_LABEL}={self.name}"]
        if all:
            args.insert(1, "-a")
        if service:
            args += ["--filter", f"label={SERVICE_LABEL}={service}"]
        return _docker(*args).stdout.split()

    def container_id(self, service):
        ids = self.container_ids(service)
        if len(ids) != 1:
            raise AssertionError(f"project {self.name}: {len(ids)} containers for service {service}: {ids}")
        return ids[0]

    def inspect(self, service):
        out = _docker("inspect", self.container_id(service)).stdout
        return json.loads(out)[0]

    def state(self, service):
        return self.inspect(service)["State"]

    def volumes(self):
        return _docker("volume", "ls", "-q", "--filter", f"label={PROJECT_LABEL}={self.name}").stdout.split()

    def wait_for(self, service, predicate, what, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            st = self.state(service)
            if predicate(st):
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}/{service} not {what} after {timeout} s: {json.dumps(st)}")
            time.sleep(0.1)

    def wait_healthy(self, service, timeout=30):
        return self.wait_for(service, lambda st: st.get("Running") and not st.get("Paused")
                             and (st.get("Health") or {}).get("Status") == "healthy", "healthy", timeout)

    def wait_running(self, service, timeout=30):
        return self.wait_for(service, lambda st: st.get("Running") and not st.get("Paused"), "running", timeout)

    def get(self, path, timeout=2.0):
        try:
            with urllib.request.urlopen(self.base + path, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except Exception as e:  # refused, timed out
            return None, f"{type(e).__name__}: {e}"


@atexit.register
def _remove_all():
    for name in list(_projects):
        try:
            remove_project(name)
        except Exception:
            pass
