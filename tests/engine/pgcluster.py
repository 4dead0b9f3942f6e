"""A throwaway PostgreSQL 15 cluster for the sql tests.

    with PgCluster(password="s3cret") as pg:     # or pg = PgCluster(); ...; pg.stop()
        pg.url()            -> postgresql://postgres:s3cret@127.0.0.1:PORT/postgres
        pg.psql("SELECT 1") -> stdout of psql over the cluster's Unix socket

initdb runs into a new temporary directory as the postgres user (through
runuser when the tests run as root, as they do in CI; as the calling user
otherwise), the server listens on 127.0.0.1 only, on a free port, with its
Unix socket inside that directory, so nothing outside the directory and
loopback is touched. stop() is `pg_ctl stop -m immediate` and removes the
directory; it is idempotent, and the tests call it from their cleanups so
that every path (failure, error, Ctrl-C through atexit) removes the cluster.

Authentication: the socket trusts the local superuser (the tests' own
psql), TCP asks for a password (scram-sha-256) when the cluster was made
with one, and trusts otherwise.

If the PostgreSQL 15 server binaries are missing, root installs Debian's
postgresql-15 package (without letting its postinst start a service);
anyone else gets SkipTest naming the package.
"""
import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse

PG_BIN = os.environ.get("HALO_PG_BIN", "/usr/lib/postgresql/15/bin")
PG_PACKAGE = "postgresql-15"

_live = set()


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port():
    """A loopback port that refuses connections: nothing listens on it."""
    return free_port()


def _have_binaries():
    server = all(os.access(os.path.join(PG_BIN, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres"))
    return server and _psql_path() is not None


def ensure_postgres():
    """Makes sure the server binaries exist; installs them as root, else skips."""
    if _have_binaries():
        return
    if os.geteuid() != 0:
        raise unittest.SkipTest(f"PostgreSQL 15 server binaries are not in {PG_BIN}: "
                                f"install the {PG_PACKAGE} package (or set HALO_PG_BIN)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", NEEDRESTART_SUSPEND="1")
    made_policy = False
    # No init system: the package's postinst must not start the main cluster on 5432.
    if not os.path.exists("/usr/sbin/policy-rc.d"):
        with open("/usr/sbin/policy-rc.d", "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod("/usr/sbin/policy-rc.d", 0o755)
        made_policy = True
    try:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", PG_PACKAGE],
                       env=env, check=True, capture_output=True)
    finally:
        if made_policy:
            os.unlink("/usr/sbin/policy-rc.d")
    if not _have_binaries():
        raise unittest.SkipTest(f"installed {PG_PACKAGE} but {PG_BIN} still lacks initdb/pg_ctl/postgres")


def _psql_path():
    p = os.path.join(PG_BIN, "psql")
    return p if os.access(p, os.X_OK) else shutil.which("psql")


class PgCluster:
    def __init__(self, password=None, user="postgres", start=True):
        ensure_postgres()
        self.password = password
        self.user = user
        self.port = None
        self.as_root = os.geteuid() == 0
        self.dir = tempfile.mkdtemp(prefix="halo-pg-")
        _live.add(self)
        self.data = os.path.join(self.dir, "data")
        self.sockdir = self.dir
        self.logfile = os.path.join(self.dir, "server.log")
        try:
            if self.as_root:
                pw = pwd.getpwnam("postgres")
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o700)
            args = [os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", user, "-E", "UTF8",
                    "--locale=C.UTF-8", "--no-sync", "--auth-local=trust"]
            if password is not None:
                pwfile = os.path.join(self.dir, "pwfile")
                with open(pwfile, "w") as f:
                    f.write(password + "\n")
                if self.as_root:
                    os.chown(pwfile, pw.pw_uid, pw.pw_gid)
                args += ["--auth-host=scram-sha-256", "--pwfile", pwfile]
            else:
                args += ["--auth-host=trust"]
            self._as_pg(args, timeout=120)
            if password is not None:
                os.unlink(pwfile)
            if start:
                self.start()
        except BaseException:
            self.stop()
            raise

    # ---- processes -------------------------------------------------------------

    def _as_pg(self, argv, timeout=60, check=True):
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.dir,
                           stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}\n"
                               f"{self.server_log()}")
        return p

    def start(self):
        """Starts the server on a fresh free port (a few tries: another
        process may take the port between choosing and binding it)."""
        last = None
        for _ in range(5):
            port = free_port()
            opts = (f"-p {port} -k {self.sockdir} -c listen_addresses=127.0.0.1 "
                    f"-c fsync=off -c full_page_writes=off -c max_connections=50")
            p = self._as_pg([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l", self.logfile, "-o", opts,
                             "-w", "-t", "60", "start"], check=False, timeout=90)
            if p.returncode == 0:
                self.port = port
                return
            last = p
        raise RuntimeError(f"pg_ctl start failed: {last.stdout}\n{last.stderr}\n{self.server_log()}")

    def stop_server(self):
        """pg_ctl stop -m immediate: the server dies now, mid-query if need be."""
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._as_pg([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop"],
                        check=False, timeout=60)

    def stop(self):
        """Stops the server and removes the directory (idempotent)."""
        if self.dir is None:
            return
        try:
            if os.path.isdir(self.data):
                self.stop_server()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
            _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- talking to it ---------------------------------------------------------

    def url(self, dbname="postgres", password=None, port=None, **params):
        pw = self.password if password is None else password
        auth = urllib.parse.quote(self.user, safe="")
        if pw:
            auth += ":" + urllib.parse.quote(pw, safe="")
        q = ("?" + urllib.parse.urlencode(params)) if params else ""
        return f"postgresql://{auth}@127.0.0.1:{port or self.port}/{dbname}{q}"

    def psql(self, sql, dbname="postgres"):
        """Runs sql as the superuser over the Unix socket; returns stdout
        (unaligned, tuples only, '|' between columns)."""
        p = self._as_pg([_psql_path(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.sockdir,
                         "-p", str(self.port), "-U", self.user, "-d", dbname, "-c", sql], timeout=60)
        return p.stdout

    def server_log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return "--- server log ---\n" + f.read()[-4000:]
        except (OSError, TypeError):
            return ""

    def wait_for(self, sql, want, timeout=10.0):
        """Polls sql until its output (stripped) equals want; returns the last output."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.psql(sql).strip()
            if out == want or time.monotonic() > deadline:
                return out
            time.sleep(0.05)


@atexit.register
def _stop_all():
    for c in list(_live):
        try:
            c.stop()
        except Exception:
            pass
