"""The stack's one validation step: the typed model, then what only rendering can tell.

`cnistack.config` models the stack and checks each field on its own. Some keys are only wrong
for what they render on this cluster, so they are checked here, after the model is built and
before anything is registered:
- `cilium.extraValues` against the chart at the version being installed (a key the chart does
  not have, or a value the program decides from another key; cnistack/cilium_extra_values.py);
- `networkPolicy` rendered for this cluster's flavour and CNI (a model can be valid on its own
  and still name what the cluster cannot enforce, e.g. a hostNetwork source on K3s with
  kube-router).

The program (`components/stack_config.py`), `render` and the analyzer's stack adapter all read a
stack through :func:`validate_stack_config` (`cnistack.stack_files.load_stack` for the committed
files), so they refuse the same stacks with the same message: one ConfigError naming every key.
This module sits above the renderers and the model; the model never calls a renderer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from cnistack.cilium import helm_values
from cnistack.cilium_extra_values import extra_value_problems
from cnistack.config import StackConfig, config_error, parse_stack_config
from cnistack.netpol.renderer import render_policies


def _extra_values_problems(config: StackConfig) -> list[tuple[str, str]]:
    settings = config.cilium_settings
    if settings is None or not settings.extra_values:
        return []
    # What the program itself sets, without the escape hatch: extraValues may not overwrite it.
    own = helm_values(
        config.model_copy(update={"cilium": settings.model_copy(update={"extra_values": {}})})
    )
    return [
        (f"cilium.extraValues.{path}".rstrip("."), why)
        for path, why in extra_value_problems(settings.extra_values, settings.chart.version, own)
    ]


def _network_policy_problems(config: StackConfig) -> list[tuple[str, str]]:
    try:
        render_policies(config.network_policy, config.capabilities, config.flavour)
    except ValueError as err:
        return [("networkPolicy", str(err))]
    return []


def check_stack(config: StackConfig) -> StackConfig:
    """``config`` itself when it renders for its cluster; else one ConfigError naming every key."""
    problems = [*_extra_values_problems(config), *_network_policy_problems(config)]
    if problems:
        raise config_error(problems)
    return config


def validate_stack_config(
    raw: Mapping[str, Any], secret_keys: Collection[str] | None = None
) -> StackConfig:
    """The typed model of the project's config (parse_stack_config), checked by rendering."""
    return check_stack(parse_stack_config(raw, secret_keys))
