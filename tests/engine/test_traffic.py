"""traffic and eventually against tests/servers/edge_server.py on 127.0.0.1:
a server that fails a known share of requests (/flaky?fail_every=n, a
deterministic counter per key), a switch that turns failures on for a known
stretch, and polls that succeed after a known delay.
"""
import socket
import unittest
import uuid

import os

from halotest import run_json, write_checks
from httptest import HaloTestCase


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# stats() with by_status keys as strings, so json.encode keeps them apart
STATS = """
local function plain(s)
  local by_status = {}
  for k, v in pairs(s.by_status) do by_status[tostring(k)] = v end
  s.by_status = by_status
  return s
end
"""


class Traffic(HaloTestCase):
    def key(self):
        return uuid.uuid4().hex[:12]  # a fresh /flaky counter for each test

    def test_known_failure_share(self):
        r = self.lua_result(STATS + """
            local flow = traffic.start{ request = { url = BASE .. "/flaky?fail_every=4&key=%s" }, rate = 100 }
            time.sleep(1)
            emit(plain(flow:stop()))
        """ % self.key())
        sent, failures = r["sent"], r["failures"]
        self.assertGreaterEqual(sent, 80, r)
        self.assertLessEqual(sent, 115, r)
        # every 4th request fails, counted by the server in arrival order
        self.assertLess(abs(failures - sent / 4), 1, "%d of %d failed, expected a quarter" % (failures, sent))
        self.assertEqual(r["by_error"], {})
        self.assertEqual(set(r["by_status"]), {"200", "500"})
        self.assertEqual(r["by_status"]["500"], failures)
        self.assertEqual(r["by_status"]["200"] + r["by_status"]["500"], sent)
        self.assertEqual(r["ok"], sent - failures)
        lat = r["latency"]
        self.assertEqual(set(lat), {"p50", "p95", "p99", "max"})
        self.assertTrue(0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"] < 1, lat)
        self.assertAlmostEqual(r["seconds"], 1.0, delta=0.3)
        self.assertAlmostEqual(r["rate"], 100, delta=20)
        self.assertIn("late", r)
        first = r["first_failures"]
        self.assertEqual(len(first), 10, "the first ten failures are kept")
        self.assertTrue(all(f["status"] == 500 and "error" not in f for f in first), first)
        ats = [f["at"] for f in first]
        self.assertEqual(ats, sorted(ats))
        # at rate 100, every 4th request: one failure every ~40 ms
        self.assertAlmostEqual((ats[-1] - ats[0]) / 9, 0.04, delta=0.01)
        # consecutive failures never happen, so the longest window is one request
        self.assertLess(r["longest_failure_window"]["seconds"], 0.1)

    def test_failure_window_measures_the_outage(self):
        r = self.lua_result(STATS + """
            local path = "/ok"
            local t0 = time.mono()
            local flow = traffic.start{ request = function() return http.get(BASE .. path) end, rate = 100 }
            time.sleep(0.3)
            path = "/status/503"
            local down = time.mono() - t0
            time.sleep(0.5)
            path = "/ok"
            local up = time.mono() - t0
            time.sleep(0.3)
            local s = plain(flow:stop())
            s.down, s.up = down, up
            emit(s)
        """)
        w = r.get("longest_failure_window")
        self.assertIsNotNone(w, r)
        self.assertAlmostEqual(w["seconds"], 0.5, delta=0.1, msg=w)
        self.assertAlmostEqual(w["end"] - w["start"], w["seconds"], places=6)
        self.assertAlmostEqual(w["start"], r["down"], delta=0.08, msg="the window starts at the switch")
        self.assertAlmostEqual(w["end"], r["up"], delta=0.08, msg="and ends when requests succeed again")
        self.assertAlmostEqual(r["failures"], 50, delta=10)
        self.assertEqual(r["by_status"]["503"], r["failures"])
        self.assertEqual(r["by_status"]["200"] + r["by_status"]["503"], r["sent"])
        self.assertTrue(all(f["status"] == 503 for f in r["first_failures"]))

    def test_no_window_when_everything_succeeds(self):
        r = self.lua_result(STATS + """
            local flow = traffic.start{ request = { url = BASE .. "/ok" }, rate = 50, concurrency = 2 }
            time.sleep(0.5)
            emit(plain(flow:stop()))
        """)
        self.assertGreater(r["sent"], 15)
        self.assertEqual(r["failures"], 0)
        self.assertEqual(r["ok"], r["sent"])
        self.assertNotIn("longest_failure_window", r)
        self.assertEqual(r["first_failures"], {}, "empty (json.encode writes an empty table as {})")
        self.assertEqual(r["by_status"], {"200": r["sent"]})

    def test_first_failures_verbatim(self):
        closed = "http://127.0.0.1:%d/down" % closed_port()
        r = self.lua_result(STATS + """
            local n = 0
            local direct_res, direct = http.get("%s")
            local flow = traffic.start{ concurrency = 1, request = function()
              n = n + 1
              if n %% 4 == 1 then return http.get("%s") end
              if n %% 4 == 2 then return http.get(BASE .. "/status/503") end
              if n %% 4 == 3 then error("boom " .. n) end
              return http.get(BASE .. "/ok")
            end }
            time.sleep(0.3)
            local s = plain(flow:stop())
            s.direct = direct.message
            emit(s)
        """ % (closed, closed))
        first = r["first_failures"]
        self.assertEqual(len(first), 10)
        kinds = [f.get("error") or f.get("status") for f in first]
        self.assertEqual(kinds[0], "connect")
        self.assertEqual(kinds[1], 503)
        self.assertTrue(kinds[2].startswith("raised: ") and "boom 3" in kinds[2], kinds[2])
        self.assertEqual(kinds[3], "connect")
        conn = first[0]
        self.assertTrue(conn["message"].startswith("connect: "), conn)
        self.assertIn(closed, conn["message"], "the err.message as http.request returned it")
        self.assertEqual(conn["message"].split(" after ")[0], r["direct"].split(" after ")[0])
        self.assertNotIn("message", first[1], "a status failure has no message")
        self.assertLessEqual(abs(r["by_error"]["connect"] - r["by_status"]["503"]), 1, "the cycle stopped mid-way at most")
        raised = sum(v for k, v in r["by_error"].items() if k.startswith("raised: "))
        self.assertEqual(r["failures"], r["by_error"]["connect"] + r["by_status"]["503"] + raised)
        self.assertEqual(r["ok"], r["by_status"]["200"])

    def check_dir(self, name, source):
        directory = os.path.join(self.tmp, name)
        os.makedirs(directory, exist_ok=True)
        return write_checks({"01-%s.lua" % name: source % self.edge.url("")}, directory)

    def test_typo_in_a_request_spec_is_an_error_at_the_callers_line(self):
        """A check with a misspelt request option ERRORs at its own line
        before any request is sent; it never FAILs as if the stack were down."""
        d = self.check_dir("typo", (
            'local traffic, time = require "traffic", require "time"\n'
            'return { title = "typo", run = function(t)\n'
            '  local flow = traffic.start{ request = { url = "%s/ok", timout = 1 }, rate = 50 }\n'
            '  time.sleep(0.2)\n'
            '  t:expect(flow:stop().failures == 0, "requests failed")\n'
            'end }\n'))
        c = run_json(["--checks", d])["checks"][0]
        self.assertEqual(c["status"], "ERROR", c)
        self.assertRegex(c["message"], r"01-typo\.lua:3: bad argument #1 to 'start' \(request: unknown option 'timout'")

    def test_misuse_inside_a_request_function_stops_the_traffic_and_raises(self):
        d = self.check_dir("misuse", (
            'local traffic, time, http = require "traffic", require "time", require "http"\n'
            'return { title = "misuse", run = function(t)\n'
            '  local flow = traffic.start{ rate = 50, request = function()\n'
            '    return http.get("%s/ok", { timout = 1 })\n'
            '  end }\n'
            '  time.sleep(0.2)\n'
            '  t:expect(flow:stop().failures == 0, "requests failed")\n'
            'end }\n'))
        c = run_json(["--checks", d])["checks"][0]
        self.assertEqual(c["status"], "ERROR", c)
        self.assertRegex(c["message"], r"01-misuse\.lua:4: bad argument #2 to 'get' \(unknown option 'timout'")
        self.assertEqual(c["failures"], [], "the misuse was counted as a failed request")

    def test_ok_function_decides(self):
        r = self.lua_result(STATS + """
            local flow = traffic.start{ request = { url = BASE .. "/status/404" }, rate = 50,
                                        ok = function(res) return res.status == 404 end }
            time.sleep(0.3)
            local a = plain(flow:stop())
            local flow2 = traffic.start{ request = { url = BASE .. "/ok" }, rate = 50,
                                         ok = function(res) error("judge broke") end }
            time.sleep(0.3)
            emit{ a = a, b = plain(flow2:stop()) }
        """)
        self.assertGreater(r["a"]["sent"], 5)
        self.assertEqual(r["a"]["failures"], 0)
        self.assertEqual(r["a"]["by_status"], {"404": r["a"]["sent"]})
        self.assertEqual(r["b"]["failures"], r["b"]["sent"], "an ok function that raises counts as a failure")

    def test_concurrency_and_unpaced(self):
        r = self.lua_result(STATS + """
            local inflight, most = 0, 0
            local flow = traffic.start{ concurrency = 5, request = function()
              inflight = inflight + 1
              if inflight > most then most = inflight end
              local res, err = http.get(BASE .. "/slow-headers?delay=0.1")
              inflight = inflight - 1
              return res, err
            end }
            time.sleep(0.55)
            local s = plain(flow:stop())
            s.most = most
            emit(s)
        """)
        self.assertEqual(r["most"], 5, "five workers, five requests in flight")
        self.assertAlmostEqual(r["sent"], 30, delta=6)
        self.assertEqual(r["failures"], 0)
        self.assertGreaterEqual(r["latency"]["p50"], 0.1)

    def test_stats_while_running_and_close(self):
        r = self.lua_result("""
            local mid, after
            do
              local flow <close> = traffic.start{ request = { url = BASE .. "/ok" }, rate = 100 }
              time.sleep(0.3)
              mid = flow:stats()
              time.sleep(0.2)
            end
            local n = #http.history()
            time.sleep(0.2)
            emit{ mid = mid.sent, at_close = n, later = #http.history() }
        """)
        self.assertGreater(r["mid"], 15, "stats() counts while traffic runs")
        self.assertGreater(r["at_close"], r["mid"], "traffic went on after stats()")
        self.assertEqual(r["later"], r["at_close"], "leaving the scope stopped the traffic")

    def test_stop_lets_in_flight_requests_finish(self):
        r = self.lua_result(STATS + """
            local flow = traffic.start{ request = { url = BASE .. "/slow-headers?delay=0.4" }, concurrency = 3 }
            time.sleep(0.1)
            local t0 = time.mono()
            local s = plain(flow:stop())
            s.stop_took = time.mono() - t0
            emit(s)
        """)
        self.assertEqual(r["sent"], 3)
        self.assertEqual(r["failures"], 0, "stopping does not cancel requests into failures")
        self.assertGreaterEqual(r["stop_took"], 0.2)

    def test_misuse_raises(self):
        for call, fragment in [
            ('traffic.start{ request = { url = BASE }, rate = 10, burst = 3 }', "unknown option 'burst'"),
            ('traffic.start{ rate = 10 }', "request must be a function"),
            ('traffic.start{ request = { url = BASE }, rate = -1 }', "rate must be"),
            ('traffic.start{ request = { url = BASE }, concurrency = 0 }', "concurrency must be"),
            ('traffic.start("fast")', "table expected"),
            # a typo in the request spec: caught at start, not counted as an outage
            ('traffic.start{ request = { url = BASE, timout = 1 } }',
             "bad argument #1 to 'start' (request: unknown option 'timout'; known: method, url"),
            ('traffic.start{ request = { method = "GET" } }', "bad argument #1 to 'start' (request: "),
        ]:
            with self.subTest(call=call):
                self.assertRaisesBadArgument("local h = %s\nemit(true)" % call, fragment)


class Eventually(HaloTestCase):
    def test_succeeds_after_a_known_delay(self):
        r = self.lua_result("""
            local t0 = time.mono()
            local ok, took, value, attempts = eventually{ timeout = 3, interval = 0.05 }(function()
              return time.mono() - t0 >= 0.5 and "ready"
            end)
            emit{ ok = ok, took = took, value = value, attempts = attempts }
        """)
        self.assertTrue(r["ok"])
        self.assertEqual(r["value"], "ready")
        self.assertGreaterEqual(r["took"], 0.5)
        self.assertLess(r["took"], 0.7)
        self.assertGreaterEqual(r["attempts"], 8)
        self.assertLessEqual(r["attempts"], 12)

    def test_polls_a_server_until_it_answers(self):
        r = self.lua_result("""
            local ok, took, value, attempts = eventually{ timeout = 5, interval = 0.1 }(function()
              local res = http.get(BASE .. "/flaky?fail_every=3&key=%s")
              return res.status == 500 and res.body
            end)
            emit{ ok = ok, took = took, value = value, attempts = attempts }
        """ % uuid.uuid4().hex[:12])
        self.assertTrue(r["ok"])
        self.assertEqual(r["attempts"], 3, "the third request is the one that fails")
        self.assertEqual(r["value"], "flaky failure 3\n")
        self.assertAlmostEqual(r["took"], 0.2, delta=0.1)

    def test_fails_at_the_timeout(self):
        r = self.lua_result("""
            local ok, took, value, attempts = eventually{ timeout = 0.5, interval = 0.1 }(function()
              return false
            end)
            emit{ ok = ok, took = took, value = value, attempts = attempts }
        """)
        self.assertFalse(r["ok"])
        self.assertFalse(r["value"], "the last value fn returned")
        self.assertGreaterEqual(r["took"], 0.5)
        self.assertLess(r["took"], 0.7)
        self.assertGreaterEqual(r["attempts"], 5)
        self.assertLessEqual(r["attempts"], 7)

    def test_last_attempt_lands_on_the_timeout(self):
        r = self.lua_result("""
            local at = {}
            local t0 = time.mono()
            local ok, took, _, attempts = eventually{ timeout = 0.5, interval = 0.3 }(function()
              at[#at + 1] = time.mono() - t0
              return nil
            end)
            emit{ ok = ok, took = took, attempts = attempts, at = at }
        """)
        self.assertFalse(r["ok"])
        self.assertEqual(r["attempts"], 3, r["at"])
        self.assertAlmostEqual(r["at"][1], 0.3, delta=0.05)
        self.assertAlmostEqual(r["at"][2], 0.5, delta=0.05, msg="not at 0.6: the last try is at the timeout")
        self.assertLess(r["took"], 0.6)

    def test_zero_timeout_tries_once(self):
        r = self.lua_result("""
            local ok, took, value, attempts = eventually{ timeout = 0 }(function() return nil end)
            local ok2, _, value2, attempts2 = eventually{ timeout = 0 }(function() return 42 end)
            emit{ ok = ok, attempts = attempts, took = took, ok2 = ok2, value2 = value2, attempts2 = attempts2 }
        """)
        self.assertEqual((r["ok"], r["attempts"], r["ok2"], r["value2"], r["attempts2"]), (False, 1, True, 42, 1))
        self.assertLess(r["took"], 0.05)

    def test_misuse_raises(self):
        for call, fragment in [
            ('eventually{ timeout = 1, retries = 3 }(function() return true end)', "unknown option 'retries'"),
            ('eventually{ interval = 0 }(function() return true end)', "interval must be"),
            ('eventually{ timeout = -1 }(function() return true end)', "timeout must be"),
            ('eventually{ timeout = 1 }("not a function")', "function expected"),
            ('eventually(5)', "table expected"),
        ]:
            with self.subTest(call=call):
                self.assertRaisesBadArgument("local x = %s\nemit(true)" % call, fragment)


if __name__ == "__main__":
    unittest.main()
