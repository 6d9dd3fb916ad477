"""ConsumerConfig: aiokafka's keywords, defaults and validation, and the cross-field rules."""

from __future__ import annotations

import inspect

import pytest
from aiokafka import AIOKafkaConsumer

from streamclient.consumer.assignors import (
    ConsumerPartitionAssignor,
    CooperativeStickyAssignor,
    RangeAssignor,
    RebalanceProtocol,
    RoundRobinAssignor,
)
from streamclient.consumer.config import ConsumerConfig, ConsumerConfigError
from streamclient.errors import KafkaConfigurationError


def test_defaults_match_aiokafka_signature() -> None:
    params = inspect.signature(AIOKafkaConsumer.__init__).parameters
    config = ConsumerConfig()
    skipped = {"self", "topics", "loop", "client_id", "partition_assignment_strategy"}
    for name, param in params.items():
        if name in skipped:
            continue
        assert name in ConsumerConfig.model_fields, name
        if name == "rebalance_timeout_ms":
            assert config.rebalance_timeout_ms == config.session_timeout_ms
            continue
        if name == "enable_auto_commit":
            # aiokafka's default True; without a group there is nothing to commit to
            assert ConsumerConfig(group_id="g").enable_auto_commit is param.default
            continue
        assert getattr(config, name) == param.default, name


def test_default_assignor_is_round_robin_instance_per_config() -> None:
    a, b = ConsumerConfig(), ConsumerConfig()
    assert [type(x) for x in a.assignors] == [RoundRobinAssignor]
    assert a.assignors[0] is not b.assignors[0]
    assert a.rebalance_protocol is RebalanceProtocol.EAGER


def test_assignors_classes_instances_and_protocol_choice() -> None:
    coop = CooperativeStickyAssignor()
    config = ConsumerConfig(partition_assignment_strategy=[coop])
    assert config.assignors == (coop,)
    assert config.rebalance_protocol is RebalanceProtocol.COOPERATIVE
    mixed = ConsumerConfig(partition_assignment_strategy=(RangeAssignor, CooperativeStickyAssignor))
    assert mixed.rebalance_protocol is RebalanceProtocol.EAGER
    single = ConsumerConfig(partition_assignment_strategy=RangeAssignor)
    assert isinstance(single.assignors[0], RangeAssignor)


@pytest.mark.parametrize("bad", [[], [object()], ["range"]])
def test_bad_assignors(bad: object) -> None:
    with pytest.raises(ConsumerConfigError):
        ConsumerConfig(partition_assignment_strategy=bad)


def test_unknown_keyword_is_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="bogus, other"):
        ConsumerConfig(bogus=1, other=2, group_id="g")


@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True])
def test_max_poll_records_must_be_positive_int(value: object) -> None:
    with pytest.raises(ValueError, match="`max_poll_records` should be positive Integer"):
        ConsumerConfig(max_poll_records=value)


def test_max_poll_records_ok() -> None:
    assert ConsumerConfig(max_poll_records=7).max_poll_records == 7


def test_isolation_level() -> None:
    assert ConsumerConfig(isolation_level="read_committed").isolation_level_id == 1
    assert ConsumerConfig().isolation_level_id == 0
    with pytest.raises(ValueError, match="Incorrect isolation level READ_COMMITTED"):
        ConsumerConfig(isolation_level="READ_COMMITTED")


def test_auto_offset_reset() -> None:
    assert ConsumerConfig(auto_offset_reset="EARLIEST").auto_offset_reset == "earliest"
    assert ConsumerConfig(auto_offset_reset="none").auto_offset_reset == "none"
    with pytest.raises(ConsumerConfigError, match="smallest"):
        ConsumerConfig(auto_offset_reset="smallest")


def test_errors_are_value_and_configuration_errors() -> None:
    with pytest.raises(ConsumerConfigError) as info:
        ConsumerConfig(fetch_max_bytes=0)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, KafkaConfigurationError)
    assert "fetch_max_bytes" in str(info.value)


def test_heartbeat_must_be_below_session_timeout() -> None:
    with pytest.raises(ConsumerConfigError, match="heartbeat_interval_ms"):
        ConsumerConfig(heartbeat_interval_ms=10_000, session_timeout_ms=10_000)
    ok = ConsumerConfig(heartbeat_interval_ms=2_000, session_timeout_ms=6_000)
    assert ok.effective_rebalance_timeout_ms == 6_000


def test_explicit_rebalance_timeout_kept() -> None:
    assert ConsumerConfig(rebalance_timeout_ms=60_000).rebalance_timeout_ms == 60_000


def test_static_membership_needs_group() -> None:
    with pytest.raises(ConsumerConfigError, match="group_instance_id requires group_id"):
        ConsumerConfig(group_instance_id="a")
    with pytest.raises(ConsumerConfigError, match="must not be empty"):
        ConsumerConfig(group_id="g", group_instance_id="")
    assert ConsumerConfig(group_id="g", group_instance_id="a").group_instance_id == "a"
    with pytest.raises(ConsumerConfigError, match="group_id"):
        ConsumerConfig(group_id="")


def test_fetch_min_not_above_max_and_request_timeout_above_wait() -> None:
    with pytest.raises(ConsumerConfigError, match="fetch_min_bytes"):
        ConsumerConfig(fetch_min_bytes=2000, fetch_max_bytes=1000)
    with pytest.raises(ConsumerConfigError, match="request_timeout_ms"):
        ConsumerConfig(request_timeout_ms=500, fetch_max_wait_ms=500)


def test_security_rules() -> None:
    with pytest.raises(ConsumerConfigError, match="ssl_context"):
        ConsumerConfig(security_protocol="SSL")
    with pytest.raises(ConsumerConfigError, match="security_protocol"):
        ConsumerConfig(security_protocol="TLS")
    with pytest.raises(ConsumerConfigError, match="sasl_plain_username"):
        ConsumerConfig(security_protocol="SASL_PLAINTEXT")


def test_deserializers_must_be_callable() -> None:
    with pytest.raises(ConsumerConfigError, match="callable"):
        ConsumerConfig(value_deserializer=b"no")
    config = ConsumerConfig(key_deserializer=bytes.decode)
    assert config.key_deserializer is bytes.decode


def test_frozen() -> None:
    config = ConsumerConfig()
    with pytest.raises(Exception, match="frozen"):
        config.group_id = "x"  # type: ignore[misc]


def test_api_version_warns_like_aiokafka() -> None:
    with pytest.warns(DeprecationWarning, match="api_version"):
        ConsumerConfig.from_kwargs(api_version="2.0")


def test_custom_assignor_subclass() -> None:
    class Mine(ConsumerPartitionAssignor):
        name = "mine"
        supported_protocols = (RebalanceProtocol.COOPERATIVE, RebalanceProtocol.EAGER)

        def assign(self, cluster_partitions, subscriptions):  # type: ignore[no-untyped-def]
            return {}

    config = ConsumerConfig(partition_assignment_strategy=[Mine])
    assert config.rebalance_protocol is RebalanceProtocol.COOPERATIVE
