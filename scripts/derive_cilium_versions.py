"""Derive every version-dependent Cilium fact the program, the tests and the pack read.

For each version on the upgrade path (cnistack/data/cilium-upgrade-path.yaml, then the production
pin CILIUM_V of scripts/toolchain.sh), from the Go module github.com/cilium/cilium@v<version>:

- cnistack/data/cilium/<version>/values-keys.json: the chart's values.yaml keys
  (scripts/derive_chart_keys.py);
- cnistack/data/cilium/<version>/template-keys.json: the keys its templates read
  (scripts/derive_template_keys.py);
- cnistack/data/cilium/<version>/crds/<plural>.json: the storage version's structural schema of
  CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy and, where the version ships them,
  CiliumCIDRGroup and CiliumNodeConfig (descriptions stripped, scripts/derive_cnp_schema.py);
- cnistack/data/cilium/versions.json: the path, the default, and per version the Kubernetes minors
  its e2e tests cover (Documentation/network/kubernetes/compatibility.rst), the chart's
  `kubeVersion`, whether it ships values.schema.json, which CRDs it serves at which API version,
  and the tag's date (the module proxy's `.info`); plus the support table: each minor's first
  release date from the module proxy and upstream's rule that three minors are maintained
  (Documentation/contributing/release/organization.rst), so a minor's end of life is the day
  the third newer minor shipped.

The Kubernetes and OpenShift tables (cnistack/data/kubernetes-support.yaml) are written by hand
with their sources: neither is in a Go module.

Usage: python scripts/derive_cilium_versions.py [--gomodcache DIR] [--as-of YYYY-MM-DD]
(the modules are downloaded with `go mod download` when missing; the support table asks the
module proxy for each minor's .0 tag, so it needs the network; the rest does not).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import derive_chart_keys  # noqa: E402
import derive_template_keys  # noqa: E402
from derive_cnp_schema import strip_descriptions  # noqa: E402

DATA = REPO / "cnistack" / "data"
PATH_FILE = DATA / "cilium-upgrade-path.yaml"
OUT = DATA / "cilium"
PACK_TABLE = REPO / "policies" / "adr013_guard" / "cilium-support.json"
MODULE = "github.com/cilium/cilium"
CRD_DIR = "pkg/k8s/apis/cilium.io/client/crds"
# The policy CRDs the program renders or the analyzer reads; the last two where they exist.
CRDS = (
    "ciliumnetworkpolicies.cilium.io",
    "ciliumclusterwidenetworkpolicies.cilium.io",
    "ciliumcidrgroups.cilium.io",
    "ciliumnodeconfigs.cilium.io",
)
_TESTED_ROW = re.compile(r"^\|\s*(\d+\.\d+(?:\s*,\s*\d+\.\d+)*)\s*\|")


def toolchain_pin() -> str:
    out = subprocess.run(
        ["bash", str(REPO / "scripts/toolchain.sh"), "--print-versions"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pins = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return pins["CILIUM_V"].removeprefix("v")


def path_versions() -> tuple[list[str], str]:
    data = yaml.safe_load(PATH_FILE.read_text())
    default = toolchain_pin()
    return [str(data["from"]), *(str(v) for v in data["steps"]), default], default


def go_env() -> dict[str, str]:
    return {**os.environ, "GOFLAGS": "-modcacherw", "GOTOOLCHAIN": "local"}


def module_info(version: str, gomodcache: Path) -> dict[str, Any] | None:
    """`go mod download -json` (or `go list -m -json` without download); None if not served."""
    env = {**go_env(), "GOMODCACHE": str(gomodcache)}
    done = subprocess.run(
        ["go", "mod", "download", "-json", f"{MODULE}@v{version}"],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        check=False,
    )
    if done.returncode != 0:
        return None
    info: dict[str, Any] = json.loads(done.stdout)
    return info


def proxy_time(version: str) -> str | None:
    done = subprocess.run(
        ["go", "list", "-m", "-json", f"{MODULE}@v{version}"],
        capture_output=True,
        text=True,
        env={**go_env(), "GOFLAGS": "-mod=mod"},
        cwd="/",
        check=False,
    )
    if done.returncode != 0:
        return None
    return str(json.loads(done.stdout)["Time"])[:10]


def tested_kubernetes(module: Path) -> list[str]:
    """The minors of the table's first data row in compatibility.rst ("e2e tested")."""
    text = (module / "Documentation/network/kubernetes/compatibility.rst").read_text()
    for line in text.splitlines():
        match = _TESTED_ROW.match(line)
        if match:
            return [v.strip() for v in match[1].split(",")]
    raise SystemExit(f"{module}: no Kubernetes version row in compatibility.rst")


