#!/usr/bin/env python3
"""A stand-in for the Pulp Engine API, for halo's reference HA stack.

It honours the contract in docs/target-contract.md: assets, templates,
rendering to PDF, editor tokens and key rotation, an audit log, schedules
with exactly-once firing across replicas, health, and multi-tenant mode.
Every replica keeps all its state in PostgreSQL, so two replicas behind a
load balancer behave as one service -- unless a FAULT_* switch (below)
breaks one HA property on purpose, so that the check for that property
can be seen to fail.

Python 3 standard library plus Debian's python3-psycopg2; one thread per
request (ThreadingHTTPServer) and one scheduler thread. Configuration is
the environment only:

  REPLICA_NAME             api1 / api2: the X-Served-By header, logs, executions
  PORT, BIND               where to listen (BIND must be a loopback address)
  DATABASE_URL             postgres://pulp@127.0.0.1:55432/pulp
  APP_VERSION              reported by GET /health
  API_KEY_ADMIN, API_KEY_EDITOR                     valid as x-api-key, can mint
  API_KEY_ADMIN_PREVIOUS, API_KEY_EDITOR_PREVIOUS   only verify tokens minted with them
  EDITOR_TOKEN_SECRET      HMAC-SHA256 key of editor tokens
  EDITOR_TOKEN_TTL_MINUTES token lifetime (default 480)
  MULTI_TENANT_ENABLED     true/false (default false)
  TENANT_STATUS_CACHE_TTL_MS  how long a replica trusts its cached tenant status (default 5000)
  SCHEDULER_TICK_MS        how often the scheduler looks for due fire times (default 200)

  FAULT_ASSETS_LOCAL=1             assets live in this replica's memory, not in PostgreSQL
  FAULT_SCHEDULE_EVERY_REPLICA=1   every replica records every tick (no cross-replica lock)
  FAULT_TOKEN_SECRET_PER_REPLICA=1 the replica's name is mixed into the token secret
  FAULT_TENANT_CACHE_FOREVER=1     cached tenant status never expires
  FAULT_PREVIOUS_KEY_AS_API_KEY=1  a *_PREVIOUS key is accepted as x-api-key (and can mint)
  FAULT_READY_BEFORE_SERVING=1     for FAULT_STARTUP_DELAY_S after start, /health and /health/ready
                                   answer 200 but every other route 503
  FAULT_PREVIOUS_KEYS_LATE=1       for FAULT_STARTUP_DELAY_S after start, *_PREVIOUS keys are not
                                   loaded yet: tokens minted with them get 401
  FAULT_STARTUP_DELAY_S            how long the two faults above last (default 4)
  FAULT_READY_IGNORES_DB=1         /health/ready answers 200 without asking the database
  FAULT_DB_NO_RECONNECT=1          once a database connection is lost, the replica never opens
                                   another: every request needing the database is 503 until restarted
  FAULT_FIRE_TIME_LOCAL_CLOCK=1    the scheduler takes "now" from this replica's clock instead of
                                   the database's, so a replica whose clock runs ahead fires early
  FAULT_SHUTDOWN_DROPS_INFLIGHT=1  on SIGINT/SIGTERM the replica exits at once, dropping the
                                   requests it is answering

  STANDIN_STRICT=1         offer nothing beyond the contract: every convenience the contract
                           marks (stand-in) is gone or done another way (no X-Served-By, no
                           X-Asset-Sha256, no replica in bodies or logs, no digest or filename
                           on the rendered page, compressed PDF streams with PNGs as image
                           XObjects, lists in random order, bare error bodies, a token wins
                           over x-api-key, another key fingerprint). Checks that pass here
                           rest on the contract, not on this stand-in's habits.

Logs: one JSON line on stdout per request; a 401 is logged as
{"msg":"Auth failure","statusCode":401,...} and nothing else is.
"""
import base64
import contextlib
import datetime
import hashlib
import hmac
import json
import os
import random
import re
import select
import selectors
import signal
import sys
import threading
import time
import traceback
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg2
import psycopg2.extras


def flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


REPLICA = os.environ.get("REPLICA_NAME", "api")
BIND = os.environ.get("BIND", "127.0.0.1")
PORT = int(os.environ.get("PORT", "3001"))
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://pulp@127.0.0.1:55432/pulp")
APP_VERSION = os.environ.get("APP_VERSION", "1.0.0-standin")
KEYS = {"admin": os.environ.get("API_KEY_ADMIN", ""), "editor": os.environ.get("API_KEY_EDITOR", "")}
PREVIOUS = {"admin": os.environ.get("API_KEY_ADMIN_PREVIOUS", ""),
            "editor": os.environ.get("API_KEY_EDITOR_PREVIOUS", "")}
TOKEN_TTL = int(os.environ.get("EDITOR_TOKEN_TTL_MINUTES") or 480) * 60
MULTI_TENANT = flag("MULTI_TENANT_ENABLED")
TENANT_TTL = int(os.environ.get("TENANT_STATUS_CACHE_TTL_MS") or 5000) / 1000.0
TICK = int(os.environ.get("SCHEDULER_TICK_MS") or 200) / 1000.0
MAX_BODY = 64 * 1024 * 1024

FAULT_ASSETS_LOCAL = flag("FAULT_ASSETS_LOCAL")
FAULT_SCHEDULE_EVERY_REPLICA = flag("FAULT_SCHEDULE_EVERY_REPLICA")
FAULT_TOKEN_SECRET_PER_REPLICA = flag("FAULT_TOKEN_SECRET_PER_REPLICA")
FAULT_TENANT_CACHE_FOREVER = flag("FAULT_TENANT_CACHE_FOREVER")
FAULT_PREVIOUS_KEY_AS_API_KEY = flag("FAULT_PREVIOUS_KEY_AS_API_KEY")
FAULT_READY_BEFORE_SERVING = flag("FAULT_READY_BEFORE_SERVING")
FAULT_PREVIOUS_KEYS_LATE = flag("FAULT_PREVIOUS_KEYS_LATE")
FAULT_READY_IGNORES_DB = flag("FAULT_READY_IGNORES_DB")
FAULT_DB_NO_RECONNECT = flag("FAULT_DB_NO_RECONNECT")
FAULT_FIRE_TIME_LOCAL_CLOCK = flag("FAULT_FIRE_TIME_LOCAL_CLOCK")
FAULT_SHUTDOWN_DROPS_INFLIGHT = flag("FAULT_SHUTDOWN_DROPS_INFLIGHT")
FAULT_STARTUP_DELAY = float(os.environ.get("FAULT_STARTUP_DELAY_S") or 4)
STRICT = flag("STANDIN_STRICT")
STARTED = time.monotonic()          # the startup faults count from here


def pause(seconds):
    """time.sleep, but by select: under libfaketime (halo's clock skew)
    with the monotonic clock left real, Python's time.sleep fails with
    EINVAL (libfaketime 0.9.10 mishandles absolute clock_nanosleep)."""
    select.select([], [], [], seconds)


def starting_up():
    """Within FAULT_STARTUP_DELAY_S of the process start."""
    return time.monotonic() - STARTED < FAULT_STARTUP_DELAY

SECRET = os.environ.get("EDITOR_TOKEN_SECRET", "")
if FAULT_TOKEN_SECRET_PER_REPLICA:
    SECRET = SECRET + ":" + REPLICA
