"""Copy the shared connectivity conformance suite into analyzer/tests/data/conformance/.

Tests read only the copy, so the suite is pinned with the code that passes it. Each case is also
written as a self-contained manifest file (fixture + the case's policies) so it can be replayed with
`python -m reachability query --manifests analyzer/tests/data/conformance/cases/<id>.yaml ...`.

Usage: python scripts/derive_conformance.py SOURCE_DIR
(SOURCE_DIR holds the suite: README.md, fixture.yaml, cases.yaml)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / "analyzer" / "tests" / "data" / "conformance"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python scripts/derive_conformance.py SOURCE_DIR", file=sys.stderr)
        return 2
    source = Path(argv[0])
    DEST.mkdir(parents=True, exist_ok=True)
    for name in ("README.md", "fixture.yaml", "cases.yaml"):
        shutil.copyfile(source / name, DEST / name)
    cases_dir = DEST / "cases"
    if cases_dir.exists():
        shutil.rmtree(cases_dir)
    cases_dir.mkdir()
    fixture = (source / "fixture.yaml").read_text(encoding="utf-8")
    cases = yaml.safe_load((source / "cases.yaml").read_text(encoding="utf-8"))["cases"]
    for case in cases:
        policies = "".join("---\n" + yaml.safe_dump(p, sort_keys=False) for p in case["policies"])
        (cases_dir / f"{case['id']}.yaml").write_text(fixture.rstrip() + "\n" + policies, "utf-8")
    print(f"wrote {len(cases)} cases to {DEST.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
