"""ClusterConfig validation, bootstrap parsing and the FindCoordinator version helpers."""

from __future__ import annotations

import ssl

import pytest

from streamclient.cluster.config import (
    ClusterConfig,
    ClusterConfigError,
    parse_bootstrap_servers,
)
from streamclient.cluster.coordinator import (
    CoordinatorType,
    coordinator_answers,
    find_coordinator_requests,
)
from streamclient.errors import KafkaConfigurationError, UnsupportedVersionError
from streamclient.producer.config import ProducerConfig
from streamclient.protocol.messages.find_coordinator import (
    FindCoordinatorRequest,
    FindCoordinatorResponse,
)


def test_bootstrap_servers_forms() -> None:
    assert parse_bootstrap_servers("a:1,b") == [("a", 1), ("b", 9092)]
    assert parse_bootstrap_servers(["a:1", "b:2,c"]) == [("a", 1), ("b", 2), ("c", 9092)]
    assert parse_bootstrap_servers(" [::1]:19092 , ") == [("::1", 19092)]
    assert ClusterConfig(bootstrap_servers="x:5").bootstrap_addresses == [("x", 5)]


@pytest.mark.parametrize("bad", ["", " , ", "a:port", "a:0", ":9092", ["a", 5], 7])
def test_bad_bootstrap_servers(bad: object) -> None:
    with pytest.raises(ClusterConfigError):
        ClusterConfig(bootstrap_servers=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_needs_credentials(protocol: str) -> None:
    # (SASL itself: tests/unit/test_sasl_config.py)
    with pytest.raises(ValueError, match="sasl_plain_username"):
        ClusterConfig(security_protocol=protocol, ssl_context=ssl.create_default_context())


def test_security_settings() -> None:
    with pytest.raises(ClusterConfigError, match="ssl_context"):
        ClusterConfig(security_protocol="SSL")
    with pytest.raises(KafkaConfigurationError, match="PLAINTEXT, SSL, SASL_PLAINTEXT or"):
        ClusterConfig(security_protocol="TLS")
    context = ssl.create_default_context()
    assert ClusterConfig(security_protocol="SSL", ssl_context=context).tls_context is context
    # a context alone does not turn TLS on (aiokafka's rule: the protocol decides)
    assert ClusterConfig(ssl_context=context).tls_context is None


@pytest.mark.parametrize("field,value", [
    ("request_timeout_ms", 0), ("retry_backoff_ms", -1), ("metadata_max_age_ms", -5),
    ("connections_max_idle_ms", -1), ("connect_timeout_ms", 0),
    ("reconnect_backoff_max_ms", -1),
])
def test_bad_numbers(field: str, value: int) -> None:
    with pytest.raises(ClusterConfigError, match=field):
        ClusterConfig(**{field: value})  # type: ignore[arg-type]


def test_from_settings_copies_shared_fields() -> None:
    producer = ProducerConfig(bootstrap_servers="p:1", client_id="me", request_timeout_ms=5000,
                              metadata_max_age_ms=1234, retry_backoff_ms=7)
    config = ClusterConfig.from_settings(producer, allow_auto_topic_creation=False)
    assert config.bootstrap_addresses == [("p", 1)]
    assert (config.client_id, config.request_timeout_ms, config.metadata_max_age_ms,
            config.retry_backoff_ms, config.allow_auto_topic_creation) == (
        "me", 5000, 1234, 7, False)
    assert config.connections_max_idle_ms == producer.connections_max_idle_ms


# --- FindCoordinator across versions ----------------------------------------------------


@pytest.mark.parametrize("version", range(0, 7))
def test_find_coordinator_requests_encode_at_every_version(version: int) -> None:
    requests = find_coordinator_requests(["g1", "g2"], CoordinatorType.GROUP, version)
    if version >= 4:
        [request] = requests
        assert request.coordinator_keys == ["g1", "g2"]
    else:
        assert [r.key for r in requests] == ["g1", "g2"]
    for request in requests:
        decoded = FindCoordinatorRequest.decode(request.encode(version), version)
        assert decoded == request


def test_find_coordinator_v0_cannot_find_transaction_coordinators() -> None:
    with pytest.raises(UnsupportedVersionError):
        find_coordinator_requests(["tx"], CoordinatorType.TRANSACTION, 0)
    [request] = find_coordinator_requests(["tx"], CoordinatorType.TRANSACTION, 1)
    assert request.key_type == 1
    assert find_coordinator_requests([], CoordinatorType.GROUP, 4) == []


def test_coordinator_answers_single_and_batched() -> None:
    [single] = find_coordinator_requests(["g"], CoordinatorType.GROUP, 3)
    old = FindCoordinatorResponse(error_code=0, node_id=2, host="h", port=9)
    [answer] = coordinator_answers(single, old, 3)
    assert (answer.key, answer.node_id, answer.host, answer.port, answer.error_code) == (
        "g", 2, "h", 9, 0)
    [batched] = find_coordinator_requests(["a", "b"], CoordinatorType.GROUP, 4)
    new = FindCoordinatorResponse(coordinators=[
        FindCoordinatorResponse.Coordinator(key="a", node_id=1, host="x", port=1, error_code=0),
        FindCoordinatorResponse.Coordinator(key="b", node_id=-1, host="", port=-1,
                                            error_code=15, error_message="loading"),
    ])
    answers = coordinator_answers(batched, new, 4)
    assert [(a.key, a.node_id, a.error_code, a.error_message) for a in answers] == [
        ("a", 1, 0, FindCoordinatorResponse.Coordinator().error_message),
        ("b", -1, 15, "loading")]
