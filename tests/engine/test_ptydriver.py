"""Proves tests/engine/ptydriver.py against real interactive programs
(python3 -i, bash -i, sleep, stty) before the REPL tests rely on it."""
import os
import shutil
import sys
import time
import unittest

from ptydriver import Pty, _Cleaner, clean

PYTHON = sys.executable or shutil.which("python3")
BASH = shutil.which("bash")
SLEEP = shutil.which("sleep")
STTY = shutil.which("stty")

PROMPT = r">>> $"


def py_env():
    env = dict(os.environ)
    for k in ("PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONHOME"):
        env.pop(k, None)
    env["TERM"] = "xterm"
    return env


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class CleanTest(unittest.TestCase):
    def test_strips_sequences(self):
        text = ("\x1b[?2004h\x1b[1;31mred\x1b[0m \x1b]0;title\x07osc "
                "\x1b]2;t\x1b\\st \x1b7\x1b8\x1b=\x1b(Bplain\r\n\x07x\x08 \x08")
        self.assertEqual(clean(text), "red osc st plain\nx\x08 \x08")

    def test_split_across_reads(self):
        c = _Cleaner()
        raw = "a\x1b[31mb\x1b]0;ttl\x1b\\c\x1bMé\r\n".encode()
        out = "".join(c.feed(raw[i:i + 1]) for i in range(len(raw)))
        out += c.feed(b"", final=True)
        self.assertEqual(out, "abcé\n")


class PythonReplTest(unittest.TestCase):
    def spawn(self):
        t = Pty([PYTHON, "-i", "-q"], env=py_env())
        self.addCleanup(t.close)
        t.expect(PROMPT)
        return t

    def test_print(self):
        t = self.spawn()
        t.send("print(6*7)\r")
        t.expect(r"\n42\n")
        t.expect(PROMPT)
        self.assertIn("print(6*7)", t.output)        # the echo of what was typed
        self.assertIsInstance(t.raw, bytes)

    def test_ctrl_c_interrupts_sleep(self):
        t = self.spawn()
        t.send("import time; print('sle' + 'eping'); time.sleep(30)\r")
        t.expect(r"\nsleeping\n")
        time.sleep(0.2)                              # let it get into sleep()
        start = time.monotonic()
        t.send("\x03")
        t.expect(r"KeyboardInterrupt", timeout=3)
        t.expect(PROMPT, timeout=3)
        self.assertLess(time.monotonic() - start, 3)
        t.send("print('still' + ' alive')\r")        # the REPL carries on
        t.expect(r"\nstill alive\n")
        # at the prompt, not before it: a ^D typed while Python is between
        # lines can be flushed when readline takes the terminal back
        t.expect(PROMPT, timeout=3)
        t.send("\x04")                               # Ctrl-D at the prompt
        self.assertEqual(t.wait(), 0)

    def test_since_last_expect(self):
        t = self.spawn()
        t.send("print('mark' + 'er')\r")
        t.expect(r"\nmarker\n")
        t.expect(PROMPT)
        with self.assertRaises(AssertionError):      # already consumed
            t.expect(r"\nmarker\n", timeout=0.3)
        t.expect_not(r"marker", 0.3)
        t.send("print('mark' + 'er')\r")
        m = t.expect(r"\n(mark)(er)\n")
        self.assertEqual(m.group(1, 2), ("mark", "er"))

    def test_expect_not(self):
        t = self.spawn()
        t.send("print('a' * 3)\r")
        t.expect_not(r"bbb", 0.5)
        with self.assertRaises(AssertionError):
            t.expect_not(r"\naaa\n", 2)
        t.expect(r"\naaa\n")                         # expect_not did not consume it

    def test_arrow_keys_and_utf8(self):
        t = self.spawn()
        t.send("print('caf\u00e9')\r")
        t.expect("\ncaf\u00e9\n")
        t.expect(PROMPT)
        t.send("\x1b[A\r")                           # up arrow recalls the line
        t.expect("\ncaf\u00e9\n")