SECRET = SECRET.encode()

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")   # template keys, tenant ids

# ---------------------------------------------------------------- logging

_log_lock = threading.Lock()


def log(msg, **fields):
    line = {"msg": msg}
    line.update(fields)
    line.setdefault("time", iso(time.time()))
    if not STRICT:
        line.setdefault("replica", REPLICA)
    with _log_lock:
        sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
        sys.stdout.flush()


def iso(value):
    """ISO-8601 UTC with milliseconds, like JavaScript's toISOString()."""
    if isinstance(value, datetime.datetime):
        value = value.timestamp()
    return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---------------------------------------------------------------- errors


class HTTPError(Exception):
    def __init__(self, status, error, **extra):
        super().__init__(error)
        self.status = status
        self.body = {"error": error} if STRICT else dict({"error": error}, **extra)


class Unauthorized(HTTPError):
    def __init__(self, reason):
        super().__init__(401, "unauthorized", reason=reason)
        self.reason = reason


class Unavailable(Exception):
    """The database does not answer."""


# ---------------------------------------------------------------- database


class Database:
    """A small pool of psycopg2 connections. `with db.tx() as cur:` is one
    transaction; a lost connection is dropped and becomes Unavailable.

    As HikariCP does by default, the pool keeps MIN_IDLE connections open
    from the start (fill(), a background thread, refills it after a
    connection is lost), so a replica that starts or restarts under traffic
    meets it with its connections ready. Beyond those, the pool grows by at
    most OPENING connections at a time, and a request that needs one takes
    whichever comes first: a connection another request returns, or its
    turn to open a new one. Without this a restarted replica met 200
    requests/s with 16 simultaneous connects, each longer than the connect
    timeout on a loaded machine (503s). A refused connection still fails at
    once: only a database that accepts but does not answer costs the
    timeout."""

    CONNECT_TIMEOUT_S = 10
    OPENING = 2
    MIN_IDLE = 10

    def __init__(self, url, size=16):
        self.url = url
        self.idle = []
        self.opening = 0
        self.open = 0        # connections in existence, idle or in use
        self.cond = threading.Condition()
        self.slots = threading.BoundedSemaphore(size)
        self.lost = None     # FAULT_DB_NO_RECONNECT: why the database is given up on

    def _connect(self):
        try:
            conn = psycopg2.connect(self.url, connect_timeout=self.CONNECT_TIMEOUT_S,
                                    options="-c TimeZone=UTC -c statement_timeout=15000")
        except psycopg2.Error as e:
            raise Unavailable(str(e).strip()) from None
        with self.cond:
            self.open += 1
        return conn

    def _close(self, conn):
        conn.close()
        with self.cond:
            self.open -= 1

    def fill(self):
        """Keeps MIN_IDLE connections open; runs for the process's life."""
        while True:
            with self.cond:
                wanted = not self.lost and self.open + self.opening < self.MIN_IDLE and self.opening < self.OPENING
                if wanted:
                    self.opening += 1
            if not wanted:
                pause(0.5)
                continue
            try:
                conn = self._open()
            except Unavailable:
                conn = None
            if conn is None:
                pause(0.5)
            else:
                self._checkin(conn)

    def _checkout(self):
        """An idle connection, else a new one once it is this request's turn."""
        deadline = time.monotonic() + self.CONNECT_TIMEOUT_S
        with self.cond:
            while True:
                if self.lost:
                    raise Unavailable("gave up on the database after: " + self.lost)
                if self.idle:
                    return self.idle.pop()
                if self.opening < self.OPENING:
                    self.opening += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Unavailable("no database connection within %d s" % self.CONNECT_TIMEOUT_S)
                self.cond.wait(left)
        return self._open()

    def _open(self):
        """A new connection, counted in self.opening by the caller until it
        is made or has failed; then the next waiter may open one."""
        try:
            return self._connect()
        finally:
            with self.cond:
                self.opening -= 1
                self.cond.notify()

    def _checkin(self, conn):
        with self.cond:
            if not self.lost:
                self.idle.append(conn)
                self.cond.notify()
                return
        self._close(conn)

    @contextlib.contextmanager
    def tx(self):
        if not self.slots.acquire(timeout=10):
            raise Unavailable("every database connection is busy")
        conn = None
        try:
            conn = self._checkout()
            try:
                with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                    yield cur
                conn.commit()
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
                self._close(conn)
                conn = None
                if FAULT_DB_NO_RECONNECT and not self.lost:
                    with self.cond:
                        self.lost = str(e).strip() or type(e).__name__
                        dropped, self.idle = self.idle, []
                        self.cond.notify_all()
                    for idle in dropped:
                        self._close(idle)
                raise Unavailable(str(e).strip()) from None
            except BaseException:
                try:
                    conn.rollback()
                except psycopg2.Error:
                    self._close(conn)
                    conn = None
                raise
        finally:
            if conn is not None:
                if conn.closed:
                    with self.cond:
                        self.open -= 1
                else:
                    self._checkin(conn)
            self.slots.release()


DB = Database(DATABASE_URL)

SCHEMA = """
SELECT pg_advisory_xact_lock(hashtext('pulp-standin-schema'));
CREATE TABLE IF NOT EXISTS tenants (
  id text PRIMARY KEY,
  status text NOT NULL DEFAULT 'active',          -- 'active' | 'archived'
  created_at timestamptz NOT NULL DEFAULT now(),
  archived_at timestamptz);
INSERT INTO tenants (id) VALUES ('default') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS templates (
  tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  key text NOT NULL,
  definition jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by text NOT NULL,
  PRIMARY KEY (tenant_id, key));
CREATE TABLE IF NOT EXISTS assets (
  id text PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  filename text NOT NULL,
  content_type text NOT NULL,
  size integer NOT NULL,
  sha256 text NOT NULL,
  data bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by text NOT NULL,
  UNIQUE (tenant_id, filename));
CREATE TABLE IF NOT EXISTS schedules (
  id text PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  name text,
  template_key text NOT NULL,
  cron text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by text NOT NULL);
-- No unique key on (schedule_id, fire_time): exactly-once is the
-- scheduler's job (an advisory lock per fire time), so that a scheduler
-- that gets it wrong shows up here as duplicate rows.
CREATE TABLE IF NOT EXISTS schedule_executions (
  id bigserial PRIMARY KEY,
  schedule_id text NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
  fire_time timestamptz NOT NULL,
  replica text NOT NULL,
  status text NOT NULL,                            -- 'ok' | 'template-missing'
  recorded_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE INDEX IF NOT EXISTS schedule_executions_fire ON schedule_executions (schedule_id, fire_time);
CREATE TABLE IF NOT EXISTS audit_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  tenant_id text NOT NULL,
  actor text NOT NULL,
  action text NOT NULL,
  target text,
  replica text NOT NULL,
  via text NOT NULL);
"""


def create_schema(deadline=60):
    """Both replicas may start at once: the schema is created under an
    advisory lock, every statement idempotent. Waits for the database."""
    end = time.monotonic() + deadline
    while True:
        try:
            with DB.tx() as cur:
                cur.execute(SCHEMA)
            return
        except Unavailable as e:
            if time.monotonic() > end:
                raise
            log("waiting for the database", error=str(e))
            pause(0.5)


