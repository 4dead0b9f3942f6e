"""A small pseudo-terminal driver for tests that type into an interactive
program (the libedit REPL) the way a person does.

    with Pty([HALO, "repl"]) as t:
        t.expect(r"> $")
        t.send("1+1\r")
        t.expect(r"\b2\b")
        t.send("\x04")              # Ctrl-D
        assert t.wait() == 0

The child runs as a session leader with the pty as its controlling terminal,
so "\x03" typed into it delivers SIGINT to its foreground process group just
as a real Ctrl-C would.  Output is kept twice: `raw` (the bytes as received)
and `output` (decoded as UTF-8 with errors='replace', with ANSI escape
sequences, BEL and \\r removed); `expect` searches the cleaned text received
since the end of the previous successful match.

Nothing here blocks: every read goes through select with a timeout, and the
child is only ever signalled by its own pid.  Standard library only.
"""
import codecs
import errno
import fcntl
import os
import re
import select
import signal
import struct
import termios
import time

__all__ = ["Pty", "clean"]

# Complete escape sequences, removed from the cleaned output.
_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"                  # CSI: ESC [ params intermediates final
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"       # OSC: ESC ] ... BEL or ST
    r"|\x1b[PX^_][^\x1b]*\x1b\\"                # DCS / SOS / PM / APC: ... ST
    r"|\x1b[ -/]*[0-~]"                         # other ESC sequences (ESC 7, ESC =, ESC ( B)
    r"|[\r\x07]"                                # carriage returns and bells
)

# A sequence that has started but not finished at the end of the text
# received so far; it is held back until the rest arrives.
_INCOMPLETE = re.compile(
    r"\x1b(?:"
    r"\[[0-?]*[ -/]*"
    r"|\][^\x07\x1b]*\x1b?"
    r"|[PX^_][^\x1b]*\x1b?"
    r"|[ -/]*"
    r")\Z"
)

# An unterminated sequence longer than this is given up on and shown as text.
_MAX_PENDING = 4096


def clean(text):
    """Remove ANSI escape sequences (CSI, OSC, DCS, 2-char ESC), BEL and \\r
    from a complete piece of text.  Backspaces are left in."""
    return _ESCAPE.sub("", text)


class _Cleaner:
    """Incremental bytes -> cleaned text, safe against UTF-8 characters and
    escape sequences split across reads."""

    def __init__(self):
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, data, final=False):
        text = self._pending + self._decoder.decode(data, final)
        self._pending = ""
        if not final:
            m = _INCOMPLETE.search(text)
            if m and len(text) - m.start() <= _MAX_PENDING:
                self._pending = text[m.start():]
                text = text[:m.start()]
        return clean(text)


def _exitcode(status):
    return os.waitstatus_to_exitcode(status)


