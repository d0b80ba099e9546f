"""Optional features and the ``pip`` extra that brings each one.

A feature whose extra is missing is not registered; a config that uses it gets a plan-time problem
naming the extra (``install kafka-sidecar[protobuf]``) instead of an import error.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType

FORMAT_EXTRAS: Mapping[str, str] = MappingProxyType({"protobuf": "protobuf"})
"""Record formats that only exist with an extra installed: format name -> extra."""


def install_hint(extra: str) -> str:
    return f"install kafka-sidecar[{extra}] (pip install 'kafka-sidecar[{extra}]')"


def has_modules(*modules: str) -> bool:
    """Whether every module imports (a missing or blocked one is ``False``, never an error)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            return False
    return True