def audit(cur, req, action, target):
    p = req.principal
    cur.execute("INSERT INTO audit_log (tenant_id, actor, action, target, replica, via) "
                "VALUES (%s, %s, %s, %s, %s, %s)", (req.tenant, p.actor, action, target, REPLICA, p.via))


# ---------------------------------------------------------------- auth

def fingerprint(key):
    if STRICT:   # the contract fixes only that a token is bound to its key, not how
        return b64url(hmac.new(b"pulp-key-id", key.encode(), hashlib.sha256).digest()[:16])
    return b64url(hashlib.sha256(b"pulp-key-fingerprint:" + key.encode()).digest()[:12])


def same(a, b):
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


class Principal:
    def __init__(self, role, actor, via, key_fp=None, tenant=None):
        self.role, self.actor, self.via, self.key_fp, self.tenant = role, actor, via, key_fp, tenant


def principal_from_key(key):
    for role in ("admin", "editor"):
        if same(key, KEYS[role]):
            return Principal(role, "api-key:" + role, "api-key", key_fp=fingerprint(KEYS[role]))
    for role in ("admin", "editor"):
        if same(key, PREVIOUS[role]):
            if FAULT_PREVIOUS_KEY_AS_API_KEY:
                return Principal(role, "api-key:" + role, "api-key", key_fp=fingerprint(PREVIOUS[role]))
            raise Unauthorized("a previous key cannot be used as x-api-key")
    raise Unauthorized("unknown api key")


def mint(actor, tenant, key_fp):
    now = int(time.time())
    payload = b64url(json.dumps({"actor": actor, "tenantId": tenant, "iat": now, "exp": now + TOKEN_TTL},
                                separators=(",", ":")).encode())
    signed = "v1." + payload + "." + key_fp
    return signed + "." + b64url(hmac.new(SECRET, signed.encode(), hashlib.sha256).digest()), now + TOKEN_TTL


