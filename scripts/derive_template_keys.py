"""Derive the Helm value keys the Cilium chart's templates read, into the repo.

Some keys the chart honours are neither set nor documented in values.yaml: `policyAuditMode` is
only a bare `# policyAuditMode: false` line there, yet templates/cilium-configmap.yaml renders
`policy-audit-mode` from `hasKey .Values "policyAuditMode"`. scripts/derive_chart_keys.py reads
values.yaml; this script adds what the templates reference, as `.Values.a.b` paths and as
`hasKey .Values.a "b"` lookups, so cnistack/chart_keys.py can accept exactly those.

Usage: python scripts/derive_template_keys.py CHART_DIR [OUT_JSON]
CHART_DIR is install/kubernetes/cilium of the Go module github.com/cilium/cilium@v1.15.0
(`scripts/toolchain.sh --print-cilium-dir`).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "cnistack/data/cilium-1.15.0-template-keys.json"

_VALUES_PATH = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
_HAS_KEY = re.compile(
    r'hasKey\s+\(?\s*\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\)?\s+"([^"]+)"'
)


def template_keys(chart_dir: Path) -> tuple[set[str], str]:
    keys: set[str] = set()
    digest = hashlib.sha256()
    files = sorted(
        p for p in (chart_dir / "templates").rglob("*") if p.suffix in {".yaml", ".tpl", ".txt"}
    )
    for path in files:
        text = path.read_text()
        digest.update(path.relative_to(chart_dir).as_posix().encode())
        digest.update(text.encode())
        for match in _VALUES_PATH.finditer(text):
            parts = match[1].lstrip(".").split(".")
            keys.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        for match in _HAS_KEY.finditer(text):
            prefix = match[1].lstrip(".")
            keys.add(f"{prefix}.{match[2]}" if prefix else match[2])
    return keys, digest.hexdigest()


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    chart_dir = Path(argv[0])
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    if not (chart_dir / "Chart.yaml").is_file():
        print(f"{chart_dir}: not a chart directory (no Chart.yaml)", file=sys.stderr)
        return 2
    keys, digest = template_keys(chart_dir)
    version = next(
        line.split(":", 1)[1].strip()
        for line in (chart_dir / "Chart.yaml").read_text().splitlines()
        if line.startswith("version:")
    )
    data = {
        "source": f"cilium chart templates/ ({version})",
        "sha256": digest,
        "keys": sorted(keys),
    }
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{len(keys)} template keys -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
