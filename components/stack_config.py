"""Read the stack config once, through the SDK's public API (`pulumi.Config`).

Part of the Pulumi shell because it imports `pulumi` (cnistack never does); the validation itself
is cnistack's one step, `validate_stack_config` (the typed model, then what only rendering can
tell), shared with `render`, `connectivity` and the tests.

Every value comes from `pulumi.Config`. Two things it does not offer:
- listing keys: the model's keys are known; a misspelt key (`aisp-cni:clsuter`) is found in the
  stack file, which is where `pulumi config set` writes, so it still gets its "did you mean";
- telling whether a value was stored as a secret: `Config.get_secret` wraps any value as secret
  (pulumi/config.py, `get_secret`), and `Config._get`'s own "value is a secret" check is disabled
  (pulumi/pulumi#7127). The SDK exports that check as `pulumi.runtime.is_config_secret` (the keys
  of `set_all_config`: mocks, providers) and the engine's list as
  `pulumi.runtime.get_config_secret_keys_env()` (`PULUMI_CONFIG_SECRET_KEYS`, set by the language
  host); both are in `pulumi.runtime.__all__`, neither reads `pulumi.runtime.config` internals.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from cnistack.config import PROJECT, SECRET_KEYS, StackConfig
from cnistack.stack_checks import validate_stack_config
from cnistack.stack_files import PROJECT_DIR, stack_file_keys


def _stored_as_secret(full_key: str) -> bool:
    return pulumi.runtime.is_config_secret(full_key) or (
        full_key in pulumi.runtime.get_config_secret_keys_env()
    )


def read_stack_config(stack: str | None = None, project_dir: Path = PROJECT_DIR) -> StackConfig:
    """The validated config of the running stack; ConfigError names every bad key."""
    config = pulumi.Config(PROJECT)
    model_keys = {field.alias or name for name, field in StackConfig.model_fields.items()}
    keys = model_keys | stack_file_keys(stack or pulumi.get_stack(), project_dir)
    raw = {key: value for key in sorted(keys) if (value := config.get(key)) is not None}
    secrets = {key for key in SECRET_KEYS if _stored_as_secret(config.full_key(key))}
    return validate_stack_config(raw, secrets)