def principal_from_token(token):
    parts = token.split(".")
    if len(parts) != 4:
        raise Unauthorized("malformed editor token")
    version, payload, key_fp, signature = parts
    if version != "v1":
        raise Unauthorized("unknown editor token version")
    expected = b64url(hmac.new(SECRET, (version + "." + payload + "." + key_fp).encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected.encode(), signature.encode()):   # compared as text: no ignored bits
        raise Unauthorized("bad editor token signature")
    role = None
    previous_loaded = not (FAULT_PREVIOUS_KEYS_LATE and starting_up())
    for r in ("admin", "editor"):
        for key in (KEYS[r], PREVIOUS[r] if previous_loaded else ""):
            if key and hmac.compare_digest(fingerprint(key), key_fp):
                role = r
    if role is None:
        raise Unauthorized("the key that minted this token is no longer accepted")
    try:
        claims = json.loads(unb64url(payload))
        actor, tenant, exp = str(claims["actor"]), str(claims["tenantId"]), float(claims["exp"])
    except (ValueError, KeyError, TypeError):
        raise Unauthorized("malformed editor token payload") from None
    if exp <= time.time():
        raise Unauthorized("editor token expired")
    return Principal(role, actor, "editor-token", key_fp=key_fp, tenant=tenant)


def authenticate(req):
    key = req.headers.get("x-api-key")
    token = req.headers.get("x-editor-token")
    if not token:
        auth = req.headers.get("authorization") or ""
        if auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
    # Which credential wins when both are sent is the stand-in's choice,
    # not the contract's: the strict mode takes the other one.
    if STRICT and token:
        return principal_from_token(token)
    if key:
        return principal_from_key(key)
    if token:
        return principal_from_token(token)
    raise Unauthorized("no x-api-key, x-editor-token or Authorization: Bearer")


def unordered(rows):
    """A list whose order the contract does not fix: in strict mode, any."""
    rows = list(rows)
    if STRICT:
        random.shuffle(rows)
    return rows


# ---------------------------------------------------------------- tenants

class TenantCache:
    """tenant id -> (status, expires). Misses are not cached."""

    def __init__(self):
        self.entries = {}
        self.lock = threading.Lock()

    def status(self, tenant):
        now = time.monotonic()
        with self.lock:
            hit = self.entries.get(tenant)
        if hit and (FAULT_TENANT_CACHE_FOREVER or now < hit[1]):
            return hit[0]
        with DB.tx() as cur:
            cur.execute("SELECT status FROM tenants WHERE id = %s", (tenant,))
            row = cur.fetchone()
        if row is None:
            self.drop(tenant)
            return None
        self.put(tenant, row["status"])
        return row["status"]

    def put(self, tenant, status):
        with self.lock:
            self.entries[tenant] = (status, time.monotonic() + TENANT_TTL)

    def drop(self, tenant):
        with self.lock:
            self.entries.pop(tenant, None)


TENANTS = TenantCache()


def resolve_tenant(req):
    """The request's tenant: the editor token's, else x-tenant-id, else
    "default". Always "default" in single-tenant mode."""
    if not MULTI_TENANT:
        return "default"
    tenant = (req.principal.tenant if req.principal and req.principal.tenant
              else req.headers.get("x-tenant-id") or "default")
    if TENANTS.status(tenant) is None:
        raise HTTPError(404, "unknown tenant", tenantId=tenant)
    return tenant


def require_writable(req):
    if MULTI_TENANT and TENANTS.status(req.tenant) == "archived":
        raise HTTPError(403, "tenant archived", tenantId=req.tenant)


def require_admin(req):
    if req.principal.role != "admin":
        raise HTTPError(403, "admin only")


def require_multi_tenant():
    if not MULTI_TENANT:
        raise HTTPError(404, "not found", reason="multi-tenant mode is off (MULTI_TENANT_ENABLED)")


# ---------------------------------------------------------------- cron

MONTHS = {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}


class Cron:
    """Five fields (minute hour day-of-month month day-of-week) or six with
    seconds first. *, */n, a-b, a-b/n, a/n, lists, names; UTC. As in cron,
    when both day fields are restricted a day matching either one fires."""

    RANGES = [(0, 59, {}), (0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, MONTHS), (0, 7, DAYS)]

    def __init__(self, expr):
        fields = expr.split()
        if len(fields) == 5:
            fields = ["0"] + fields
        if len(fields) != 6:
            raise ValueError("cron needs 5 fields, or 6 with seconds first")
        self.sets = [self.field(f, lo, hi, names) for f, (lo, hi, names) in zip(fields, self.RANGES)]
        self.sets[5] = {d % 7 for d in self.sets[5]}
        self.dom_any = fields[3] in ("*", "?")
        self.dow_any = fields[5] in ("*", "?")

    @staticmethod
    def field(text, lo, hi, names):
        def value(v):
            v = names.get(v.upper(), v)
            n = int(v)
            if not lo <= n <= hi:
                raise ValueError(f"{n} is outside {lo}-{hi}")
            return n
        out = set()
        for item in text.split(","):
            rng, _, step = item.partition("/")
            step = int(step) if step else 1
            if step < 1:
                raise ValueError("step must be at least 1")
            if rng in ("*", "?"):
                a, b = lo, hi
            elif "-" in rng:
                a, b = (value(x) for x in rng.split("-", 1))
            else:
                a = value(rng)
                b = hi if _ else a
            out.update(range(a, b + 1, step))
        return out

    def matches(self, epoch):
        t = time.gmtime(epoch)
        sec, minute, hour, dom, month, dow = self.sets
        if t.tm_sec not in sec or t.tm_min not in minute or t.tm_hour not in hour or t.tm_mon not in month:
            return False
        in_dom, in_dow = t.tm_mday in dom, (t.tm_wday + 1) % 7 in dow
        if self.dom_any or self.dow_any:
            return in_dom and in_dow
        return in_dom or in_dow


# ---------------------------------------------------------------- scheduler

class Scheduler(threading.Thread):
    """Every TICK, records each due fire time of every schedule in
    schedule_executions. Normally exactly once across all replicas: each
    fire time is claimed under a transaction-level advisory lock on
    (schedule, fire time) and inserted only if no replica recorded it yet.
    Fire times before the schedule was created never fire; a replica
    catches up at most LOOKBACK seconds."""

    LOOKBACK = 10

    def __init__(self):
        super().__init__(name="scheduler", daemon=True)
        self.stop = threading.Event()
        self.done = {}       # schedule id -> {fire epoch} this replica already handled
        self.crons = {}      # (schedule id, cron text) -> Cron
        self.last_error = 0

    def run(self):
        while not self.stop.wait(TICK):
            try:
                self.tick()
            except (Unavailable, psycopg2.Error) as e:
                if time.monotonic() - self.last_error > 10:
                    self.last_error = time.monotonic()
                    log("scheduler: database error", error=str(e).strip())
            except Exception:
                log("scheduler: error", error=traceback.format_exc())

    def tick(self):
        with DB.tx() as cur:
            # "now" is the database's clock, the one every replica shares: a
            # replica whose own clock is off still fires each tick on time
            cur.execute("SELECT extract(epoch FROM clock_timestamp())::float8 AS now")
            now = cur.fetchone()["now"]
            cur.execute("SELECT id, cron, extract(epoch FROM created_at)::float8 AS created FROM schedules")
            rows = cur.fetchall()
        if FAULT_FIRE_TIME_LOCAL_CLOCK:
            now = time.time()
        alive = set()
        for row in rows:
            sid = row["id"]
            alive.add(sid)
            cron = self.crons.get((sid, row["cron"]))
            if cron is None:
                try:
                    cron = self.crons[(sid, row["cron"])] = Cron(row["cron"])
                except ValueError:
                    continue
            done = self.done.setdefault(sid, set())
            first = int(max(row["created"], now - self.LOOKBACK)) + 1
            for second in range(first, int(now) + 1):
                if second not in done and cron.matches(second):
                    self.fire(sid, second)
                    done.add(second)
            for second in [s for s in done if s < now - self.LOOKBACK - 5]:
                done.discard(second)
        for sid in set(self.done) - alive:
            del self.done[sid]
        self.crons = {k: v for k, v in self.crons.items() if k[0] in alive}

    def fire(self, sid, second):
        if FAULT_SCHEDULE_EVERY_REPLICA:
            # the fault: no claim across replicas, only "not recorded by me yet"
            already = "e.schedule_id = s.id AND e.fire_time = to_timestamp(%(t)s) AND e.replica = %(r)s"
        else:
            already = "e.schedule_id = s.id AND e.fire_time = to_timestamp(%(t)s)"
        try:
            with DB.tx() as cur:
                if not FAULT_SCHEDULE_EVERY_REPLICA:
                    # one replica at a time per (schedule, fire time); the lock
                    # is released when the transaction commits
                    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{sid}@{second}",))
                cur.execute(
                    "INSERT INTO schedule_executions (schedule_id, fire_time, replica, status) "
                    "SELECT s.id, to_timestamp(%(t)s), %(r)s, "
                    "  CASE WHEN EXISTS (SELECT 1 FROM templates tp WHERE tp.tenant_id = s.tenant_id "
                    "                    AND tp.key = s.template_key) THEN 'ok' ELSE 'template-missing' END "
                    "FROM schedules s WHERE s.id = %(id)s "
                    "AND NOT EXISTS (SELECT 1 FROM schedule_executions e WHERE " + already + ")",
                    {"t": second, "r": REPLICA, "id": sid})
        except psycopg2.IntegrityError:   # the schedule was deleted meanwhile
            pass


# ---------------------------------------------------------------- PDF

def pdf_text(s):
    s = s.encode("ascii", "replace").decode()
    return "(" + s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def pdf_hex(s):
    return "<FEFF" + s.encode("utf-16-be").hex().upper() + ">"


def build_pdf(lines, attachments):
    """A one-page PDF showing `lines`, with each (filename, bytes) of
    `attachments` embedded byte for byte as an EmbeddedFile stream."""
    objs = {}
    objs[4] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    text = "BT /F1 9 Tf 11 TL 40 800 Td " + " ".join(pdf_text(l) + " Tj T*" for l in lines[:70]) + " ET"
    objs[5] = b"<< /Length %d >>\nstream\n" % len(text) + text.encode() + b"\nendstream"
    names, n = [], 6
    for filename, data in sorted(attachments):
        objs[n] = (b"<< /Type /EmbeddedFile /Length %d /Params << /Size %d >> >>\nstream\n" % (len(data), len(data))
                   + data + b"\nendstream")
        objs[n + 1] = ("<< /Type /Filespec /F %s /UF %s /EF << /F %d 0 R >> >>"
                       % (pdf_hex(filename), pdf_hex(filename), n)).encode()
        names.append("%s %d 0 R" % (pdf_hex(filename), n + 1))
        n += 2
    embedded = " /Names << /EmbeddedFiles << /Names [%s] >> >>" % " ".join(names) if names else ""
    objs[1] = ("<< /Type /Catalog /Pages 2 0 R%s >>" % embedded).encode()
    objs[2] = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
    objs[3] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 5 0 R "
               b"/Resources << /Font << /F1 4 0 R >> >> >>")
    return pdf_file(objs)


def pdf_file(objs):
    """The numbered objects as a PDF file, with its cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for num in sorted(objs):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objs[num] + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for num in sorted(objs):
        out += b"%010d 00000 n \n" % offsets[num]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def png_image(data):
    """(width, height, colors, IDAT payload) of a PNG a PDF can show as is
    (8-bit grey or RGB, not interlaced), else None."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos, head, idat = 8, None, []
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR" and len(body) == 13:
            head = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if head is None or not idat:
        return None
    width, height = int.from_bytes(head[0:4], "big"), int.from_bytes(head[4:8], "big")
    depth, color, interlace = head[8], head[9], head[12]
    if depth != 8 or color not in (0, 2) or interlace != 0:
        return None
    return width, height, 3 if color == 2 else 1, b"".join(idat)


