#!/usr/bin/env bash
# scripts/toolchain.sh — build the Pulumi engine, the real provider plugins and a local
# Kubernetes control plane from Go modules.
#
# WHY
#   The engine tests drive the real `pulumi` engine with the real Kubernetes and Command
#   plugins against a real kube-apiserver (docs/real-engine.md). This workplace reaches only
#   package registries: get.pulumi.com, GitHub releases and `pulumi plugin install` downloads
#   are unreachable. So every piece is built from source fetched through the Go module proxy,
#   into a cache OUTSIDE the repo.
#
# USAGE
#   scripts/toolchain.sh                          # build what is missing (cold: see docs/real-engine.md; warm: < 1 s)
#   eval "$(scripts/toolchain.sh --print-env)"    # PATH/PULUMI_HOME/no-network env, no build
#   scripts/toolchain.sh --print-cilium-dir       # dir of github.com/cilium/cilium@CILIUM_V (chart, CRDs)
#   scripts/toolchain.sh --print-versions         # the pins below, KEY=VALUE
#   CNISTACK_TOOLCHAIN_DIR=/some/dir scripts/toolchain.sh   # another cache dir
#   CNISTACK_GO_JOBS=1 scripts/toolchain.sh                 # go build -p (default: nproc)
#   CNISTACK_TOOLCHAIN_PARTIAL=1 scripts/toolchain.sh       # install what can be built, exit 0
#   CNISTACK_TOOLCHAIN_ONLY="kube cilium" scripts/toolchain.sh   # only these pieces
#   scripts/toolchain.sh --group first            # what the engine tests, preview and up need
#   scripts/toolchain.sh --group late             # the Cilium oracles and the datapath enforcers
#   scripts/toolchain.sh --group late --background   # the same, at nice 19, detached; returns at once
#
#   GROUPS. `make test` overlaps the build with the tests (docs/real-engine.md, "Build times"):
#   it starts the late group in the background, builds the first group, runs every test that
#   needs only the first group, then waits for the late group and runs the oracle and datapath
#   tests. Each group holds $TC/locks/<group>.lock (flock) while it builds, so a second caller
#   waits for the first instead of building the same piece twice; the wait is bounded by
#   CNISTACK_TOOLCHAIN_WAIT seconds (default 5400) and logged ("waited N s"). The background
#   build logs to $TC/logs/toolchain-late.log. Both groups share one GOMODCACHE and GOCACHE: the
#   oracles and cilium-agent require mostly the same modules at the same versions.
#
#   Cache dir ${CNISTACK_TOOLCHAIN_DIR:-$HOME/.cache/cnistack/toolchain}: bin/ (everything
#   runnable), pulumi-home/ (PULUMI_HOME), gomod/ + gocache/ (dedicated GOMODCACHE/GOCACHE, so a
#   cold build is measurable and deleting the dir resets everything), src/ (writable build
#   trees), logs/, stamps/ (one per piece: its pins + the hash of the shell function that builds
#   it; a piece whose stamp matches is skipped, so a warm run takes seconds and uses no network).
#
# VERSIONS — the ONE place where non-Python versions are pinned. The Python SDK pins
# (pulumi, pulumi-kubernetes, pulumi-command) are read from requirements.txt.
K8S_V=v1.35.8         # k8s.io/kubernetes: kube-apiserver, kube-controller-manager, kube-scheduler
#                       (1.35: supported until 2027-02-28, inside Cilium 1.19's e2e-tested 1.32-1.35)
ETCD_V=v3.6.16        # go.etcd.io/etcd/server/v3 (etcdmain.Main)
KWOK_V=v0.7.0         # sigs.k8s.io/kwok (simulated nodes and pods)
CILIUM_V=v1.19.7      # github.com/cilium/cilium: THE production pin (the stack's default chart, its
#                       CRDs, the datapath lab). The upgrade path's other versions come from
#                       cnistack/data/cilium-upgrade-path.yaml, never pinned here a second time.
# The datapath lab (scripts/datapath_lab.py, docs/datapath-lab.md): the real enforcers.
KUBE_ROUTER_V=v2.1.0  # github.com/cloudnativelabs/kube-router/v2: the NetworkPolicy controller K3s
                      # embeds (K3s's fork k3s-io/kube-router is not served; v2.1.0 is the only v2)
