"""Small helpers for test_sandbox.py and test_secrets.py.

They drive the real binary the way an operator does: HALO_BIN names it
(ctest sets it; the fallback is build/halo), HALO_SOURCE the repository
root (for tests/fixtures/). Commands run from the repository root, so the
paths in messages read like tests/fixtures/escapes/01-io-open.lua.

  halo(args, env=..., timeout=...)  -> Result(rc, out, err, seconds)
  halo_json(args, ...)              -> (Result, parsed --format json report)
  script(test, source)              -> path of a temporary Lua file (exec)
  checks_dir(test, {name: source})  -> a temporary checks directory
  fixture(name)                     -> tests/fixtures/<name>, relative to the root
"""
import json
import os
import shutil
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.environ.get("HALO_SOURCE") or os.path.join(HERE, "..", ".."))
HALO = os.path.abspath(os.environ.get("HALO_BIN") or os.path.join(SOURCE, "build", "halo"))

# A halo that takes longer than this is hung, whatever it was doing.
HUNG = 60


class Result:
    def __init__(self, rc, out, err, seconds):
        self.rc, self.out, self.err, self.seconds = rc, out, err, seconds

    @property
    def all(self):
        return self.out + self.err

    def __repr__(self):
        return (f"rc={self.rc} after {self.seconds:.2f}s\n--- stdout ---\n{self.out[-3000:]}"
                f"\n--- stderr ---\n{self.err[-3000:]}")


def env_for(extra=None):
    """The caller's environment without HALO_* settings, plain output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALO_")}
    env.update({"NO_COLOR": "1", "TERM": "dumb", "HALO_OPERATOR": "sandbox-tests"})
    if extra:
        env.update(extra)
    return env


def halo(args, env=None, timeout=HUNG, cwd=None):
    """Runs halo with args; a run past timeout is killed and reported as rc None."""
    started = time.monotonic()
    try:
        p = subprocess.run([HALO] + list(args), cwd=cwd or SOURCE, env=env_for(env),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        rc = p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        err = (e.stderr or b"").decode("utf-8", "replace") + f"\n[killed by the test after {timeout}s]"
        rc = None
    return Result(rc, out, err, time.monotonic() - started)


def halo_json(args, env=None, timeout=HUNG):
    r = halo(list(args) + ["--format", "json"], env=env, timeout=timeout)
    try:
        report = json.loads(r.out)
    except ValueError as e:
        raise AssertionError(f"halo did not print a JSON report ({e}):\n{r!r}")
    return r, report


def by_id(report):
    return {c["id"]: c for c in report["checks"]}


def fixture(name):
    path = os.path.join("tests", "fixtures", name)
    if not os.path.isdir(os.path.join(SOURCE, path)):
        raise FileNotFoundError(f"no fixture directory {path} under {SOURCE}")
    return path


def _tmpdir(test):
    d = tempfile.mkdtemp(prefix="halo-sandbox-test-")
    test.addCleanup(shutil.rmtree, d, True)
    return d


def script(test, source, name="script.lua"):
    """A temporary Lua file for `halo exec`, removed after the test."""
    path = os.path.join(_tmpdir(test), name)
    with open(path, "w") as f:
        f.write(source)
    return path


def checks_dir(test, files):
    """A temporary checks directory {filename: source}, removed after the test."""
    d = _tmpdir(test)
    for name, source in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(source)
    return d


def log_texts(check):
    return [entry.get("text", "") for entry in check.get("logs") or []]


_MEASURE = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL, timeout=60)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss_kb(args, env=None):
    """Peak resident memory (KiB) of `halo args` and the workers it waited
    for, measured in a fresh interpreter so no other child counts."""
    import sys
    p = subprocess.run([sys.executable, "-c", _MEASURE, HALO] + list(args), cwd=SOURCE,
                       env=env_for(env), capture_output=True, timeout=HUNG + 10)
    return int(p.stdout.decode().strip().splitlines()[-1])
