"""Can the pack see this value? The one answer every policy uses (it is not a policy).

In production the pack fails closed: what it cannot read is a violation, not a pass (a guard that
passes what it cannot see lets C4-C5 data through; ADR-013 "Conformité").
A value the engine does not know yet (pulumi_policy raises `UnknownValueError` on reading it) is
judged by phase:
- during a preview (`pulumi preview`, and the preview half of `pulumi up`) nothing is reported:
  the engine analyses the resource again with its real values when it applies it;
- during the update itself the value will never be known to the pack, so the resource cannot be
  verified and that is reported ("Cannot verify ..."), mandatory under the production pack config.
  The homelab pack config keeps it advisory, like every other rule.

Which phase: the engine sends `dryRun` in `AnalyzerStackConfigureRequest` (pulumi/pulumi
sdk/go/common/resource/plugin/analyzer_plugin.go, NewPolicyAnalyzer). pulumi_policy 1.21.0 ignores
that field in `ConfigureStack`, but Python's language host passes it on to the pack's process as
`PULUMI_DRY_RUN=true|false` (pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go,
RunPlugin: `maybeAppendEnv("PULUMI_DRY_RUN", strconv.FormatBool(config.DryRun))`), and
pulumi_policy itself reads that variable into `pulumi.runtime.Settings(dry_run=...)` before every
Analyze/AnalyzeStack (pulumi_policy/policy.py `_configure_runtime_settings`). The pack reads the
same variable directly, so it does not depend on that side effect having run. When the variable is
absent the phase is unknown, and the pack assumes the update: failing closed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import ReportViolation

# Not re-exported by pulumi_policy's package root, but it is what the proxies raise.
from pulumi_policy.proxy import UnknownValueError

DRY_RUN_ENV = "PULUMI_DRY_RUN"


def is_preview() -> bool:
    """True only when the engine says this analysis is a dry run."""
    return os.environ.get(DRY_RUN_ENV) == "true"


def unknown_path(error: UnknownValueError) -> str:
    return ".".join(error.props)


def cannot_verify(error: UnknownValueError) -> str | None:
    """The violation for an unknown value: None during preview, the sentence during the update."""
    if is_preview():
        return None
    return (
        f"Cannot verify this resource against ADR-013: `{unknown_path(error)}` is still unknown "
        "during the update, so the policy pack cannot read it; give it a value known before "
        "`pulumi up` applies it."
    )


def report_unknown(error: UnknownValueError, report_violation: ReportViolation, urn: str) -> None:
    """For policies that catch `UnknownValueError` themselves around one resource."""
    message = cannot_verify(error)
    if message is not None:
        report_violation(message, urn)


def judged(messages: Iterable[str]) -> list[str]:
    """Collect violation messages until a check reads an unknown value, then stop judging.

    Violations found before the unknown value are real and kept. During a preview whatever depends
    on the unknown value is left to the update; during the update it becomes "cannot verify".
    """
    found: list[str] = []
    try:
        for message in messages:
            found.append(message)
    except UnknownValueError as error:
        message = cannot_verify(error)
        if message is not None:
            found.append(message)
    return found


def unknown_in(props: Mapping[str, Any], key: str) -> UnknownValueError | None:
    """The first unknown value in `props[key]` (reading every nested key and item), or None."""
    try:
        _read_all(props[key])
    except UnknownValueError as error:
        return error
    return None


def _read_all(value: object) -> None:
    if isinstance(value, Mapping):
        for key in value:
            _read_all(value[key])
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for index in range(len(value)):
            _read_all(value[index])
