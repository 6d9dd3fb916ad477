"""Our encodings against an implementation nobody here wrote: kafka-python 3's messages.

kafka-python generates its classes from a newer copy of Kafka's schemas; released versions
never change on the wire, so in the versions both know, its decoder must read our bytes
and its encoder must write them back unchanged.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from message_strategies import struct_strategy

from streamclient.protocol import messages
from streamclient.protocol.message import Message

api_message = pytest.importorskip("kafka.protocol.api_message")

pytestmark = pytest.mark.interop


def _kafka_python_classes() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for package in ("metadata", "producer", "consumer", "admin", "sasl"):
        module = importlib.import_module(f"kafka.protocol.{package}")
        modules = [module]
        for sub in pkgutil.iter_modules(getattr(module, "__path__", [])):
            modules.append(importlib.import_module(f"kafka.protocol.{package}.{sub.name}"))
        for mod in modules:
            for value in vars(mod).values():
                if (
                    isinstance(value, type)
                    and issubclass(value, api_message.ApiMessage)
                    and value is not api_message.ApiMessage
                    and getattr(value, "_class_version", 1) is None
                ):
                    found[value.__name__] = value
    return found


# kafka-python's own behaviour, not the wire format: it reads any ApiVersions response
# with a non-zero error as v0, and its DeleteTopicsRequest.encode needs a request header.
_QUIRKS = {"ApiVersionsResponse", "DeleteTopicsRequest"}


def _cases() -> list[Any]:
    cases = []
    for name, theirs in sorted(_kafka_python_classes().items()):
        ours = getattr(messages, name, None)
        if ours is None or name in _QUIRKS:
            continue
        lo = max(ours.VALID_VERSIONS[0], theirs.valid_versions[0])
        hi = min(ours.VALID_VERSIONS[1], theirs.valid_versions[1])
        cases.extend(pytest.param(ours, theirs, v, id=f"{name}-v{v}") for v in range(lo, hi + 1))
    return cases


@pytest.mark.parametrize(("ours", "theirs", "version"), _cases())
@settings(
    max_examples=5,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_kafka_python_reads_and_rewrites_our_bytes(
    ours: type[Message], theirs: Any, version: int, data: st.DataObject
) -> None:
    encoded = data.draw(struct_strategy(ours, ours, version, unknown_tags=False)).encode(version)
    decoded = theirs.decode(encoded, version=version)
    assert bytes(decoded.encode()) == encoded
