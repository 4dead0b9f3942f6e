"""Shared helpers for halo's end-to-end tests.

Every test_*.py here drives the real binary: HALO_BIN names it (ctest sets
it; the fallback is the usual build directory), HALO_SOURCE the repository
root (for tests/fixtures/). Nothing here knows how the engine works inside;
the tests read what an operator reads: exit codes, stderr lines and the
reports.

  run(args)            -> Result (rc, out, err) with .seconds
  run_json(args)       -> Report, the parsed --format json document
  start(args)          -> Running, a halo still going (signals, child pids)
  write_checks(files)  -> a temporary checks directory {filename: source}
  fixture(name)        -> tests/fixtures/<name>
  line_of(path, text)  -> the line number of text in a fixture file
  children_of(pid)     -> pids whose parent is pid, from /proc
  HaloTestCase         -> assertions: assertCheck, assertUsageError, ...
"""
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.environ.get("HALO_SOURCE") or os.path.join(HERE, "..", ".."))
HALO = os.path.abspath(os.environ.get("HALO_BIN") or os.path.join(HERE, "..", "..", "build", "halo"))
FIXTURES = os.path.join(SOURCE, "tests", "fixtures")

# A run that takes longer than this is hung, whatever it was doing.
DEFAULT_TIMEOUT = 60


def halo_env(extra=None):
    """The environment halo runs in: plain progress lines, no colour, a
    fixed operator name, and nothing from the caller's HALO_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALO_")}
    env.update({"NO_COLOR": "1", "TERM": "dumb", "HALO_OPERATOR": "halo-tests"})
    if extra:
        env.update(extra)
    return env


def fixture(name):
    path = os.path.join(FIXTURES, name)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no fixture directory {path}")
    return path


def write_checks(files, directory=None):
    """Writes {filename: source} into a new temporary directory (or the
    given one) and returns its path. The caller removes it; HaloTestCase's
    checks_dir() does that automatically."""
    directory = directory or tempfile.mkdtemp(prefix="halo-test-")
    for name, source in files.items():
        path = os.path.join(directory, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
    return directory


def line_of(path, text):
    """The 1-based number of the first line of the file containing text, so
    tests can name fixture lines without counting them by hand."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if text in line:
                return n
    raise ValueError(f"{text!r} is not in {path}")


class Result(tuple):
    """(rc, out, err), unpackable as a 3-tuple, with .seconds of wall time."""

    def __new__(cls, rc, out, err, seconds):
        self = tuple.__new__(cls, (rc, out, err))
        self.seconds = seconds
        return self

    rc = property(lambda self: self[0])
    out = property(lambda self: self[1])
    err = property(lambda self: self[2])

    def __repr__(self):
        return f"Result(rc={self.rc}, {self.seconds:.2f}s, stdout={self.out!r}, stderr={self.err!r})"