FLANNEL_V=v0.27.4     # github.com/flannel-io/flannel: flanneld, VXLAN backend, kube subnet manager
CNI_PLUGINS_V=v1.7.1  # github.com/containernetworking/plugins: bridge, host-local, portmap, loopback
# Flannel's CNI plugin: github.com/flannel-io/cni-plugin is not served by the module proxy (403 at
# every version); its code started as plugins/meta/flannel of containernetworking/plugins, whose
# last release with it is v0.9.1 (same delegate-to-bridge + host-local logic).
FLANNEL_CNI_V=v0.9.1
# cilium-agent + cilium-cni: the production stack's Cilium, the same pin as the chart.
CILIUM_AGENT_V=$CILIUM_V
# pulumi-kubernetes provider: v4.34.2 (the SDK pin) is not served by the module proxy; this
# pseudo-version is, a commit (f47bc2d6f199, 2026-01-15) between v4.24.0 and v4.25.0. Its
# `replace .../sdk/v4 => ../sdk` is met by the sdk module at PULUMI_K8S_SDK_V.
PULUMI_K8S_PROVIDER_V=v4.0.0-20260115033456-f47bc2d6f199
PULUMI_K8S_SDK_V=v4.24.0
# What the plugin reports as its version: Go's own pseudo-version spelling for "a commit after
# v4.24.0", so that `pulumi about`/the engine's warning name the commit (docs/real-engine.md).
PULUMI_K8S_PLUGIN_VERSION=4.24.1-0.20260115033456-f47bc2d6f199
#
# WHAT IS BUILT (upstream references)
#   etcd            a 5-line main calling etcdmain.Main (go.etcd.io/etcd/server/v3/etcdmain),
#                   as upstream's server/main.go does.
#   kube-*          from a wrapper module requiring k8s.io/kubernetes@K8S_V: its go.mod replaces
#                   each staging module with ./staging/..., which a dependency cannot use, so the
#                   wrapper replaces each with k8s.io/<staging> v0.<minor>.<patch> (derived from
#                   k8s.io/kubernetes's go.mod, not listed here). 1.29–1.32 cannot be built this
#                   way: k8s.io/legacy-cloud-providers / k8s.io/endpointslice are not served at
#                   those versions. Stamped with -X k8s.io/component-base/version.git{Version,
#                   Major,Minor}, else the server says v0.0.0-master and Helm refuses the Cilium
#                   chart's kubeVersion constraint.
#   kwok            `go install sigs.k8s.io/kwok/cmd/kwok@KWOK_V` (no replaces in its go.mod).
#   command plugin  github.com/pulumi/pulumi-command/provider is not served at any version; its
#                   v1.2.1 source (unchanged, Apache-2.0) is read from ../shared/third_party/
#                   pulumi-command-v1.2.1 (or CNISTACK_COMMAND_SRC) and built with -mod=mod (every
#                   module it requires is served). Without that source: the usual online
#                   `pulumi plugin install resource command v1.2.1`.
#   kubernetes plugin  the provider module above laid out beside the sdk module as ../sdk, its
#                   embed files written offline by cmd/pulumi-resource-kubernetes/generate.go from
#                   the schema.json/terraform-mapping.json in the module zip. Put in bin/ (on PATH),
#                   not in the plugin cache under a version it is not (docs/real-engine.md).
#   pulumi CLI      module github.com/pulumi/pulumi/pkg/v3, ./cmd/pulumi, beside the sdk module
#                   (pkg/go.mod has `replace .../sdk/v3 => ../sdk`). Version: the requirements.txt
#                   `pulumi==` pin if served, else the lowest newer served version.
#   language host   github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 where served,
#                   else cnistack's stand-in (tools/pulumi-standins/cmd/pulumi-language-python)
#                   over the same sdk module; plus pulumi-language-python-exec and
#                   pulumi-resource-pulumi-python from the sdk module.
#
# Nothing reaches the internet at run time: --print-env sets PULUMI_SKIP_UPDATE_CHECK,
# PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION and friends.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$ROOT/requirements.txt"
TC="${CNISTACK_TOOLCHAIN_DIR:-$HOME/.cache/cnistack/toolchain}"
BIN="$TC/bin"
CNI_BIN="$TC/cni-bin"   # the datapath lab's CNI_PATH: the plugins a kubelet would call
PHOME="$TC/pulumi-home"
STAMPS="$TC/stamps"
STANDINS="$ROOT/tools/pulumi-standins"
CILIUM_DIR="$TC/gomod/github.com/cilium/cilium@$CILIUM_V"
# Every version of the upgrade path (cnistack/data/cilium-upgrade-path.yaml): their charts for the
# engine tests' upgrade chain (tests/test_engine_upgrade.py) and scripts/derive_cilium_versions.py.
CILIUM_PATH="$(sed -n 's/^from: *\([0-9.]*\).*/\1/p; s/^  - *\([0-9.]*\).*/\1/p' "$ROOT/cnistack/data/cilium-upgrade-path.yaml" | tr '\n' ' ')"
CILIUM_PATH_DIRS=()
for v in $CILIUM_PATH; do CILIUM_PATH_DIRS+=("$TC/gomod/github.com/cilium/cilium@v$v/install/kubernetes/cilium/Chart.yaml"); done

