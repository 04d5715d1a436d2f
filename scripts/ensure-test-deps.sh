#!/usr/bin/env bash
# Installs the Debian packages the test suite uses as real peers, when any is missing.
set -euo pipefail
declare -A need=(
  [skopeo]=skopeo [umoci]=umoci [zstd]=zstd [bsdtar]=libarchive-tools
  [pacman]=pacman-package-manager [vercmp]=pacman-package-manager [repo-add]=pacman-package-manager
  [xz]=xz-utils [makepkg]=makepkg [fakeroot]=fakeroot [bwrap]=bubblewrap [gpg]=gnupg
  [docker-registry]=docker-registry [faketime]=faketime
  [htpasswd]=apache2-utils [openssl]=openssl [man]=man-db
  # oci-import: outputs (git) and docker-library's index rewrite redone with jq (test/oci-import.test.ts).
  [git]=git [jq]=jq
  # in-toto (Python) and its ed25519 backend python3-nacl, a Depends: the attestation cross-check.
  [in-toto-run]=in-toto [in-toto-sign]=in-toto [in-toto-keygen]=in-toto
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# Python modules, not commands: the DSSE cross-check (test/dsse-crosscheck.test.ts) signs and verifies with Debian's
# securesystemslib and its backends (cryptography for ECDSA, nacl for ed25519 signing), run by /usr/bin/python3.
for pkg in python3-securesystemslib python3-cryptography python3-nacl; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
# A static busybox (a dynamic one from the busybox package cannot run inside a fixture image).
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
# Files, not commands: the OCI image-spec JSON schemas that test/consumers.test.ts validates against.
[ -f /usr/share/gocode/src/github.com/opencontainers/image-spec/schema/image-manifest-schema.json ] ||
  missing+=(golang-github-opencontainers-image-spec-dev)
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "installing test peers: ${pkgs[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
  echo "missing ${pkgs[*]}: run as root or install them with apt-get" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
