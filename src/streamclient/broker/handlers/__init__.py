"""One module per API key; each registers its handler with ``registry.handles``.

:func:`load_all` imports every module of this package, so a new handler needs no edit
here.  The registry calls it on its first lookup.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["load_all"]


def load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
