"""Connectivity analyzer: which endpoints may talk under kube-router or Cilium enforcement.

Pure Python (no Pulumi): manifests in, allowed flows out. See docs/connectivity.md.
"""

from cnistack.connectivity.engine import Analyzer, Request, Verdict
from cnistack.connectivity.errors import InputError
from cnistack.connectivity.loader import load_documents, load_paths

__all__ = ["Analyzer", "InputError", "Request", "Verdict", "load_documents", "load_paths"]
