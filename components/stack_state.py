"""Read back this stack's own last outputs (its state), before any resource is registered.

The program exports what it deployed (`ciliumInstall`: the Cilium version, the one first
installed, a running preflight) and reads it back on the next run through a StackReference to
the stack itself: the engine reads the stack's last checkpoint, so this works with any backend
(local files, Pulumi Cloud). The read is awaited at once (`_sync_await`, the SDK's own helper for
synchronous invokes), so a refused upgrade stops the program before any other resource.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime.sync_await import _sync_await


def own_stack_name() -> str:
    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"


def previous_output(name: str) -> Any:
    """The stack's last value of output `name`; None on a new stack or without that output."""
    reference = pulumi.StackReference("own-state", own_stack_name())
    details = _sync_await(reference.get_output_details(name))
    return details.value if details.value is not None else details.secret_value
