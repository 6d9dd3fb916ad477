"""Compiles a generated message's field table into per-version encoder/decoder functions.

For one (message class, version) pair this writes the Python source of one function per
struct reachable at that version, straight-line: the fields the version carries, in wire
order, with consecutive fixed-width fields packed by a single precompiled
``struct.Struct``, and ``exec``s it once.  Nothing on the per-message path looks up a
field spec, a version range or a type.

Decoders have the signature ``(mv, pos, end) -> (obj, pos)`` and check every read against
``end``, raising :class:`~streamclient.errors.ProtocolDecodeError` with the offset; the
caller (:meth:`Message.read`) adds the API name and version.  Encoders are
``(obj, buf) -> None`` and append to a ``bytearray``.
"""

from __future__ import annotations

import struct
from typing import Any
from uuid import UUID

from streamclient.errors import ProtocolDecodeError
from streamclient.protocol.message import (
    MISSING,
    Decoder,
    Encoder,
    F,
    Message,
    ProtocolEncodeError,
    Struct,
    _register,
)
from streamclient.protocol.primitives import decode_uvarint, encode_uvarint

__all__ = ["compile_decoder", "compile_encoder"]

# struct format char and size of the fixed-width types
_FIXED: dict[str, tuple[str, int]] = {
    "int8": ("b", 1),
    "int16": ("h", 2),
    "int32": ("i", 4),
    "int64": ("q", 8),
    "uint16": ("H", 2),
    "uint32": ("I", 4),
    "float64": ("d", 8),
    "bool": ("?", 1),
}
_PRIMITIVES = frozenset(_FIXED) | {"string", "bytes", "records", "uuid"}


def _within(rng: tuple[int, int] | None, version: int) -> bool:
    return rng is not None and rng[0] <= version <= rng[1]


def _short(pos: int) -> ProtocolDecodeError:
    return ProtocolDecodeError("truncated message", offset=pos)


def _bad_length(n: int, pos: int) -> ProtocolDecodeError:
    return ProtocolDecodeError(f"invalid length {n}", offset=pos)


def _null(field: str, pos: int) -> ProtocolDecodeError:
    return ProtocolDecodeError(f"null in non-nullable field {field}", offset=pos)


def _enc_null(owner: str, field: str) -> ProtocolEncodeError:
    return ProtocolEncodeError(f"{owner}.{field} is None but is not nullable at this version")


def _enc_absent(owner: str, field: str, version: int) -> ProtocolEncodeError:
    return ProtocolEncodeError(
        f"{owner}.{field} has a non-default value but version {version} cannot carry it"
    )


def _write_tags(buf: bytearray, tags: list[tuple[int, Any]]) -> None:
    tags.sort(key=_tag_of)
    buf += encode_uvarint(len(tags))
    for tag, data in tags:
        buf += encode_uvarint(tag)
        buf += encode_uvarint(len(data))
        buf += data


def _tag_of(item: tuple[int, Any]) -> int:
    return item[0]


def _write_unknown(buf: bytearray, unknown: dict[int, bytes]) -> None:
    _write_tags(buf, list(unknown.items()))


_BASE_NS: dict[str, Any] = {
    "_new": object.__new__,
    "_uv": decode_uvarint,
    "_euv": encode_uvarint,
    "_short": _short,
    "_bad_length": _bad_length,
    "_null": _null,
    "_enc_null": _enc_null,
    "_enc_absent": _enc_absent,
    "_write_tags": _write_tags,
    "_write_unknown": _write_unknown,
    "_UUID": UUID,
    "_str": str,
    "_bytes": bytes,
    "_range": range,
    "_list": list,
    "_unpack_from": struct.unpack_from,
    "_pack": struct.pack,
    "_H": struct.Struct(">h").pack,
    "_I": struct.Struct(">i").pack,
    "_uH": struct.Struct(">h").unpack_from,
    "_uI": struct.Struct(">i").unpack_from,
}


