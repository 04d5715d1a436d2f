#!/usr/bin/env bash
# Benchmark (not a test): `repro-oci build SPEC` of an Arch package set against the anchor pipeline on the same
# packages (pacman -U into a root, then a reproducible tar | gzip -n) and against the floor (zstd -d of every
# package + one tar | gzip -n | sha256sum of the rootfs), in one run, for wall time and peak RSS (GNU time).
#
#   bash scripts/bench-arch.sh             the 1× corpus (~120 packages, ~450 MB installed)
#   bash scripts/bench-arch.sh --with-4x   the 1× and the 4× corpus (~470 packages, ~1.8 GB), RSS flatness
#
#   BENCH_SCALE      scale of the first corpus (default 1); the --with-4x corpus is 4× that
#   BENCH_DIR        cache and scratch directory (default .bench/ in the repository, which git ignores)
#   BENCH_SDE        SOURCE_DATE_EPOCH for makepkg, repro-oci and tar (default 1700000000)
#   BENCH_JOBS       parallel makepkg builds while making a corpus (default: CPUs)
#   BENCH_RUNS       runs of the warm build, the install, the pipeline and the floor; the fastest is reported, with
#                    the highest peak RSS of all runs (default 1; more steadies the figures on a busy machine)
#   BENCH_ARCH_MB, BENCH_ARCH_PKGS, BENCH_ARCH_SOURCES: the corpus (see scripts/bench-arch-corpus.ts)
#
# The corpus (real files of this machine, packed by real makepkg as user `builder`, repositories by real
# repo-add) is made once per parameter set under $BENCH_DIR/arch-corpus-x<scale>-<key>/; delete it to make it
# afresh. Needs root (makepkg runs as `builder` through runuser; pacman -U needs root), makepkg, repo-add, pacman,
# zstd, gzip, GNU tar and GNU time. Uses the compiled dist/ as it is (run `npm run build` after
# changing src/).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

with4x=false
for arg in "$@"; do
  case $arg in
    --with-4x) with4x=true ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

bench=${BENCH_DIR:-$repo/.bench}
sde=${BENCH_SDE:-1700000000}
scale=${BENCH_SCALE:-1}
runs=${BENCH_RUNS:-1}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_RUNS must be a positive integer" >&2; exit 2; }
export BENCH_SDE=$sde

[ "$(id -u)" -eq 0 ] || { echo "bench-arch.sh needs root: makepkg runs as user builder through runuser, pacman -U needs root" >&2; exit 2; }
for tool in makepkg repo-add pacman zstd gzip tar sha256sum; do
  command -v "$tool" >/dev/null || { echo "bench-arch.sh needs $tool" >&2; exit 2; }
done
if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time (/usr/bin/time)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >/dev/null; }
fi
[ -f dist/src/cli/main.js ] && [ -f dist/scripts/bench-arch-corpus.js ] || npm run -s build || true
[ -f dist/scripts/bench-arch-corpus.js ] || { echo "dist/scripts/bench-arch-corpus.js is missing: compile first" >&2; exit 2; }

mkdir -p "$bench"
work="$bench/arch-run"
rm -rf "$work"
mkdir -p "$work/hooks"
trap 'rm -rf "$work"' EXIT

# pacman.conf for the pipeline: nothing but what -U of local unsigned files needs.
cat >"$work/pacman.conf" <<'EOF'
[options]
Architecture = x86_64
SigLevel = Never
LocalFileSigLevel = Never
EOF

# measure CMD...: runs CMD under GNU time and sets m_s (wall seconds) and m_kb (peak RSS, KiB); a failing CMD
# ends the benchmark with its output.
measure() {
  local out log
  out=$(mktemp) log=$(mktemp)
  if ! /usr/bin/time -f '%e %M' -o "$out" "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    cat "$out" >&2
    echo "benchmark command failed: $*" >&2
    exit 1
  fi
  read -r m_s m_kb <"$out"
  rm -f "$out" "$log"
}

# best TAG NAME RESET CMD...: runs RESET (a shell function) then measures CMD, $runs times; records the fastest
# wall time and the highest peak RSS as TAG_NAME_s / TAG_NAME_kb, and leaves that run's m_s in best_s.
best() {
  local tag=$1 name=$2 reset=$3 i s=inf kb=0
  shift 3
  for ((i = 0; i < runs; i++)); do
    "$reset"
    measure "$@"
    if awk -v a="$m_s" -v b="$s" 'BEGIN { exit !(b == "inf" || a < b) }'; then s=$m_s; [ -f "$work/split" ] && cp "$work/split" "$work/split.best"; fi
    [ "$m_kb" -gt "$kb" ] && kb=$m_kb
  done
  figures+=("${tag}_${name}_s=$s" "${tag}_${name}_kb=$kb")
}

