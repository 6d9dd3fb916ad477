"""Every generated message at every valid version: round trips and decoder fuzzing.

Field values come from hypothesis strategies built from each class's own field table, so
the tests follow the schemas: fields a version does not carry keep their defaults, and
flexible versions also carry unknown tagged fields, which must survive the round trip.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from message_strategies import struct_strategy

from streamclient.errors import ProtocolDecodeError
from streamclient.protocol import messages
from streamclient.protocol.message import Message

ALL_TYPES: list[type[Message]] = sorted(
    {getattr(messages, name) for name in messages.__all__ if name[0].isupper() and "_" not in name},
    key=lambda cls: cls.__name__,
)
CASES = [
    pytest.param(cls, v, id=f"{cls.__name__}-v{v}")
    for cls in ALL_TYPES
    for v in range(cls.VALID_VERSIONS[0], cls.VALID_VERSIONS[1] + 1)
]

FEW = settings(
    max_examples=5,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize(("cls", "version"), CASES)
@FEW
@given(data=st.data())
def test_round_trip(cls: type[Message], version: int, data: st.DataObject) -> None:
    msg = data.draw(struct_strategy(cls, cls, version))
    encoded = msg.encode(version)
    decoded = cls.decode(encoded, version)
    assert decoded == msg
    # and the encoding is canonical: re-encoding the decoded message gives the same bytes
    assert decoded.encode(version) == encoded


@pytest.mark.parametrize(("cls", "version"), CASES)
@FEW
@given(data=st.data(), junk=st.binary(max_size=48))
def test_decoders_fail_only_with_decode_errors(
    cls: type[Message], version: int, data: st.DataObject, junk: bytes
) -> None:
    """Random bytes, every truncation and a corrupted byte of a valid encoding either
    decode or raise ProtocolDecodeError naming the API and version, never anything else."""
    name = cls.API_NAME or cls.__name__
    encoded = data.draw(struct_strategy(cls, cls, version)).encode(version)
    corrupted = bytearray(encoded)
    if corrupted:
        where = data.draw(st.integers(0, len(corrupted) - 1))
        corrupted[where] = data.draw(st.integers(0, 255))
    candidates = [junk, bytes(corrupted)] + [encoded[:cut] for cut in range(len(encoded))]
    for candidate in candidates:
        try:
            cls.decode(candidate, version)
        except ProtocolDecodeError as exc:
            assert (exc.api, exc.version) == (name, version)


def test_every_api_has_a_request_and_a_response() -> None:
    assert set(messages.REQUEST_TYPES) == set(messages.RESPONSE_TYPES)
    for key, request in messages.REQUEST_TYPES.items():
        assert key == request.API_KEY
        assert request.RESPONSE_TYPE is messages.RESPONSE_TYPES[key]
        assert request.VALID_VERSIONS == request.RESPONSE_TYPE.VALID_VERSIONS
