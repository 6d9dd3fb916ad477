"""The protocol generator: committed output is current, and --check notices drift."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "src" / "streamclient" / "protocol" / "messages"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_protocol", REPO / "tools" / "generate_protocol.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("generate_protocol", module)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("messages")
    assert gen.main(["--out", str(out)]) == 0
    return out


def test_committed_modules_are_current() -> None:
    assert gen.main(["--check"]) == 0


def test_output_is_deterministic(generated: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert gen.main(["--out", str(again)]) == 0
    first = {p.name: p.read_bytes() for p in generated.glob("*.py")}
    second = {p.name: p.read_bytes() for p in again.glob("*.py")}
    assert first == second
    assert {
        "produce.py",
        "fetch.py",
        "request_header.py",
        "response_header.py",
        "consumer_protocol_subscription.py",
        "__init__.py",
    } <= set(first)


def test_check_names_a_modified_file(
    generated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "copy"
    shutil.copytree(generated, out)
    assert gen.main(["--check", "--out", str(out)]) == 0
    target = out / "produce.py"
    target.write_text(target.read_text() + "# hand edit\n")
    (out / "stray.py").write_text("")
    assert gen.main(["--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "produce.py" in err
    assert "stray.py" in err
    assert "fetch.py" not in err


def test_generated_files_are_stamped(generated: Path) -> None:
    for path in generated.glob("*.py"):
        assert "DO NOT EDIT" in path.read_text().splitlines()[1]


def test_comment_stripping_keeps_urls_in_strings() -> None:
    text = '{"a": "http://x//y", // trailing\n // whole line\n "b": 1}'
    assert gen.json.loads(gen.strip_comments(text)) == {"a": "http://x//y", "b": 1}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("0+", (0, 0x7FFF)), ("3-7", (3, 7)), ("5", (5, 5)), ("none", None), (None, None)],
)
def test_version_specs(spec: str | None, expected: tuple[int, int] | None) -> None:
    assert gen.parse_versions(spec) == expected


@pytest.mark.parametrize(
    ("raw", "ftype", "expected"),
    [
        ("0x7fffffff", "int32", 2**31 - 1),
        ("-1", "int64", -1),
        ("-0x10", "int32", -16),
        (0, "int8", 0),
        ("False", "bool", False),
        ("true", "bool", True),
        ("null", "string", None),
        ("", "string", ""),
        ("null", "[]int32", None),
        ("null", "Cursor", None),
        ("1.5", "float64", 1.5),
    ],
)
def test_defaults(raw: object, ftype: str, expected: object) -> None:
    assert gen.convert_default(raw, ftype) == expected


def test_snake_case() -> None:
    assert gen.snake("TopicData") == "topic_data"
    assert gen.snake("ErrorCode") == "error_code"
    assert gen.snake("ThrottleTimeMs") == "throttle_time_ms"
    assert gen.snake("KRaftVersionRecord") == "k_raft_version_record"


def test_bad_schema_directory_is_an_error(tmp_path: Path) -> None:
    assert gen.main(["--schemas", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
