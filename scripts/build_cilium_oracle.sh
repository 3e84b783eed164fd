#!/usr/bin/env bash
# scripts/build_cilium_oracle.sh OUT_DIR — build tools/cilium-oracle into OUT_DIR/cilium-oracle.
#
# WHY
#   The differential test of the analyzer's `cilium` profile (analyzer/tests/test_oracle.py,
#   docs/cilium-oracle.md) needs Cilium 1.15.0's own pkg/policy, pkg/policy/api and pkg/k8s code.
#   That code is a Go module served by the Go module proxy (github.com/cilium/cilium@v1.15.0);
#   tools/cilium-oracle/go.mod requires it with the module's own two replace lines (metallb and
#   controller-tools forks), and go.sum is committed next to it (generated once with
#   `go mod tidy`), so a build verifies every downloaded module against it and needs no tidy.
#
# CACHES (outside the repo)
#   GOMODCACHE/GOCACHE default to ~/.cache/cnistack/oracle/{gomod,gocache}; set
#   CILIUM_ORACLE_CACHE to use another dir. The sources are copied to CACHE/src and a stamp
#   (hash of the sources + go version) in OUT_DIR makes a warm run exit at once.
#
# USAGE
#   scripts/build_cilium_oracle.sh ~/.cache/cnistack/toolchain/bin
#   CILIUM_ORACLE_JOBS=1 scripts/build_cilium_oracle.sh OUT   # go build -p 1 on a busy machine
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/tools/cilium-oracle"
OUT="$1"
CACHE="${CILIUM_ORACLE_CACHE:-$HOME/.cache/cnistack/oracle}"
JOBS="${CILIUM_ORACLE_JOBS:-2}"

export GOMODCACHE="$CACHE/gomod" GOCACHE="$CACHE/gocache" GOFLAGS=-modcacherw
export GOPROXY="${GOPROXY:-https://proxy.golang.org}" GOTOOLCHAIN=local CGO_ENABLED=0

command -v go >/dev/null || { echo "build_cilium_oracle: no go on PATH" >&2; exit 1; }
mkdir -p "$OUT" "$CACHE/src"
stamp_value="$( (cd "$SRC" && cat go.mod go.sum ./*.go; go version) | sha256sum | cut -d' ' -f1)"
if [ -x "$OUT/cilium-oracle" ] && [ "$(cat "$OUT/cilium-oracle.stamp" 2>/dev/null)" = "$stamp_value" ]; then
  exit 0
fi
BUILD="$CACHE/src/cilium-oracle"
rm -rf "$BUILD"
cp -r "$SRC" "$BUILD"
(cd "$BUILD" && go build -p "$JOBS" -trimpath -o "$OUT/cilium-oracle.tmp" .)
mv "$OUT/cilium-oracle.tmp" "$OUT/cilium-oracle"
echo "$stamp_value" >"$OUT/cilium-oracle.stamp"
echo "built $OUT/cilium-oracle"