def build_pdf_strict(lines, attachments):
    """What a real PDF writer does, and all the contract promises: the
    assets are in the PDF, but not as the stand-in's convenience. Every
    stream is compressed; a PNG becomes an image XObject holding its IDAT
    data (as PDF writers copy it), anything else a compressed EmbeddedFile.
    The page shows the text, no digest."""
    objs = {4: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"}
    images, names, n = [], [], 6
    for filename, data in attachments:
        img = png_image(data)
        if img:
            width, height, colors, idat = img
            space = "/DeviceRGB" if colors == 3 else "/DeviceGray"
            objs[n] = (b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace %s /BitsPerComponent 8 "
                       b"/Filter /FlateDecode /DecodeParms << /Predictor 15 /Colors %d /BitsPerComponent 8 "
                       b"/Columns %d >> /Length %d >>\nstream\n" % (width, height, space.encode(), colors, width,
                                                                   len(idat))
                       + idat + b"\nendstream")
            images.append((n, width, height))
            n += 1
        else:
            packed = zlib.compress(data, 9)
            objs[n] = (b"<< /Type /EmbeddedFile /Filter /FlateDecode /Length %d /Params << /Size %d >> >>\nstream\n"
                       % (len(packed), len(data)) + packed + b"\nendstream")
            objs[n + 1] = ("<< /Type /Filespec /F %s /UF %s /EF << /F %d 0 R >> >>"
                           % (pdf_hex(filename), pdf_hex(filename), n)).encode()
            names.append("%s %d 0 R" % (pdf_hex(filename), n + 1))
            n += 2
    text = "BT /F1 9 Tf 11 TL 40 800 Td " + " ".join(pdf_text(l) + " Tj T*" for l in lines[:30]) + " ET"
    y = 440
    for num, width, height in images:
        scale = min(1.0, 300.0 / max(width, height))
        text += " q %.2f 0 0 %.2f 40 %d cm /Im%d Do Q" % (width * scale, height * scale, y, num)
        y -= 310
    packed = zlib.compress(text.encode(), 9)
    objs[5] = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream"
    embedded = " /Names << /EmbeddedFiles << /Names [%s] >> >>" % " ".join(names) if names else ""
    objs[1] = ("<< /Type /Catalog /Pages 2 0 R%s >>" % embedded).encode()
    objs[2] = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
    xobjects = " ".join("/Im%d %d 0 R" % (num, num) for num, _, _ in images)
    objs[3] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 5 0 R "
               b"/Resources << /Font << /F1 4 0 R >> /XObject << " + xobjects.encode() + b" >> >> >>")
    return pdf_file(objs)


def substitute(value, data):
    """{{name}} in every string of the definition becomes str(data[name])."""
    if isinstance(value, str):
        return re.sub(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}",
                      lambda m: str(data[m.group(1)]) if m.group(1) in data else m.group(0), value)
    if isinstance(value, list):
        return [substitute(v, data) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, data) for k, v in value.items()}
    return value


