"""Run test modules side by side, each in its own `python3 -m unittest -v`
process, and report them one after the other.

    python3 side_by_side.py test_checks test_checks_strict
    python3 side_by_side.py test_stack+test_swarm test_checks_faults

A "+" joins suites into one lane: they run one after the other in one
process, beside the other lanes (a short suite and a long one's partner).

The six checks on the reference stack spend most of their time waiting
(kill windows, the LB's fail_timeout, schedule ticks), so two suites on
stacks of their own (their own compose project, ports and settings file)
share two cores well and take little longer than the longer one alone.
Each suite's output is printed whole, under its name, as it ends; the exit
status is 0 only when every suite passed. A signal stops every suite (each
takes its stack down on SIGTERM).
"""
import signal
import subprocess
import sys
import tempfile
import time


def main(modules):
    procs = {}
    for module in modules:
        log = tempfile.TemporaryFile("w+")
        procs[module] = (subprocess.Popen([sys.executable, "-m", "unittest", "-v"] + module.split("+"), stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL), log, time.monotonic())

    def stop(signum, frame):
        for proc, _, _ in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    failed = []
    pending = dict(procs)
    while pending:
        for module, (proc, log, started) in list(pending.items()):
            if proc.poll() is None:
                continue
            del pending[module]
            log.seek(0)
            print(f"\n======== {module}: exit {proc.returncode} after {time.monotonic() - started:.0f} s ========",
                  flush=True)
            sys.stdout.write(log.read())
            sys.stdout.flush()
            log.close()
            if proc.returncode != 0:
                failed.append(module)
        time.sleep(0.5)
    print(f"\n{len(modules) - len(failed)} of {len(modules)} suites passed"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: side_by_side.py MODULE[+MODULE...]...")
    sys.exit(main(sys.argv[1:]))
