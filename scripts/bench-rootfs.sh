#!/usr/bin/env bash
# Benchmark (not a test): `repro-oci build --rootfs DIR` against a plain reproducible tar | gzip -n of the same
# tree, measured in the same run for wall time and peak RSS. A second, ~4x smaller input shows whether our peak
# RSS grows with the input size (it should not: the layer is streamed).
#
#   BENCH_SOURCE_MB  size of the large input in MB (default 500); the small one is a quarter of it
#   BENCH_DIR        cache and scratch directory (default .bench/ in the repository, which git ignores)
#   BENCH_SDE        SOURCE_DATE_EPOCH for both tools (default 1700000000)
#   BENCH_SOURCES    directories copied from, in order, until the size is reached
#                    (default "/usr/lib/x86_64-linux-gnu /usr/share")
#
# Uses the compiled dist/ as it is (run `npm run build` first after changing src/).
# The input trees are copied once and kept in $BENCH_DIR/src-<MB>MB; delete that directory to copy afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

mb=${BENCH_SOURCE_MB:-500}
bench=${BENCH_DIR:-$repo/.bench}
sde=${BENCH_SDE:-1700000000}
read -r -a sources <<<"${BENCH_SOURCES:-/usr/lib/x86_64-linux-gnu /usr/share}"
[[ $mb =~ ^[0-9]+$ ]] && [ "$mb" -ge 4 ] || { echo "BENCH_SOURCE_MB must be an integer >= 4" >&2; exit 2; }
small_mb=$((mb / 4))

if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time (/usr/bin/time)" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends time >/dev/null ||
    { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends time >/dev/null; }
fi
[ -f dist/src/cli/main.js ] && [ -f dist/scripts/bench-rootfs.js ] || npm run -s build

mkdir -p "$bench"

# copy_tree MB DEST: about MB megabytes of regular-file content (hardlinks counted once) under $sources,
# chosen by dist/scripts/bench-rootfs.js, copied once with tar so modes, symlinks and hardlinks are kept.
copy_tree() {
  local want=$1 dest=$2
  if [ -f "$dest/.complete" ]; then return; fi
  rm -rf "$dest"
  mkdir -p "$dest/tree"
  echo "copying ~${want} MB of ${sources[*]} into $dest (once)" >&2
  node dist/scripts/bench-rootfs.js select "$want" "$dest/list" "${sources[@]}"
  tar -C / --null --verbatim-files-from --no-recursion -T "$dest/list" -cf - | tar -C "$dest/tree" -xf -
  rm -f "$dest/list"
  touch "$dest/.complete"
}

# measure CMD...: runs CMD under GNU time and sets m_s (wall seconds) and m_kb (peak RSS, KiB); a failing CMD
# ends the benchmark.
measure() {
  local out
  out=$(mktemp)
  if ! /usr/bin/time -f '%e %M' -o "$out" "$@" >/dev/null; then
    cat "$out" >&2
    echo "benchmark command failed: $*" >&2
    exit 1
  fi
  read -r m_s m_kb <"$out"
  rm -f "$out"
}

large="$bench/src-${mb}MB"
small="$bench/src-${small_mb}MB"
copy_tree "$mb" "$large"
copy_tree "$small_mb" "$small"

size_mb() { du -sm --apparent-size "$1/tree" | cut -f1; }
files() { find "$1/tree" -type f | wc -l; }

# Warm the page cache for both trees so neither tool pays the first read.
find "$large/tree" "$small/tree" -type f -exec cat {} + >/dev/null

out="$bench/out"
repro() { rm -rf "$out"; measure node bin/repro-oci.js build --rootfs "$1/tree" --source-date-epoch "$sde" -o "oci:$out"; }
# shellcheck disable=SC2016 # expanded by the inner bash
tar_gzip() { measure bash -c 'set -o pipefail; tar --sort=name --mtime=@"$2" --clamp-mtime --numeric-owner --pax-option=delete=atime,delete=ctime -C "$1" -c . | gzip -n >/dev/null' _ "$1/tree" "$sde"; }

repro "$large"
repro_s=$m_s repro_kb=$m_kb
tar_gzip "$large"
tar_s=$m_s tar_kb=$m_kb
repro "$small"
small_s=$m_s small_kb=$m_kb
rm -rf "$out"

node dist/scripts/bench-rootfs.js report \
  large_mb="$(size_mb "$large")" large_files="$(files "$large")" small_mb="$(size_mb "$small")" small_files="$(files "$small")" \
  repro_s="$repro_s" repro_kb="$repro_kb" tar_s="$tar_s" tar_kb="$tar_kb" small_s="$small_s" small_kb="$small_kb"