print_env() {
  cat <<EOF
export PATH="$BIN:\$PATH"
export PULUMI_HOME="$PHOME"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true
export PULUMI_SKIP_CONFIRMATIONS=true
export PULUMI_DIY_BACKEND_NO_RETRY=true
EOF
}

GROUP=all BACKGROUND=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --print-env) print_env; exit 0 ;;
    --print-cilium-dir)
      if [[ ! -f "$CILIUM_DIR/install/kubernetes/cilium/Chart.yaml" ]]; then
        echo "toolchain: no github.com/cilium/cilium@$CILIUM_V in $TC/gomod: run scripts/toolchain.sh" >&2
        exit 1
      fi
      echo "$CILIUM_DIR"; exit 0 ;;
    --print-versions)
      printf '%s\n' "K8S_V=$K8S_V" "ETCD_V=$ETCD_V" "KWOK_V=$KWOK_V" "CILIUM_V=$CILIUM_V" "CILIUM_PATH=${CILIUM_PATH% }" \
        "PULUMI_K8S_PROVIDER_V=$PULUMI_K8S_PROVIDER_V" "PULUMI_K8S_PLUGIN_VERSION=$PULUMI_K8S_PLUGIN_VERSION" \
        "KUBE_ROUTER_V=$KUBE_ROUTER_V" "FLANNEL_V=$FLANNEL_V" "CNI_PLUGINS_V=$CNI_PLUGINS_V" \
        "FLANNEL_CNI_V=$FLANNEL_CNI_V" "CILIUM_AGENT_V=$CILIUM_AGENT_V"
      exit 0 ;;
    --group)
      GROUP="${2:-}"; shift
      [[ $GROUP == first || $GROUP == late ]] || { echo "toolchain: --group first|late, not '$GROUP'" >&2; exit 2; } ;;
    --background) BACKGROUND=1 ;;
    *) echo "usage: $0 [--print-env | --print-cilium-dir | --print-versions | --group first|late [--background]]" >&2; exit 2 ;;
  esac
  shift
done
[[ $BACKGROUND == 0 || $GROUP == late ]] || { echo "toolchain: --background goes with --group late" >&2; exit 2; }

