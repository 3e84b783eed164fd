"""The nearest names to a wrong one, for "did you mean" hints (an unknown pod in `query`, an
unknown key in cnistack's stack config, which re-exports this from cnistack/key_hints.py)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence


def nearest(name: str, candidates: Sequence[str], n: int = 3) -> list[str]:
    """The ``n`` candidates closest to ``name``, closest first, ties in name order."""

    def distance(candidate: str) -> tuple[float, str]:
        return -difflib.SequenceMatcher(None, name, candidate).ratio(), candidate

    return sorted(candidates, key=distance)[:n]
