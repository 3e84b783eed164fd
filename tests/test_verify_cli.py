"""`python -m cnistack verify` without what it needs: one line saying what is missing, exit 2
(the datapath lab itself runs in tests/test_datapath_verify.py, as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(sys.platform != "linux", reason="the check under test is Linux's")
def test_verify_without_root_says_what_is_missing() -> None:
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed to drop root for this test"
    if os.geteuid() == 0:
        argv = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    else:
        argv = []
    done = subprocess.run(
        [*argv, sys.executable, "-m", "cnistack", "verify", "--stack", "homelab"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    assert (
        done.stderr
        == "verify: cannot run here: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF)\n"
    )
