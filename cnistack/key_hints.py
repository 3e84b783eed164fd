""" "Did you mean" for an unknown key at any depth of a pydantic model (stack config, policy model).

Pydantic reports an unknown key as `extra_forbidden` at a location such as
`("cluster", "k3d", "agent")`; this walks the model along that location to the keys allowed
there, so the message can name the nearest one.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel

from reachability.hints import nearest

__all__ = ["allowed_keys", "did_you_mean", "nearest"]


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) is Annotated:
        return _models(typing.get_args(annotation)[0])
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models(arg)
    return found


def _keys(model: type[BaseModel]) -> dict[str, Any]:
    return {field.alias or name: field for name, field in model.model_fields.items()}


def _tagged(models: list[type[BaseModel]], tag: str) -> list[type[BaseModel]]:
    # A union discriminated by a `kind` literal: pydantic puts the tag in the location.
    return [
        m for m in models if "kind" in m.model_fields
        and tag in typing.get_args(m.model_fields["kind"].annotation)
    ]  # fmt: skip


def allowed_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys the model accepts at ``loc`` (the location of the mapping, not of the key)."""
    candidates = [model]
    for part in loc:
        if isinstance(part, int):
            continue  # an item of a list or tuple: same model
        if len(candidates) > 1 and (tagged := _tagged(candidates, part)):
            candidates = tagged
            continue
        if len(candidates) != 1:
            return []
        field = _keys(candidates[0]).get(part)
        if field is None:
            return []
        candidates = _models(field.annotation)
    return sorted(_keys(candidates[0])) if len(candidates) == 1 else []


def did_you_mean(key: str, allowed: Sequence[str]) -> str:
    hint = difflib.get_close_matches(key, list(allowed), n=1)
    return f"; did you mean {hint[0]!r}?" if hint else ""
