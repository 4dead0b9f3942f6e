#!/usr/bin/env bash
# Builds halo, its plugins and the unit tests with AddressSanitizer and
# UndefinedBehaviorSanitizer in build-asan/ and runs the test suite against
# that build, leak checking on. Fails on a failing test and on any sanitizer
# report, also one from a halo a test ran and whose exit code it ignored
# (every report is written to a log file, which this script checks).
#
#   tools/sanitize.sh                 build + every test but the long end-to-end ones
#   tools/sanitize.sh -R lua.         only the tests ctest -R selects (the
#                                     ones run apart, below, are left out)
#   CC=clang-14 tools/sanitize.sh     another compiler (gcc by default; a
#                                     build-asan made with another one is
#                                     made again from scratch)
#
# Left out: test_checks, test_stack and test_repl, long end-to-end runs of
# the reference stack (Docker), minutes each even without the sanitizers;
# for the same reason test_html_report's StackReports.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/build-asan

started=$(date +%s)
tools/setup.sh

cc=${CC:-cc}
cc_path=$(command -v "$cc")
# A build directory configured with another compiler cannot be switched.
if [ -f "$build/CMakeCache.txt" ]; then
  cached=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
  if [ -n "$cached" ] && [ "$(readlink -f "$cached")" != "$(readlink -f "$cc_path")" ]; then
    echo "tools/sanitize.sh: $build was configured with $cached; starting it over with $cc_path" >&2
    rm -rf "$build"
  fi
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$cc_path" \
      -DHALO_SANITIZE=ON >/dev/null
cmake --build "$build" -j"$(nproc)"

# Every sanitizer report of this run lands in logs/<tool>.<pid>.
logs=$build/sanitizer-logs
rm -rf "$logs"
mkdir -p "$logs"
# quarantine_size_mb: ASan keeps freed memory from reuse (256 MiB by
# default) to catch a use after free, and that memory counts in halo's RSS,
# which test_sql asserts stays under 200 MiB while it refuses a huge result.
# 64 MiB is still far more than any test frees between a free and a stray
# use.
asan_options="detect_leaks=1:detect_stack_use_after_return=1:quarantine_size_mb=64:log_path=$logs/asan"
export ASAN_OPTIONS=$asan_options
# Leaks in system libraries only (none known so far); see the file.
export LSAN_OPTIONS="suppressions=$root/tools/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan"

# valgrind cannot run an ASan binary ("ASan runtime does not come first"),
# and the tests that use it when it is installed (test_http's Leaks, the
# samples of test_alloc_failures) fail on that. They run with a PATH where
# every program but valgrind is found, and leave out what needs it, as on
# a machine without valgrind; LeakSanitizer checks every halo they run.
novg=$build/path-without-valgrind
rm -rf "$novg"
mkdir -p "$novg"
IFS=: read -r -a path_dirs <<< "$PATH"
for d in "${path_dirs[@]}"; do
  [ -d "$d" ] || continue
  for f in "$d"/*; do
    name=${f##*/}
    case $name in valgrind*|vgdb) continue ;; esac
    if [ -f "$f" ] && [ -x "$f" ] && [ ! -e "$novg/$name" ]; then ln -s "$f" "$novg/$name"; fi
  done
done
export PATH=$novg

status=0
long="test_checks|test_stack|test_repl"
# Run apart, after the others and one at a time:
#   test_limits   kills a worker with SIGSEGV on purpose (WorkerCrashTest);
#                 ASan would take the signal for a crash of its own, report
#                 it and exit 1 instead of dying of the signal the runner
#                 must report: handle_segv=0.
#   test_faults   asserts the worker's peak RSS (100k headers < 256 MiB;
#                 20 MiB without ASan): the quarantine's freed memory alone
#                 passes that, so it runs with a 4 MiB one.
#   test_hostile  has 4 s hard deadlines that a 20 MB error message under
#                 ASan nearly fills (3.3 s) when nothing else runs.
#   test_html_report  without StackReports (the reference stack, see above).
apart="e2e.test_limits|e2e.test_faults|e2e.test_hostile|e2e.test_html_report"

# 1. Everything else, in parallel.
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" -E "$long|(${apart})\$" "$@" || status=$?

# [-0] a test module of tests/engine without some of its classes, run as
# ctest runs it (same directory, same environment)
unittest_without() {
  local module=$1
  shift
  local classes=()
  read -r -a classes < <(cd tests/engine && python3 -c '
import sys, unittest, importlib
m = importlib.import_module(sys.argv[1])
print(" ".join(sys.argv[1] + "." + n for n, o in vars(m).items()
               if isinstance(o, type) and issubclass(o, unittest.TestCase)
               and o.__module__ == sys.argv[1] and n not in sys.argv[2:]))' "$module" "$@")
  echo "tools/sanitize.sh: $module without $*: ${classes[*]}"
  (cd tests/engine && HALO_BIN="$build/halo" HALO_SOURCE="$root" timeout 1200 python3 -m unittest "${classes[@]}")
}

# 2. The tests run apart (not when ctest arguments chose the tests).
if [ $# -eq 0 ]; then
  ASAN_OPTIONS="$asan_options:handle_segv=0" \
    ctest --test-dir "$build" --output-on-failure -R "e2e.test_limits\$" || status=$?
  ASAN_OPTIONS="${asan_options/quarantine_size_mb=64/quarantine_size_mb=4}" \
    ctest --test-dir "$build" --output-on-failure -R "e2e.test_faults\$" || status=$?
  ctest --test-dir "$build" --output-on-failure -R "e2e.test_hostile\$" || status=$?
  unittest_without test_html_report StackReports || status=$?
fi

reports=$(find "$logs" -type f | sort)
if [ -n "$reports" ]; then
  echo >&2
  echo "tools/sanitize.sh: sanitizer reports:" >&2
  for f in $reports; do
    echo "==== $f" >&2
    cat "$f" >&2
  done
  [ "$status" = 0 ] && status=1
fi

elapsed=$(( $(date +%s) - started ))
if [ "$status" = 0 ]; then
  echo "tools/sanitize.sh: clean under ASan+UBSan (${elapsed} s)"
else
  echo "tools/sanitize.sh: FAILED (${elapsed} s): see the test output and reports above" >&2
fi
exit "$status"