class Pty:
    """Spawn argv on a new pseudo-terminal and drive it.

    env=None inherits os.environ; TERM is set to "xterm" if the environment
    does not name one.  The window size (rows x cols) is set on the terminal
    before exec.  Signal dispositions and the signal mask are reset to the
    defaults in the child, and descriptors other than 0-2 are closed.
    """

    def __init__(self, argv, env=None, cwd=None, rows=40, cols=200):
        argv = [os.fspath(a) for a in argv]
        if not argv:
            raise ValueError("empty argv")
        env = dict(os.environ if env is None else env)
        env.setdefault("TERM", "xterm")
        self.argv = argv
        self.pid = None
        self.fd = None
        self.returncode = None
        self._raw = bytearray()
        self._out = []          # cleaned chunks, joined lazily
        self._out_str = ""
        self._offset = 0        # into the cleaned output: end of the last match
        self._eof = False
        self._cleaner = _Cleaner()
        winsize = struct.pack("HHHH", rows, cols, 0, 0)

        pid, fd = os.forkpty()
        if pid == 0:            # child: never return into the caller's code
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, winsize)
                for sig in signal.valid_signals():
                    if sig in (signal.SIGKILL, signal.SIGSTOP):
                        continue
                    try:
                        signal.signal(sig, signal.SIG_DFL)
                    except (OSError, ValueError):
                        pass
                signal.pthread_sigmask(signal.SIG_SETMASK, [])
                os.closerange(3, 65536)
                if cwd is not None:
                    os.chdir(cwd)
                os.execvpe(argv[0], argv, env)
            except BaseException as e:
                try:
                    os.write(2, ("ptydriver: cannot exec %r: %s\r\n" % (argv, e)).encode())
                except BaseException:
                    pass
            finally:
                os._exit(127)

        self.pid = pid
        self.fd = fd
        os.set_inheritable(fd, False)
        os.set_blocking(fd, False)
        try:
            fcntl.ioctl(fd, termios.TIOCSWINSZ, winsize)
        except OSError:
            pass

    # -- output -------------------------------------------------------------

    @property
    def output(self):
        """All cleaned output received so far."""
        if self._out:
            self._out_str += "".join(self._out)
            self._out = []
        return self._out_str

    @property
    def raw(self):
        """All bytes received so far, untouched."""
        return bytes(self._raw)

    @property
    def eof(self):
        return self._eof

    def _read(self, timeout):
        """Wait up to timeout seconds for output and take what is there.
        Returns True if anything was read."""
        if self._eof or self.fd is None:
            return False
        try:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        except InterruptedError:
            return False
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return False
        except OSError as e:
            if e.errno != errno.EIO:    # EIO: every slave fd closed, i.e. EOF
                raise
            data = b""
        if not data:
            self._eof = True
            self._out.append(self._cleaner.feed(b"", final=True))
            return False
        self._raw += data
        self._out.append(self._cleaner.feed(data))
        return True

    def _drain(self, limit=0.5):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and self._read(0):
            pass

    def _tail(self, n=2000):
        out = self.output
        return out[-n:]

    def _describe(self):
        state = []
        if self._eof:
            state.append("terminal closed (EOF)")
        if self.returncode is not None:
            state.append("child exited with %s" % self.returncode)
        return "; ".join(state) or "child running"

    # -- input --------------------------------------------------------------

    def send(self, text, timeout=10):
        """Type text (str, encoded as UTF-8, or bytes) into the terminal.
        Output is drained while writing so neither side can deadlock."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        if self.fd is None:
            raise AssertionError("send() on a closed Pty")
        deadline = time.monotonic() + timeout
        while data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("send() timed out with %d bytes unwritten (%s)"
                                     % (len(data), self._describe()))
            try:
                r, w, _ = select.select([] if self._eof else [self.fd], [self.fd], [],
                                        min(left, 0.1))
            except InterruptedError:
                continue
            if r:
                self._read(0)
            if w:
                try:
                    n = os.write(self.fd, data)
                except BlockingIOError:
                    continue
                except OSError as e:
                    if e.errno == errno.EIO:
                        raise AssertionError("send(): terminal closed (%s)" % self._describe())
                    raise
                data = data[n:]

    # -- matching -------------------------------------------------------------

    @staticmethod
    def _compile(pattern):
        return pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)

    def expect(self, pattern, timeout=10):
        """Read until the regex matches the cleaned output received since the
        last successful expect; return the re.Match (positions are relative
        to that point).  AssertionError on timeout, or at once if the
        terminal reaches EOF without a match."""
        rx = self._compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.output[self._offset:])
            if m:
                self._offset += m.end()
                return m
            if self._eof:
                raise AssertionError(
                    "expect(%r): no match before EOF (%s); last output:\n"
                    "----\n%s\n----" % (rx.pattern, self._describe(), self._tail()))
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    "expect(%r) timed out after %ss (%s); last output:\n"
                    "----\n%s\n----" % (rx.pattern, timeout, self._describe(), self._tail()))
            self._read(min(left, 0.1))

    def expect_not(self, pattern, seconds):
        """Read for `seconds`; AssertionError (raised as soon as seen) if the
        regex matches the output received since the last successful expect.
        Does not move the expect position."""
        rx = self._compile(pattern)
        deadline = time.monotonic() + seconds
        while True:
            m = rx.search(self.output[self._offset:])
            if m:
                raise AssertionError(
                    "expect_not(%r): unwanted match %r; last output:\n----\n%s\n----"
                    % (rx.pattern, m.group(0), self._tail()))
            left = deadline - time.monotonic()
            if left <= 0 or self._eof:
                return
            self._read(min(left, 0.1))

    # -- process ----------------------------------------------------------------

    def setwinsize(self, rows, cols):
        """Resize the terminal (the child gets SIGWINCH)."""
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def _poll(self):
        if self.returncode is None and self.pid is not None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1 if self.returncode is None else self.returncode
                return self.returncode
            if pid:
                self.returncode = _exitcode(status)
        return self.returncode

    def isalive(self):
        return self._poll() is None

    def _after_exit_drain(self, limit=1.0):
        # The child is gone; take what it left in the buffer.  A grandchild
        # still holding the terminal open must not keep us here forever.
        deadline = time.monotonic() + limit
        while not self._eof and time.monotonic() < deadline:
            if not self._read(0.05):
                break

    def wait(self, timeout=10):
        """Wait for the child to exit, draining output meanwhile; return its
        exit status (negative for a signal).  AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while self._poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    "wait(): child %d still running after %ss; last output:\n----\n%s\n----"
                    % (self.pid, timeout, self._tail()))
            if self._eof or self.fd is None:
                time.sleep(min(left, 0.02))
            else:
                self._read(min(left, 0.05))
        self._after_exit_drain()
        return self.returncode

    def close(self):
        """Stop the child if it is still running (SIGTERM, then SIGKILL after
        2 s, by pid), reap it and close the terminal.  Idempotent."""
        if self.pid is not None and self._poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 2.0
            while self._poll() is None and time.monotonic() < deadline:
                if self._eof or self.fd is None:
                    time.sleep(0.02)
                else:
                    self._read(0.05)
            if self._poll() is None:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    _, status = os.waitpid(self.pid, 0)
                    self.returncode = _exitcode(status)
                except ChildProcessError:
                    self.returncode = -signal.SIGKILL
        if self.fd is not None:
            self._drain()
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
