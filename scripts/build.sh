#!/usr/bin/env bash
# Configures and builds into a build directory.
#   scripts/build.sh                  -> build/ (RelWithDebInfo)
#   scripts/build.sh asan             -> build-asan/ (ASan + UBSan)
#   scripts/build.sh fuzz             -> build-fuzz/ (clang, libFuzzer harnesses)
#   scripts/build.sh tsan             -> build-tsan/ (clang, ThreadSanitizer)
# Extra CMake arguments can be given in CM_CMAKE_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --build-only
kind=${1:-release}
jobs=$(nproc)
case "$kind" in
  release) dir=build;      args=() ;;
  asan)    dir=build-asan; args=(-DCM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug) ;;
  fuzz)    dir=build-fuzz; args=(-DCM_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  tsan)    dir=build-tsan; args=(-DCM_TSAN=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  *) echo "usage: $0 [release|asan|fuzz|tsan]" >&2; exit 2 ;;
esac
if [ -n "${CI:-}" ]; then args+=(-DCM_WERROR=ON); fi
# shellcheck disable=SC2086
cmake -S . -B "$dir" "${args[@]}" ${CM_CMAKE_ARGS:-} >/dev/null
cmake --build "$dir" -j "$jobs"
