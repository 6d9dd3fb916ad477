"""The runtime base of the generated Kafka messages.

Generated classes (``streamclient.protocol.messages``) hold a declarative field table
(``_FIELDS``, one :class:`F` per schema field, in wire order).  The first time a message
is encoded or decoded at a version, :mod:`streamclient.protocol.codec` turns that table
into straight-line Python for exactly that version and ``exec``s it; later calls go
straight to the compiled function.  Compiling lazily keeps ``import`` cheap (about 190
schemas times every version would otherwise be compiled up front) while the hot paths
(Produce encode, Fetch decode) run without per-field lookups or type dispatch.

Encoding a field that the chosen version cannot carry follows Kafka's generated Java
code: a field still at its default, or one marked ``ignorable`` in the schema, is
silently left out; any other value raises :class:`ProtocolEncodeError` (the Java client
raises ``UnsupportedVersionException`` there).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from streamclient.errors import KafkaError, ProtocolDecodeError
from streamclient.protocol.primitives import ZERO_UUID

__all__ = [
    "MISSING",
    "OPEN",
    "ZERO_UUID",
    "Buffer",
    "F",
    "Message",
    "ProtocolEncodeError",
    "Struct",
]

M = TypeVar("M", bound="Message")

Buffer = bytes | bytearray | memoryview

# Upper bound of an open version range ("3+").
OPEN = 0x7FFF


class ProtocolEncodeError(KafkaError, ValueError):
    """A message that cannot be written at the requested version.

    Raised for a value that does not fit its wire type, a null in a non-nullable
    field, or a non-default value in a field the version does not carry (Kafka's
    ``UnsupportedVersionException`` case).
    """


class _Missing:
    """The "not given" marker for constructor arguments whose default is mutable."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

_INT_TYPES = frozenset({"int8", "int16", "int32", "int64", "uint16", "uint32"})


class F:
    """One schema field, as the generator wrote it.

    ``type`` is the schema's type string (``"int32"``, ``"string"``, ``"[]int32"``,
    ``"[]PartitionData"``, ``"Cursor"``); struct names resolve against the nested classes
    of the enclosing message.  Version ranges are inclusive ``(lo, hi)`` pairs, ``None``
    meaning "no version".  ``flexible`` overrides the message's flexible versions for
    this field only (the request header's client id is never compact).
    """

    __slots__ = (
        "default",
        "flexible",
        "ignorable",
        "map_key",
        "name",
        "nullable",
        "tag",
        "tagged",
        "type",
        "versions",
    )

    def __init__(
        self,
        name: str,
        type: str,
        versions: tuple[int, int] | None,
        *,
        nullable: tuple[int, int] | None = None,
        tagged: tuple[int, int] | None = None,
        tag: int | None = None,
        default: Any = MISSING,
        ignorable: bool = False,
        flexible: Any = MISSING,
        map_key: bool = False,
    ) -> None:
        self.name = name
        self.type = type
        self.versions = versions
        self.nullable = nullable
        self.tagged = tagged
        self.tag = tag
        self.default = default
        self.ignorable = ignorable
        self.flexible = flexible
        self.map_key = map_key

    def __repr__(self) -> str:
        return f"F({self.name!r}, {self.type!r}, {self.versions!r})"

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")

    @property
    def element_type(self) -> str:
        return self.type[2:] if self.type.startswith("[]") else self.type

    def default_value(self, owner: type[Struct]) -> Any:
        """A fresh default (a new list or struct for mutable defaults)."""
        if self.default is not MISSING:
            return self.default
        t = self.type
        if t.startswith("[]"):
            return []
        if t in _INT_TYPES:
            return 0
        if t == "float64":
            return 0.0
        if t == "bool":
            return False
        if t == "string":
            return ""
        if t == "bytes":
            return b""
        if t == "records":
            return None
        if t == "uuid":
            return ZERO_UUID
        return owner._resolve(t)()


def _value_repr(value: Any) -> str:
    if isinstance(value, memoryview):
        return f"<{value.nbytes} bytes>"
    if isinstance(value, (bytes, bytearray)) and len(value) > 64:
        return f"<{len(value)} bytes>"
    return repr(value)


class Struct:
    """A schema struct: the fields are ``__slots__``; ``_FIELDS`` describes them."""

    __slots__ = ("unknown_tags",)

    _FIELDS: ClassVar[tuple[F, ...]] = ()
    # The top-level message class this struct belongs to, set when a codec is compiled.
    _ROOT: ClassVar[type[Message] | None] = None

    unknown_tags: dict[int, bytes]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        for f in self._FIELDS:
            if getattr(self, f.name) != getattr(other, f.name):
                return False
        return bool(self.unknown_tags == other.unknown_tags)

    # mutable, compared by value: unhashable.  Said explicitly so type checkers know it too;
    # the ignore is the one typeshed itself uses on list and dict, because object types
    # __hash__ as a method and mypy has no other way to spell "not hashable"
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = [f"{f.name}={_value_repr(getattr(self, f.name))}" for f in self._FIELDS]
        if self.unknown_tags:
            parts.append(f"unknown_tags={self.unknown_tags!r}")
        return f"{type(self).__qualname__}({', '.join(parts)})"

    @classmethod
    def _resolve(cls, name: str) -> type[Struct]:
        """The struct class called ``name`` in this struct's message."""
        root = cls._ROOT
        if root is None:
            # not compiled yet: the message class is the module attribute named by the
            # first part of the qualified name
            module = sys.modules[cls.__module__]
            top = getattr(module, cls.__qualname__.split(".", 1)[0])
            _register(top)
            root = top
        return root._STRUCTS[name]


