#!/usr/bin/env bash
# Installs what is missing (tools/setup.sh) and builds build/halo.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh "$@"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
