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
A line says when each suite ends; at the end every failure is summed up
in a line or two, then each suite's output follows whole, under its name,
then the summary again. The exit status is 0 only when every suite passed. A signal stops every suite (each
takes its stack down on SIGTERM).
"""
import re
import signal
import subprocess
import sys
import tempfile
import time


def what_failed(text, width=400):
    """Each "FAIL:"/"ERROR:" header of unittest's output with the last line
    of its traceback (the exception and the start of its message)."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if not line.startswith(("FAIL: ", "ERROR: ")):
            continue
        # the traceback ends where the next section's ==== or ---- rule starts
        end = next((j for j in range(i + 2, len(lines)) if lines[j].startswith(("=====", "-----"))), len(lines))
        at = next((j for j in range(i + 2, end) if re.match(r"^[\w.]*(Error|Exception|Expired)\b", lines[j])), None)
        out.append(line)
        if at is not None:
            # the exception and what its message says next (a status table, the command's error)
            said = " | ".join(l.strip() for l in lines[at:min(end, at + 6)] if l.strip())
            out.append("  " + (said if len(said) <= width else said[:width] + " [...]"))
    return out


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

    failed, outputs = [], []
    pending = dict(procs)
    while pending:
        for module, (proc, log, started) in list(pending.items()):
            if proc.poll() is None:
                continue
            del pending[module]
            log.seek(0)
            header = f"======== {module}: exit {proc.returncode} after {time.monotonic() - started:.0f} s ========"
            print(header, flush=True)
            text = log.read()
            log.close()
            outputs.append((header, text))
            if proc.returncode != 0:
                failed.append((module, what_failed(text)))
        time.sleep(0.5)
    # A CI log may keep only the start and the end of a long output: each
    # failure in a line or two comes before the lanes' outputs and again
    # after them.
    summary = [f"{len(modules) - len(failed)} of {len(modules)} suites passed"
               + (f"; failed: {', '.join(m for m, _ in failed)}" if failed else "")]
    for module, lines in failed:
        summary.append(f"  {module}:")
        summary += [f"    {line}" for line in lines or ["(no FAIL or ERROR section: see its output below)"]]
    print("\n".join(summary), flush=True)
    for header, text in outputs:
        sys.stdout.write(f"\n{header}\n{text}")
    print("\n" + "\n".join(summary), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: side_by_side.py MODULE[+MODULE...]...")
    sys.exit(main(sys.argv[1:]))
