"""streamclient.errors: every Kafka error code has a class, aiokafka's names and flags hold,
and the generated code table is current."""

from __future__ import annotations

import csv
import importlib.util
import inspect
import pickle
import sys
from pathlib import Path
from types import ModuleType

import aiokafka.errors as aioerrors
import pytest

from streamclient import errors
from streamclient.errors import (
    AIOKAFKA_RETRIABLE_DIFFERENCES,
    BrokerResponseError,
    ConsumerStoppedError,
    IllegalOperation,
    KafkaError,
    ProducerFenced,
    ProducerFencedError,
    ProtocolDecodeError,
    UnknownError,
    for_code,
    kafka_errors,
)
from streamclient.protocol import error_codes

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "generate_error_codes.py"
ERRORS_TSV = REPO.parent / "shared" / "kafka-protocol" / "errors.tsv"


def _tsv_rows() -> list[dict[str, str]]:
    # read the source table directly, not through the generated module under test
    with ERRORS_TSV.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


TSV_ROWS = _tsv_rows()


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_error_codes", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


generator = _load_tool()


# --- every code ---------------------------------------------------------------------


def test_the_table_has_every_code_of_errors_tsv() -> None:
    assert len(TSV_ROWS) > 100
    assert {int(r["code"]) for r in TSV_ROWS} == set(error_codes.ERROR_CODES)


@pytest.mark.parametrize("row", TSV_ROWS, ids=lambda r: r["name"])
def test_every_code_maps_to_its_own_class(row: dict[str, str]) -> None:
    code = int(row["code"])
    cls = for_code(code)
    assert issubclass(cls, BrokerResponseError)
    assert cls.errno == code
    assert cls.message == row["name"]
    assert cls.java_exception == row["exception_class"]
    tsv_retriable = row["retriable"] == "yes"
    assert cls.kafka_retriable is tsv_retriable
    if code in AIOKAFKA_RETRIABLE_DIFFERENCES:
        # documented exception: aiokafka's class keeps aiokafka's flag
        assert cls.retriable is AIOKAFKA_RETRIABLE_DIFFERENCES[code]
        assert cls.retriable is not tsv_retriable
    else:
        assert cls.retriable is tsv_retriable
    assert cls.description
    assert getattr(errors, cls.__name__) is cls
    assert cls.__name__ in errors.__all__
    instance = cls("detail")
    assert instance.errno == code
    assert str(instance) == f"[Error {code}] {row['name']}: detail"


def test_codes_do_not_share_classes() -> None:
    classes = [for_code(int(r["code"])) for r in TSV_ROWS]
    assert len(set(classes)) == len(classes)


def test_no_class_had_to_be_synthesized_for_the_committed_table() -> None:
    # a non-empty tuple means errors.tsv gained codes that errors.py does not declare
    assert errors.SYNTHESIZED_CLASSES == ()


@pytest.mark.parametrize("code", [99, 129, 5000, -2, 32767])
def test_unknown_codes_map_to_unknown_error(code: int) -> None:
    assert for_code(code) is UnknownError
    assert UnknownError.errno == -1


def test_no_error_is_code_zero() -> None:
    assert for_code(0) is errors.NoError
    assert errors.NoError.message == "NONE"
    assert not errors.NoError.retriable


def test_retriable_differences_are_exactly_the_classes_that_differ() -> None:
    differing = {
        code
        for code, cls in kafka_errors.items()
        if code != 0 and cls.retriable != cls.kafka_retriable
    }
    assert differing == set(AIOKAFKA_RETRIABLE_DIFFERENCES)


# --- aiokafka compatibility ----------------------------------------------------------


@pytest.mark.parametrize("code", sorted(aioerrors.kafka_errors))
def test_aiokafka_broker_classes_keep_names_and_flags(code: int) -> None:
    theirs = aioerrors.kafka_errors[code]
    ours = for_code(code)
    assert ours.__name__ == theirs.__name__
    assert ours.retriable is theirs.retriable
    assert ours.invalid_metadata is theirs.invalid_metadata


def _aiokafka_non_broker_classes() -> list[str]:
    return sorted(
        name
        for name, obj in vars(aioerrors).items()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == aioerrors.__name__
        and not (
            issubclass(obj, aioerrors.BrokerResponseError)
            and obj is not aioerrors.BrokerResponseError
        )
    )


@pytest.mark.parametrize("name", _aiokafka_non_broker_classes())
def test_aiokafka_client_classes_keep_hierarchy_and_flags(name: str) -> None:
    theirs = getattr(aioerrors, name)
    ours = getattr(errors, name)
    assert [c.__name__ for c in ours.__mro__] == [c.__name__ for c in theirs.__mro__]
    assert getattr(ours, "retriable", None) == getattr(theirs, "retriable", None)
    assert getattr(ours, "invalid_metadata", None) == getattr(theirs, "invalid_metadata", None)


def test_every_aiokafka_public_name_exists() -> None:
    missing = [n for n in aioerrors.__all__ if not hasattr(errors, n)]
    assert missing == []


@pytest.mark.parametrize(
    ("alias", "target"),
    [
        ("InvalidMessageError", "CorruptRecordException"),
        ("CoordinatorLoadInProgressError", "GroupLoadInProgressError"),
        ("CoordinatorNotAvailableError", "GroupCoordinatorNotAvailableError"),
        ("NotCoordinatorError", "NotCoordinatorForGroupError"),
    ],
)
def test_aiokafka_aliases(alias: str, target: str) -> None:
    assert getattr(errors, alias) is getattr(errors, target)
    assert getattr(aioerrors, alias) is getattr(aioerrors, target)