pin() {  # pin NAME -> version from requirements.txt (exactly one `NAME==X` line)
  local v
  v="$(sed -n "s/^$1==\([^[:space:];#]*\).*/\1/p" "$REQ")"
  [[ -n "$v" ]] || { echo "toolchain: no '$1==' pin in $REQ" >&2; exit 1; }
  echo "$v"
}
PULUMI_PIN="$(pin pulumi)"
CMD_PIN="$(pin pulumi-command)"
STANDINS_HASH="$(cd "$STANDINS" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
CMD_SRC="${CNISTACK_COMMAND_SRC:-$ROOT/../shared/third_party/pulumi-command-v$CMD_PIN}"

mkdir -p "$BIN" "$PHOME" "$TC/src" "$TC/logs" "$STAMPS"
export GOMODCACHE="$TC/gomod" GOCACHE="$TC/gocache"
export GOFLAGS="-modcacherw" GOTOOLCHAIN=local CGO_ENABLED=0
# Only the module proxy: without this, go's default ",direct" fallback would try git on GitHub.
export GOPROXY="${CNISTACK_GOPROXY:-https://proxy.golang.org}"
export PULUMI_HOME="$PHOME" PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
JOBS="${CNISTACK_GO_JOBS:-$(nproc)}"
MISSING=()

log() { echo "toolchain: $*" >&2; }

# mod_dir MODULE@VERSION -> prints the module's (read-only) dir in GOMODCACHE, or fails
mod_dir() {
  local out
  if ! out="$(cd "$TC" && go mod download -json "$1" 2>&1)"; then
    log "cannot download $1: $(echo "$out" | sed -n 's/.*"Error": "\(.*\)".*/\1/p' | head -c 300)"
    return 1
  fi
  echo "$out" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'
}

# served_at_least MODULE MINVERSION -> lowest version the proxy lists that is >= MINVERSION
served_at_least() {
  (cd "$TC" && go list -m -versions "$1" 2>/dev/null) | tr ' ' '\n' | tail -n +2 |
    grep -E '^v[0-9]+\.[0-9]+\.[0-9]+$' | sort -V |
    awk -v min="$2" 'BEGIN{split(substr(min,2),m,".")}
      {split(substr($0,2),v,"."); for(i=1;i<=3;i++){if(v[i]+0>m[i]+0){print;exit} if(v[i]+0<m[i]+0)next} print; exit}'
}

copy_tree() { rm -rf "$2"; mkdir -p "$(dirname "$2")"; cp -r "$1" "$2"; chmod -R u+w "$2"; }

gobuild() {  # gobuild DIR OUT LDFLAGS PKG... (OUT ending in / = a dir for several mains)
  local dir="$1" out="$2" ldflags="$3"; shift 3
  local logf="$TC/logs/$(basename "$out").log"
  log "go build $* -> $out"
  (cd "$dir" && go build -p "$JOBS" -trimpath -ldflags "-s -w $ldflags" -o "$out" "$@") >"$logf" 2>&1 || {
    tail -n 30 "$logf" >&2; return 1; }
}

# piece NAME KEY FILE... : run build_NAME unless stamps/NAME holds KEY (+ the hash of build_NAME's
# own definition, so editing a recipe rebuilds that piece only) and every FILE exists.
piece() {
  local name="$1" key="$2"; shift 2
  if [[ -n "${CNISTACK_TOOLCHAIN_ONLY:-}" && " $CNISTACK_TOOLCHAIN_ONLY " != *" $name "* ]]; then
    return 0
  fi
  key="$key recipe=$(declare -f "build_$name" | sha256sum | cut -c1-12)"
  local ok=1 f
  for f in "$@"; do [[ -e "$f" ]] || ok=0; done
  if [[ $ok == 1 && -f "$STAMPS/$name" && "$(cat "$STAMPS/$name")" == "$key" ]]; then
    log "$name: up to date ($key)"; return 0
  fi
  local start=$SECONDS
  if "build_$name"; then
    echo "$key" >"$STAMPS/$name"
    log "$name: built in $((SECONDS - start)) s ($key)"
  else
    rm -f "$STAMPS/$name"
    MISSING+=("$name")
    log "$name: FAILED after $((SECONDS - start)) s (log: $TC/logs/)"
  fi
}

# ---- control plane first: other work waits on it ---------------------------------------------
build_etcd() {
  local src="$TC/src/etcd" dir
  dir="$(mod_dir "go.etcd.io/etcd/server/v3@$ETCD_V")" || return 1
  rm -rf "$src"; mkdir -p "$src"
  cat >"$src/main.go" <<'GO'
// etcd as upstream's server/main.go builds it: etcdmain.Main does everything.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  printf 'module cnistack/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_V" >"$src/go.mod"
  # The server module's own go.sum covers its dependency graph.
  cp "$dir/go.sum" "$src/go.sum"; chmod u+w "$src/go.sum"
  (cd "$src" && go mod tidy) >"$TC/logs/etcd-tidy.log" 2>&1 || { tail -n 20 "$TC/logs/etcd-tidy.log" >&2; return 1; }
  gobuild "$src" "$BIN/etcd" "" .
}

build_kube() {
  local src="$TC/src/kube" dir minor patch
  dir="$(mod_dir "k8s.io/kubernetes@$K8S_V")" || return 1
  IFS=. read -r _ minor patch <<<"${K8S_V#v}"
  rm -rf "$src"; mkdir -p "$src"
  {
    printf 'module cnistack/kube\n\ngo 1.24\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_V"
    # Every `k8s.io/X => ./staging/src/k8s.io/X` of k8s.io/kubernetes's go.mod, as the published
    # staging module k8s.io/X v0.MINOR.PATCH (the staging repos are tagged that way).
    sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/.*#\t\1 => \1 v0.'"$minor.$patch"'#p' "$dir/go.mod"
    printf ')\n'
  } >"$src/go.mod"
  cat >"$src/tools.go" <<'GO'
//go:build tools

// The main packages this module builds; the import keeps them in go.mod/go.sum.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
  cp "$dir/go.sum" "$src/go.sum"; chmod u+w "$src/go.sum"
  (cd "$src" && go mod tidy) >"$TC/logs/kube-tidy.log" 2>&1 || { tail -n 20 "$TC/logs/kube-tidy.log" >&2; return 1; }
  local v=k8s.io/component-base/version major="${K8S_V#v}"; major="${major%%.*}"
  gobuild "$src" "$BIN/" "-X $v.gitVersion=$K8S_V -X $v.gitMajor=$major -X $v.gitMinor=$minor" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
}

build_kwok() {
  log "go install sigs.k8s.io/kwok/cmd/kwok@$KWOK_V -> $BIN/kwok"
  (cd "$TC" && GOBIN="$BIN" go install -p "$JOBS" -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_V" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_V") \
    >"$TC/logs/kwok.log" 2>&1 || { tail -n 30 "$TC/logs/kwok.log" >&2; return 1; }
}

build_cilium() {  # the module only: chart + CRDs for the engine tests and the local cluster
  mod_dir "github.com/cilium/cilium@$CILIUM_V" >/dev/null
  [[ -f "$CILIUM_DIR/install/kubernetes/cilium/Chart.yaml" ]]
}

build_cilium_path() {
  local v
  for v in $CILIUM_PATH; do mod_dir "github.com/cilium/cilium@v$v" >/dev/null || return 1; done
}

# ---- real provider plugins --------------------------------------------------------------------
build_command() {
  if [[ -d "$CMD_SRC/provider" ]]; then
    local src="$TC/src/pulumi-command-$CMD_PIN"
    copy_tree "$CMD_SRC" "$src"
    # -mod=mod: the source's go.sum is complete upstream, but go may still want to note a
    # module it resolves; every module it requires is served by the proxy.
    GOFLAGS="$GOFLAGS -mod=mod" gobuild "$src/provider" "$BIN/pulumi-resource-command" \
      "-X github.com/pulumi/pulumi-command/provider/pkg/version.Version=v$CMD_PIN" ./cmd/pulumi-resource-command || return 1
    "$BIN/pulumi" plugin install resource command "$CMD_PIN" --file "$BIN/pulumi-resource-command" --non-interactive
  else
    # A clone without ../shared: the usual online install (get.pulumi.com / GitHub releases).
    log "no pulumi-command source at $CMD_SRC: trying the online \`pulumi plugin install resource command $CMD_PIN\`"
    "$BIN/pulumi" plugin install resource command "$CMD_PIN" --non-interactive || return 1
    local p; p="$(ls -d "$PHOME"/plugins/resource-command-v"$CMD_PIN"/pulumi-resource-command 2>/dev/null | head -n1)"
    [[ -n "$p" ]] && ln -sf "$p" "$BIN/pulumi-resource-command"
  fi
}

build_kubernetes() {
  local src="$TC/src/pulumi-kubernetes" pdir sdir
  pdir="$(mod_dir "github.com/pulumi/pulumi-kubernetes/provider/v4@$PULUMI_K8S_PROVIDER_V")" || return 1
  sdir="$(mod_dir "github.com/pulumi/pulumi-kubernetes/sdk/v4@$PULUMI_K8S_SDK_V")" || return 1
  copy_tree "$pdir" "$src/provider"
  copy_tree "$sdir" "$src/sdk"   # upstream repo layout: provider/go.mod replaces sdk/v4 => ../sdk
  # schema-embed.json / terraform-mapping-embed.json, offline, as upstream's Makefile does.
  (cd "$src/provider/cmd/pulumi-resource-kubernetes" && VERSION="$PULUMI_K8S_PLUGIN_VERSION" \
    GOFLAGS="$GOFLAGS -mod=mod" go run generate.go) >"$TC/logs/kubernetes-generate.log" 2>&1 ||
    { tail -n 20 "$TC/logs/kubernetes-generate.log" >&2; return 1; }
  GOFLAGS="$GOFLAGS -mod=mod" gobuild "$src/provider" "$BIN/pulumi-resource-kubernetes" \
    "-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PULUMI_K8S_PLUGIN_VERSION" \
    ./cmd/pulumi-resource-kubernetes
}

# ---- pulumi CLI (+ exec script, dynamic provider shim) and the python language host ------------
PKG_MOD=github.com/pulumi/pulumi/pkg/v3
SDK_MOD=github.com/pulumi/pulumi/sdk/v3
resolve_pulumi() {  # sets PULUMI_V, PSRC (the CLI version actually built)
  [[ -z "${PULUMI_V:-}" ]] || return 0
  PULUMI_V="v$PULUMI_PIN"
  if ! PKG_DIR="$(mod_dir "$PKG_MOD@$PULUMI_V" 2>/dev/null)"; then
    PULUMI_V="$(served_at_least "$PKG_MOD" "v$PULUMI_PIN")"
    [[ -n "$PULUMI_V" ]] || { log "no $PKG_MOD version >= v$PULUMI_PIN is served"; return 1; }
    log "$PKG_MOD@v$PULUMI_PIN is not served; using the lowest newer served version $PULUMI_V"
    PKG_DIR="$(mod_dir "$PKG_MOD@$PULUMI_V")"
  fi
  SDK_DIR="$(mod_dir "$SDK_MOD@$PULUMI_V")"
  PSRC="$TC/src/pulumi-$PULUMI_V"
}

build_pulumi() {
  resolve_pulumi || return 1
  copy_tree "$PKG_DIR" "$PSRC/pkg"
  copy_tree "$SDK_DIR" "$PSRC/sdk"
  # `=> ../sdk` is the layout above; any other local-path replace would need its own copy.
  if grep -E '^[[:space:]]*(replace[[:space:]]+)?[^ ]+( v[^ ]+)?[[:space:]]+=>[[:space:]]+\.' "$PSRC/pkg/go.mod" | grep -v '=> \.\./sdk$' | grep -q .; then
    log "unexpected local replace in $PKG_MOD@$PULUMI_V go.mod:"; grep '=>' "$PSRC/pkg/go.mod" >&2; return 1
  fi
  gobuild "$PSRC/pkg" "$BIN/pulumi" "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_V" ./cmd/pulumi || return 1
  install -m 0755 "$PSRC/sdk/python/cmd/pulumi-language-python-exec" "$BIN/pulumi-language-python-exec"
  install -m 0755 "$PSRC/sdk/python/dist/pulumi-resource-pulumi-python" "$BIN/pulumi-resource-pulumi-python"
}

build_langhost() {
  resolve_pulumi || return 1
  [[ -d "$PSRC/sdk" ]] || copy_tree "$SDK_DIR" "$PSRC/sdk"
  local lh_mod=github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 lh_dir
  # No tags of its own upstream: CNISTACK_LANGHOST_VERSION (pseudo-version or commit), else latest.
  if lh_dir="$(mod_dir "$lh_mod@${CNISTACK_LANGHOST_VERSION:-latest}" 2>/dev/null)"; then
    local lsrc="$PSRC/sdk/python/cmd/pulumi-language-python"   # its upstream place: ../../../ is sdk
    copy_tree "$lh_dir" "$lsrc"
    gobuild "$lsrc" "$BIN/pulumi-language-python" "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_V" .
    return
  fi
  # Stand-in: a small language host of our own over the sdk module (same $PULUMI_V), enough for
  # `pulumi preview/up` of a venv-based program and for python policy packs (docs/real-engine.md).
  log "$lh_mod is not served: building cnistack's stand-in python language host"
  local dst="$TC/src/pulumi-standins"
  copy_tree "$STANDINS" "$dst"
  (cd "$dst" && go mod edit -require="$SDK_MOD@$PULUMI_V" -replace="$SDK_MOD=$PSRC/sdk") || return 1
  cat "$PSRC/sdk/go.sum" >>"$dst/go.sum"   # the sdk's deps are ours; tidy completes the rest
  (cd "$dst" && go mod tidy) >"$TC/logs/pulumi-standins-tidy.log" 2>&1 || { cat "$TC/logs/pulumi-standins-tidy.log" >&2; return 1; }
  gobuild "$dst" "$BIN/pulumi-language-python" "-X main.version=${PULUMI_V#v}-cnistack-shim" ./cmd/pulumi-language-python
}

# ---- Cilium's own policy code, the oracle of the analyzer's cilium profile (docs/cilium-oracle.md)
ORACLE_HASH="$(cd "$ROOT/tools/cilium-oracle" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
# The oracles use the toolchain's GOMODCACHE/GOCACHE: the 1.19.7 oracle's modules are all at
# cilium-agent's versions, and the 1.15.0 and 1.15.19 oracles share most of theirs.
ORACLE_ENV=(env CILIUM_ORACLE_CACHE="$TC" CILIUM_ORACLE_JOBS="$JOBS")
build_oracle_path() {
  local v
  for v in $ORACLE_VERSIONS; do
    "${ORACLE_ENV[@]}" bash "$ROOT/scripts/build_cilium_oracle.sh" "$BIN" "$v" >"$TC/logs/cilium-oracle-$v.log" 2>&1 || {
      tail -n 30 "$TC/logs/cilium-oracle-$v.log" >&2
      return 1
    }
  done
}
build_oracle() {  # ADR-013's 1.15.0, into bin/
  "${ORACLE_ENV[@]}" bash "$ROOT/scripts/build_cilium_oracle.sh" "$BIN" >"$TC/logs/cilium-oracle.log" 2>&1 || {
    tail -n 30 "$TC/logs/cilium-oracle.log" >&2
    return 1
  }
}

# ---- the datapath lab's real enforcers (scripts/datapath_lab.py, docs/datapath-lab.md) ----------
goinstall() {  # goinstall GOBIN LOGNAME LDFLAGS MODULE/PKG@V...: only the binaries the lab runs
  local gobin="$1" logname="$2" ldflags="$3"; shift 3
  mkdir -p "$gobin"
  log "go install $* -> $gobin"
  (cd "$TC" && GOBIN="$gobin" go install -p "$JOBS" -trimpath -ldflags "-s -w $ldflags" "$@") \
    >"$TC/logs/$logname.log" 2>&1 || { tail -n 30 "$TC/logs/$logname.log" >&2; return 1; }
}

build_kuberouter() {  # --run-firewall only: the NetworkPolicy controller (no BGP, no proxy)
  goinstall "$BIN" kube-router "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_V" \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_V"
}

build_flannel() {  # cgo on amd64, as flannel's Makefile: main.go imports the UDP backend, whose amd64 code is C
  CGO_ENABLED=1 goinstall "$BIN" flanneld "-X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_V" \
    "github.com/flannel-io/flannel@$FLANNEL_V" || return 1
  mv -f "$BIN/flannel" "$BIN/flanneld"
}

build_cniplugins() {
  local m=github.com/containernetworking/plugins
  goinstall "$CNI_BIN" cni-plugins "-X $m/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_V" \
    "$m/plugins/main/bridge@$CNI_PLUGINS_V" "$m/plugins/ipam/host-local@$CNI_PLUGINS_V" \
    "$m/plugins/meta/portmap@$CNI_PLUGINS_V" "$m/plugins/main/loopback@$CNI_PLUGINS_V"
}

build_flannelcni() {
  goinstall "$CNI_BIN" flannel-cni "" "github.com/containernetworking/plugins/plugins/meta/flannel@$FLANNEL_CNI_V"
}

# cilium-agent + cilium-cni from a wrapper module: a dependency's `replace` lines are ignored, so
# the wrapper repeats cilium's own (its go.mod: the controller-tools and gobgp forks). The agent
# compiles its BPF programs at run time from <lib-dir>/bpf (clang 19 for 1.19, docs/datapath-lab.md):
# cilium-lib/bpf is a copy of the module's bpf/ tree.
build_ciliumagent() {
  local src="$TC/src/cilium-agent" dir
  dir="$(mod_dir "github.com/cilium/cilium@$CILIUM_AGENT_V")" || return 1
  rm -rf "$src"; mkdir -p "$src"
  {
    printf 'module cnistack/cilium-agent\n\ngo %s\n\nrequire github.com/cilium/cilium %s\n\n' \
      "$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$dir/go.mod")" "$CILIUM_AGENT_V"
    grep -E '^replace [^ ]+ => [^ .][^ ]* v[^ ]+$' "$dir/go.mod"
  } >"$src/go.mod"
  cat >"$src/tools.go" <<'GO'
//go:build tools

// The main packages this module builds; the import keeps them in go.mod/go.sum.
package tools

import (
	_ "github.com/cilium/cilium/daemon"
	_ "github.com/cilium/cilium/plugins/cilium-cni"
)
GO
  cp "$dir/go.sum" "$src/go.sum"; chmod u+w "$src/go.sum"
  (cd "$src" && go mod tidy) >"$TC/logs/cilium-agent-tidy.log" 2>&1 || { tail -n 20 "$TC/logs/cilium-agent-tidy.log" >&2; return 1; }
  local x="-X 'github.com/cilium/cilium/pkg/version.ciliumVersion=${CILIUM_AGENT_V#v} cnistack'"
  gobuild "$src" "$BIN/cilium-agent" "$x" github.com/cilium/cilium/daemon || return 1
  gobuild "$src" "$CNI_BIN/cilium-cni" "$x" github.com/cilium/cilium/plugins/cilium-cni || return 1
  rm -rf "$TC/cilium-lib"; mkdir -p "$TC/cilium-lib"
  cp -r "$dir/bpf" "$TC/cilium-lib/bpf"; chmod -R u+w "$TC/cilium-lib"
}

# ---- the two groups, in the order others wait on -----------------------------------------------
build_first() {  # the engine, its plugins, the control plane, the charts: every engine test
  piece etcd "etcd=$ETCD_V" "$BIN/etcd"
  piece kube "kubernetes=$K8S_V" "$BIN/kube-apiserver" "$BIN/kube-controller-manager" "$BIN/kube-scheduler"
  piece kwok "kwok=$KWOK_V" "$BIN/kwok"
  piece cilium "cilium=$CILIUM_V" "$CILIUM_DIR/install/kubernetes/cilium/Chart.yaml"
  piece pulumi "pulumi>=$PULUMI_PIN" "$BIN/pulumi"
  piece langhost "pulumi>=$PULUMI_PIN standins=$STANDINS_HASH" "$BIN/pulumi-language-python"
  piece command "command=$CMD_PIN src=$([[ -d $CMD_SRC/provider ]] && echo local || echo online)" "$BIN/pulumi-resource-command"
  piece kubernetes "kubernetes-provider=$PULUMI_K8S_PROVIDER_V sdk=$PULUMI_K8S_SDK_V" "$BIN/pulumi-resource-kubernetes"
  piece cilium_path "path=$CILIUM_PATH" "${CILIUM_PATH_DIRS[@]}"
}

build_late() {  # only the oracle tests and the datapath lab run these
  # The oracle of ADR-013's 1.15.0 (tools/cilium-oracle/go.mod), then one per other version that
  # tools/cilium-oracle/versions/ carries a go.mod for (docs/cilium-oracle.md, "Versions").
  piece oracle "oracle-cilium=v1.15.0 src=$ORACLE_HASH" "$BIN/cilium-oracle"
  ORACLE_VERSIONS="$(cd "$ROOT/tools/cilium-oracle/versions" 2>/dev/null && ls -d */ 2>/dev/null | tr -d / | tr '\n' ' ')"
  local v bins=()
  for v in $ORACLE_VERSIONS; do bins+=("$BIN/cilium-oracle-$v"); done
  piece oracle_path "versions=$ORACLE_VERSIONS src=$ORACLE_HASH" "${bins[@]}"
  piece kuberouter "kube-router=$KUBE_ROUTER_V" "$BIN/kube-router"
  piece flannel "flannel=$FLANNEL_V" "$BIN/flanneld"
  piece cniplugins "cni-plugins=$CNI_PLUGINS_V" "$CNI_BIN/bridge" "$CNI_BIN/host-local" "$CNI_BIN/portmap" "$CNI_BIN/loopback"
  piece flannelcni "flannel-cni=$FLANNEL_CNI_V" "$CNI_BIN/flannel"
  piece ciliumagent "cilium-agent=$CILIUM_AGENT_V" "$BIN/cilium-agent" "$CNI_BIN/cilium-cni" "$TC/cilium-lib/bpf"
}

mkdir -p "$TC/locks"
WAIT="${CNISTACK_TOOLCHAIN_WAIT:-5400}"
# group NAME: build group NAME holding its lock on fd 9 (closed, so released, when the group is
# built), unless this process already holds it: the background child inherits the parent's fd 9.
group() {
  if [[ "${CNISTACK_TOOLCHAIN_HELD:-}" == "$1" ]]; then "build_$1"; return; fi
  local t0=$SECONDS
  exec 9>"$TC/locks/$1.lock"
  if ! flock -w "$WAIT" 9; then
    log "group $1: another build still holds $TC/locks/$1.lock after $WAIT s (CNISTACK_TOOLCHAIN_WAIT)"
    MISSING+=("group-$1"); exec 9>&-; return
  fi
  log "group $1: waited $((SECONDS - t0)) s for the lock$([[ $1 == late ]] && echo " (the background build's log: $TC/logs/toolchain-late.log)")"
  "build_$1"
  exec 9>&-
}

START=$SECONDS
if [[ $BACKGROUND == 1 ]]; then
  exec 9>"$TC/locks/late.lock"
  if ! flock -n 9; then log "group late: already building (log: $TC/logs/toolchain-late.log)"; exit 0; fi
  # The child inherits fd 9 and with it the lock: a foreground `--group late` started after this
  # line returns waits for the child, never races it.
  CNISTACK_TOOLCHAIN_HELD=late nohup nice -n 19 bash "${BASH_SOURCE[0]}" --group late \
    >"$TC/logs/toolchain-late.log" 2>&1 </dev/null &
  log "group late: building in the background, pid $! (log: $TC/logs/toolchain-late.log)"
  exit 0
fi
case "$GROUP" in
  all) group first; group late ;;
  *) group "$GROUP" ;;
esac

if [[ ${#MISSING[@]} -gt 0 ]]; then
  log "MISSING: ${MISSING[*]} (logs in $TC/logs)"
  if [[ "${CNISTACK_TOOLCHAIN_PARTIAL:-0}" != 1 ]]; then
    log "incomplete toolchain (set CNISTACK_TOOLCHAIN_PARTIAL=1 to accept a partial one)"
    exit 1
  fi
fi
log "${GROUP/all/all groups} done in $((SECONDS - START)) s: $TC"
