"""Hypothesis strategies for generated messages, built from each class's field table.

Fields a version does not carry keep their defaults; flexible versions also get unknown
tagged fields (tags from 1000 up, which no schema uses).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from streamclient.protocol.message import F, Message, Struct

_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
}


def _within(rng: tuple[int, int] | None, version: int) -> bool:
    return rng is not None and rng[0] <= version <= rng[1]


def _carried(f: F, version: int, flexible: bool) -> bool:
    if not _within(f.versions, version):
        return False
    if f.tag is not None and _within(f.tagged, version):
        return flexible
    return True


def _scalar(type_name: str) -> st.SearchStrategy[Any]:
    if type_name in _INT_RANGES:
        lo, hi = _INT_RANGES[type_name]
        return st.integers(lo, hi)
    if type_name == "float64":
        return st.floats(allow_nan=False)
    if type_name == "bool":
        return st.booleans()
    if type_name == "string":
        return st.text(max_size=8)
    if type_name in ("bytes", "records"):
        return st.binary(max_size=12)
    if type_name == "uuid":
        return st.uuids()
    raise AssertionError(type_name)


def struct_strategy(
    root: type[Message],
    cls: type[Struct],
    version: int,
    depth: int = 0,
    *,
    unknown_tags: bool = True,
) -> st.SearchStrategy[Struct]:
    flexible = root.is_flexible(version)
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    for f in cls._FIELDS:
        if not _carried(f, version, flexible):
            continue
        element = f.element_type
        if element in _INT_RANGES or element in (
            "float64",
            "bool",
            "string",
            "bytes",
            "records",
            "uuid",
        ):
            value = _scalar(element)
        else:
            value = struct_strategy(
                root, cls._resolve(element), version, depth + 1, unknown_tags=unknown_tags
            )
        if f.is_array:
            value = st.lists(value, max_size=3 if depth < 2 else 1)
        if _within(f.nullable, version):
            value = st.none() | value
        kwargs[f.name] = value
    if flexible and unknown_tags:
        # tags from 1000 up are unknown to every schema
        kwargs["unknown_tags"] = st.dictionaries(
            st.integers(1000, 1100), st.binary(max_size=4), max_size=2
        )
    return st.builds(cls, **kwargs)