def run(args, timeout=DEFAULT_TIMEOUT, cwd=None, env=None):
    """Runs `halo ARGS...`; returns Result(rc, stdout, stderr)."""
    t0 = time.monotonic()
    p = subprocess.run([HALO] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, cwd=cwd, env=halo_env(env))
    return Result(p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


class Report(dict):
    """A parsed JSON report, with the Result of the run in .result."""

    result = None

    def check(self, check_id):
        for c in self["checks"]:
            if c["id"] == check_id:
                return c
        raise KeyError(f"no check {check_id!r} in the report; ids: {self.ids()}")

    def checks_with_id(self, check_id):
        return [c for c in self["checks"] if c["id"] == check_id]

    def ids(self):
        return [c["id"] for c in self["checks"]]


def parse_report(text, result=None):
    try:
        rep = Report(json.loads(text))
    except ValueError as e:
        raise AssertionError(f"the report is not JSON ({e}): {result!r}") from None
    rep.result = result
    return rep


def run_json(args, timeout=DEFAULT_TIMEOUT, cwd=None, env=None):
    """Runs `halo run ARGS... --format json` and returns the parsed Report."""
    res = run(["run"] + list(args) + ["--format", "json"], timeout=timeout, cwd=cwd, env=env)
    return parse_report(res.out, res)


def logs(check):
    """The text of a check's log lines, in order."""
    return [l["text"] for l in check["logs"]]


# ---- processes ----------------------------------------------------------------

def _stat(pid):
    """(ppid, state, starttime) of pid from /proc, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return int(rest[1]), rest[0], int(rest[19])


def children_of(pid):
    """Pids whose parent is pid (from /proc/*/stat), zombies included."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _stat(int(name))
        if st and st[0] == pid:
            out.append(int(name))
    return sorted(out)


def journal_entries(paths):
    """Every entry of the journals (XDG_STATE_HOME/halo/runs/*.json) at paths."""
    entries = []
    for path in paths:
        with open(path) as f:
            entries += json.load(f)["entries"]
    return entries


def kill_9_run(h):
    """kill -9 of a running `halo run` (a Running) and of each worker's
    process group, as a crash of the machine would end them; waits for the
    runner to be reaped."""
    workers = children_of(h.pid)
    # all stopped first, then all killed: killed one after the other, a
    # worker would see its runner gone (its lifeline) and begin its cleanup
    # in between, on a loaded machine far enough to undo a fault
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        os.kill(h.pid, sig)
        for w in workers:
            try:
                os.killpg(w, sig)
            except ProcessLookupError:
                pass
    h.proc.wait(10)


def descendants_of(pid):
    found, todo = [], [pid]
    while todo:
        for kid in children_of(todo.pop()):
            found.append(kid)
            todo.append(kid)
    return found


def is_alive(pid, starttime=None):
    """True while pid runs (a zombie is not running); with starttime, only
    the same process counts, not a later one that reused the number."""
    st = _stat(pid)
    if st is None or st[1] in ("Z", "X"):
        return False
    return starttime is None or st[2] == starttime


_subreaper = None


def become_subreaper():
    """Makes this process adopt orphans of what it starts (Linux), so a
    worker that outlives the runner shows up as our child. Best effort."""
    global _subreaper
    if _subreaper is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            _subreaper = libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
        except (OSError, AttributeError):
            _subreaper = False
    return _subreaper


class Running:
    """A halo process still going: stderr and stdout are collected by
    threads (so its pipes never fill), every process it starts is recorded
    while it runs, and the test can wait for a progress line or signal it."""

    def __init__(self, args, cwd=None, env=None):
        become_subreaper()
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([HALO] + [str(a) for a in args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=cwd, env=halo_env(env))
        self.pid = self.proc.pid
        self._out, self._err = [], []
        self._lock = threading.Lock()
        self._readers = [threading.Thread(target=self._pump, args=(self.proc.stdout, self._out), daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True)]
        for r in self._readers:
            r.start()
        self.seen = {}  # pid -> starttime of every descendant seen while running
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _pump(self, stream, sink):
        for chunk in iter(lambda: stream.read1(65536), b""):
            with self._lock:
                sink.append(chunk)

    def _watch(self):
        while not self._stop.is_set() and self.proc.poll() is None:
            self.record_descendants()
            self._stop.wait(0.02)

    def record_descendants(self):
        kids = descendants_of(self.pid)
        for kid in kids:
            st = _stat(kid)
            if st:
                self.seen.setdefault(kid, st[2])
        return kids

    @property
    def stderr(self):
        with self._lock:
            return b"".join(self._err).decode("utf-8", "replace")

    @property
    def stdout(self):
        with self._lock:
            return b"".join(self._out).decode("utf-8", "replace")

    def wait_for_stderr(self, pattern, timeout=15):
        """Waits until stderr matches the regex; returns the match."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.stderr)
            if m:
                return m
            if self.proc.poll() is not None:
                for r in self._readers:
                    r.join(1)
                m = re.search(pattern, self.stderr)
                if m:
                    return m
                raise AssertionError(f"halo exited ({self.proc.returncode}) before stderr matched "
                                     f"{pattern!r}; stderr:\n{self.stderr}")
            time.sleep(0.01)
        raise AssertionError(f"stderr did not match {pattern!r} within {timeout} s; stderr:\n{self.stderr}")

    def workers(self):
        """The direct children of halo that still run."""
        return [p for p in children_of(self.pid) if is_alive(p)]

    def send(self, sig):
        self.proc.send_signal(sig)

    def finish(self, timeout=DEFAULT_TIMEOUT):
        """Waits for halo to exit; returns Result(rc, out, err)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"halo did not exit within {timeout} s; stderr so far:\n{self.stderr}")
        finally:
            self._stop.set()
        for r in self._readers:
            r.join(5)
        self._close_pipes()
        return Result(self.proc.returncode, self.stdout, self.stderr, time.monotonic() - self.t0)

    def kill(self):
        """Ends halo and everything seen under it (for cleanup after a
        failed test; harmless once it exited)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stop.set()
        for pid, start in self.seen.items():
            if is_alive(pid, start):  # never a later process that reused the number
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for r in self._readers:
            r.join(5)
        self._close_pipes()

    def _close_pipes(self):
        # a stream still being read (a leaked process holds it open) is
        # left alone: closing it under the reader could block
        for stream, reader in zip((self.proc.stdout, self.proc.stderr), self._readers):
            if not stream.closed and not reader.is_alive():
                stream.close()

    def leftovers(self, settle=2.0):
        """Processes halo started that still run after it exited: every
        descendant seen while it ran, plus (as a subreaper) any orphan it
        left to us. Waits up to `settle` seconds for them to go."""
        deadline = time.monotonic() + settle
        while True:
            alive = [p for p, start in self.seen.items() if is_alive(p, start)]
            if _subreaper:
                alive += [p for p in children_of(os.getpid()) if p != self.pid and p not in alive
                          and _stat(p) and _stat(p)[1] not in ("Z", "X")]
            # orphans that died after being adopted by us are ours to reap
            if _subreaper:
                for p in children_of(os.getpid()):
                    st = _stat(p)
                    if st and st[1] == "Z" and p != self.pid:
                        try:
                            os.waitpid(p, os.WNOHANG)
                        except ChildProcessError:
                            pass
            if not alive or time.monotonic() >= deadline:
                return sorted(set(alive))
            time.sleep(0.05)


def start(args, cwd=None, env=None):
    """Starts `halo ARGS...` without waiting; see Running."""
    return Running(args, cwd=cwd, env=env)


# ---- assertions ---------------------------------------------------------------------

class HaloTestCase(unittest.TestCase):
    maxDiff = None

    def checks_dir(self, files):
        """A temporary checks directory for a one-off scenario, removed
        when the test ends."""
        d = write_checks(files)
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def tmp_path(self, name="file"):
        d = tempfile.mkdtemp(prefix="halo-test-")
        self.addCleanup(shutil.rmtree, d, True)
        return os.path.join(d, name)

    def assertCheck(self, report, check_id, status, message=None):
        """The check's status is `status` and (when given) its message
        matches the regex `message`. Returns the check."""
        c = report.check(check_id)
        self.assertEqual(c["status"], status, f"check {check_id!r}: {json.dumps(c, indent=1)}")
        if message is not None:
            self.assertIsNotNone(c["message"], f"check {check_id!r} has no message: {c}")
            self.assertRegex(c["message"], message, f"check {check_id!r}: {json.dumps(c, indent=1)}")
        return c

    def assertSummary(self, report, **counts):
        for key, want in counts.items():
            self.assertEqual(report["summary"][key], want,
                             f"summary.{key}: {report['summary']} (checks: "
                             f"{[(c['id'], c['status'], c['message']) for c in report['checks']]})")

    def assertExit(self, result, rc):
        self.assertEqual(result[0], rc, f"exit status of {result!r}")

    def assertUsageError(self, result, pattern):
        """Wrong usage: exit 2, nothing on stdout, exactly one line on
        stderr, and that line matches `pattern`."""
        rc, out, err = result
        self.assertEqual(rc, 2, f"exit status of {result!r}")
        self.assertEqual(out, "", f"stdout of {result!r}")
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, f"stderr should be one line: {err!r}")
        self.assertRegex(lines[0], pattern)
        return lines[0]

    def assertLogsInOrder(self, check, expected):
        """`expected` texts appear among the check's log lines in this
        order (other lines may come between them)."""
        texts = logs(check)
        pos = 0
        for want in expected:
            while pos < len(texts) and texts[pos] != want:
                pos += 1
            self.assertLess(pos, len(texts), f"log line {want!r} missing or out of order in {texts}")
            pos += 1

    def assertNoLeftovers(self, running):
        left = running.leftovers()
        if left:
            descr = {p: open(f"/proc/{p}/cmdline", "rb").read() for p in left if os.path.exists(f"/proc/{p}")}
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            self.fail(f"processes left behind by halo {running.pid}: {descr}")

    def assertTookLess(self, seconds, limit, what="the run"):
        self.assertLess(seconds, limit, f"{what} took {seconds:.2f} s")
