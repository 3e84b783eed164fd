"""Connectivity analyzer: which endpoints may talk under an enforcement profile (kube-router, or
Cilium at a named version: reachability/profiles.py).

Pure Python, no Pulumi and nothing from the IaC program: manifests (or a live cluster) in,
allowed flows out. See docs/connectivity.md and docs/architecture.md.
"""

from reachability.engine import Analyzer, Request, Verdict
from reachability.errors import InputError
from reachability.loader import load_documents, load_paths
from reachability.profiles import EnforcementProfile, profile
from reachability.results import Rejected

__all__ = [
    "Analyzer",
    "EnforcementProfile",
    "InputError",
    "Rejected",
    "Request",
    "Verdict",
    "load_documents",
    "load_paths",
    "profile",
]
