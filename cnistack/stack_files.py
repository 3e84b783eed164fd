"""Load a committed stack file without the engine (for `render`, `connectivity`, tests).

The engine merges Pulumi.yaml's declared defaults with Pulumi.<stack>.yaml and hands
the program the result; this does the same from the files, so both paths validate
the very same dictionary with :func:`cnistack.stack_checks.validate_stack_config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cnistack.config import PROJECT, StackConfig, project_config
from cnistack.stack_checks import validate_stack_config

PROJECT_DIR = Path(__file__).resolve().parent.parent


def stack_file(name: str, project_dir: Path = PROJECT_DIR) -> Path:
    return project_dir / f"Pulumi.{name}.yaml"


def committed_stacks(project_dir: Path = PROJECT_DIR) -> list[str]:
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml")
                  for p in project_dir.glob("Pulumi.*.yaml"))  # fmt: skip


def _stack_values(name: str, project_dir: Path) -> dict[str, Any]:
    path = stack_file(name, project_dir)
    if not path.is_file():
        known = ", ".join(committed_stacks(project_dir)) or "none"
        raise FileNotFoundError(f"no stack file {path.name} (committed stacks: {known})")
    document = yaml.safe_load(path.read_text()) or {}
    return project_config(document.get("config") or {})


def _is_encrypted(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def raw_stack_config(name: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    # Secrets stay encrypted in the file; without the engine they are just "set".
    return {key: None if _is_encrypted(value) else value
            for key, value in _stack_values(name, project_dir).items()}  # fmt: skip


def secret_stack_keys(name: str, project_dir: Path = PROJECT_DIR) -> set[str]:
    return {key for key, value in _stack_values(name, project_dir).items() if _is_encrypted(value)}


def stack_file_keys(name: str, project_dir: Path = PROJECT_DIR) -> set[str]:
    """The project keys a stack file sets (none when the stack has no file)."""
    if not stack_file(name, project_dir).is_file():
        return set()
    return set(_stack_values(name, project_dir))


def load_stack(name: str, project_dir: Path = PROJECT_DIR) -> StackConfig:
    """The validated config of a committed stack, e.g. ``load_stack("homelab")``."""
    return validate_stack_config(
        raw_stack_config(name, project_dir), secret_stack_keys(name, project_dir)
    )


__all__ = ["PROJECT", "committed_stacks", "load_stack", "raw_stack_config", "stack_file"]