def test_consumer_stopped_and_illegal_operation_are_plain_exceptions() -> None:
    for cls in (ConsumerStoppedError, IllegalOperation):
        assert issubclass(cls, Exception)
        assert not issubclass(cls, KafkaError)


def test_new_classes_are_named_after_the_java_exception() -> None:
    for row in TSV_ROWS:
        code = int(row["code"])
        if code in aioerrors.kafka_errors:
            continue
        stem = row["exception_class"].removesuffix("Exception")
        assert for_code(code).__name__ == stem + "Error", row


def test_examples_from_the_brief() -> None:
    assert for_code(82) is errors.FencedInstanceIdError
    assert for_code(76) is errors.UnsupportedCompressionTypeError
    assert errors.FencedLeaderEpochError.retriable
    assert errors.FencedLeaderEpochError.invalid_metadata
    assert not errors.FencedInstanceIdError.retriable


def test_producer_fenced_from_the_broker_is_caught_as_producer_fenced() -> None:
    assert for_code(90) is ProducerFencedError
    with pytest.raises(ProducerFenced) as excinfo:
        raise for_code(90)()
    assert isinstance(excinfo.value, BrokerResponseError)
    assert excinfo.value.errno == 90
    assert "newer producer" in str(excinfo.value)
    assert str(ProducerFenced()).startswith("ProducerFenced: There is a newer producer")


# --- behaviour of the classes ---------------------------------------------------------


def test_string_forms() -> None:
    assert str(KafkaError()) == "KafkaError"
    assert str(errors.KafkaTimeoutError("boom")) == "KafkaTimeoutError: boom"
    assert str(errors.UnknownTopicOrPartitionError()) == "[Error 3] UNKNOWN_TOPIC_OR_PARTITION"
    assert "max_poll_interval_ms" in str(errors.CommitFailedError())


def test_protocol_decode_error_names_api_version_and_offset() -> None:
    err = ProtocolDecodeError("truncated", api="Produce", version=9, offset=17)
    assert (err.api, err.version, err.offset) == ("Produce", 9, 17)
    assert "Produce v9" in str(err) and "at byte 17" in str(err)
    assert not err.retriable
    assert isinstance(err, errors.KafkaProtocolError)


@pytest.mark.parametrize(
    "cls", [errors.NotLeaderForPartitionError, errors.FencedInstanceIdError, ProducerFencedError]
)
def test_broker_errors_pickle(cls: type[BrokerResponseError]) -> None:
    err = cls("why")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert str(back) == str(err)


def test_registering_a_code_twice_is_refused() -> None:
    with pytest.raises(TypeError, match="already maps"):
        type("Duplicate", (BrokerResponseError,), {"errno": 3})
    assert for_code(3) is errors.UnknownTopicOrPartitionError


# --- the generator --------------------------------------------------------------------


def test_committed_table_is_current() -> None:
    assert generator.main(["--check"]) == 0


def test_check_detects_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "error_codes.py"
    stale.write_text(Path(error_codes.__file__).read_text() + "# a hand edit\n")
    assert generator.main(["--check", "--output", str(stale)]) == 1
    assert generator.main(["--check", "--output", str(tmp_path / "missing.py")]) == 1


def test_generation_is_deterministic_and_follows_the_input(tmp_path: Path) -> None:
    first = generator.generate(ERRORS_TSV)
    assert first == generator.generate(ERRORS_TSV)
    small = tmp_path / "errors.tsv"
    small.write_text(
        "code\tname\tretriable\texception_class\n"
        "7\tREQUEST_TIMED_OUT\tyes\tTimeoutException\n"
        "-1\tUNKNOWN_SERVER_ERROR\tno\tUnknownServerException\n"
    )
    out = tmp_path / "out.py"
    assert generator.main(["--errors", str(small), "--output", str(out)]) == 0
    namespace: dict[str, object] = {}
    exec(compile(out.read_text(), str(out), "exec"), namespace)
    table = namespace["ERROR_CODES"]
    assert isinstance(table, dict)
    assert list(table) == [-1, 7]  # sorted by code
    assert table[7] == (7, "REQUEST_TIMED_OUT", True, "TimeoutException")
    assert generator.main(["--check", "--errors", str(small), "--output", str(out)]) == 0


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("code\tname\n1\tX\n", "expected columns"),
        ("code\tname\tretriable\texception_class\n", "no error codes"),
        ("code\tname\tretriable\texception_class\nx\tA\tyes\tAException\n", "not an integer"),
        ("code\tname\tretriable\texception_class\n1\tA\tmaybe\tAException\n", "yes/no"),
        (
            "code\tname\tretriable\texception_class\n1\tA\tyes\tAException\n1\tB\tno\tBException\n",
            "repeats",
        ),
        ("code\tname\tretriable\texception_class\n0\tNONE\tno\tNone\n", "code 0"),
        ("code\tname\tretriable\texception_class\n1\tA\tyes\n", "4 columns"),
        ("code\tname\tretriable\texception_class\n1\tlower\tyes\tAException\n", "bad error name"),
    ],
)
def test_malformed_input_is_rejected_with_the_line(
    tmp_path: Path, body: str, complaint: str
) -> None:
    bad = tmp_path / "errors.tsv"
    bad.write_text(body)
    with pytest.raises(generator.ErrorsFileError, match=complaint):
        generator.generate(bad)
    assert generator.main(["--errors", str(bad), "--output", str(tmp_path / "o.py")]) == 2
    assert not (tmp_path / "o.py").exists()