def crd_schemas(module: Path, version: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """{plural: schema file content}, {crd name: {served versions, storage version}}."""
    schemas: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for path in sorted((module / CRD_DIR).rglob("*.yaml")):
        crd = yaml.safe_load(path.read_bytes())
        name = (crd or {}).get("metadata", {}).get("name")
        if name not in CRDS:
            continue
        versions = crd["spec"]["versions"]
        storage = next(v for v in versions if v.get("storage"))
        schema = strip_descriptions(storage["schema"]["openAPIV3Schema"])
        schema["x-cnistack-source"] = {
            "file": f"{MODULE}@v{version}/{path.relative_to(module).as_posix()}",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "ciliumVersion": version,
            "crd": name,
            "version": storage["name"],
            "generator": "scripts/derive_cilium_versions.py",
        }
        schemas[crd["spec"]["names"]["plural"]] = schema
        summary[name] = {
            "kind": crd["spec"]["names"]["kind"],
            "served": [v["name"] for v in versions if v.get("served")],
            "storage": storage["name"],
        }
    return schemas, summary


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def support_table(minors: list[str], as_of: str) -> dict[str, Any]:
    """Each minor's .0 date (module proxy), its end of life (the third newer minor's .0)."""
    first = int(minors[0].split(".")[1])
    released: dict[str, str] = {}
    minor = first
    while True:
        date = proxy_time(f"1.{minor}.0")
        if date is None:
            break
        released[f"1.{minor}"] = date
        minor += 1
    table = {}
    for line, date in released.items():
        third = f"1.{int(line.split('.')[1]) + 3}"
        table[line] = {"released": date, "endOfLife": released.get(third)}
    return {
        "source": (
            "release dates: the module proxy's .info Time of github.com/cilium/cilium@v1.N.0; "
            "end of life: 'Three stable branches are maintained at a time' "
            "(Documentation/contributing/release/organization.rst), so a line ends the day the "
            "third newer minor ships; docs.cilium.io 'Release Cadence'"
        ),
        "asOf": as_of,
        "newestMinor": max(released, key=lambda v: int(v.split(".")[1])),
        "lines": table,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gomodcache",
        type=Path,
        default=Path(
            os.environ.get("CNISTACK_TOOLCHAIN_DIR", Path.home() / ".cache/cnistack/toolchain")
        )
        / "gomod",
    )
    parser.add_argument("--as-of", default=dt.date.today().isoformat())
    parser.add_argument("--no-support-table", action="store_true", help="keep the committed one")
    args = parser.parse_args(argv)
    versions, default = path_versions()
    summary: dict[str, Any] = {}
    for version in versions:
        info = module_info(version, args.gomodcache)
        if info is None:
            raise SystemExit(f"{MODULE}@v{version} is not served by the module proxy")
        module = Path(info["Dir"])
        chart = module / "install/kubernetes/cilium"
        out = OUT / version
        write_json(out / "values-keys.json", derive_chart_keys.derive(chart / "values.yaml"))
        keys, digest = derive_template_keys.template_keys(chart)
        write_json(
            out / "template-keys.json",
            {
                "source": f"cilium chart templates/ ({version})",
                "sha256": digest,
                "keys": sorted(keys),
            },
        )
        schemas, crds = crd_schemas(module, version)
        for plural, schema in schemas.items():
            write_json(out / "crds" / f"{plural}.json", schema)
        chart_yaml = yaml.safe_load((chart / "Chart.yaml").read_text())
        summary[version] = {
            "tagged": str(json.loads(Path(info["Info"]).read_text())["Time"])[:10],
            "chartKubeVersion": chart_yaml.get("kubeVersion"),
            "kubernetesTested": tested_kubernetes(module),
            "valuesSchema": (chart / "values.schema.json").is_file(),
            "crds": crds,
        }
        print(f"{version}: {len(schemas)} CRD schemas, k8s {summary[version]['kubernetesTested']}")
    previous = (
        json.loads((OUT / "versions.json").read_text()) if (OUT / "versions.json").is_file() else {}
    )
    minors = sorted(
        {".".join(v.split(".")[:2]) for v in versions}, key=lambda m: int(m.split(".")[1])
    )
    support = (
        previous["support"]
        if args.no_support_table and "support" in previous
        else support_table(minors, args.as_of)
    )
    write_json(
        OUT / "versions.json",
        {
            "x-cnistack-source": {
                "generator": "scripts/derive_cilium_versions.py",
                "path": "cnistack/data/cilium-upgrade-path.yaml + scripts/toolchain.sh CILIUM_V",
                "module": MODULE,
            },
            "default": default,
            "path": versions,
            "versions": summary,
            "support": support,
        },
    )
    # The pack's copy (it never imports cnistack): its EOL rule reads the same table.
    write_json(PACK_TABLE, support)
    print(f"wrote {OUT.relative_to(REPO)}/ ({len(versions)} versions, default {default})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
