"""Connectivity analyzer: which endpoints may talk under kube-router or Cilium enforcement.

Pure Python (no Pulumi): manifests in, allowed flows out. See docs/connectivity.md.
"""

from reachability.engine import Analyzer, Request, Verdict
from reachability.errors import InputError
from reachability.loader import load_documents, load_paths

__all__ = ["Analyzer", "InputError", "Request", "Verdict", "load_documents", "load_paths"]