class _Compiler:
    """Writes the source for one (root class, version) and execs it."""

    def __init__(self, root: type[Message], version: int) -> None:
        self.root = root
        self.version = version
        self.flexible = root.is_flexible(version)
        self.ns: dict[str, Any] = dict(_BASE_NS)
        self.lines: list[str] = []
        self.names: dict[tuple[type[Struct], str], str] = {}
        self.pending: list[tuple[type[Struct], str]] = []
        self.counter = 0

    # -- helpers --------------------------------------------------------------------

    def const(self, value: Any) -> str:
        self.counter += 1
        name = f"_c{self.counter}"
        self.ns[name] = value
        return name

    def var(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    def func(self, cls: type[Struct], kind: str) -> str:
        key = (cls, kind)
        name = self.names.get(key)
        if name is None:
            self.counter += 1
            name = f"_{kind}{self.counter}_{cls.__name__}"
            self.names[key] = name
            self.pending.append(key)
        return name

    def resolve(self, type_name: str) -> type[Struct]:
        return self.root._STRUCTS[type_name]

    def compact(self, f: F) -> bool:
        if f.flexible is not MISSING:
            return _within(f.flexible, self.version)
        return self.flexible

    def literal(self, value: Any) -> str:
        if value is None or isinstance(value, (bool, int, float, str, bytes)):
            return repr(value)
        return self.const(value)

    def default_expr(self, f: F, owner: type[Struct]) -> str:
        """An expression giving a fresh default for ``f``."""
        if f.default is MISSING and f.type not in _PRIMITIVES and not f.is_array:
            return f"{self.const(self.resolve(f.type))}()"
        if f.default is MISSING and f.is_array:
            return "[]"
        return self.literal(f.default_value(owner))

    def differs(self, expr: str, f: F, owner: type[Struct]) -> str:
        """A condition true when ``expr`` is not the field's default."""
        default = f.default
        if default is MISSING:
            if f.is_array:
                return f"{expr} != []"
            if f.type not in _PRIMITIVES:
                return f"{expr} != {self.const(self.resolve(f.type))}()"
            default = f.default_value(owner)
        if default is None:
            return f"{expr} is not None"
        return f"{expr} != {self.literal(default)}"

    def run(self, kind: str) -> Any:
        entry = self.func(self.root, kind)
        while self.pending:
            cls, k = self.pending.pop()
            if k == "enc":
                self.encoder(cls)
            else:
                self.decoder(cls)
        source = "\n".join(self.lines) + "\n"
        code = compile(source, f"<{self.root.__name__} v{self.version} {kind}>", "exec")
        exec(code, self.ns)
        return self.ns[entry]

    # -- encoders -------------------------------------------------------------------

    def encoder(self, cls: type[Struct]) -> None:
        v = self.version
        out = self.lines
        out.append(f"def {self.names[(cls, 'enc')]}(o, buf):")
        body: list[str] = []
        owner = cls.__qualname__
        fixed: list[F] = []

        def flush() -> None:
            if not fixed:
                return
            fmt = ">" + "".join(_FIXED[f.type][0] for f in fixed)
            pack = self.const(struct.Struct(fmt).pack)
            args = ", ".join(f"o.{f.name}" for f in fixed)
            body.append(f"buf += {pack}({args})")
            fixed.clear()

        tagged: list[F] = []
        for f in cls._FIELDS:
            present = _within(f.versions, v)
            is_tagged = present and f.tag is not None and _within(f.tagged, v)
            if is_tagged and not self.flexible:
                present = is_tagged = False
            if not present:
                if not f.ignorable:
                    flush()
                    cond = self.differs(f"o.{f.name}", f, cls)
                    body.append(f"if {cond}:")
                    body.append(f"    raise _enc_absent({owner!r}, {f.name!r}, {v})")
                continue
            if is_tagged:
                tagged.append(f)
                continue
            if f.type in _FIXED:
                fixed.append(f)
                continue
            flush()
            self.enc_value(body, f, f"o.{f.name}", "buf", owner)
        flush()
        if self.flexible:
            if tagged:
                body.append("t = []")
                for f in sorted(tagged, key=lambda x: x.tag or 0):
                    val = self.var("v")
                    body.append(f"{val} = o.{f.name}")
                    body.append(f"if {self.differs(val, f, cls)}:")
                    sub: list[str] = []
                    sb = self.var("s")
                    sub.append(f"{sb} = bytearray()")
                    self.enc_value(sub, f, val, sb, owner)
                    sub.append(f"t.append(({f.tag}, {sb}))")
                    body.extend("    " + line for line in sub)
                body.append("u = o.unknown_tags")
                body.append("if u:")
                body.append("    t.extend(u.items())")
                body.append("_write_tags(buf, t)")
            else:
                body.append("u = o.unknown_tags")
                body.append("if u:")
                body.append("    _write_unknown(buf, u)")
                body.append("else:")
                body.append("    buf.append(0)")
        if not body:
            body.append("pass")
        out.extend("    " + line for line in body)
        out.append("")

    def enc_length(self, body: list[str], n_expr: str, buf: str, compact: bool, wide: bool) -> None:
        """Write a length prefix (int16/int32 classic, unsigned varint N+1 compact)."""
        if compact:
            n = self.var("n")
            body.append(f"{n} = {n_expr} + 1")
            body.append(f"if {n} < 128:")
            body.append(f"    {buf}.append({n})")
            body.append("else:")
            body.append(f"    {buf} += _euv({n})")
        else:
            body.append(f"{buf} += {'_I' if wide else '_H'}({n_expr})")

    def enc_value(self, body: list[str], f: F, expr: str, buf: str, owner: str) -> None:
        v = self.version
        t = f.type
        nullable = _within(f.nullable, v)
        compact = self.compact(f)
        val = self.var("v")
        body.append(f"{val} = {expr}")
        if t in _FIXED:
            body.append(f"{buf} += {self.const(struct.Struct('>' + _FIXED[t][0]).pack)}({val})")
            return
        if t == "uuid":
            body.append(f"{buf} += {val}.bytes")
            return
        null_marker = {
            True: "b'\\x00'",
            False: "b'\\xff\\xff'" if t == "string" else "b'\\xff\\xff\\xff\\xff'",
        }[compact]
        if t not in _PRIMITIVES and not f.is_array:
            # a single (non-array) struct: nullable ones carry a presence byte
            func = self.func(self.resolve(t), "enc")
            if nullable:
                body.append(f"if {val} is None:")
                body.append(f"    {buf}.append(255)")
                body.append("else:")
                body.append(f"    {buf}.append(1)")
                body.append(f"    {func}({val}, {buf})")
            else:
                body.append(f"if {val} is None:")
                body.append(f"    raise _enc_null({owner!r}, {f.name!r})")
                body.append(f"{func}({val}, {buf})")
            return
        body.append(f"if {val} is None:")
        if nullable:
            body.append(f"    {buf} += {null_marker}")
        else:
            body.append(f"    raise _enc_null({owner!r}, {f.name!r})")
        body.append("else:")
        inner: list[str] = []
        if t == "string":
            d = self.var("d")
            inner.append(f"{d} = {val}.encode()")
            self.enc_length(inner, f"len({d})", buf, compact, wide=False)
            inner.append(f"{buf} += {d}")
        elif t in ("bytes", "records"):
            self.enc_length(inner, f"len({val})", buf, compact, wide=True)
            inner.append(f"{buf} += {val}")
        else:
            self.enc_array(inner, f, val, buf, compact, owner)
        body.extend("    " + line for line in inner)

    def enc_array(
        self, body: list[str], f: F, val: str, buf: str, compact: bool, owner: str
    ) -> None:
        et = f.element_type
        self.enc_length(body, f"len({val})", buf, compact, wide=True)
        x = self.var("x")
        if et in _FIXED:
            code = _FIXED[et][0]
            body.append(f"{buf} += _pack('>%d{code}' % len({val}), *{val})")
        elif et == "uuid":
            body.append(f"for {x} in {val}:")
            body.append(f"    {buf} += {x}.bytes")
        elif et == "string":
            d = self.var("d")
            body.append(f"for {x} in {val}:")
            inner: list[str] = [f"{d} = {x}.encode()"]
            self.enc_length(inner, f"len({d})", buf, compact, wide=False)
            inner.append(f"{buf} += {d}")
            body.extend("    " + line for line in inner)
        elif et in ("bytes", "records"):
            body.append(f"for {x} in {val}:")
            inner = []
            self.enc_length(inner, f"len({x})", buf, compact, wide=True)
            inner.append(f"{buf} += {x}")
            body.extend("    " + line for line in inner)
        else:
            func = self.func(self.resolve(et), "enc")
            body.append(f"for {x} in {val}:")
            body.append(f"    {func}({x}, {buf})")

    # -- decoders -------------------------------------------------------------------

    def decoder(self, cls: type[Struct]) -> None:
        v = self.version
        out = self.lines
        out.append(f"def {self.names[(cls, 'dec')]}(mv, pos, end):")
        body: list[str] = [f"o = _new({self.const(cls)})"]
        fixed: list[F] = []

        def flush() -> None:
            if not fixed:
                return
            fmt = ">" + "".join(_FIXED[f.type][0] for f in fixed)
            s = struct.Struct(fmt)
            unpack = self.const(s.unpack_from)
            body.append(f"if pos + {s.size} > end:")
            body.append("    raise _short(pos)")
            targets = ", ".join(f"o.{f.name}" for f in fixed)
            body.append(f"{targets}, = {unpack}(mv, pos)")
            body.append(f"pos += {s.size}")
            fixed.clear()

        tagged: list[F] = []
        for f in cls._FIELDS:
            present = _within(f.versions, v)
            is_tagged = present and f.tag is not None and _within(f.tagged, v)
            if is_tagged and not self.flexible:
                present = is_tagged = False
            if not present or is_tagged:
                if is_tagged:
                    tagged.append(f)
                flush()
                body.append(f"o.{f.name} = {self.default_expr(f, cls)}")
                continue
            if f.type in _FIXED:
                fixed.append(f)
                continue
            flush()
            self.dec_value(body, f, f"o.{f.name}", "end")
        flush()
        if self.flexible:
            body.append("o.unknown_tags = u = {}")
            self.dec_uvarint(body, "nt", "end")
            body.append("for _ in _range(nt):")
            loop: list[str] = []
            self.dec_uvarint(loop, "tag", "end")
            self.dec_uvarint(loop, "size", "end")
            loop.append("te = pos + size")
            loop.append("if te > end:")
            loop.append("    raise _short(pos)")
            keyword = "if"
            for f in sorted(tagged, key=lambda x: x.tag or 0):
                loop.append(f"{keyword} tag == {f.tag}:")
                sub: list[str] = []
                if f.type in _FIXED:
                    self.dec_fixed(sub, f, f"o.{f.name}", "te")
                else:
                    self.dec_value(sub, f, f"o.{f.name}", "te")
                loop.extend("    " + line for line in sub)
                keyword = "elif"
            if tagged:
                loop.append("else:")
                loop.append("    u[tag] = _bytes(mv[pos:te])")
            else:
                loop.append("u[tag] = _bytes(mv[pos:te])")
            loop.append("pos = te")
            body.extend("    " + line for line in loop)
        else:
            body.append("o.unknown_tags = {}")
        body.append("return o, pos")
        out.extend("    " + line for line in body)
        out.append("")

    def dec_fixed(self, body: list[str], f: F, target: str, end: str) -> None:
        s = struct.Struct(">" + _FIXED[f.type][0])
        body.append(f"if pos + {s.size} > {end}:")
        body.append("    raise _short(pos)")
        body.append(f"{target}, = {self.const(s.unpack_from)}(mv, pos)")
        body.append(f"pos += {s.size}")

    def dec_uvarint(self, body: list[str], target: str, end: str) -> None:
        body.append(f"if pos >= {end}:")
        body.append("    raise _short(pos)")
        body.append(f"{target} = mv[pos]")
        body.append(f"if {target} < 128:")
        body.append("    pos += 1")
        body.append("else:")
        body.append(f"    {target}, pos = _uv(mv, pos)")

    def dec_length(self, body: list[str], n: str, end: str, compact: bool, wide: bool) -> None:
        """Read a length into ``n``; -1 means null (compact N+1 is shifted to match)."""
        if compact:
            self.dec_uvarint(body, n, end)
            body.append(f"{n} -= 1")
        else:
            size = 4 if wide else 2
            body.append(f"if pos + {size} > {end}:")
            body.append("    raise _short(pos)")
            body.append(f"{n}, = {'_uI' if wide else '_uH'}(mv, pos)")
            body.append(f"pos += {size}")
            body.append(f"if {n} < -1:")
            body.append(f"    raise _bad_length({n}, pos)")

    def dec_value(self, body: list[str], f: F, target: str, end: str) -> None:
        v = self.version
        t = f.type
        nullable = _within(f.nullable, v)
        compact = self.compact(f)
        if t in _FIXED:
            self.dec_fixed(body, f, target, end)
            return
        if t == "uuid":
            body.append(f"if pos + 16 > {end}:")
            body.append("    raise _short(pos)")
            body.append(f"{target} = _UUID(bytes=_bytes(mv[pos:pos + 16]))")
            body.append("pos += 16")
            return
        if t not in _PRIMITIVES and not f.is_array:
            func = self.func(self.resolve(t), "dec")
            if nullable:
                body.append(f"if pos >= {end}:")
                body.append("    raise _short(pos)")
                body.append("if mv[pos] >= 128:")
                body.append(f"    {target} = None")
                body.append("    pos += 1")
                body.append("else:")
                body.append(f"    {target}, pos = {func}(mv, pos + 1, {end})")
            else:
                body.append(f"{target}, pos = {func}(mv, pos, {end})")
            return
        n = self.var("n")
        self.dec_length(body, n, end, compact, wide=t != "string")
        body.append(f"if {n} < 0:")
        if nullable:
            body.append(f"    {target} = None")
        else:
            body.append(f"    raise _null({f.name!r}, pos)")
        body.append("else:")
        inner: list[str] = []
        if t in ("string", "bytes", "records"):
            e = self.var("e")
            inner.append(f"{e} = pos + {n}")
            inner.append(f"if {e} > {end}:")
            inner.append("    raise _short(pos)")
            if t == "string":
                inner.append(f"{target} = _str(mv[pos:{e}], 'utf-8')")
            elif t == "bytes":
                inner.append(f"{target} = _bytes(mv[pos:{e}])")
            else:
                # records stay a zero-copy view of the input
                inner.append(f"{target} = mv[pos:{e}]")
            inner.append(f"pos = {e}")
        else:
            self.dec_array(inner, f, target, n, end, compact)
        body.extend("    " + line for line in inner)

    def dec_array(
        self, body: list[str], f: F, target: str, n: str, end: str, compact: bool
    ) -> None:
        et = f.element_type
        # Kafka's own check: a count larger than the bytes left is corrupt, and refusing
        # it early stops a forged length from building a huge list.
        body.append(f"if {n} > {end} - pos:")
        body.append("    raise _short(pos)")
        if et in _FIXED:
            code, size = _FIXED[et]
            body.append(f"if pos + {n} * {size} > {end}:")
            body.append("    raise _short(pos)")
            body.append(f"{target} = _list(_unpack_from('>%d{code}' % {n}, mv, pos))")
            body.append(f"pos += {n} * {size}")
            return
        a = self.var("a")
        body.append(f"{a} = []")
        body.append(f"for _ in _range({n}):")
        inner: list[str] = []
        if et in _PRIMITIVES:
            x = self.var("x")
            if et == "uuid":
                inner.append(f"if pos + 16 > {end}:")
                inner.append("    raise _short(pos)")
                inner.append(f"{x} = _UUID(bytes=_bytes(mv[pos:pos + 16]))")
                inner.append("pos += 16")
            else:
                # array elements are never null
                m = self.var("n")
                self.dec_length(inner, m, end, compact, wide=et != "string")
                inner.append(f"if {m} < 0:")
                inner.append(f"    raise _null({f.name!r}, pos)")
                e = self.var("e")
                inner.append(f"{e} = pos + {m}")
                inner.append(f"if {e} > {end}:")
                inner.append("    raise _short(pos)")
                if et == "string":
                    inner.append(f"{x} = _str(mv[pos:{e}], 'utf-8')")
                elif et == "bytes":
                    inner.append(f"{x} = _bytes(mv[pos:{e}])")
                else:
                    inner.append(f"{x} = mv[pos:{e}]")
                inner.append(f"pos = {e}")
            inner.append(f"{a}.append({x})")
        else:
            func = self.func(self.resolve(et), "dec")
            x = self.var("x")
            inner.append(f"{x}, pos = {func}(mv, pos, {end})")
            inner.append(f"{a}.append({x})")
        body.extend("    " + line for line in inner)
        body.append(f"{target} = {a}")


def _prepare(cls: type[Message], version: int) -> None:
    if "_STRUCTS" not in cls.__dict__:
        _register(cls)
    lo, hi = cls.VALID_VERSIONS
    if not lo <= version <= hi:
        raise ValueError(f"{cls.__name__} has no version {version} (valid: {lo}-{hi})")


def compile_encoder(cls: type[Message], version: int) -> Encoder:
    try:
        _prepare(cls, version)
    except ValueError as exc:
        raise ProtocolEncodeError(str(exc)) from None
    enc: Encoder = _Compiler(cls, version).run("enc")
    cls._encoders[version] = enc
    return enc


def compile_decoder(cls: type[Message], version: int) -> Decoder:
    try:
        _prepare(cls, version)
    except ValueError as exc:
        raise ProtocolDecodeError(
            str(exc), api=cls.API_NAME or cls.__name__, version=version
        ) from None
    dec: Decoder = _Compiler(cls, version).run("dec")
    cls._decoders[version] = dec
    return dec


def generated_source(cls: type[Message], version: int, kind: str) -> str:
    """The source compiled for ``cls`` at ``version`` (``kind`` is "enc" or "dec"), for debugging."""
    _prepare(cls, version)
    compiler = _Compiler(cls, version)
    compiler.run(kind)
    return "\n".join(compiler.lines)
