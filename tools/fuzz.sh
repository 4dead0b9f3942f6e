#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang-14, ASan+UBSan) in
# build-fuzz/ and runs each for a bounded time. Exits non-zero when any
# target crashed, leaked, hung or broke one of its checks; the input that
# did it is kept in build-fuzz/artifacts/<target>/ (see fuzz/README.md for
# what to do with it).
#
#   tools/fuzz.sh               every target, 20 s each
#   tools/fuzz.sh 300           every target, 5 minutes each
#   tools/fuzz.sh 60 json stack only these targets
#
# What a run finds is kept between runs: libFuzzer grows
# build-fuzz/corpus/<target>/ (the seeds in fuzz/corpus/ stay as they
# are). HALO_FUZZ_KNOWN=id,... lets the checks of reported, still open
# bugs stand down (fuzz/README.md lists the ids); libFuzzer flags can be
# added with HALO_FUZZ_FLAGS="-jobs=4 -workers=4".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/build-fuzz
all_targets=(json stack docker_demux http_headers report zlib)

seconds=20
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "tools/fuzz.sh: no target '$t' (${all_targets[*]})" >&2; exit 2; }
done

started=$(date +%s)
tools/setup.sh
# clang and its runtimes (libFuzzer, the sanitizers): not part of setup.sh,
# which covers the default build.
need=()
for p in clang-14 libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "tools/fuzz.sh: missing packages (${need[*]}); run me as root to install them" >&2
    exit 1
  fi
  echo "tools/fuzz.sh: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-14 -DHALO_FUZZ=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

# A private TMPDIR: the stack target writes its stack files there, and a
# crashed run leaves its directory behind.
export TMPDIR=$build/tmp
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"
# Sanitizer reports end a run at the first error; leaks are checked per
# input by libFuzzer itself.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# One target for its time; its summary line in $build/result-$t (the
# targets run side by side, one per core, each for its whole time).
fuzz_one() {
  local t=$1 corpus=$build/corpus/$1 artifacts=$build/artifacts/$1
  mkdir -p "$corpus" "$artifacts"
  local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
              -artifact_prefix="$artifacts/")
  [ -f "fuzz/dict/$t.dict" ] && args+=(-dict="fuzz/dict/$t.dict")
  # shellcheck disable=SC2206
  local extra=(${HALO_FUZZ_FLAGS:-})
  local log=$build/fuzz-$t.log stamp=$artifacts/.started rc=0
  touch "$stamp"
  echo "tools/fuzz.sh: $t for ${seconds} s (log: $log)"
  "$build/fuzz/fuzz_$t" "${args[@]}" "${extra[@]}" "$corpus" "$root/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  local runs speed cov
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  if [ "$rc" = 0 ]; then
    printf '%-13s ok      %9s runs %7s exec/s  %s\n' "$t" "${runs:-?}" "${speed:-?}" "$cov" >"$build/result-$t"
  else
    printf '%-13s FAILED  %9s runs %7s exec/s  %s (exit %s)\n' "$t" "${runs:-?}" "${speed:-?}" "$cov" "$rc" \
      >"$build/result-$t"
    {
      echo "tools/fuzz.sh: $t FAILED (exit $rc); the end of its log:"
      grep -v -E '^#[0-9]+ +(NEW|REDUCE|pulse)' "$log" | tail -60
      find "$artifacts" -type f -newer "$stamp" ! -name .started | while read -r a; do
        echo "tools/fuzz.sh: reproduce with: $build/fuzz/fuzz_$t $a"
      done
    } >"$build/failure-$t"
  fi
}

jobs_max=$(nproc)
rm -f "$build"/result-* "$build"/failure-*
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
  fuzz_one "$t" &
done
wait

failed=()
summary=()
for t in "${targets[@]}"; do
  summary+=("$(cat "$build/result-$t" 2>/dev/null || echo "$t           no result")")
  if [ -f "$build/failure-$t" ] || [ ! -f "$build/result-$t" ]; then
    failed+=("$t")
    [ -f "$build/failure-$t" ] && cat "$build/failure-$t" >&2
  fi
done

echo
printf '%s\n' "${summary[@]}"
echo "tools/fuzz.sh: $(( $(date +%s) - started )) s in all"
if [ ${#failed[@]} -gt 0 ]; then
  echo "tools/fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
