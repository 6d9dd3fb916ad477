"""tools/generate_config_docs.py: every config field is documented with its default, the
committed reference is current, and --check notices drift and undocumented fields."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from streamclient._version import __version__

REPO = Path(__file__).resolve().parents[2]


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_config_docs", REPO / "tools" / "generate_config_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("generate_config_docs", module)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()

MARKED_DOC = f"# Broker\n\nbefore\n\n{gen.API_TABLE_BEGIN}\nold table\n{gen.API_TABLE_END}\n\nafter\n"


@pytest.fixture
def generated(tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "config.md"
    broker = tmp_path / "broker.md"
    broker.write_text(MARKED_DOC, encoding="utf-8")
    assert gen.main(["--out", str(out), "--broker-doc", str(broker)]) == 0
    return out, broker


def _sections(text: str) -> dict[str, str]:
    parts = text.split("\n## ")
    return {part.split("\n", 1)[0]: part for part in parts[1:]}


def _row(section: str, name: str) -> list[str]:
    for line in section.splitlines():
        if line.startswith(f"| `{name}` |"):
            # split on unescaped pipes only
            return [cell.strip() for cell in line.replace("\\|", "\0").split("|")[1:-1]]
    raise AssertionError(f"no row for {name!r}")


def _expected_default(value: Any, factory: Any = None) -> str:
    """The default as the reference should print it, worked out from the value itself."""
    if factory is not None:
        return repr(factory()) if factory in (dict, list) else f"{factory.__name__}()"
    if isinstance(value, str):
        if __version__ in value:
            return 'f"' + value.replace(__version__, "{__version__}") + '"'
        return f'"{value}"'
    if isinstance(value, tuple):
        return ", ".join(getattr(v, "__name__", repr(v)) for v in value)
    return repr(value)


def _declared_fields(source: Any) -> list[tuple[str, str]]:
    """(name, expected default text) of every field, read straight from the class."""
    module = importlib.import_module(source.module)
    cls = gen._config_class(module, source)
    if source.signature:
        return [(p.name, "required" if p.default is p.empty else _expected_default(p.default))
                for p in inspect.signature(cls).parameters.values()
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    if hasattr(cls, "model_fields"):
        return [(name, _expected_default(info.default, info.default_factory))
                for name, info in cls.model_fields.items()]
    return [(f.name, _expected_default(
        f.default, None if f.default_factory is dataclasses.MISSING else f.default_factory))
        for f in dataclasses.fields(cls)]


def _present_sources() -> list[Any]:
    present = []
    for source in gen.SOURCES:
        try:
            importlib.import_module(source.module)
        except ModuleNotFoundError:
            assert source.optional, f"{source.module} is not optional but missing"
            continue
        present.append(source)
    return present


def test_every_field_of_every_config_appears_with_its_default(
        generated: tuple[Path, Path]) -> None:
    sections = _sections(generated[0].read_text(encoding="utf-8"))
    checked = 0
    for source in _present_sources():
        section = sections[source.title]
        for name, default in _declared_fields(source):
            cells = _row(section, name)
            assert default in cells[2].replace("\0", "|"), (source.title, name, cells[2])
            assert cells[4], f"{source.title}.{name} has an empty description"
            checked += 1
    assert checked > 100  # producer, consumer, cluster, broker: well over a hundred fields


def test_defaults_that_differ_from_aiokafka_are_marked(generated: tuple[Path, Path]) -> None:
    sections = _sections(generated[0].read_text(encoding="utf-8"))
    assert _row(sections["Producer"], "acks")[5] == "**differs**: `1`"
    assert _row(sections["Producer"], "enable_idempotence")[5] == "**differs**: `False`"
    assert _row(sections["Producer"], "enable_idempotence")[2] == "`None` (resolved: `True`)"
    assert _row(sections["Producer"], "buffer_memory")[5] == "not in aiokafka"
    assert _row(sections["Producer"], "linger_ms")[5] == ""
    assert _row(sections["Consumer"], "auto_offset_reset")[5] == ""


def test_topic_configs_and_broker_apis_are_listed(generated: tuple[Path, Path]) -> None:
    from streamclient.broker.config import TOPIC_CONFIG_DEFS
    from streamclient.broker.handlers.registry import REGISTRY

    topics = _sections(generated[0].read_text(encoding="utf-8"))["Topic configs"]
    for name, definition in TOPIC_CONFIG_DEFS.items():
        assert f"`{definition.default}`" in _row(topics, name)[2]
    broker = generated[1].read_text(encoding="utf-8")
    assert broker.startswith("# Broker\n\nbefore\n\n") and broker.endswith("\n\nafter\n")
    assert "old table" not in broker
    for reg in REGISTRY:
        lo, hi = reg.advertised
        assert f"| {reg.api_key} | {reg.request_type.API_NAME} | {lo}-{hi} |" in broker


def test_output_is_deterministic(generated: tuple[Path, Path], tmp_path: Path) -> None:
    again = tmp_path / "again.md"
    assert gen.main(["--out", str(again), "--broker-doc", str(generated[1])]) == 0
    assert again.read_bytes() == generated[0].read_bytes()


def test_check_passes_on_fresh_output_and_fails_on_a_modified_file(
        generated: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out, broker = generated
    args = ["--check", "--out", str(out), "--broker-doc", str(broker)]
    assert gen.main(args) == 0

    fresh = out.read_text(encoding="utf-8")
    out.write_text(fresh.replace("| `linger_ms` | `int` | `0` |", "| `linger_ms` | `int` | `5` |"),
                   encoding="utf-8")
    assert out.read_text(encoding="utf-8") != fresh
    assert gen.main(args) == 1
    assert "is stale" in capsys.readouterr().err

    out.write_text(fresh, encoding="utf-8")
    table = broker.read_text(encoding="utf-8")
    broker.write_text(table.replace("| Produce |", "| Produce (edited) |"), encoding="utf-8")
    assert gen.main(args) == 1
    assert "API table" in capsys.readouterr().err


def test_committed_reference_is_current() -> None:
    assert gen.main(["--check"]) == 0


def _scratch_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                    body: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


def test_descriptions_come_from_the_code_first_and_missing_ones_are_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _scratch_module(tmp_path, monkeypatch, "scratch_docs_config", '''
        from pydantic import BaseModel, Field

        class ScratchConfig(BaseModel):
            described: int = Field(3, ge=1, description="From Field.")
            with_docstring: str = "x"
            """From a docstring."""
            # From a comment.
            commented: bool = True
            acks: int = 7
            undocumented: float = 1.5
    ''')
    source = gen.Source("Scratch", "scratch_docs_config", None, "A scratch config.")
    doc = gen.read_config(source)
    assert doc is not None
    by_name = {f.name: f for f in doc.fields}
    assert by_name["described"].description == "From Field."
    assert by_name["described"].constraint == "≥ 1"
    assert by_name["with_docstring"].description == "From a docstring."
    assert by_name["commented"].description == "From a comment."
    assert by_name["acks"].description == gen.DESCRIPTIONS["acks"]  # the tool's table
    assert by_name["undocumented"].description is None
    issues = gen.problems([doc])
    assert issues == ["ScratchConfig.undocumented has no description: give it "
                      "Field(description=...) or an entry in DESCRIPTIONS"]


def test_changed_rules_are_reported_until_reviewed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _scratch_module(tmp_path, monkeypatch, "scratch_rules_config", '''
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class RulesConfig:
            acks: int = 1

            def _cross_field_rules(self) -> None:
                if self.acks > 1:
                    raise ValueError("no")
    ''')
    doc = gen.read_config(gen.Source("Rules", "scratch_rules_config", "RulesConfig", "x"))
    assert doc is not None
    [issue] = gen.problems([doc])
    fingerprint = gen.rules_fingerprint(doc.cls)
    assert f"RULES_REVIEWED['RulesConfig'] = {fingerprint!r}" in issue
    monkeypatch.setitem(gen.RULES_REVIEWED, "RulesConfig", fingerprint)
    assert gen.problems([doc]) == []


def test_a_missing_optional_module_is_skipped_and_a_required_one_is_not() -> None:
    missing = "streamclient.no_such_part.config"
    assert gen.read_config(gen.Source("Later", missing, None, "x", optional=True)) is None
    with pytest.raises(ModuleNotFoundError):
        gen.read_config(gen.Source("Now", missing, None, "x"))


@pytest.mark.parametrize("kind, path", [
    ("producer", "aiokafka:AIOKafkaProducer"),
    ("consumer", "aiokafka:AIOKafkaConsumer"),
    ("admin", "aiokafka.admin:AIOKafkaAdminClient"),
])
def test_aiokafka_defaults_match_the_installed_aiokafka(kind: str, path: str) -> None:
    module_name, class_name = path.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    params = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
              if name not in ("self", "loop") and p.kind is p.KEYWORD_ONLY}
    table = gen.AIOKAFKA_DEFAULTS[kind]
    assert set(table) == set(params)
    for name, value in table.items():
        if (kind, name) in gen.AIOKAFKA_COMPUTED:
            continue
        assert params[name] == value, name
    if kind == "consumer":
        [assignor] = params["partition_assignment_strategy"]
        assert table["partition_assignment_strategy"] == f"({assignor.__name__},)"