figures=()
# run_scale S: makes (or reuses) the corpus of scale S and measures every row; figures go into $figures as xN_*.
run_scale() {
  local s=$1 tag=$2 corpus spec lock pkgs root cache out
  corpus=$(BENCH_SCALE=$s node dist/scripts/bench-arch-corpus.js generate "$bench")
  spec="$corpus/spec.yaml" lock="$corpus/spec.lock.json"
  cache="$work/cache" out="$work/out" root="$work/root"
  rm -rf "$cache" "$out" "$root"
  local cli=(node bin/repro-oci.js)
  echo "[$tag] corpus $corpus" >&2

  echo "[$tag] repro-oci lock" >&2
  rm -f "$lock"
  measure "${cli[@]}" lock "$spec"
  figures+=("${tag}_lock_s=$m_s" "${tag}_lock_kb=$m_kb")
  mapfile -t pkgs < <(node dist/scripts/bench-arch-corpus.js packages "$lock")

  # Read every package once so no row pays the first read from disk.
  cat "${pkgs[@]}" >/dev/null

  echo "[$tag] repro-oci build, cold cache (fills it)" >&2
  measure env REPRO_OCI_CACHE="$cache" "${cli[@]}" build "$spec" --source-date-epoch "$sde" -o "oci:$out"
  figures+=("${tag}_cold_s=$m_s" "${tag}_cold_kb=$m_kb")
  rm -rf "$out"
  echo "[$tag] repro-oci build, warm cache (runs: $runs)" >&2
  reset_out() { rm -rf "$out"; }
  best "$tag" build reset_out env REPRO_OCI_CACHE="$cache" "${cli[@]}" build "$spec" --source-date-epoch "$sde" -o "oci:$out"
  rm -rf "$out"

  echo "[$tag] repro-oci install --root (runs: $runs)" >&2
  reset_install() { rm -rf "$work/install"; }
  best "$tag" install reset_install env REPRO_OCI_CACHE="$cache" "${cli[@]}" install "$lock" --root "$work/install" --source-date-epoch "$sde"
  rm -rf "$work/install"

  echo "[$tag] pipeline: pacman -U, then tar | gzip -n (runs: $runs)" >&2
  reset_root() { rm -rf "$root"; mkdir -p "$root/var/lib/pacman"; }
  # shellcheck disable=SC2016 # expanded by the inner bash
  best "$tag" pipe reset_root bash -c '
    set -euo pipefail
    root=$1 conf=$2 hooks=$3 sde=$4 split=$5; shift 5
    t0=$(date +%s.%N)
    pacman -U --noscriptlet --root "$root" --dbpath "$root/var/lib/pacman" --config "$conf" --hookdir "$hooks" \
      --noconfirm --logfile /dev/null "$@"
    t1=$(date +%s.%N)
    tar --sort=name --mtime=@"$sde" --clamp-mtime --pax-option=delete=atime,delete=ctime --numeric-owner -C "$root" -c . | gzip -n >/dev/null
    t2=$(date +%s.%N)
    echo "$t0 $t1 $t2" >"$split"' _ "$root" "$work/pacman.conf" "$work/hooks" "$sde" "$work/split" "${pkgs[@]}"
  rm -f "$work/split"
  local t0 t1 t2
  read -r t0 t1 t2 <"$work/split.best"
  figures+=("${tag}_pacman_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" "${tag}_targz_s=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", b - a }')")

  echo "[$tag] floor: zstd -d of every package + tar | gzip -n | sha256sum of the rootfs (runs: $runs)" >&2
  noop() { :; }
  # shellcheck disable=SC2016 # expanded by the inner bash
  best "$tag" floor noop bash -c '
    set -euo pipefail
    root=$1 sde=$2; shift 2
    zstd -d -q -c "$@" >/dev/null
    tar --sort=name --mtime=@"$sde" --clamp-mtime --pax-option=delete=atime,delete=ctime --numeric-owner -C "$root" -c . | gzip -n | sha256sum >/dev/null' _ "$root" "$sde" "${pkgs[@]}"
  rm -rf "$root" "$cache"

  local csize isize files
  csize=$(du -ck --apparent-size "${pkgs[@]}" | tail -n1 | cut -f1)
  isize=$(node -e 'const c=require(process.argv[1]);process.stdout.write(String(Math.round(c.installedBytes/1024)))' "$corpus/corpus.json")
  files=$(node -e 'const c=require(process.argv[1]);process.stdout.write(String(c.files))' "$corpus/corpus.json")
  figures+=("${tag}_pkgs=${#pkgs[@]}" "${tag}_csize_kb=$csize" "${tag}_isize_kb=$isize" "${tag}_files=$files" "${tag}_dir=$corpus")
}

load_start=$(cut -d' ' -f1 /proc/loadavg)
run_scale "$scale" x1
if $with4x; then
  run_scale "$(awk -v s="$scale" 'BEGIN { print s * 4 }')" x4
fi

echo
node dist/scripts/bench-arch-corpus.js report cpus="$(nproc)" load_start="$load_start" load_end="$(cut -d' ' -f1 /proc/loadavg)" "${figures[@]}"
if ! $with4x; then
  echo
  echo "for the 4× corpus (~470 packages, ~1.8 GB installed; the first run packs it with makepkg, some minutes) and RSS flatness:"
  echo "  bash scripts/bench-arch.sh --with-4x     (or: npm run bench:arch -- --with-4x)"
fi
