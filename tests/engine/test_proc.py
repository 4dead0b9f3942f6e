"""The proc module: allow-listed programs on pipes, killed with their whole
process group at their timeout or the check's deadline.

Scripts run through `halo exec` (or as checks through `halo run` for the
deadline) and print `RESULT <json>`. The leftover checks look for processes
by a unique argument (`sleep 30.<random>`): after halo is done, no process
anywhere may still carry it.

Tests marked expectedFailure reproduce engine bugs (each says "ENGINE BUG")
and assert the correct behaviour.

Run: cd tests/engine && HALO_BIN=../../build/halo HALO_SOURCE=../.. \
     python3 -m unittest -v test_proc
"""
import json
import os
import resource
import random
import shutil
import signal
import tempfile
import textwrap
import time
import unittest

from halotest import HALO, HaloTestCase, run, run_json

RESULT = "RESULT "
PRELUDE = 'local function emit(value) print("RESULT " .. json.encode(value)) end\n'


def result_of(res):
    lines = [l for l in res.out.splitlines() if l.startswith(RESULT)]
    if not lines:
        raise AssertionError(f"no RESULT line in the output: {res!r}")
    return json.loads(lines[-1][len(RESULT):])


def unique_sleep():
    """A sleep duration no other process on the machine has as argument."""
    return f"30.{random.SystemRandom().randrange(10**8):08d}"


def processes_with_args(*argv):
    """Pids of live (non-zombie) processes whose argv is exactly argv."""
    want = b"\0".join(a.encode() for a in argv) + b"\0"
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{name}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cmd == want and state not in ("Z", "X"):
            found.append(int(name))
    return found


