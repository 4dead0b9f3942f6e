"""The sql module against a real, throwaway PostgreSQL 15 cluster.

Each behaviour runs as a Lua script through `halo exec` (or as a check
through `halo run` where the check's deadline matters) and prints
`RESULT <json.encode(...)>`; the test reads that line and, where the server
side matters (was a query really cancelled there?), asks the cluster itself
through psql over its Unix socket.

The main cluster (tests/engine/pgcluster.py) asks for a password over TCP
(scram-sha-256), so every connection here goes through password auth and
the password test can look for the password in everything halo printed.
The server-stopped-mid-query test has a cluster of its own.

Tests marked expectedFailure reproduce engine bugs (each says "ENGINE BUG")
and assert the correct behaviour.

Run: cd tests/engine && HALO_BIN=../../build/halo HALO_SOURCE=../.. \
     python3 -m unittest -v test_sql
"""
import json
import os
import secrets
import socket
import subprocess
import tempfile
import textwrap
import time
import unittest

from halotest import HALO, HaloTestCase, Result, halo_env, run, start
from pgcluster import PgCluster, closed_port

RESULT = "RESULT "
PRELUDE = 'local function emit(value) print("RESULT " .. json.encode(value)) end\n'

# Active (not idle) backends whose query text carries a marker, other than
# the one asking.
ACTIVE_WITH_MARKER = ("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                      "AND query LIKE '%{marker}%' AND pid <> pg_backend_pid()")


def result_of(res):
    lines = [l for l in res.out.splitlines() if l.startswith(RESULT)]
    if not lines:
        raise AssertionError(f"no RESULT line in the output: {res!r}")
    return json.loads(lines[-1][len(RESULT):])


# halo's peak RSS while a huge result is refused: the rows must not pile up.
RSS_LIMIT = 200 << 20


_shared = {}


def shared_cluster():
    """The password-protected cluster the test classes share (one initdb
    per module run); stopped and removed by the module cleanup."""
    if "pg" not in _shared:
        password = "pgPw" + secrets.token_hex(10)
        _shared["pg"] = PgCluster(password=password)
        unittest.addModuleCleanup(_shared.pop, "pg")
        unittest.addModuleCleanup(_shared["pg"].stop)
    return _shared["pg"]


class SqlCase(HaloTestCase):
    """Tests against the shared password-protected cluster."""

    @classmethod
    def setUpClass(cls):
        if not os.access(HALO, os.X_OK):
            raise unittest.SkipTest(f"no halo binary at {HALO} (set HALO_BIN)")
        cls.pg = shared_cluster()
        cls.password = cls.pg.password
        cls.url = cls.pg.url()

    def script(self, code, name="script.lua"):
        path = self.tmp_path(name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(PRELUDE + textwrap.dedent(code))
        return path

    def exec_lua(self, code, *args, halo_args=(), env=None, timeout=60):
        """halo exec [halo_args] SCRIPT URL [args]; returns the Result."""
        return run(["exec", *halo_args, self.script(code), self.url, *args], timeout=timeout, env=env)

    def lua_result(self, code, *args, **kw):
        res = self.exec_lua(code, *args, **kw)
        self.assertEqual(res.rc, 0, repr(res))
        return result_of(res)

    def active(self, marker, pg=None):
        return int((pg or self.pg).psql(ACTIVE_WITH_MARKER.format(marker=marker)).strip())

    def wait_active(self, marker, want, timeout=5.0, pg=None):
        """Polls pg_stat_activity until `want` queries with the marker run;
        returns the last count."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.active(marker, pg)
            if n == want or time.monotonic() > deadline:
                return n
            time.sleep(0.05)


class TypesAndParametersTest(SqlCase):

    def test_type_round_trips(self):
        r = self.lua_result(r"""
            local db = assert(sql.connect(arg[1]))
            assert(db:exec("SET TIME ZONE 'UTC'"))
            local binaryish = {}
            for b = 1, 31 do binaryish[#binaryish + 1] = string.char(b) end
            binaryish = table.concat(binaryish) .. string.char(127) .. "quote\" back\\slash '"
            local rows, cols = assert(db:query([[
              SELECT 1::int2 AS i2, '-2147483648'::int4 AS i4, 2147483648::int8 AS i8,
                     1099511627776::int8 AS i8_2to40, '-3000000000'::int8 AS i8_neg,
                     9223372036854775807::int8 AS i8_max, '-9223372036854775808'::int8 AS i8_min,
                     1.5::float8 AS f8, 0.1::float8 AS f8_tenth, 0.5::float4 AS f4,
                     'NaN'::float8 AS f_nan, 'Infinity'::float8 AS f_inf,
                     true AS t, false AS f, NULL::int AS n, NULL::text AS n_text,
                     1.10::numeric AS num, 12345678901234567890.123::numeric AS num_big,
                     '2024-01-02 03:04:05.678+00'::timestamptz AS ts, '2024-01-02'::date AS d,
                     'héllo ☃ 日本 🎉'::text AS u, $1::text AS bin, '{"a": [1, 2]}'::jsonb AS jb]], binaryish))
            local row = rows[1]
            local types, nonnil = {}, {}
            for _, c in ipairs(cols) do
              types[c] = math.type(row[c]) or type(row[c])
              if row[c] == json.null then types[c] = "json.null" end
            end
            emit{
              n_rows = #rows, cols = cols, types = types,
              i2 = row.i2, i4 = row.i4, i8 = row.i8, i8_2to40 = row.i8_2to40, i8_neg = row.i8_neg,
              i8_max = tostring(row.i8_max), i8_min = tostring(row.i8_min),
              f8 = row.f8, f8_tenth_exact = row.f8_tenth == 0.1, f4 = row.f4,
              f_nan = row.f_nan ~= row.f_nan, f_inf = row.f_inf == math.huge,
              t = row.t, f = row.f, n = row.n, n_is_null = row.n == json.null, n_text = row.n_text,
              num = row.num, num_big = row.num_big, ts = row.ts, d = row.d, u = row.u,
              bin_same = row.bin == binaryish, bin_len = #row.bin, bin = row.bin, jb = row.jb,
            }
        """)
        self.assertEqual(r["n_rows"], 1)
        self.assertEqual(r["cols"], ["i2", "i4", "i8", "i8_2to40", "i8_neg", "i8_max", "i8_min", "f8", "f8_tenth",
                                     "f4", "f_nan", "f_inf", "t", "f", "n", "n_text", "num", "num_big", "ts", "d",
                                     "u", "bin", "jb"])
        types = r["types"]
        for c in ("i2", "i4", "i8", "i8_2to40", "i8_neg", "i8_max", "i8_min"):
            self.assertEqual(types[c], "integer", c)
        for c in ("f8", "f8_tenth", "f4", "f_nan", "f_inf"):
            self.assertEqual(types[c], "float", c)
        for c in ("t", "f"):
            self.assertEqual(types[c], "boolean", c)
        for c in ("n", "n_text"):
            self.assertEqual(types[c], "json.null", c)
        for c in ("num", "num_big", "ts", "d", "u", "bin", "jb"):
            self.assertEqual(types[c], "string", c)
        self.assertEqual((r["i2"], r["i4"], r["i8"], r["i8_2to40"], r["i8_neg"]),
                         (1, -2147483648, 2147483648, 1099511627776, -3000000000))
        self.assertEqual(r["i8_max"], "9223372036854775807")
        self.assertEqual(r["i8_min"], "-9223372036854775808")
        self.assertEqual(r["f8"], 1.5)
        self.assertTrue(r["f8_tenth_exact"])
        self.assertEqual(r["f4"], 0.5)
        self.assertTrue(r["f_nan"], "NaN::float8 is not a NaN number")
        self.assertTrue(r["f_inf"], "Infinity::float8 is not math.huge")
        self.assertIs(r["t"], True)
        self.assertIs(r["f"], False)
        self.assertIsNone(r["n"])          # json.null encodes as null
        self.assertTrue(r["n_is_null"])
        self.assertIsNone(r["n_text"])
        self.assertEqual(r["num"], "1.10")  # exact, trailing zero kept
        self.assertEqual(r["num_big"], "12345678901234567890.123")
        self.assertEqual(r["ts"], "2024-01-02 03:04:05.678+00")
        self.assertEqual(r["d"], "2024-01-02")
        self.assertEqual(r["u"], "héllo ☃ 日本 🎉")
        self.assertTrue(r["bin_same"], r["bin"])
        self.assertEqual(r["bin_len"], 31 + 1 + len("quote\" back\\slash '"))
        self.assertEqual(r["bin"], "".join(chr(b) for b in range(1, 32)) + "\x7f" + "quote\" back\\slash '")
        self.assertEqual(json.loads(r["jb"]), {"a": [1, 2]})

    def test_int8_beyond_2_to_53_survives_json_encode(self):
        """Regression test (fixed engine bug): json.encode writes integers with cjson's default
        14-significant-digit number format, so an int8 read over SQL (or any
        integer of 15+ digits) is printed rounded: 9007199254740993 becomes
        9.007199254741e+15, 123456789012345 becomes 1.2345678901234e+14 — in
        `halo eval` output, evidence and the JSON report alike. The value in
        Lua is exact (see test_type_round_trips); only the encoding loses it.
        Repro: halo eval 'json.encode({9007199254740993, 123456789012345})'"""
        r = self.lua_result("""
            local db = assert(sql.connect(arg[1]))
            local rows = assert(db:query("SELECT 9007199254740993::int8 AS big, 123456789012345::int8 AS fifteen"))
            print("RESULT " .. json.encode(rows[1]))
        """)
        self.assertEqual(r, {"big": 9007199254740993, "fifteen": 123456789012345})

    def test_parameters(self):
        r = self.lua_result("""
            local db = assert(sql.connect(arg[1]))
            local rows = assert(db:query([[
              SELECT $1::int IS NULL AS nil_is_null, $2::text IS NULL AS jnull_is_null,
                     $3::bool AS t, $4::bool AS f, pg_typeof($3::bool)::text AS t_type,
                     $5::int + 1 AS int_plus, $6::float8 * 2 AS float_times, $7::text || '!' AS text_bang,
                     $8::text AS numeric_text, $9::int IS NULL AS trailing_nil]],
              nil, json.null, true, false, 41, 2.25, "hi", 12.5, nil))
            emit(rows[1])
        """)
        self.assertEqual(r, {"nil_is_null": True, "jnull_is_null": True, "t": True, "f": False, "t_type": "boolean",
                             "int_plus": 42, "float_times": 4.5, "text_bang": "hi!", "numeric_text": "12.5",
                             "trailing_nil": True})

    def test_bad_parameter_type_raises(self):
        res = self.exec_lua("""
            local db = assert(sql.connect(arg[1]))
            db:query("SELECT $1::text", {1, 2})
            emit("went on")
        """)
        self.assertEqual(res.rc, 3, repr(res))
        self.assertIn("bad argument #3 to 'query'", res.err)
        self.assertNotIn(RESULT, res.out)

    def test_injection_through_a_parameter_stays_data(self):
        table = "victims_" + secrets.token_hex(4)
        evil = f"x'); DROP TABLE {table}; --"
        r = self.lua_result(f"""
            local db = assert(sql.connect(arg[1]))
            assert(db:exec("CREATE TABLE {table} (name text)"))
            local evil = arg[2]
            local n1 = assert(db:exec("INSERT INTO {table} (name) VALUES ($1)", evil))
            local echoed = assert(db:query("SELECT $1::text AS v", "1; DROP TABLE {table}"))[1].v
            local found = assert(db:query("SELECT name FROM {table} WHERE name = $1", evil))
            local none = assert(db:query("SELECT name FROM {table} WHERE name = $1", "' OR '1'='1"))
            local count = assert(db:query("SELECT count(*) AS n FROM {table}"))[1].n
            emit{{ inserted = n1, echoed = echoed, found = #found, found_name = found[1] and found[1].name,
                   or_trick = #none, count = count }}
        """, evil)
        self.assertEqual(r, {"inserted": 1, "echoed": f"1; DROP TABLE {table}", "found": 1, "found_name": evil,
                             "or_trick": 0, "count": 1})
        # the table is still there, with the attack stored as a plain value
        self.assertEqual(self.pg.psql(f"SELECT name FROM {table}").strip(), evil)
        self.pg.psql(f"DROP TABLE {table}")

    def test_exec_counts(self):
        table = "counts_" + secrets.token_hex(4)
        r = self.lua_result(f"""
            local db = assert(sql.connect(arg[1]))
            local out = {{}}
            out.create = assert(db:exec("CREATE TEMP TABLE {table} (a int, b text)"))
            out.insert = assert(db:exec("INSERT INTO {table} SELECT g, 'x' FROM generate_series(1, 7) g"))
            out.update = assert(db:exec("UPDATE {table} SET b = $2 WHERE a > $1", 4, "y"))
            out.update_none = assert(db:exec("UPDATE {table} SET b = 'z' WHERE a > 100"))
            out.select = assert(db:exec("SELECT * FROM {table} WHERE b = 'y'"))
            out.delete = assert(db:exec("DELETE FROM {table} WHERE a <= $1", 2))
            out.left = assert(db:query("SELECT count(*) AS n FROM {table}"))[1].n
            emit(out)
        """)
        self.assertEqual(r, {"create": 0, "insert": 7, "update": 3, "update_none": 0, "select": 3, "delete": 2,
                             "left": 5})

    def test_sql_error_has_sqlstate_and_names_the_relation(self):
        r = self.lua_result("""
            local db = assert(sql.connect(arg[1]))
            local rows, err = db:query("SELECT * FROM no_such_relation_xyz")
            local _, syntax = db:query("SELEC 1")
            local _, exec_err = db:exec("INSERT INTO no_such_relation_xyz VALUES (1)")
            local after = assert(db:query("SELECT 7 AS seven"))[1].seven  -- still usable
            emit{ rows_nil = rows == nil, kind = err.kind, sqlstate = err.sqlstate, message = err.message,
                  str = tostring(err), syntax_state = syntax.sqlstate, syntax_kind = syntax.kind,
                  exec_state = exec_err.sqlstate, after = after }
        """)
        self.assertTrue(r["rows_nil"])
        self.assertEqual(r["kind"], "sql")
        self.assertEqual(r["sqlstate"], "42P01")
        self.assertIn('relation "no_such_relation_xyz" does not exist', r["message"])
        self.assertIn(f"127.0.0.1:{self.pg.port}", r["message"])
        self.assertEqual(r["str"], r["message"])
        self.assertEqual((r["syntax_kind"], r["syntax_state"]), ("sql", "42601"))
        self.assertEqual(r["exec_state"], "42P01")
        self.assertEqual(r["after"], 7)

    def test_close_is_idempotent_and_final(self):
        r = self.lua_result("""
            local db = assert(sql.connect(arg[1]))
            db:close(); db:close()
            local rows, err = db:query("SELECT 1")
            local scoped
            do
              local c <close> = assert(sql.connect(arg[1]))
              scoped = c
              assert(c:query("SELECT 1"))
            end
            local _, err2 = scoped:query("SELECT 1")
            emit{ rows_nil = rows == nil, kind = err.kind, message = err.message, str = tostring(db),
                  scoped_kind = err2.kind, version = assert(sql.connect(arg[1])):server_version() }
        """)
        self.assertTrue(r["rows_nil"])
        self.assertEqual(r["kind"], "closed")
        self.assertIn("closed", r["message"])
        self.assertIn("(closed)", r["str"])
        self.assertEqual(r["scoped_kind"], "closed")
        self.assertRegex(r["version"], r"^15\.\d+$")


class CancelTest(SqlCase):

    def test_check_timeout_cancels_the_query_on_the_server(self):
        marker = "halo-deadline-" + secrets.token_hex(4)
        checks = self.checks_dir({"01-sleepy.lua": textwrap.dedent(f"""
            local sql = require "sql"
            return {{
              title = "pg_sleep past the deadline", timeout = 2,
              run = function(t, stack)
                local db = assert(sql.connect(stack.db))
                t:log("connected")
                local rows, err = db:query("SELECT pg_sleep(30) /* {marker} */")
                t:log("query returned " .. tostring(rows) .. " " .. tostring(err))
              end,
            }}
        """)})
        stack = self.tmp_path("stack.lua")
        with open(stack, "w") as f:
            f.write(f"return {{ db = {json.dumps(self.url)} }}\n")
        halo = start(["run", "--checks", checks, "--stack", stack, "--format", "json"])
        try:
            # the query really runs on the server before the deadline ...
            self.assertEqual(self.wait_active(marker, 1, timeout=1.8), 1, "the pg_sleep never showed up as active")
            res = halo.finish(timeout=30)
        finally:
            halo.kill()
        rep = json.loads(res.out)
        c = rep["checks"][0]
        self.assertEqual(c["status"], "ERROR", c)
        self.assertRegex(c["message"], r"timeout")
        self.assertNotIn("query returned", " ".join(l["text"] for l in c["logs"]))
        # ... returns at the deadline, not after the sleep or the 10 s grace ...
        self.assertLess(res.seconds, 2 + 3, f"halo took {res.seconds:.2f} s for a 2 s check")
        # ... and the server is no longer sleeping: PQcancel reached it
        # (closing the socket alone would leave pg_sleep running for 30 s).
        self.assertEqual(self.wait_active(marker, 0, timeout=3), 0,
                         "pg_sleep is still running on the server after the check's deadline")

    def test_query_timeout_option(self):
        """conn:query{ sql =, params =, timeout = }: the short form's result
        within the timeout; past it nil, err of kind timeout at once, the
        query cancelled on the server and the connection closed."""
        marker = "halo-qtimeout-" + secrets.token_hex(4)
        t0 = time.monotonic()
        r = self.lua_result(f"""
            local db = assert(sql.connect(arg[1]))
            local rows = assert(db:query{{ sql = "SELECT $1::int + $2::int AS n", params = {{ 40, 2 }}, timeout = 5 }})
            local count = assert(db:exec{{ sql = "SELECT 1" }})
            local t0 = time.mono()
            local none, err = db:query{{ sql = "SELECT pg_sleep(30) /* {marker} */", timeout = 0.3 }}
            local waited = time.mono() - t0
            local after, after_err = db:query("SELECT 1")
            emit({{ n = rows[1].n, count = count, none = none == nil, kind = err.kind, message = err.message,
                    waited = waited, after = after == nil, after_kind = after_err.kind }})
        """)
        self.assertEqual((r["n"], r["count"], r["none"], r["kind"], r["after"], r["after_kind"]),
                         (42, 1, True, "timeout", True, "closed"), r)
        self.assertRegex(r["message"], r"no result within 0\.3 s; cancelled on the server")
        self.assertLess(r["waited"], 2.0, r)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(self.wait_active(marker, 0, timeout=3), 0, "pg_sleep still runs after the query timed out")

    def test_query_option_table_misuse_raises(self):
        for call, pattern in (('db:query{ sql = "SELECT 1", timout = 1 }', r"unknown option 'timout'"),
                              ('db:query{ params = { 1 } }', r"query needs sql"),
                              ('db:query{ sql = "SELECT 1", timeout = -1 }', r"timeout must be a positive number"),
                              ('db:exec({ sql = "SELECT 1" }, 2)', r"no arguments after the option table"),
                              ('db:query{ sql = "SELECT 1", params = 3 }', r"params must be a list")):
            with self.subTest(call=call):
                res = self.exec_lua(f"""
                    local db = assert(sql.connect(arg[1]))
                    local _ = {call}
                    emit("went on")
                """)
                self.assertEqual(res.rc, 3, repr(res))
                self.assertRegex(res.err, pattern)
                self.assertNotIn(RESULT, res.out)

    def test_task_cancel_mid_query(self):
        marker = "halo-taskcancel-" + secrets.token_hex(4)
        r = self.lua_result(f"""
            local db = assert(sql.connect(arg[1]))
            local mon = assert(sql.connect(arg[1]))
            local q = "{ACTIVE_WITH_MARKER.format(marker=marker)}"
            local bg = task.spawn(function() return db:query("SELECT pg_sleep(30) /* {marker} */") end)
            local before
            for _ = 1, 100 do
              before = mon:query(q)[1].count
              if before == 1 then break end
              time.sleep(0.02)
            end
            local t0 = time.mono()
            local cancelled = bg:cancel()
            local cancel_took = time.mono() - t0
            local after
            for _ = 1, 100 do
              after = mon:query(q)[1].count
              if after == 0 then break end
              time.sleep(0.03)
            end
            local joined, join_err = pcall(bg.join, bg)
            local rows, err = db:query("SELECT 1")
            local rows2, err2 = db:exec("SELECT 1")
            emit{{ before = before, cancelled = cancelled, status = bg:status(), cancel_took = cancel_took,
                   after = after, joined = joined, join_err = tostring(join_err), rows_nil = rows == nil,
                   kind = err.kind, message = err.message, kind2 = err2.kind,
                   mon_still_fine = mon:query("SELECT 1 AS one")[1].one }}
        """)
        self.assertEqual(r["before"], 1, "the query was not running before the cancel")
        self.assertIs(r["cancelled"], True)
        self.assertEqual(r["status"], "cancelled")
        self.assertLess(r["cancel_took"], 1.0)
        self.assertEqual(r["after"], 0, "pg_sleep still runs on the server after task:cancel()")
        self.assertFalse(r["joined"])
        self.assertIn("cancelled", r["join_err"])
        self.assertTrue(r["rows_nil"])
        self.assertEqual(r["kind"], "closed")
        self.assertIn("cancelled", r["message"])
        self.assertEqual(r["kind2"], "closed")
        self.assertEqual(r["mon_still_fine"], 1)
        self.assertEqual(self.active(marker), 0)


class ServerStoppedTest(SqlCase):
    """The server dies (pg_ctl stop -m immediate) while a query runs."""

    @classmethod
    def setUpClass(cls):
        if not os.access(HALO, os.X_OK):
            raise unittest.SkipTest(f"no halo binary at {HALO} (set HALO_BIN)")
        cls.password = None
        cls.pg = PgCluster()  # its own: this test kills it
        cls.addClassCleanup(cls.pg.stop)
        cls.url = cls.pg.url()

    def test_server_stopped_mid_query(self):
        marker = "halo-stopme-" + secrets.token_hex(4)
        path = self.script(f"""
            local db = assert(sql.connect(arg[1]))
            local rows, err = db:query("SELECT pg_sleep(30) /* {marker} */")
            local rows2, err2 = db:query("SELECT 1")
            local again, err3 = sql.connect(arg[1], {{ connect_timeout = 3 }})
            emit{{ rows_nil = rows == nil, kind = err and err.kind, message = err and err.message,
                   kind2 = err2 and err2.kind, message2 = err2 and err2.message,
                   again = again and true or false, kind3 = err3 and err3.kind, message3 = err3 and err3.message }}
        """)
        halo = start(["exec", path, self.url])
        try:
            self.assertEqual(self.wait_active(marker, 1, timeout=10), 1, "the query never started")
            self.pg.stop_server()
            res = halo.finish(timeout=30)
        finally:
            halo.kill()
        self.assertEqual(res.rc, 0, f"halo did not finish the script normally (a crash?): {res!r}")
        r = result_of(res)
        self.assertTrue(r["rows_nil"])
        self.assertEqual(r["kind"], "connect", r)
        self.assertIn(f"127.0.0.1:{self.pg.port}", r["message"])
        self.assertRegex(r["message"], r"server closed the connection unexpectedly|terminat")
        self.assertEqual(r["kind2"], "closed", r)
        self.assertFalse(r["again"])
        # refused, or (while the postmaster is still going down) closed
        self.assertEqual(r["kind3"], "connect", r)
        self.assertIn(f"127.0.0.1:{self.pg.port}", r["message3"])
        self.assertLess(res.seconds, 15)


class ConnectFailuresTest(SqlCase):

    def test_closed_port(self):
        port = closed_port()
        t0 = time.monotonic()
        r = self.lua_result(f"""
            local t0 = time.mono()
            local db, err = sql.connect("postgresql://postgres:{self.password}@127.0.0.1:{port}/postgres")
            emit{{ db = db and true or false, kind = err.kind, message = err.message, took = time.mono() - t0 }}
        """)
        self.assertFalse(r["db"])
        self.assertEqual(r["kind"], "connect")
        self.assertIn(f"127.0.0.1:{port}", r["message"])
        self.assertIn("refused", r["message"])
        self.assertLess(r["took"], 2)
        self.assertLess(time.monotonic() - t0, 10)

    def connect_with_timeout(self, port):
        # --timeout: with the bug below, the script would otherwise hang
        res = self.exec_lua(f"""
            local t0 = time.mono()
            local db, err = sql.connect("postgresql://postgres@127.0.0.1:{port}/postgres", {{ connect_timeout = 1 }})
            emit{{ db = db and true or false, kind = err.kind, message = err.message, took = time.mono() - t0 }}
        """, halo_args=["--timeout", "5"])
        self.assertEqual(res.rc, 0, repr(res))
        r = result_of(res)
        self.assertFalse(r["db"])
        self.assertEqual(r["kind"], "timeout", r)
        self.assertIn(f"127.0.0.1:{port}", r["message"])
        self.assertIn("connect timeout", r["message"])
        self.assertGreaterEqual(r["took"], 0.9)
        self.assertLess(r["took"], 3)

    def test_connect_timeout_during_the_tcp_handshake(self):
        # A listener whose backlog is full: the kernel drops the SYN, so the
        # TCP connect itself hangs (no socket event at all until the timeout).
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as full:
            full.bind(("127.0.0.1", 0))
            full.listen(0)
            port = full.getsockname()[1]
            fillers = []
            try:
                for _ in range(4):
                    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    c.setblocking(False)
                    fillers.append(c)
                    try:
                        c.connect(("127.0.0.1", port))
                    except BlockingIOError:
                        pass
                time.sleep(0.1)
                self.connect_with_timeout(port)
            finally:
                for c in fillers:
                    c.close()

    def test_connect_timeout_when_the_server_never_answers(self):
        """Regression test (fixed engine bug): connect_timeout is lost after the first socket event.
        sql.c's op_ready() calls op_unwatch(), which cancels op->timer, and
        the next op_wait() is passed timeout 0, so nothing re-arms it: once
        the TCP connection is up, a server that never sends its greeting (a
        hung or SIGSTOPped postgres, a paused db container) makes
        sql.connect wait forever — until the check's deadline, or for ever
        in `halo eval`. Repro: python3 -c 'import socket,time; s=socket.socket();
        s.bind(("127.0.0.1",55999)); s.listen(); time.sleep(99)' &
        halo eval 'sql.connect("postgresql://x@127.0.0.1:55999/x", {connect_timeout=1})'
        -> never returns (expected: nil, {kind="timeout"} after ~1 s)."""
        # A listener that never accepts: the kernel completes the TCP
        # handshake, and the server's greeting never comes.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as mute:
            mute.bind(("127.0.0.1", 0))
            mute.listen(16)
            self.connect_with_timeout(mute.getsockname()[1])

    def test_unparsable_conninfo(self):
        r = self.lua_result("""
            local db, err = sql.connect("postgresql://[broken")
            emit{ db = db and true or false, kind = err.kind, message = err.message }
        """)
        self.assertFalse(r["db"])
        self.assertEqual(r["kind"], "connect")


class CapsTest(SqlCase):

    def run_measured(self, code, *args):
        """halo exec with its peak RSS (from wait4)."""
        path = self.script(code)
        out_f = tempfile.TemporaryFile()
        err_f = tempfile.TemporaryFile()
        t0 = time.monotonic()
        p = subprocess.Popen([HALO, "exec", path, self.url, *args], stdout=out_f, stderr=err_f,
                             stdin=subprocess.DEVNULL, env=halo_env())
        deadline = t0 + 60
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                os.wait4(p.pid, 0)
                self.fail("halo exec hung")
            time.sleep(0.02)
        p.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - t0
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read().decode(errors="replace"), err_f.read().decode(errors="replace")
        out_f.close()
        err_f.close()
        return p.returncode, out, err, seconds, usage.ru_maxrss * 1024

    def test_max_rows_stops_a_huge_result_quickly(self):
        # The SRF in the select list streams rows (one in FROM would first be
        # materialised by the server: ~20 s before the first row arrives,
        # whatever the client does).
        code = """
            local out = {}
            for _, case in ipairs{ { name = "default", opts = nil }, { name = "1000", opts = { max_rows = 1000 } } } do
              local db = assert(sql.connect(arg[1], case.opts))
              local t0 = time.mono()
              local rows, err = db:query("SELECT generate_series(1, 100000000) AS g /* halo-cap */")
              out[case.name] = { rows_nil = rows == nil, kind = err and err.kind, message = err and err.message,
                                 took = time.mono() - t0,
                                 after = assert(db:query("SELECT 42 AS x"))[1].x }
            end
            local db = assert(sql.connect(arg[1], { max_bytes = 100000 }))
            local rows, err = db:query("SELECT repeat('x', 1000) AS x FROM generate_series(1, 1000000)")
            out.bytes = { rows_nil = rows == nil, kind = err and err.kind, message = err and err.message }
            local ok = assert(sql.connect(arg[1], { max_rows = 1000 })):query("SELECT generate_series(1, 1000) AS g")
            out.at_cap = #ok
            emit(out)
        """
        rc, out, err, seconds, rss = self.run_measured(code)
        self.assertEqual(rc, 0, err)
        r = result_of(Result(rc, out, err, seconds))
        for name, cap in (("default", "100000"), ("1000", "1000")):
            case = r[name]
            self.assertTrue(case["rows_nil"], name)
            self.assertEqual(case["kind"], "too_large", name)
            self.assertIn(f"max_rows ({cap})", case["message"])
            self.assertLess(case["took"], 5, f"max_rows={name}: too_large after {case['took']:.1f} s")
            self.assertEqual(case["after"], 42, "the connection is unusable after too_large")
        self.assertEqual(r["bytes"]["kind"], "too_large")
        self.assertIn("max_bytes (100000)", r["bytes"]["message"])
        self.assertEqual(r["at_cap"], 1000)
        self.assertLess(seconds, 10)
        print(f"\n  too_large: default caps {r['default']['took']:.2f} s, max_rows=1000 {r['1000']['took']:.2f} s, "
              f"halo peak RSS {rss / 2**20:.0f} MiB")
        self.assertLess(rss, RSS_LIMIT, f"halo's peak RSS was {rss / 2**20:.0f} MiB")
        # the server stopped producing rows too
        self.assertEqual(self.wait_active("halo-cap", 0, timeout=3), 0)


class PasswordTest(SqlCase):
    """The connection password never shows in anything halo prints."""

    FAILING = """
        local url = {url}
        local db = assert(sql.connect(url))
        local rows, err = db:query("SELECT * FROM no_such_table_pw")
        print(err)
        print(err.message, err.kind, err.sqlstate)
        print(tostring(db))
        local wrong, werr = sql.connect((url:gsub("@127", "x@127")))  -- wrong password
        print(werr.kind, werr.message)
        local nodb, nerr = sql.connect((url:gsub("/postgres$", "/no_such_db")))
        print(nerr.kind, nerr.message)
        emit{{ kind = err.kind, wrong = werr.kind, nodb = nerr.kind }}
        error(err)
    """

    def assertNoPassword(self, res, what):
        for name, text in (("stdout", res.out), ("stderr", res.err)):
            self.assertNotIn(self.password, text, f"{what}: the password is in {name}:\n{text}")

    def test_password_not_printed_without_a_stack_file(self):
        for verbose in ([], ["-v"]):
            res = run(["exec", *verbose, self.script(self.FAILING.format(url="arg[1]")), self.url])
            self.assertEqual(res.rc, 3, repr(res))
            r = result_of(res)
            self.assertEqual(r, {"kind": "sql", "wrong": "connect", "nodb": "connect"})
            self.assertIn("no_such_table_pw", res.err)         # the error was printed ...
            self.assertIn("password authentication failed", res.out)
            self.assertNoPassword(res, f"exec {verbose}")   # ... without the password

    def test_password_not_printed_with_a_secret_in_the_stack_file(self):
        stack = self.tmp_path("stack.lua")
        with open(stack, "w") as f:
            f.write(f'return {{ db = "postgresql://postgres:" .. secret("HALOTEST_PGPASS") .. '
                    f'"@127.0.0.1:{self.pg.port}/postgres" }}\n')
        env = {"HALOTEST_PGPASS": self.password}
        code = self.FAILING.format(url="stack.db") + ""
        for verbose in ([], ["-v"]):
            res = run(["exec", "--stack", stack, *verbose, self.script(code + "\n")], env=env)
            self.assertEqual(res.rc, 3, repr(res))
            self.assertEqual(result_of(res), {"kind": "sql", "wrong": "connect", "nodb": "connect"})
            self.assertIn("no_such_table_pw", res.err)
            self.assertNoPassword(res, f"exec --stack {verbose}")
        # a script that prints the stack's URL outright still shows no password
        res = run(["eval", "--stack", stack, "print(stack.db) return stack.db"], env=env)
        self.assertEqual(res.rc, 0, repr(res))
        self.assertIn(f"@127.0.0.1:{self.pg.port}/postgres", res.out)
        self.assertNoPassword(res, "eval print(stack.db)")
        # and a check: logs, evidence, failures and the error, in every format
        checks = self.checks_dir({"01-db.lua": textwrap.dedent("""
            local sql = require "sql"
            return {
              title = "a failing query", timeout = 20,
              run = function(t, stack)
                local db = assert(sql.connect(stack.db))
                local rows, err = db:query("SELECT * FROM no_such_table_pw")
                t:log("query failed: " .. tostring(err))
                t:evidence("error", err.message)
                t:evidence("db", tostring(db))
                t:expect(rows ~= nil, "query failed: %s", err.message)
                error(err.message)
              end,
            }
        """)})
        for fmt in ("text", "json", "junit", "tap", "md"):
            res = run(["run", "--checks", checks, "--stack", stack, "--format", fmt, "-v"], env=env)
            self.assertEqual(res.rc, 3, repr(res))
            self.assertIn("no_such_table_pw", res.out + res.err)
            self.assertNoPassword(res, f"run --format {fmt}")

    def test_password_not_printed_with_a_plain_url_in_the_stack_file(self):
        stack = self.tmp_path("stack.lua")
        with open(stack, "w") as f:
            f.write(f'return {{ db = env("HALOTEST_PGURL") }}\n')
        res = run(["exec", "--stack", stack, "-v", self.script(self.FAILING.format(url="stack.db"))],
                  env={"HALOTEST_PGURL": self.url})
        self.assertEqual(res.rc, 3, repr(res))
        self.assertEqual(result_of(res), {"kind": "sql", "wrong": "connect", "nodb": "connect"})
        self.assertNoPassword(res, "exec --stack env()")

    def test_server_notices_do_not_bypass_redaction(self):
        """Regression test (fixed engine bug): server notices (RAISE NOTICE/WARNING, and the
        "terminating connection due to immediate shutdown" warning) go to
        libpq's default notice processor, which writes them raw to halo's
        stderr: not into the check's log, and not through redaction, so a
        stack secret in a notice is printed verbatim. Repro (stack.lua:
        return { db = "postgresql://…", tok = secret("TOK") }):
          TOK=TopSecret halo eval --stack stack.lua 'local db = sql.connect(stack.db)
            db:query("SELECT set_config($$halo.tok$$, $1, false)", stack.tok)
            db:exec("DO $$ BEGIN RAISE NOTICE $x$tok is %$x$, current_setting($y$halo.tok$y$); END $$")'
          -> stderr: "NOTICE:  tok is TopSecret"."""
        token = "Tok" + secrets.token_hex(8)
        stack = self.tmp_path("stack.lua")
        with open(stack, "w") as f:
            f.write(f'return {{ db = {json.dumps(self.url)}, tok = secret("HALOTEST_TOK") }}\n')
        checks = self.checks_dir({"01-notice.lua": textwrap.dedent("""
            local sql = require "sql"
            return {
              title = "a notice", timeout = 20,
              run = function(t, stack)
                local db = assert(sql.connect(stack.db))
                assert(db:query("SELECT set_config('halo.tok', $1, false)", stack.tok))
                assert(db:exec("DO $$ BEGIN RAISE NOTICE 'tok is %', current_setting('halo.tok'); END $$"))
              end,
            }
        """)})
        res = run(["run", "--checks", checks, "--stack", stack, "-v"], env={"HALOTEST_TOK": token})
        self.assertEqual(res.rc, 0, repr(res))
        self.assertNotIn(token, res.out + res.err, "a server notice printed the stack secret verbatim")


if __name__ == "__main__":
    unittest.main()
