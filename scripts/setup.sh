#!/usr/bin/env bash
# One-time (cached) set-up shared by the two quick-start commands:
#   1. Debian packages (only those missing; needs root or sudo), plus those in KD_SETUP_EXTRA
#      (scripts/test.sh adds chromium for the dashboard's browser test); clang-14, libclang-rt-14-dev
#      (libFuzzer, ASan, UBSan runtimes), llvm-14 (llvm-symbolizer) and libstdc++-11-dev (headers
#      clang can compile LibTorch's with in C++20, cmake/KdSanitizers.cmake) are for fuzz/,
#   2. the real assets (scripts/fetch_assets.sh, checksums verified),
#   3. a Release build with Ninja + ccache in build/ (incremental on later runs).
# Environment: KD_BUILD_DIR (default build), KD_BUILD_TYPE (default Release), KD_CMAKE_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  cmake g++ ninja-build ccache pkg-config
  libtorch-dev libopenblas0-pthread
  libzmq3-dev cppzmq-dev libopencv-dev librocksdb-dev libspdlog-dev
  libgtest-dev libgmock-dev libprotobuf-dev protobuf-compiler libsodium-dev libssl-dev libzstd-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libturbojpeg0-dev libcpp-httplib-dev prometheus-cpp-dev
  clang-14 libclang-rt-14-dev llvm-14 libstdc++-11-dev
)
# shellcheck disable=SC2206
PACKAGES+=(${KD_SETUP_EXTRA:-})

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm fetches the teacher; an npm outside Debian's package (e.g. from nodesource) is fine too.
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "setup: error: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# LibTorch calls libblas.so.3: make sure the optimised OpenBLAS is the one selected
# (the reference BLAS is ~5x slower for the teacher).
if [ "$(id -u)" = 0 ] && command -v update-alternatives >/dev/null; then
  ob=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
  if [ -e "$ob" ]; then
    update-alternatives --set libblas.so.3-x86_64-linux-gnu "$ob" >/dev/null 2>&1 || true
  fi
fi

bash scripts/fetch_assets.sh >/dev/null

# ccache: relative paths so clones in other folders share hits; PCH-friendly sloppiness.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"

BUILD_DIR="${KD_BUILD_DIR:-build}"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  # shellcheck disable=SC2086
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${KD_BUILD_TYPE:-Release}" ${KD_CMAKE_ARGS:-} >/dev/null
fi
echo "setup: building in $BUILD_DIR" >&2
cmake --build "$BUILD_DIR" -- -j"$(nproc)" | grep -Ev '^\[[0-9]+/[0-9]+\] (Building|Linking)' || true
test "${PIPESTATUS[0]}" = 0