def _register(root: type[Message]) -> None:
    """Index every struct class nested (at any depth) in ``root`` by its schema name."""
    found: dict[str, type[Struct]] = {}

    def walk(owner: type) -> None:
        for value in vars(owner).values():
            # only classes defined inside ``owner``, not ones merely referenced from it
            if (
                isinstance(value, type)
                and issubclass(value, Struct)
                and value.__qualname__.startswith(owner.__qualname__ + ".")
            ):
                found.setdefault(value.__name__, value)
                value._ROOT = root
                walk(value)

    walk(root)
    root._STRUCTS = found
    root._ROOT = root


Encoder = Callable[[Any, bytearray], None]
Decoder = Callable[[memoryview, int, int], tuple[Any, int]]


class Message(Struct):
    """A top-level message: request, response, header or data record."""

    __slots__ = ()

    API_KEY: ClassVar[int] = -1
    API_NAME: ClassVar[str] = ""
    MESSAGE_TYPE: ClassVar[str] = ""
    VALID_VERSIONS: ClassVar[tuple[int, int]] = (0, 0)
    # The highest version safe to advertise: one below VALID_VERSIONS[1] when the
    # schema marks its latest version unstable.
    LATEST_STABLE_VERSION: ClassVar[int] = 0
    DEPRECATED_VERSIONS: ClassVar[tuple[int, int] | None] = None
    FLEXIBLE_MIN: ClassVar[int | None] = None
    LISTENERS: ClassVar[tuple[str, ...]] = ()
    RESPONSE_TYPE: ClassVar[type[Message]]

    _STRUCTS: ClassVar[dict[str, type[Struct]]]
    _encoders: ClassVar[dict[int, Encoder]]
    _decoders: ClassVar[dict[int, Decoder]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._encoders = {}
        cls._decoders = {}

    @classmethod
    def is_flexible(cls, version: int) -> bool:
        return cls.FLEXIBLE_MIN is not None and version >= cls.FLEXIBLE_MIN

    def encode(self, version: int) -> bytes:
        buf = bytearray()
        self.write(buf, version)
        return bytes(buf)

    def write(self, buf: bytearray, version: int) -> None:
        """Append this message's encoding at ``version`` to ``buf``."""
        cls = type(self)
        try:
            enc = cls._encoders[version]
        except KeyError:
            from streamclient.protocol.codec import compile_encoder

            enc = compile_encoder(cls, version)
        try:
            enc(self, buf)
        except ProtocolEncodeError:
            raise
        except (struct.error, TypeError, AttributeError, OverflowError, ValueError) as exc:
            raise ProtocolEncodeError(
                f"cannot encode {cls.API_NAME or cls.__name__} v{version}: {exc}"
            ) from exc

    @classmethod
    def decode(cls: type[M], buf: Buffer, version: int) -> M:
        mv = buf if isinstance(buf, memoryview) else memoryview(buf)
        return cls.read(mv, 0, version)[0]

    @classmethod
    def read(cls: type[M], mv: memoryview, pos: int, version: int) -> tuple[M, int]:
        """Decode one message starting at ``pos``; return it and the position after it."""
        try:
            dec = cls._decoders[version]
        except KeyError:
            from streamclient.protocol.codec import compile_decoder

            dec = compile_decoder(cls, version)
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        name = cls.API_NAME or cls.__name__
        try:
            return dec(mv, pos, len(mv))
        except ProtocolDecodeError as exc:
            if exc.api is not None:
                raise
            raise ProtocolDecodeError(
                _reason(exc), api=name, version=version, offset=exc.offset
            ) from None
        except UnicodeDecodeError as exc:
            raise ProtocolDecodeError(
                f"invalid UTF-8 string: {exc.reason}", api=name, version=version
            ) from None
        except (IndexError, struct.error, ValueError, OverflowError, MemoryError) as exc:
            raise ProtocolDecodeError(
                f"malformed message: {exc}", api=name, version=version
            ) from None


def _reason(exc: ProtocolDecodeError) -> str:
    text = str(exc.args[0]) if exc.args else "malformed message"
    suffix = f" (at byte {exc.offset})"
    return text[: -len(suffix)] if exc.offset is not None and text.endswith(suffix) else text