def collect(value, key, out):
    """Every string under `key` anywhere in the document, in order."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key and isinstance(v, str):
                out.append(v)
            else:
                collect(v, key, out)
    elif isinstance(value, list):
        for v in value:
            collect(v, key, out)
    return out


# ---------------------------------------------------------------- assets

LOCAL_ASSETS = {}          # FAULT_ASSETS_LOCAL: (tenant, filename) -> row, this replica only
LOCAL_LOCK = threading.Lock()


def find_asset(tenant, name, with_data=True):
    """By filename, else by id; None when missing."""
    if FAULT_ASSETS_LOCAL:
        with LOCAL_LOCK:
            row = LOCAL_ASSETS.get((tenant, name))
            if row is None:
                row = next((r for (t, _), r in LOCAL_ASSETS.items() if t == tenant and r["id"] == name), None)
            return row
    cols = "id, filename, content_type, size, sha256, created_at" + (", data" if with_data else "")
    with DB.tx() as cur:
        cur.execute(f"SELECT {cols} FROM assets WHERE tenant_id = %s AND (filename = %s OR id = %s) "
                    "ORDER BY filename = %s DESC LIMIT 1", (tenant, name, name, name))
        row = cur.fetchone()
    if row and with_data:
        row["data"] = bytes(row["data"])
    return row


def asset_doc(row, tenant):
    return {"id": row["id"], "filename": row["filename"], "size": row["size"], "sha256": row["sha256"],
            "contentType": row["content_type"], "tenantId": tenant, "createdAt": iso(row["created_at"])}


def parse_multipart(body, content_type):
    m = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not m:
        raise HTTPError(400, "multipart/form-data with a boundary expected")
    parts = []
    for chunk in body.split(b"--" + m.group(1).encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            k, _, v = line.partition(":")
            if k.strip():
                headers[k.strip().lower()] = v.strip()
        disp = headers.get("content-disposition", "")
        name = re.search(r'\bname="([^"]*)"', disp)
        filename = re.search(r'\bfilename="([^"]*)"', disp)
        parts.append((name and name.group(1), filename and filename.group(1),
                      headers.get("content-type", "application/octet-stream"), data))
    return parts


# ---------------------------------------------------------------- routes
# Each takes the request and returns (status, body): a dict or list for
# JSON, bytes with a content type as (status, bytes, content_type), or
# status 204 with None.

def health(req):
    if STRICT:
        return 200, {"status": "ok", "version": APP_VERSION}
    return 200, {"status": "ok", "version": APP_VERSION, "replica": REPLICA, "multiTenant": MULTI_TENANT}


def ready(req):
    if FAULT_READY_IGNORES_DB:
        return 200, {"status": "ready"} if STRICT else {"status": "ready", "replica": REPLICA}
    try:
        with DB.tx() as cur:
            cur.execute("SELECT 1")
    except Unavailable as e:
        return 503, {"status": "unavailable"} if STRICT else {"status": "unavailable", "replica": REPLICA,
                                                             "error": str(e)}
    return 200, {"status": "ready"} if STRICT else {"status": "ready", "replica": REPLICA}


def mint_token(req):
    if req.principal.via != "api-key":
        raise Unauthorized("minting needs x-api-key")
    body = req.json(default={})
    actor = body.get("actor")
    if not isinstance(actor, str) or not actor.strip():
        raise HTTPError(400, "actor (a non-empty string) is required")
    if MULTI_TENANT:
        req.tenant = body.get("tenantId") or req.headers.get("x-tenant-id") or "default"
        if TENANTS.status(req.tenant) is None:
            raise HTTPError(404, "unknown tenant", tenantId=req.tenant)
        require_writable(req)
    token, exp = mint(actor, req.tenant, req.principal.key_fp)
    with DB.tx() as cur:
        audit(cur, req, "token.mint", actor)
    return 200, {"token": token, "tenantId": req.tenant, "actor": actor, "expiresAt": iso(exp)}


def template_doc(row):
    return {"key": row["key"], "tenantId": row["tenant_id"], "definition": row["definition"],
            "createdAt": iso(row["created_at"]), "updatedAt": iso(row["updated_at"]),
            "updatedBy": row["updated_by"]}


def list_templates(req):
    with DB.tx() as cur:
        cur.execute("SELECT key, tenant_id, created_at, updated_at, updated_by FROM templates "
                    "WHERE tenant_id = %s ORDER BY key", (req.tenant,))
        rows = cur.fetchall()
    return 200, unordered({"key": r["key"], "tenantId": r["tenant_id"], "updatedAt": iso(r["updated_at"]),
                           "updatedBy": r["updated_by"]} for r in rows)


def get_template(req, key):
    with DB.tx() as cur:
        cur.execute("SELECT * FROM templates WHERE tenant_id = %s AND key = %s", (req.tenant, key))
        row = cur.fetchone()
    if row is None:
        raise HTTPError(404, "template not found", key=key)
    return 200, template_doc(row)


def put_template(req, key):
    if not NAME_RE.match(key):
        raise HTTPError(400, "template keys are 1-128 of A-Z a-z 0-9 . _ - (not starting with . _ -)")
    require_writable(req)
    body = req.json()
    if not isinstance(body, dict):
        raise HTTPError(400, "a JSON object is required")
    definition = body["definition"] if isinstance(body.get("definition"), dict) else body
    with DB.tx() as cur:
        cur.execute("INSERT INTO templates (tenant_id, key, definition, updated_by) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (tenant_id, key) DO UPDATE SET definition = EXCLUDED.definition, "
                    "updated_at = now(), updated_by = EXCLUDED.updated_by "
                    "RETURNING *, (xmax = 0) AS created",
                    (req.tenant, key, json.dumps(definition), req.principal.actor))
        row = cur.fetchone()
        audit(cur, req, "template.put", key)
    return (201 if row["created"] else 200), template_doc(row)


def delete_template(req, key):
    require_writable(req)
    with DB.tx() as cur:
        cur.execute("DELETE FROM templates WHERE tenant_id = %s AND key = %s", (req.tenant, key))
        if cur.rowcount == 0:
            raise HTTPError(404, "template not found", key=key)
        audit(cur, req, "template.delete", key)
    return 204, None


def upload_asset(req):
    require_writable(req)
    files = [p for p in parse_multipart(req.body(), req.headers.get("content-type")) if p[0] == "file"]
    if not files:
        raise HTTPError(400, "multipart field 'file' is required")
    _, filename, ctype, data = files[0]
    filename = os.path.basename((filename or "").replace("\\", "/"))
    if not filename or filename in (".", "..") or len(filename) > 255 or "\x00" in filename:
        raise HTTPError(400, "the file part needs a filename")
    row = {"id": uuid.uuid4().hex, "filename": filename, "content_type": ctype, "size": len(data),
           "sha256": hashlib.sha256(data).hexdigest(), "data": data}
    if FAULT_ASSETS_LOCAL:
        row["created_at"] = datetime.datetime.now(datetime.timezone.utc)
        with LOCAL_LOCK:
            LOCAL_ASSETS[(req.tenant, filename)] = row
        with DB.tx() as cur:
            audit(cur, req, "asset.upload", filename)
    else:
        with DB.tx() as cur:
            cur.execute("INSERT INTO assets (id, tenant_id, filename, content_type, size, sha256, data, created_by) "
                        "VALUES (%(id)s, %(t)s, %(filename)s, %(content_type)s, %(size)s, %(sha256)s, %(data)s, %(by)s) "
                        "ON CONFLICT (tenant_id, filename) DO UPDATE SET id = EXCLUDED.id, "
                        "content_type = EXCLUDED.content_type, size = EXCLUDED.size, sha256 = EXCLUDED.sha256, "
                        "data = EXCLUDED.data, created_at = now(), created_by = EXCLUDED.created_by "
                        "RETURNING created_at",
                        dict(row, t=req.tenant, by=req.principal.actor, data=psycopg2.Binary(data)))
            row["created_at"] = cur.fetchone()["created_at"]
            audit(cur, req, "asset.upload", filename)
    return 201, asset_doc(row, req.tenant)


def list_assets(req):
    if FAULT_ASSETS_LOCAL:
        with LOCAL_LOCK:
            rows = [r for (t, _), r in sorted(LOCAL_ASSETS.items()) if t == req.tenant]
    else:
        with DB.tx() as cur:
            cur.execute("SELECT id, filename, content_type, size, sha256, created_at FROM assets "
                        "WHERE tenant_id = %s ORDER BY filename", (req.tenant,))
            rows = cur.fetchall()
    return 200, unordered(asset_doc(r, req.tenant) for r in rows)


def get_asset(req, name):
    row = find_asset(req.tenant, name)
    if row is None:
        raise HTTPError(404, "asset not found", asset=name)
    return 200, row["data"], row["content_type"], {} if STRICT else {"X-Asset-Sha256": row["sha256"]}


def delete_asset(req, name):
    require_writable(req)
    row = find_asset(req.tenant, name, with_data=False)
    if row is None:
        raise HTTPError(404, "asset not found", asset=name)
    if FAULT_ASSETS_LOCAL:
        with LOCAL_LOCK:
            LOCAL_ASSETS.pop((req.tenant, row["filename"]), None)
    with DB.tx() as cur:
        cur.execute("DELETE FROM assets WHERE tenant_id = %s AND id = %s", (req.tenant, row["id"]))
        audit(cur, req, "asset.delete", row["filename"])
    return 204, None


def render(req):
    body = req.json()
    key = body.get("template") if isinstance(body, dict) else None
    if not isinstance(key, str):
        raise HTTPError(400, "template (a template key) is required")
    data = body.get("data") or {}
    if not isinstance(data, dict):
        raise HTTPError(400, "data must be an object")
    with DB.tx() as cur:
        cur.execute("SELECT definition FROM templates WHERE tenant_id = %s AND key = %s", (req.tenant, key))
        row = cur.fetchone()
    if row is None:
        raise HTTPError(404, "template not found", key=key)
    definition = substitute(row["definition"], data)
    lines = ["Pulp Engine stand-in", "template: " + key, "tenant: " + req.tenant,
             "rendered by: " + REPLICA + " at " + iso(time.time())]
    lines += ["text: " + t for t in collect(definition, "text", [])]
    attachments = []
    for name in dict.fromkeys(collect(definition, "asset", [])):
        asset = find_asset(req.tenant, name)
        if asset is None:
            raise HTTPError(422, "asset not found", asset=name, template=key)
        attachments.append((asset["filename"], asset["data"]))
        lines += ["asset: " + asset["filename"] + " (" + str(asset["size"]) + " bytes)",
                  "sha256: " + asset["sha256"]]
    if STRICT:
        return 200, build_pdf_strict(collect(definition, "text", []), attachments), "application/pdf", {}
    return 200, build_pdf(lines, attachments), "application/pdf", {}


def schedule_doc(row):
    return {"id": row["id"], "tenantId": row["tenant_id"], "name": row["name"], "template": row["template_key"],
            "cron": row["cron"], "createdAt": iso(row["created_at"]), "createdBy": row["created_by"]}


def create_schedule(req):
    require_writable(req)
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("template"), str) or not isinstance(body.get("cron"), str):
        raise HTTPError(400, "template and cron (strings) are required")
    try:
        Cron(body["cron"])
    except ValueError as e:
        raise HTTPError(422, "invalid cron", reason=str(e)) from None
    with DB.tx() as cur:
        cur.execute("SELECT 1 FROM templates WHERE tenant_id = %s AND key = %s", (req.tenant, body["template"]))
        if cur.fetchone() is None:
            raise HTTPError(404, "template not found", key=body["template"])
        cur.execute("INSERT INTO schedules (id, tenant_id, name, template_key, cron, created_by) "
                    "VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
                    (uuid.uuid4().hex, req.tenant, body.get("name"), body["template"], body["cron"],
                     req.principal.actor))
        row = cur.fetchone()
        audit(cur, req, "schedule.create", row["id"])
    return 201, schedule_doc(row)


def list_schedules(req):
    with DB.tx() as cur:
        cur.execute("SELECT * FROM schedules WHERE tenant_id = %s ORDER BY created_at", (req.tenant,))
        return 200, unordered(schedule_doc(r) for r in cur.fetchall())


def get_schedule(req, sid):
    with DB.tx() as cur:
        cur.execute("SELECT * FROM schedules WHERE tenant_id = %s AND id = %s", (req.tenant, sid))
        row = cur.fetchone()
    if row is None:
        raise HTTPError(404, "schedule not found", id=sid)
    return 200, schedule_doc(row)


def delete_schedule(req, sid):
    require_writable(req)
    with DB.tx() as cur:
        cur.execute("DELETE FROM schedules WHERE tenant_id = %s AND id = %s", (req.tenant, sid))
        if cur.rowcount == 0:
            raise HTTPError(404, "schedule not found", id=sid)
        audit(cur, req, "schedule.delete", sid)
    return 204, None


def executions(req, sid):
    with DB.tx() as cur:
        cur.execute("SELECT 1 FROM schedules WHERE tenant_id = %s AND id = %s", (req.tenant, sid))
        if cur.fetchone() is None:
            raise HTTPError(404, "schedule not found", id=sid)
        cur.execute("SELECT fire_time, replica, status, recorded_at FROM schedule_executions "
                    "WHERE schedule_id = %s ORDER BY fire_time, id", (sid,))
        rows = cur.fetchall()
    return 200, [{"fireTime": iso(r["fire_time"]), "replica": r["replica"], "status": r["status"],
                  "recordedAt": iso(r["recorded_at"])} for r in rows]


def get_audit(req):
    require_admin(req)
    try:
        limit = max(1, min(1000, int(req.query.get("limit", "50"))))
    except ValueError:
        raise HTTPError(400, "limit must be a number") from None
    where, args = [], []
    for param, column in (("actor", "actor"), ("action", "action"), ("tenant", "tenant_id")):
        if param in req.query:
            where.append(column + " = %s")
            args.append(req.query[param])
    sql = "SELECT * FROM audit_log" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT %s"
    with DB.tx() as cur:
        cur.execute(sql, args + [limit])
        rows = cur.fetchall()
    return 200, [{"id": r["id"], "at": iso(r["at"]), "tenantId": r["tenant_id"], "actor": r["actor"],
                  "action": r["action"], "target": r["target"], "replica": r["replica"], "via": r["via"]}
                 for r in rows]


def tenant_doc(row):
    return {"id": row["id"], "status": row["status"], "createdAt": iso(row["created_at"]),
            "archivedAt": iso(row["archived_at"]) if row["archived_at"] else None}


def create_tenant(req):
    require_multi_tenant()
    require_admin(req)
    body = req.json()
    tid = body.get("id") if isinstance(body, dict) else None
    if not isinstance(tid, str) or not NAME_RE.match(tid):
        raise HTTPError(400, "id (1-128 of A-Z a-z 0-9 . _ -) is required")
    with DB.tx() as cur:
        cur.execute("INSERT INTO tenants (id) VALUES (%s) ON CONFLICT DO NOTHING RETURNING *", (tid,))
        row = cur.fetchone()
        if row is None:
            raise HTTPError(409, "tenant exists", tenantId=tid)
        req.tenant = tid
        audit(cur, req, "tenant.create", tid)
    TENANTS.put(tid, "active")
    return 201, tenant_doc(row)


def list_tenants(req):
    require_multi_tenant()
    require_admin(req)
    with DB.tx() as cur:
        cur.execute("SELECT * FROM tenants ORDER BY id")
        return 200, unordered(tenant_doc(r) for r in cur.fetchall())


def get_tenant(req, tid):
    require_multi_tenant()
    require_admin(req)
    with DB.tx() as cur:
        cur.execute("SELECT * FROM tenants WHERE id = %s", (tid,))
        row = cur.fetchone()
    if row is None:
        raise HTTPError(404, "unknown tenant", tenantId=tid)
    return 200, tenant_doc(row)


def archive_tenant(req, tid):
    require_multi_tenant()
    require_admin(req)
    if tid == "default":
        raise HTTPError(400, "the default tenant cannot be archived")
    with DB.tx() as cur:
        cur.execute("UPDATE tenants SET status = 'archived', archived_at = coalesce(archived_at, now()) "
                    "WHERE id = %s RETURNING *", (tid,))
        row = cur.fetchone()
        if row is None:
            raise HTTPError(404, "unknown tenant", tenantId=tid)
        req.tenant = tid
        audit(cur, req, "tenant.archive", tid)
    TENANTS.put(tid, "archived")          # this replica knows at once; others within their TTL
    return 200, tenant_doc(row)


def delete_tenant(req, tid):
    require_multi_tenant()
    require_admin(req)
    if tid == "default":
        raise HTTPError(400, "the default tenant cannot be deleted")
    with DB.tx() as cur:
        cur.execute("DELETE FROM tenants WHERE id = %s", (tid,))
        if cur.rowcount == 0:
            raise HTTPError(404, "unknown tenant", tenantId=tid)
        req.tenant = tid
        audit(cur, req, "tenant.delete", tid)
    TENANTS.drop(tid)
    if FAULT_ASSETS_LOCAL:
        with LOCAL_LOCK:
            for k in [k for k in LOCAL_ASSETS if k[0] == tid]:
                del LOCAL_ASSETS[k]
    return 204, None


# (method, path pattern, handler, auth): auth None = open, "auth" = any
# credential and a tenant, "admin-route" = any credential, the handler
# checks the role (tenant routes name their tenant in the path).
ROUTES = [
    ("GET", r"/health", health, None),
    ("GET", r"/health/ready", ready, None),
    ("POST", r"/auth/editor-token", mint_token, "auth"),
    ("GET", r"/templates", list_templates, "auth"),
    ("GET", r"/templates/(?P<key>[^/]+)", get_template, "auth"),
    ("PUT", r"/templates/(?P<key>[^/]+)", put_template, "auth"),
    ("DELETE", r"/templates/(?P<key>[^/]+)", delete_template, "auth"),
    ("POST", r"/assets", upload_asset, "auth"),
    ("GET", r"/assets", list_assets, "auth"),
    ("GET", r"/assets/(?P<name>[^/]+)", get_asset, "auth"),
    ("DELETE", r"/assets/(?P<name>[^/]+)", delete_asset, "auth"),
    ("POST", r"/render", render, "auth"),
    ("POST", r"/schedules", create_schedule, "auth"),
    ("GET", r"/schedules", list_schedules, "auth"),
    ("GET", r"/schedules/(?P<sid>[^/]+)", get_schedule, "auth"),
    ("DELETE", r"/schedules/(?P<sid>[^/]+)", delete_schedule, "auth"),
    ("GET", r"/schedules/(?P<sid>[^/]+)/executions", executions, "auth"),
    ("GET", r"/audit", get_audit, "auth"),
    ("POST", r"/tenants", create_tenant, "admin-route"),
    ("GET", r"/tenants", list_tenants, "admin-route"),
    ("GET", r"/tenants/(?P<tid>[^/]+)", get_tenant, "admin-route"),
    ("POST", r"/tenants/(?P<tid>[^/]+)/archive", archive_tenant, "admin-route"),
    ("DELETE", r"/tenants/(?P<tid>[^/]+)", delete_tenant, "admin-route"),
]
ROUTES = [(m, re.compile(p + r"/?\Z"), fn, auth) for m, p, fn, auth in ROUTES]


# ---------------------------------------------------------------- HTTP

class Server(ThreadingHTTPServer):
    daemon_threads = True          # idle keep-alive connections do not hold up an exit
    request_queue_size = 128
    stopping = False
    inflight = 0                   # requests being answered + connections not yet read from
    inflight_lock = threading.Lock()

    def process_request(self, request, client_address):
        Server.count(+1)           # a new connection counts until its first request is answered
        super().process_request(request, client_address)

    @staticmethod
    def count(n):
        with Server.inflight_lock:
            Server.inflight += n


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffered: a response leaves in one write when the handler returns, so a
    # replica killed mid-request (check 4's SIGKILL) never puts half of one on
    # the wire, which the LB could not retry on the other replica. Unbuffered,
    # the headers went out first and a kill between the two writes gave the
    # client a truncated body.
    wbufsize = 1 << 16
    server_version = "pulp-standin"
    sys_version = ""
    timeout = 60                   # an idle keep-alive connection is closed after this

    def setup(self):
        super().setup()
        self.counted = True        # Server.process_request counted this connection

    def finish(self):
        if self.counted:           # closed before any request
            self.counted = False
            Server.count(-1)
        super().finish()

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, fmt, *args):   # our own JSON lines instead
        pass

    # request helpers used by the routes
    def body(self):
        if self._body is None:
            if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
                chunks, total = [], 0
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    total += size
                    if total > MAX_BODY:
                        raise HTTPError(413, "request body too large")
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self._body = b"".join(chunks)
            else:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY:
                    self.close_connection = True
                    raise HTTPError(413, "request body too large")
                self._body = self.rfile.read(length) if length else b""
        return self._body

    def json(self, default=None):
        raw = self.body()
        if not raw.strip():
            if default is not None:
                return default
            raise HTTPError(400, "a JSON body is required")
        try:
            return json.loads(raw)
        except ValueError:
            raise HTTPError(400, "the body is not JSON") from None

    def dispatch(self):
        started = time.monotonic()
        if self.counted:
            self.counted = False
        else:
            Server.count(+1)
        self._body, self.principal, self.tenant = None, None, "default"
        url = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        status, reason = 500, None
        try:
            try:
                status, payload, ctype, extra = self.route(url.path)
            except Unauthorized as e:
                status, payload, ctype, extra, reason = 401, e.body, None, {}, e.reason
            except HTTPError as e:
                status, payload, ctype, extra = e.status, e.body, None, {}
            except Unavailable as e:
                status, payload, ctype, extra = 503, {"error": "database unavailable", "reason": str(e)}, None, {}
                reason = str(e)
            except Exception:
                log("error", error=traceback.format_exc(), path=url.path)
                status, payload, ctype, extra = 500, {"error": "internal error"}, None, {}
            if status != 413 and self._body is None and self.command in ("POST", "PUT", "PATCH"):
                try:
                    self.body()          # drain, so the connection can be reused
                except Exception:
                    self.close_connection = True
            self.respond(status, payload, ctype, extra)
        finally:
            Server.count(-1)
            fields = {"statusCode": status, "method": self.command, "path": url.path,
                      "ms": round((time.monotonic() - started) * 1000, 1)}
            if self.principal:
                fields["actor"] = self.principal.actor
            if status == 401:
                log("Auth failure", **fields, reason=reason)
            elif reason:
                log("request", **fields, reason=reason)
            else:
                log("request", **fields)

    def route(self, path):
        path = path.rstrip("/") or "/"
        if FAULT_READY_BEFORE_SERVING and starting_up() and not path.startswith("/health"):
            raise HTTPError(503, "warming up")
        allowed = False
        for method, pattern, fn, auth in ROUTES:
            m = pattern.match(path)
            if not m:
                continue
            if method != self.command:
                allowed = True
                continue
            args = {k: unquote(v) for k, v in m.groupdict().items()}
            if auth:
                self.principal = authenticate(self)
                if auth == "auth" and fn is not mint_token:
                    self.tenant = resolve_tenant(self)
            result = fn(self, **args)
            status, payload = result[0], result[1]
            return status, payload, (result[2] if len(result) > 2 else None), (result[3] if len(result) > 3 else {})
        if allowed:
            raise HTTPError(405, "method not allowed")
        raise HTTPError(404, "not found")

    def respond(self, status, payload, ctype, extra):
        if status == 204:
            data = b""
        elif isinstance(payload, (bytes, bytearray)):
            data = bytes(payload)
        else:
            data = json.dumps(payload, separators=(",", ":")).encode()
            ctype = "application/json"
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if not STRICT:
            self.send_header("X-Served-By", REPLICA)
        for k, v in extra.items():
            self.send_header(k, v)
        if Server.stopping:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if data:
            self.wfile.write(data)


def accept_queued(server):
    while True:
        try:
            conn, addr = server.socket.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            log("accept failed", error=str(e))
            return
        conn.setblocking(True)
        server.process_request(conn, addr)


def main():
    if BIND not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"refusing to listen on {BIND}: loopback only")
    if not os.environ.get("EDITOR_TOKEN_SECRET") or not (KEYS["admin"] or KEYS["editor"]):
        sys.exit("EDITOR_TOKEN_SECRET and API_KEY_ADMIN or API_KEY_EDITOR must be set")
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))     # until the server runs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    create_schema()
    threading.Thread(target=DB.fill, name="pool-fill", daemon=True).start()
    scheduler = Scheduler()
    scheduler.start()
    server = Server((BIND, PORT), Handler)
    faults = [n for n in ("FAULT_ASSETS_LOCAL", "FAULT_SCHEDULE_EVERY_REPLICA", "FAULT_TOKEN_SECRET_PER_REPLICA",
                          "FAULT_TENANT_CACHE_FOREVER", "FAULT_PREVIOUS_KEY_AS_API_KEY",
                          "FAULT_READY_BEFORE_SERVING", "FAULT_PREVIOUS_KEYS_LATE", "FAULT_READY_IGNORES_DB",
                          "FAULT_DB_NO_RECONNECT", "FAULT_FIRE_TIME_LOCAL_CLOCK",
                          "FAULT_SHUTDOWN_DROPS_INFLIGHT") if flag(n)]
    log("listening", address=f"{BIND}:{PORT}", version=APP_VERSION, multiTenant=MULTI_TENANT, strict=STRICT,
        tenantCacheTtlMs=int(TENANT_TTL * 1000), previousKeys=[r for r in PREVIOUS if PREVIOUS[r]], faults=faults)

    def stop(signum, frame):
        if FAULT_SHUTDOWN_DROPS_INFLIGHT:
            log("stopping at once", inflight=Server.inflight)
            os._exit(0)
        Server.stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # Our own accept loop, for a clean stop: once told to stop, accept what
    # the kernel already queued, then close the listener at once, so that no
    # queued connection is reset (new ones are refused, and the LB retries
    # them on the other replica, whatever their method); then let the
    # requests in flight finish.
    listener = server.socket
    listener.setblocking(False)
    with selectors.DefaultSelector() as sel:
        sel.register(listener, selectors.EVENT_READ)
        while not Server.stopping:
            if sel.select(0.05):
                accept_queued(server)
    accept_queued(server)
    listener.close()
    end = time.monotonic() + 10
    while Server.inflight > 0 and time.monotonic() < end:
        pause(0.02)
    scheduler.stop.set()
    log("stopped", inflight=Server.inflight)


if __name__ == "__main__":
    main()