class ShellTest(unittest.TestCase):
    def test_exit_status(self):
        env = dict(os.environ, PS1="ptytest$ ", TERM="xterm")
        t = Pty([BASH, "--norc", "--noprofile", "-i"], env=env)
        self.addCleanup(t.close)
        t.expect(r"ptytest\$ $")
        t.send("echo $((40+2))\r")
        t.expect(r"\n42\n")
        t.send("exit 3\r")
        self.assertEqual(t.wait(), 3)
        self.assertEqual(t.returncode, 3)

    def test_cwd(self):
        env = dict(os.environ, PS1="ptytest$ ", TERM="xterm")
        t = Pty([BASH, "--norc", "--noprofile", "-i"], env=env, cwd="/")
        self.addCleanup(t.close)
        t.expect(r"ptytest\$ $")
        t.send("pwd\r")
        t.expect(r"\n/\n")
        t.send("exit\r")
        self.assertEqual(t.wait(), 0)

    def test_window_size(self):
        t = Pty([STTY, "size"], rows=33, cols=123)
        self.addCleanup(t.close)
        t.expect(r"\b33 123\b")
        self.assertEqual(t.wait(), 0)

    def test_signal_exit_is_negative(self):
        t = Pty([BASH, "--norc", "--noprofile", "-c", "kill -TERM $$"])
        self.addCleanup(t.close)
        self.assertEqual(t.wait(), -15)

    def test_exec_failure(self):
        t = Pty(["/nonexistent/ptydriver-test"])
        self.addCleanup(t.close)
        self.assertEqual(t.wait(), 127)
        self.assertIn("cannot exec", t.output)


class TimeoutAndCloseTest(unittest.TestCase):
    def test_expect_timeout_is_quick(self):
        t = Pty([SLEEP, "30"])
        self.addCleanup(t.close)
        start = time.monotonic()
        with self.assertRaises(AssertionError) as cm:
            t.expect(r"never-appears", timeout=0.5)
        took = time.monotonic() - start
        self.assertGreaterEqual(took, 0.45)
        self.assertLess(took, 1.5)
        self.assertIn("never-appears", str(cm.exception))

    def test_expect_after_eof_fails_at_once(self):
        t = Pty([BASH, "--norc", "--noprofile", "-c", "echo done"])
        self.addCleanup(t.close)
        t.expect(r"done")
        start = time.monotonic()
        with self.assertRaises(AssertionError) as cm:
            t.expect(r"more", timeout=10)
        self.assertLess(time.monotonic() - start, 3)
        self.assertIn("EOF", str(cm.exception))

    def test_wait_timeout(self):
        t = Pty([SLEEP, "30"])
        self.addCleanup(t.close)
        with self.assertRaises(AssertionError):
            t.wait(timeout=0.3)

    def test_close_kills_running_child(self):
        t = Pty([SLEEP, "100"])
        pid = t.pid
        self.addCleanup(t.close)
        self.assertFalse(gone(pid))
        start = time.monotonic()
        t.close()
        self.assertLess(time.monotonic() - start, 1.5)   # SIGTERM was enough
        self.assertTrue(gone(pid))
        self.assertEqual(t.returncode, -15)
        t.close()                                         # idempotent
        self.assertIsNone(t.fd)

    def test_close_escalates_to_sigkill(self):
        code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('rea' + 'dy', flush=True); time.sleep(100)")
        t = Pty([PYTHON, "-c", code], env=py_env())
        pid = t.pid
        self.addCleanup(t.close)
        t.expect(r"ready")
        start = time.monotonic()
        t.close()
        took = time.monotonic() - start
        self.assertGreaterEqual(took, 1.9)
        self.assertLess(took, 4)
        self.assertTrue(gone(pid))
        self.assertEqual(t.returncode, -9)

    def test_context_manager(self):
        with Pty([SLEEP, "100"]) as t:
            pid = t.pid
        self.assertTrue(gone(pid))
        self.assertIsNone(t.fd)


if __name__ == "__main__":
    unittest.main()
