"""ProducerConfig: defaults, aiokafka's validation messages, and the cross-field rules."""

from __future__ import annotations

import pytest

from streamclient.errors import KafkaConfigurationError
from streamclient.producer.config import INT32_MAX, ProducerConfig, ProducerConfigError
from streamclient.producer.partitioner import (
    CallablePartitioner,
    DefaultPartitioner,
    RoundRobinPartitioner,
)
from streamclient.protocol.records import Compression


def test_defaults_follow_current_kafka_where_documented() -> None:
    config = ProducerConfig()
    assert config.acks == -1
    assert config.enable_idempotence is True
    assert config.linger_ms == 0
    assert config.max_batch_size == config.batch_size == 16384
    assert config.buffer_memory == 32 * 1024 * 1024
    assert config.max_block_ms == 60000
    assert config.delivery_timeout_ms == 120000
    assert config.max_in_flight_requests_per_connection == 5
    assert config.retries == INT32_MAX
    assert (config.retry_backoff_ms, config.retry_backoff_max_ms) == (100, 1000)
    assert config.request_timeout_ms == 40000
    assert config.max_request_size == 1048576
    assert config.transaction_timeout_ms == 60000
    assert isinstance(config.partitioner, DefaultPartitioner)
    assert config.compression is Compression.NONE


def test_frozen() -> None:
    config = ProducerConfig()
    with pytest.raises(Exception, match="frozen"):
        config.linger_ms = 5  # type: ignore[misc]


@pytest.mark.parametrize("acks, expected", [(0, 0), (1, 1), (-1, -1), ("all", -1)])
def test_acks_values(acks: object, expected: int) -> None:
    assert ProducerConfig(acks=acks, enable_idempotence=False).acks == expected


@pytest.mark.parametrize("acks", [2, "1", "none", True, None, -2])
def test_bad_acks_uses_aiokafkas_message(acks: object) -> None:
    with pytest.raises(ValueError) as info:
        ProducerConfig(acks=acks)
    assert str(info.value) == "Invalid ACKS parameter"
    assert isinstance(info.value, ProducerConfigError)
    assert isinstance(info.value, KafkaConfigurationError)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd", None])
def test_compression_types(codec: str | None) -> None:
    assert ProducerConfig(compression_type=codec).compression_type == codec


def test_bad_compression_type() -> None:
    with pytest.raises(ValueError) as info:
        ProducerConfig(compression_type="brotli")
    assert str(info.value) == "Invalid compression type!"


def test_compression_level_ranges() -> None:
    assert ProducerConfig(compression_type="zstd", compression_level=19).compression_level == 19
    with pytest.raises(ValueError, match=r"outside 1\.\.9 for gzip"):
        ProducerConfig(compression_type="gzip", compression_level=12)
    with pytest.raises(ValueError, match="needs compression_type"):
        ProducerConfig(compression_type="snappy", compression_level=1)


def test_unknown_keywords_are_type_errors_naming_them() -> None:
    with pytest.raises(TypeError, match="bogus, linger"):
        ProducerConfig(linger=5, bogus=1)


def test_wrong_types_and_ranges_are_value_errors() -> None:
    with pytest.raises(ValueError, match="linger_ms"):
        ProducerConfig(linger_ms=-1)
    with pytest.raises(ValueError, match="max_batch_size"):
        ProducerConfig(max_batch_size="big")
    with pytest.raises(ValueError, match="max_in_flight"):
        ProducerConfig(max_in_flight_requests_per_connection=0)


def test_explicit_idempotence_conflicts_are_errors() -> None:
    with pytest.raises(ValueError) as info:
        ProducerConfig(acks=1, enable_idempotence=True)
    assert str(info.value) == "acks=1 not supported if enable_idempotence=True"
    with pytest.raises(ValueError, match="retries=0"):
        ProducerConfig(retries=0, enable_idempotence=True)
    with pytest.raises(ValueError, match="max_in_flight_requests_per_connection=6"):
        ProducerConfig(max_in_flight_requests_per_connection=6, enable_idempotence=True)


@pytest.mark.parametrize("kwargs", [
    {"acks": 1}, {"acks": 0}, {"retries": 0}, {"max_in_flight_requests_per_connection": 10},
])
def test_default_idempotence_yields_to_conflicting_settings(kwargs: dict[str, int]) -> None:
    assert ProducerConfig(**kwargs).enable_idempotence is False


def test_transactional_id_forces_idempotence() -> None:
    config = ProducerConfig(transactional_id="txn")
    assert config.enable_idempotence is True and config.transactional
    with pytest.raises(ValueError, match="transactional_id requires enable_idempotence"):
        ProducerConfig(transactional_id="txn", enable_idempotence=False)
    with pytest.raises(ValueError, match="acks=1 not supported"):
        ProducerConfig(transactional_id="txn", acks=1)


def test_delivery_timeout_covers_linger_and_request_timeout() -> None:
    with pytest.raises(ValueError, match="delivery_timeout_ms"):
        ProducerConfig(delivery_timeout_ms=30000, linger_ms=10, request_timeout_ms=30000)
    assert ProducerConfig(delivery_timeout_ms=30010, linger_ms=10,
                          request_timeout_ms=30000).delivery_timeout_ms == 30010
    # unset: stretched like Java's default
    assert ProducerConfig(linger_ms=100000, request_timeout_ms=40000).delivery_timeout_ms \
        == 140000


def test_batch_must_fit_in_buffer_memory() -> None:
    with pytest.raises(ValueError, match="buffer_memory"):
        ProducerConfig(max_batch_size=2048, buffer_memory=1024)


def test_security_rules_use_aiokafkas_messages() -> None:
    with pytest.raises(ValueError) as info:
        ProducerConfig(security_protocol="TLS")
    assert str(info.value) == "`security_protocol` should be SSL or PLAINTEXT"
    with pytest.raises(ValueError) as info:
        ProducerConfig(security_protocol="SSL")
    assert str(info.value) == "`ssl_context` is mandatory if security_protocol=='SSL'"
    with pytest.raises(ValueError, match="sasl_plain_username and sasl_plain_password"):
        ProducerConfig(security_protocol="SASL_PLAINTEXT")
    with pytest.raises(ValueError, match="sasl_mechanism are supported"):
        ProducerConfig(security_protocol="SASL_PLAINTEXT", sasl_mechanism="MAGIC")


def test_partitioner_forms() -> None:
    assert isinstance(ProducerConfig(partitioner=RoundRobinPartitioner).partitioner,
                      RoundRobinPartitioner)
    config = ProducerConfig(partitioner=lambda key, all_, avail: all_[0])
    assert isinstance(config.partitioner, CallablePartitioner)
    with pytest.raises(ValueError, match="partitioner"):
        ProducerConfig(partitioner=42)


def test_from_kwargs_takes_javas_batch_size_and_warns_on_api_version() -> None:
    assert ProducerConfig.from_kwargs(batch_size=1000).max_batch_size == 1000
    with pytest.raises(ValueError, match="disagree"):
        ProducerConfig.from_kwargs(batch_size=1000, max_batch_size=2000)
    with pytest.warns(DeprecationWarning, match="api_version"):
        ProducerConfig.from_kwargs(api_version="2.0")
    with pytest.raises(TypeError, match="batch_size"):
        ProducerConfig(batch_size=1000)
