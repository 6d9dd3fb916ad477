"""An error response for any request, built from the request's own shape.

Kafka's Java broker has a hand-written ``getErrorResponse`` per request class.  Here one
walk does it for every API: the response mirrors the request's lists (a topic list of the
request becomes the topic list of the response, its partitions the partitions), copies the
fields that identify an entry (topic name or id, partition index, group id, transactional
id, resource name, …) and sets ``error_code`` (and ``error_message`` where the version has
one) on the top level and on every entry.

Lists are paired only when their entries share an identifying field, so a JoinGroup
request's protocols never turn into response members.
"""

from __future__ import annotations

from typing import Any

from streamclient.protocol.message import F, Message, Struct

__all__ = ["error_response"]

_PRIMITIVES = frozenset({
    "int8", "int16", "int32", "int64", "uint16", "uint32", "float64", "bool", "string",
    "bytes", "records", "uuid",
})

# names that identify the same thing in a request and its response
_ALIASES: tuple[frozenset[str], ...] = (
    frozenset({"partition_index", "partition", "index", "partition_id"}),
    frozenset({"name", "topic", "topic_name"}),
    frozenset({"topic_id"}),
    frozenset({"group_id"}),
    frozenset({"transactional_id"}),
    frozenset({"key"}),
    frozenset({"resource_type"}),
    frozenset({"resource_name"}),
    frozenset({"producer_id"}),
)
_GROUP_OF: dict[str, int] = {name: i for i, names in enumerate(_ALIASES) for name in names}
# an entry of a request's list of plain values: which response field it becomes
_STRING_IDENTITIES = ("key", "group_id", "name", "transactional_id", "topic")
_INT_IDENTITIES = ("partition_index", "partition", "index")
# offsets an error answer carries as -1 (Kafka's INVALID_OFFSET / "no producer id")
_MINUS_ONE = frozenset({"base_offset", "offset", "committed_offset", "high_watermark",
                        "last_stable_offset", "producer_id", "log_start_offset"})


def error_response(request: Message, version: int, error_code: int,
                   error_message: str | None = None) -> Message:
    """The response to ``request`` at ``version`` with ``error_code`` everywhere."""
    response = type(request).RESPONSE_TYPE()
    _fill(request, response, version, error_code, error_message)
    return response


def _in_version(f: F, version: int) -> bool:
    return f.versions is not None and f.versions[0] <= version <= f.versions[1]


def _struct_type(owner: type[Struct], f: F) -> type[Struct] | None:
    if not f.is_array or f.element_type in _PRIMITIVES:
        return None
    return owner._resolve(f.element_type)


def _identity_fields(cls: type[Struct], version: int) -> dict[int, F]:
    return {_GROUP_OF[f.name]: f for f in cls._FIELDS
            if f.name in _GROUP_OF and not f.is_array and _in_version(f, version)}


def _fill(src: Struct, dst: Struct, version: int, code: int, message: str | None) -> None:
    dst_cls = type(dst)
    src_ids = _identity_fields(type(src), version)
    for group, f in _identity_fields(dst_cls, version).items():
        origin = src_ids.get(group)
        if origin is not None and origin.type == f.type:
            setattr(dst, f.name, getattr(src, origin.name))
    for f in dst_cls._FIELDS:
        if not _in_version(f, version):
            continue
        if f.name == "error_code":
            setattr(dst, f.name, code)
        elif f.name == "error_message" and message is not None:
            setattr(dst, f.name, message)
        elif f.name in _MINUS_ONE and f.type == "int64":
            setattr(dst, f.name, -1)
        elif f.is_array:
            element = _struct_type(dst_cls, f)
            if element is not None:
                source = _paired_list(src, element, f, version)
                if source is not None:
                    setattr(dst, f.name, [_entry(item, element, version, code, message)
                                          for item in source])


def _entry(item: Any, element: type[Struct], version: int, code: int,
           message: str | None) -> Struct:
    entry = element()
    if isinstance(item, Struct):
        _fill(item, entry, version, code, message)
        return entry
    names = _STRING_IDENTITIES if isinstance(item, str) else _INT_IDENTITIES
    for f in element._FIELDS:
        if f.name in names and _in_version(f, version):
            setattr(entry, f.name, item)
            break
    _fill(_Empty(), entry, version, code, message)
    return entry


class _Empty(Struct):
    __slots__ = ()


def _paired_list(src: Struct, element: type[Struct], dst_field: F,
                 version: int) -> list[Any] | None:
    """The list of ``src`` whose entries answer to the entries of ``dst_field``."""
    wanted = _identity_fields(element, version)
    candidates: list[F] = []
    for f in type(src)._FIELDS:
        if not f.is_array or not _in_version(f, version):
            continue
        src_element = _struct_type(type(src), f)
        if src_element is not None:
            if set(_identity_fields(src_element, version)) & set(wanted):
                candidates.append(f)
        elif f.element_type == "string":
            if any(wanted[g].name in _STRING_IDENTITIES and wanted[g].type == "string"
                   for g in wanted):
                candidates.append(f)
        elif f.element_type in ("int32", "int16") and any(
                w.name in _INT_IDENTITIES for w in wanted.values()):
            candidates.append(f)
    if not candidates:
        return None
    # Fetch has both topics and forgotten_topics_data: a list of the same name wins, else
    # the first one declared (the request's main data comes first in every schema)
    same_name = [f for f in candidates if f.name == dst_field.name]
    chosen = same_name[0] if same_name else candidates[0]
    value = getattr(src, chosen.name)
    return list(value) if value is not None else None
