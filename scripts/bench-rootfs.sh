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
[ -f dist/src/cli/main.js ] || npx tsc -p tsconfig.json

mkdir -p "$bench"

# copy_tree MB DEST: the first MB megabytes of regular-file content under $sources (directories, symlinks and
# hardlinks come along), copied once with tar so modes and links are kept.
copy_tree() {
  local want=$1 dest=$2
  if [ -f "$dest/.complete" ]; then return; fi
  rm -rf "$dest" "$dest.list"
  mkdir -p "$dest/tree"
  echo "copying ~${want} MB of ${sources[*]} into $dest (once)" >&2
  # Names with a newline cannot go through a line list; /usr has none, and any would simply be left out.
  find "${sources[@]}" -xdev \( -type d -o -type f -o -type l \) -printf '%y %s %p\n' 2>/dev/null |
    awk -v limit=$((want * 1024 * 1024)) '{ if ($1 == "f") total += $2; if (total > limit) exit; print substr($0, index(substr($0, index($0, " ") + 1), " ") + index($0, " ") + 1) }' \
      >"$dest.list"
  tar -C / --no-recursion --verbatim-files-from -T <(sed 's|^/||' "$dest.list") -cf - 2>/dev/null | tar -C "$dest/tree" -xf -
  rm -f "$dest.list"
  touch "$dest/.complete"
}

# measure LABEL CMD...: runs CMD under GNU time; prints "seconds peak_rss_kb".
measure() {
  local out
  out=$(mktemp)
  /usr/bin/time -f '%e %M' -o "$out" "$@" >/dev/null
  tail -n 1 "$out"
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
tar_gzip() { measure bash -c 'tar --sort=name --mtime=@"$2" --clamp-mtime --numeric-owner --pax-option=delete=atime,delete=ctime -C "$1" -c . | gzip -n >/dev/null' _ "$1/tree" "$sde"; }

read -r repro_s repro_kb < <(repro "$large")
read -r tar_s tar_kb < <(tar_gzip "$large")
read -r small_s small_kb < <(repro "$small")
rm -rf "$out"

awk -v mb="$(size_mb "$large")" -v nf="$(files "$large")" -v smb="$(size_mb "$small")" -v snf="$(files "$small")" \
  -v rs="$repro_s" -v rk="$repro_kb" -v ts="$tar_s" -v tk="$tar_kb" -v ss="$small_s" -v sk="$small_kb" 'BEGIN {
  printf "input: %d MB in %d files (small: %d MB in %d files); peak RSS of the tar pipeline is its largest process\n\n", mb, nf, smb, snf
  printf "%-34s %9s %13s\n", "", "seconds", "peak RSS MB"
  printf "%-34s %9.2f %13.1f\n", "repro-oci build (" mb " MB)", rs, rk / 1024
  printf "%-34s %9.2f %13.1f\n", "tar | gzip -n (" mb " MB)", ts, tk / 1024
  printf "%-34s %9.2f %13.2f\n", "ratio repro-oci / tar", (ts > 0 ? rs / ts : 0), (tk > 0 ? rk / tk : 0)
  printf "%-34s %9.2f %13.1f\n", "repro-oci build (" smb " MB)", ss, sk / 1024
  printf "%-34s %9.2f %13.2f\n", "ratio large / small input", (ss > 0 ? rs / ss : 0), (sk > 0 ? rk / sk : 0)
}'
