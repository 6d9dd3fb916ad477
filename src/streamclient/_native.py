"""Whether to use the C implementations of the hot paths, and loading them.

``protocol/records/_cwriter.c``, ``producer/_cfastpath.c`` and ``consumer/_cdecode.c`` are
built at install when a C compiler is there; each has a pure-Python twin with the same
behaviour, used when the extension is missing or when ``STREAMCLIENT_PURE_PYTHON`` is set to a non-empty value
other than ``0`` (how the tests run both).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__all__ = ["native_enabled", "native_impl"]


def native_enabled() -> bool:
    return os.environ.get("STREAMCLIENT_PURE_PYTHON", "") in ("", "0")


def native_impl(module: str, name: str, fallback: Any) -> Any:
    """``module.name`` (a class or function) from a C extension, or ``fallback`` (its
    Python twin) when the extension was not built or is switched off.

    Loaded by name: the import checker (import-linter) reads only Python sources, and a
    plain import of an extension module would look to it like an import of the package.
    """
    if not native_enabled():
        return fallback
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        return fallback
