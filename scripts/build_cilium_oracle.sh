#!/usr/bin/env bash
# scripts/build_cilium_oracle.sh OUT_DIR [VERSION] — build tools/cilium-oracle into
# OUT_DIR/cilium-oracle (Cilium 1.15.0) or OUT_DIR/cilium-oracle-VERSION.
#
# WHY
#   The differential test of the analyzer's Cilium profiles (analyzer/tests/test_oracle.py,
#   docs/cilium-oracle.md) needs Cilium's own pkg/policy, pkg/policy/api and pkg/k8s code, at
#   ADR-013's 1.15.0 and at each version under tools/cilium-oracle/versions/ (1.15.19, 1.19.7).
#   That code is a Go module served by the Go module proxy (github.com/cilium/cilium@v1.15.0);
#   tools/cilium-oracle/go.mod requires it with the module's own two replace lines (metallb and
#   controller-tools forks), and go.sum is committed next to it (generated once with
#   `go mod tidy`), so a build verifies every downloaded module against it and needs no tidy.
#
# CACHES (outside the repo)
#   GOMODCACHE/GOCACHE default to ~/.cache/cnistack/oracle/{gomod,gocache}; set
#   CILIUM_ORACLE_CACHE to use another dir. scripts/toolchain.sh sets it to its own dir, so the
#   oracles and cilium-agent share one module and build cache. The sources are copied to CACHE/src and a stamp
#   (hash of the sources + go version) in OUT_DIR makes a warm run exit at once.
#
# USAGE
#   scripts/build_cilium_oracle.sh ~/.cache/cnistack/toolchain/bin
#   CILIUM_ORACLE_JOBS=1 scripts/build_cilium_oracle.sh OUT   # go build -p 1 on a busy machine
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 OUT_DIR [CILIUM_VERSION]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/tools/cilium-oracle"
OUT="$1"
# Another version on the upgrade path: the same main.go against that module, with the go.mod and
# go.sum committed under tools/cilium-oracle/versions/<version>/ (generated once with go mod tidy),
# into OUT_DIR/cilium-oracle-<version>. Without it: github.com/cilium/cilium@v1.15.0, the ADR's pin.
VERSION="${2:-}"
NAME=cilium-oracle
if [ -n "$VERSION" ]; then
  [ -f "$SRC/versions/$VERSION/go.mod" ] || { echo "build_cilium_oracle: no tools/cilium-oracle/versions/$VERSION/go.mod" >&2; exit 2; }
  NAME="cilium-oracle-$VERSION"
fi
CACHE="${CILIUM_ORACLE_CACHE:-$HOME/.cache/cnistack/oracle}"
JOBS="${CILIUM_ORACLE_JOBS:-2}"

export GOMODCACHE="$CACHE/gomod" GOCACHE="$CACHE/gocache" GOFLAGS=-modcacherw
export GOPROXY="${GOPROXY:-https://proxy.golang.org}" GOTOOLCHAIN=local CGO_ENABLED=0

command -v go >/dev/null || { echo "build_cilium_oracle: no go on PATH" >&2; exit 1; }
mkdir -p "$OUT" "$CACHE/src"
MODDIR="$SRC${VERSION:+/versions/$VERSION}"
stamp_value="$( (cat "$MODDIR/go.mod" "$MODDIR/go.sum" "$SRC"/*.go; { [ -z "$VERSION" ] || cat "$MODDIR"/*.go 2>/dev/null || true; }; go version) | sha256sum | cut -d' ' -f1)"
if [ -x "$OUT/$NAME" ] && [ "$(cat "$OUT/$NAME.stamp" 2>/dev/null)" = "$stamp_value" ]; then
  exit 0
fi
BUILD="$CACHE/src/$NAME"
rm -rf "$BUILD"
mkdir -p "$BUILD"
cp "$SRC"/*.go "$MODDIR/go.mod" "$MODDIR/go.sum" "$BUILD/"
# A version's own Go files (e.g. repository.go, where an API signature differs) replace the base.
[ -z "$VERSION" ] || cp "$MODDIR"/*.go "$BUILD/" 2>/dev/null || true
(cd "$BUILD" && go build -p "$JOBS" -trimpath -o "$OUT/$NAME.tmp" .)
mv "$OUT/$NAME.tmp" "$OUT/$NAME"
echo "$stamp_value" >"$OUT/$NAME.stamp"
echo "built $OUT/$NAME"