class ProcCase(HaloTestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(HALO, os.X_OK):
            raise unittest.SkipTest(f"no halo binary at {HALO} (set HALO_BIN)")

    def script(self, code):
        path = self.tmp_path("script.lua")
        with open(path, "w", encoding="utf-8") as f:
            f.write(PRELUDE + textwrap.dedent(code))
        return path

    def stack(self, allow_exec):
        path = self.tmp_path("stack.lua")
        with open(path, "w") as f:
            f.write("return { allow_exec = %s }\n" % ("{" + ", ".join(json.dumps(a) for a in allow_exec) + "}"))
        return path

    def exec_lua(self, code, *args, allow_exec=None, env=None, timeout=60):
        halo_args = ["--stack", self.stack(allow_exec)] if allow_exec is not None else []
        return run(["exec", *halo_args, self.script(code), *args], env=env, timeout=timeout)

    def lua_result(self, code, *args, **kw):
        res = self.exec_lua(code, *args, **kw)
        self.assertEqual(res.rc, 0, repr(res))
        return result_of(res)

    def assertNoProcesses(self, *argv, settle=2.0):
        deadline = time.monotonic() + settle
        while True:
            left = processes_with_args(*argv)
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.assertEqual(left, [], f"processes {' '.join(argv)!r} outlived halo")


class AllowListTest(ProcCase):

    def test_default_list_refuses_ls(self):
        r = self.lua_result("""
            local ok, err = pcall(proc.run, { argv = { "ls", "/" } })
            emit{ ok = ok, err = tostring(err) }
        """)
        self.assertFalse(r["ok"])
        self.assertIn("'ls' is not on the stack file's allow_exec list", r["err"])
        self.assertIn("(allowed: docker, docker-compose)", r["err"])
        # uncaught, it ends the script with the same message, and ls never ran
        res = self.exec_lua('proc.run{ argv = { "ls", "/" } }\nemit("went on")\n')
        self.assertEqual(res.rc, 3, repr(res))
        self.assertIn("not on the stack file's allow_exec list (allowed: docker, docker-compose)", res.err)
        self.assertNotIn("went on", res.out)
        self.assertNotIn("proc", res.out.split())  # no listing of / on stdout

    def test_stack_allow_exec_allows_sh_and_replaces_the_default(self):
        r = self.lua_result("""
            local res = proc.run{ argv = { "sh", "-c", "echo hello from sh" } }
            local ls_ok, ls_err = pcall(proc.run, { argv = { "ls" } })
            local d_ok, d_err = pcall(proc.run, { argv = { "docker", "version" } })
            emit{ stdout = res.stdout, code = res.code, ls_ok = ls_ok, ls_err = tostring(ls_err),
                  docker_ok = d_ok, docker_err = tostring(d_err) }
        """, allow_exec=["sh"])
        self.assertEqual(r["stdout"], "hello from sh\n")
        self.assertEqual(r["code"], 0)
        self.assertFalse(r["ls_ok"])
        self.assertIn("'ls' is not on the stack file's allow_exec list (allowed: sh)", r["ls_err"])
        if shutil.which("docker"):
            self.assertFalse(r["docker_ok"])
            self.assertIn("'docker' is not on the stack file's allow_exec list (allowed: sh)", r["docker_err"])

    def test_entry_with_a_slash_allows_exactly_that_file(self):
        sh = os.path.realpath(shutil.which("sh"))
        r = self.lua_result(f"""
            local res = proc.run{{ argv = {{ "{sh}", "-c", "echo exact" }} }}
            local ok, err = pcall(proc.run, {{ argv = {{ "sh", "-c", "echo by name" }} }})
            emit{{ stdout = res.stdout, name_ok = ok, name_err = tostring(err) }}
        """, allow_exec=[sh])
        self.assertEqual(r["stdout"], "exact\n")
        if os.path.realpath(shutil.which("sh")) != shutil.which("sh"):
            self.assertFalse(r["name_ok"], "'sh' by name matched an entry that names another path")

    def test_entry_without_a_slash_allows_only_the_program_on_path(self):
        """Regression test (fixed engine bug): docs/modules.md says an allow_exec entry without a
        slash "allows that name from PATH", but proc.c's allowed() compares
        only base names, so allow_exec = {"sh"} also runs /any/dir/sh, a
        program that is not on PATH. Repro: printf '#!/bin/sh\\necho not the PATH sh\\n' > /tmp/x/sh;
        chmod +x /tmp/x/sh; halo eval --stack <(allow_exec={"sh"}) 'proc.run{argv={"/tmp/x/sh"}}.stdout'
        -> "not the PATH sh" (expected: refused)."""
        d = tempfile.mkdtemp(prefix="halo-proc-")
        self.addCleanup(shutil.rmtree, d, True)
        impostor = os.path.join(d, "sh")
        with open(impostor, "w") as f:
            f.write("#!/bin/sh\necho impostor ran\n")
        os.chmod(impostor, 0o755)
        r = self.lua_result(f"""
            local ok, res = pcall(proc.run, {{ argv = {{ "{impostor}" }} }})
            emit{{ ok = ok, out = ok and res.stdout or tostring(res) }}
        """, allow_exec=["sh"])
        self.assertFalse(r["ok"], f"an 'sh' outside PATH ran: {r['out']!r}")
        self.assertIn("not on the stack file's allow_exec list", r["out"])

    def test_default_list_allows_only_the_docker_clients_on_path(self):
        """Regression test (fixed engine bug): with no allow_exec in the stack file, any executable
        named docker or docker-compose runs, wherever it is (the default
        list compares base names of the resolved path only), although the
        default is documented as "the docker and compose clients" from PATH.
        Repro: cp /bin/true /tmp/x/docker; halo eval 'proc.run{argv={"/tmp/x/docker"}}.code' -> 0."""
        d = tempfile.mkdtemp(prefix="halo-proc-")
        self.addCleanup(shutil.rmtree, d, True)
        impostor = os.path.join(d, "docker")
        with open(impostor, "w") as f:
            f.write("#!/bin/sh\necho impostor ran\n")
        os.chmod(impostor, 0o755)
        r = self.lua_result(f"""
            local ok, res = pcall(proc.run, {{ argv = {{ "{impostor}" }} }})
            emit{{ ok = ok, out = ok and res.stdout or tostring(res) }}
        """)
        self.assertFalse(r["ok"], f"a 'docker' outside PATH ran: {r['out']!r}")

    def test_missing_program_is_a_clear_error(self):
        r = self.lua_result("""
            local ok1, e1 = pcall(proc.run, { argv = { "halotest-no-such-program" } })
            local ok2, e2 = pcall(proc.run, { argv = { "/nonexistent/dir/halotest-prog" } })
            emit{ ok1 = ok1, e1 = tostring(e1), ok2 = ok2, e2 = tostring(e2) }
        """, allow_exec=["sh", "halotest-no-such-program", "/nonexistent/dir/halotest-prog"])
        self.assertFalse(r["ok1"])
        self.assertIn("'halotest-no-such-program' was not found on PATH", r["e1"])
        self.assertFalse(r["ok2"])
        self.assertIn("'/nonexistent/dir/halotest-prog' was not found", r["e2"])

    def test_missing_program_message_names_the_allowed_list(self):
        """Regression test (fixed engine bug): for a program that is not found, proc.run's message
        ends "(allowed: nothing)" whatever the list holds: proc.c skips
        allowed() when resolve() fails, so the names buffer stays empty.
        Repro: halo eval 'proc.run{argv={"nosuchprog"}}' -> "proc.run:
        'nosuchprog' was not found on PATH, or is not allowed (allowed:
        nothing)" although docker and docker-compose are allowed."""
        r = self.lua_result("""
            local ok1, e1 = pcall(proc.run, { argv = { "halotest-no-such-program" } })
            emit{ e1 = tostring(e1) }
        """)
        self.assertNotIn("allowed: nothing", r["e1"])
        self.assertIn("docker, docker-compose", r["e1"])


class RunTest(ProcCase):

    def test_stdout_stderr_code_and_stdin(self):
        r = self.lua_result("""
            local r = proc.run{ argv = { "sh", "-c", 'echo out; echo err >&2; read line; echo "got <$line>"; exit 7' },
                                stdin = "hello there\\n" }
            local big = string.rep("0123456789abcdef", 65536)  -- 1 MiB: more than a pipe holds
            local cat = proc.run{ argv = { "cat" }, stdin = big }
            local sig = proc.run{ argv = { "sh", "-c", "kill -TERM $$" } }
            emit{ r = r, cat_same = cat.stdout == big, cat_len = #cat.stdout, cat_code = cat.code,
                  sig_signal = sig.signal, sig_code = sig.code or "none" }
        """, allow_exec=["sh", "cat"])
        p = r["r"]
        self.assertEqual(p["stdout"], "out\ngot <hello there>\n")
        self.assertEqual(p["stderr"], "err\n")
        self.assertEqual(p["code"], 7)
        self.assertNotIn("signal", p)
        self.assertIs(p["timed_out"], False)
        self.assertIs(p["truncated"], False)
        self.assertGreater(p["duration"], 0)
        self.assertLess(p["duration"], 5)
        self.assertTrue(r["cat_same"], f"1 MiB through cat came back as {r['cat_len']} bytes")
        self.assertEqual(r["cat_code"], 0)
        self.assertEqual(r["sig_signal"], signal.SIGTERM)
        self.assertEqual(r["sig_code"], "none")

    def test_env_is_merged_into_halos_environment(self):
        r = self.lua_result("""
            local r = proc.run{ argv = { "sh", "-c", 'echo "$PROCTEST_KEEP|$PROCTEST_OVERRIDE|$PROCTEST_ADDED|${PATH:+path}"' },
                                env = { PROCTEST_OVERRIDE = "new", PROCTEST_ADDED = "added" } }
            local plain = proc.run{ argv = { "sh", "-c", 'echo "$PROCTEST_OVERRIDE|${PROCTEST_ADDED:-unset}"' } }
            emit{ merged = r.stdout, plain = plain.stdout }
        """, allow_exec=["sh"], env={"PROCTEST_KEEP": "kept", "PROCTEST_OVERRIDE": "old"})
        self.assertEqual(r["merged"], "kept|new|added|path\n")
        self.assertEqual(r["plain"], "old|unset\n")  # the override was for that run only

    def test_cwd(self):
        d = os.path.realpath(tempfile.mkdtemp(prefix="halo-proc-cwd-"))
        self.addCleanup(shutil.rmtree, d, True)
        r = self.lua_result(f"""
            local here = proc.run{{ argv = {{ "sh", "-c", "pwd -P" }}, cwd = "{d}" }}
            local missing = proc.run{{ argv = {{ "sh", "-c", "pwd" }}, cwd = "{d}/no/such/dir" }}
            emit{{ here = here.stdout, missing_code = missing.code, missing_err = missing.stderr }}
        """, allow_exec=["sh"])
        self.assertEqual(r["here"], d + "\n")
        self.assertEqual(r["missing_code"], 126)
        self.assertIn("cannot change to", r["missing_err"])
        self.assertIn("no/such/dir", r["missing_err"])

    def test_timeout_kills_the_whole_group(self):
        arg = unique_sleep()
        t0 = time.monotonic()
        r = self.lua_result(f"""
            local r = proc.run{{ argv = {{ "sh", "-c", "sleep {arg} & sleep {arg}" }}, timeout = 1 }}
            emit(r)
        """, allow_exec=["sh"])
        self.assertIs(r["timed_out"], True)
        self.assertEqual(r.get("signal"), signal.SIGTERM, r)
        self.assertGreaterEqual(r["duration"], 0.9)
        self.assertLess(r["duration"], 2.5)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertNoProcesses("sleep", arg)

    def test_timeout_escalates_to_sigkill(self):
        # The group ignores SIGTERM (inherited through exec): SIGKILL 2 s later.
        arg = unique_sleep()
        r = self.lua_result(f"""
            local r = proc.run{{ argv = {{ "sh", "-c", "trap '' TERM; sleep {arg} & sleep {arg}" }}, timeout = 1 }}
            emit(r)
        """, allow_exec=["sh"])
        self.assertIs(r["timed_out"], True)
        self.assertEqual(r.get("signal"), signal.SIGKILL, r)
        self.assertGreaterEqual(r["duration"], 2.9)
        self.assertLess(r["duration"], 5)
        self.assertNoProcesses("sleep", arg)

    def test_check_deadline_kills_it(self):
        arg = unique_sleep()
        checks = self.checks_dir({"01-sleeper.lua": textwrap.dedent(f"""
            local proc = require "proc"
            return {{
              title = "a child past the deadline", timeout = 2,
              run = function(t)
                local r = proc.run{{ argv = {{ "sh", "-c", "trap '' TERM; sleep {arg} & sleep {arg}" }}, timeout = 60 }}
                t:log("proc.run returned " .. json.encode(r))
              end,
            }}
        """)})
        stack = self.stack(["sh"])
        rep = run_json(["--checks", checks, "--stack", stack])
        c = self.assertCheck(rep, 1, "ERROR", r"timeout")
        self.assertLess(rep.result.seconds, 2 + 4, f"the run took {rep.result.seconds:.1f} s for a 2 s check")
        self.assertNoProcesses("sleep", arg)

    def test_child_runs_without_the_checks_address_space_cap(self):
        # The worker caps its own address space (the check's Lua); a program
        # it starts must not inherit that cap: dockerd, started by a check
        # to bring a node back, died of "out of memory allocating heap arena
        # map" under it.
        checks = self.checks_dir({"01-limits.lua": textwrap.dedent("""
            local proc = require "proc"
            return {
              title = "a child's address-space limit",
              run = function(t)
                local r = assert(proc.run{ argv = { "sh", "-c", "ulimit -S -v" } })
                t:evidence("child", (r.stdout:gsub("%s+$", "")))
              end,
            }
        """)})
        rep = run_json(["--checks", checks, "--stack", self.stack(["sh"])])
        c = self.assertCheck(rep, 1, "PASS")
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        want = "unlimited" if soft == resource.RLIM_INFINITY else str(soft // 1024)
        self.assertEqual(c["evidence"]["child"], want, "the child ran under the worker's cap")

    def test_max_output_truncates(self):
        r = self.lua_result("""
            local r = proc.run{ argv = { "sh", "-c", 'i=0; while [ $i -lt 2000 ]; do echo 0123456789abcdefghijklmnopqrstuvwxyz; echo E >&2; i=$((i+1)); done; echo done >&2' },
                                max_output = 1000 }
            local small = proc.run{ argv = { "sh", "-c", "echo short" }, max_output = 1000 }
            emit{ out_len = #r.stdout, err_len = #r.stderr, truncated = r.truncated, code = r.code,
                  head = r.stdout:sub(1, 37), small_truncated = small.truncated, small = small.stdout }
        """, allow_exec=["sh"])
        self.assertEqual(r["out_len"], 1000)
        self.assertEqual(r["err_len"], 1000)  # each stream capped on its own
        self.assertIs(r["truncated"], True)
        self.assertEqual(r["code"], 0, "the program did not run to its end (blocked on a full pipe?)")
        self.assertEqual(r["head"], "0123456789abcdefghijklmnopqrstuvwxyz\n")
        self.assertIs(r["small_truncated"], False)
        self.assertEqual(r["small"], "short\n")

    def test_misuse_raises(self):
        r = self.lua_result("""
            local out = {}
            for name, opts in pairs{
              empty = { argv = {} }, number = { argv = { "sh", 1 } }, unknown = { argv = { "sh" }, bogus = 1 },
              timeout = { argv = { "sh" }, timeout = -1 }, max = { argv = { "sh" }, max_output = "x" },
            } do
              local ok, err = pcall(proc.run, opts)
              out[name] = ok and "ran" or tostring(err)
            end
            emit(out)
        """, allow_exec=["sh"])
        self.assertIn("argv must be a non-empty list", r["empty"])
        self.assertIn("argv[2] must be a string", r["number"])
        self.assertIn("unknown option 'bogus'", r["unknown"])
        self.assertIn("timeout must be positive", r["timeout"])
        self.assertIn("max_output must be a byte count", r["max"])


if __name__ == "__main__":
    unittest.main()
