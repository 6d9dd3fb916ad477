"""The admin client's settings and argument classes: validated at construction, with
typed errors (no sockets, no event loop)."""

from __future__ import annotations

import ssl
import uuid

import pytest

from streamclient.admin import (
    AdminConfig,
    AdminConfigError,
    AIOKafkaAdminClient,
    AlterConfigOp,
    AlterConfigOpType,
    ConfigResource,
    ConfigResourceType,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    PartitionDescription,
    RecordsToDelete,
    TopicDescription,
)
from streamclient.admin.requests import (
    create_topics_request,
    delete_topics_request,
    incremental_alter_configs_request,
    offset_fetch_request,
)
from streamclient.cluster import ClusterConfigError
from streamclient.errors import (
    IllegalArgumentError,
    KafkaConfigurationError,
    UnknownTopicOrPartitionError,
    UnsupportedVersionError,
)
from streamclient.structs import TopicPartition


def test_constructor_takes_aiokafka_keywords_without_a_loop() -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=["a:1", "b:2"], client_id="ops", request_timeout_ms=1234,
        connections_max_idle_ms=1000, retry_backoff_ms=5, metadata_max_age_ms=10,
        security_protocol="PLAINTEXT", ssl_context=None, sasl_mechanism="PLAIN",
        sasl_plain_username=None, sasl_plain_password=None,
        sasl_kerberos_service_name="kafka", sasl_kerberos_domain_name=None,
        sasl_oauth_token_provider=None)
    config = admin.config
    assert (config.client_id, config.request_timeout_ms, config.retry_backoff_ms) == (
        "ops", 1234, 5)
    cluster = config.cluster_config()
    assert cluster.bootstrap_addresses == [("a", 1), ("b", 2)]
    assert cluster.allow_auto_topic_creation is False  # an admin never creates by asking
    with pytest.raises(Exception, match="frozen"):
        config.request_timeout_ms = 1  # type: ignore[misc]


def test_constructor_rejects_bad_settings() -> None:
    with pytest.raises(TypeError, match="bootstrap_server"):
        AIOKafkaAdminClient(bootstrap_server="x")
    with pytest.raises(AdminConfigError, match="request_timeout_ms"):
        AIOKafkaAdminClient(request_timeout_ms=0)
    with pytest.raises(ValueError, match="security_protocol"):
        AIOKafkaAdminClient(security_protocol="TLS")
    with pytest.raises(KafkaConfigurationError, match="ssl_context"):
        AIOKafkaAdminClient(security_protocol="SSL")
    with pytest.raises(AdminConfigError, match="retry_backoff_max_ms"):
        AIOKafkaAdminClient(retry_backoff_ms=500, retry_backoff_max_ms=100)
    # SASL settings are checked at construction (GSSAPI is refused there too)
    with pytest.raises(AdminConfigError, match="sasl_plain_username"):
        AIOKafkaAdminClient(security_protocol="SASL_PLAINTEXT")
    with pytest.raises(AdminConfigError, match="GSSAPI"):
        AIOKafkaAdminClient(security_protocol="SASL_PLAINTEXT", sasl_mechanism="GSSAPI")
    AIOKafkaAdminClient(security_protocol="SASL_PLAINTEXT", sasl_plain_username="u",
                        sasl_plain_password="p")
    with pytest.raises(ClusterConfigError, match="bootstrap_servers"):
        AIOKafkaAdminClient(bootstrap_servers="")
    AIOKafkaAdminClient(security_protocol="SSL", ssl_context=ssl.create_default_context())


def test_deprecated_arguments_warn() -> None:
    with pytest.warns(DeprecationWarning, match="api_version"):
        AIOKafkaAdminClient(api_version="2.8")
    with pytest.warns(DeprecationWarning, match="loop"):
        AIOKafkaAdminClient(loop=object())


def test_new_topic_rules() -> None:
    topic = NewTopic("t", 3, 2, topic_configs={"retention.ms": 1000, "preallocate": True})
    assert (topic.num_partitions, topic.replication_factor) == (3, 2)
    [wire] = create_topics_request([topic], 100, False).topics
    assert {c.name: c.value for c in wire.configs} == {"retention.ms": "1000",
                                                      "preallocate": "true"}
    defaults = NewTopic("d")  # KIP-464: the broker's defaults
    assert (defaults.num_partitions, defaults.replication_factor) == (-1, -1)
    assigned = NewTopic("a", replica_assignments={1: [0, 2], 0: [1]})
    [wire] = create_topics_request([assigned], 100, False).topics
    assert [(a.partition_index, a.broker_ids) for a in wire.assignments] == [(0, [1]),
                                                                            (1, [0, 2])]
    with pytest.raises(IllegalArgumentError, match="replica_assignment"):
        NewTopic("a", 2, 1, replica_assignments={0: [1]})
    with pytest.raises(IllegalArgumentError, match="positive"):
        NewTopic("z", 0, 1)
    with pytest.raises(TypeError, match="int"):
        NewTopic("z", "3", 1)  # type: ignore[arg-type]
    with pytest.raises(IllegalArgumentError, match="empty"):
        NewTopic("", 1, 1)
    with pytest.raises(IllegalArgumentError, match="broker ids"):
        NewTopic("a", replica_assignments={0: []})
    with pytest.raises(TypeError, match="config"):
        NewTopic("c", 1, 1, topic_configs={"retention.ms": [1]})


def test_other_argument_classes() -> None:
    assert NewPartitions(4, [[1, 2]]).new_assignments == [[1, 2]]
    with pytest.raises(IllegalArgumentError):
        NewPartitions(0)
    with pytest.raises(IllegalArgumentError):
        NewPartitions(3, new_assignments="12")  # type: ignore[arg-type]
    assert RecordsToDelete(-1).before_offset == -1  # -1: up to the high watermark
    with pytest.raises(IllegalArgumentError):
        RecordsToDelete(-2)

    assert ConfigResource("topic", "t").resource_type is ConfigResourceType.TOPIC
    assert ConfigResource(4, 2).name == "2"  # a broker id may be an int
    assert ConfigResource(ConfigResourceType.BROKER, "").key == (ConfigResourceType.BROKER, "")
    with pytest.raises(IllegalArgumentError, match="resource type"):
        ConfigResource("table", "t")
    with pytest.raises(IllegalArgumentError, match="non-empty"):
        ConfigResource("topic", "")

    assert OffsetSpec.parse("earliest") == OffsetSpec.earliest() == OffsetSpec(-2)
    assert OffsetSpec.parse("LATEST") == OffsetSpec.latest()
    assert OffsetSpec.parse("max_timestamp") == OffsetSpec.max_timestamp()
    assert OffsetSpec.parse(1_700_000_000_000).timestamp == 1_700_000_000_000
    with pytest.raises(IllegalArgumentError):
        OffsetSpec.parse("middle")
    with pytest.raises(IllegalArgumentError):
        OffsetSpec.parse(-7)
    with pytest.raises(TypeError):
        OffsetSpec.parse(1.5)

    with pytest.raises(IllegalArgumentError, match="needs a value"):
        AlterConfigOp(AlterConfigOpType.APPEND)
    request = incremental_alter_configs_request([ConfigResource("topic", "t", {
        "a": "1", "b": None, "c": AlterConfigOp(AlterConfigOpType.SUBTRACT, "x"),
        "d": False})], validate_only=False)
    [resource] = request.resources
    assert [(c.name, c.config_operation, c.value) for c in resource.configs] == [
        ("a", 0, "1"), ("b", 1, None), ("c", 3, "x"), ("d", 0, "false")]


def test_requests_follow_the_negotiated_version() -> None:
    old = delete_topics_request(["a"], 100, 5)
    new = delete_topics_request(["a"], 100, 6)
    assert old.topic_names == ["a"] and old.topics == []
    assert [t.name for t in new.topics] == ["a"]
    tps = [TopicPartition("t", 1), TopicPartition("t", 0), TopicPartition("u", 0)]
    v7 = offset_fetch_request("g", tps, 7, False)
    assert v7.group_id == "g"
    assert [(t.name, t.partition_indexes) for t in v7.topics] == [("t", [0, 1]), ("u", [0])]
    [group] = offset_fetch_request("g", None, 8, True).groups
    assert (group.group_id, group.topics) == ("g", None)
    with pytest.raises(UnsupportedVersionError, match="require_stable"):
        offset_fetch_request("g", None, 6, True)


def test_descriptions_answer_aiokafka_keys() -> None:
    partition = PartitionDescription(0, 2, 5, (2, 1), (2,), ())
    topic = TopicDescription("t", uuid.UUID(int=1), False, (partition,), 3)
    assert topic["topic"] == "t" and topic["error_code"] == 3
    assert topic["partitions"][0]["isr"] == [2]
    assert set(topic.keys()) == {"error_code", "topic", "is_internal", "partitions"}
    assert dict(partition)["leader"] == 2
    assert topic.get("nope", "dflt") == "dflt"
    with pytest.raises(KeyError):
        topic["name"]
    assert isinstance(topic.error, UnknownTopicOrPartitionError)


AIOKAFKA_METHODS = (
    "start", "close", "create_topics", "delete_topics", "list_topics", "describe_topics",
    "describe_cluster", "describe_configs", "alter_configs", "create_partitions",
    "describe_consumer_groups", "list_consumer_groups", "find_coordinator",
    "list_consumer_group_offsets", "delete_records",
)


@pytest.mark.parametrize("name", AIOKAFKA_METHODS)
def test_methods_keep_aiokafka_signatures(name: str) -> None:
    import inspect

    from aiokafka.admin import AIOKafkaAdminClient as Reference

    theirs = list(inspect.signature(getattr(Reference, name)).parameters.values())
    ours = list(inspect.signature(getattr(AIOKafkaAdminClient, name)).parameters.values())
    # aiokafka's parameters, in order, with its defaults; ours may add keyword-only ones
    assert [(p.name, p.kind, p.default) for p in ours[:len(theirs)]] == [
        (p.name, p.kind, p.default) for p in theirs]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in ours[len(theirs):])
    assert inspect.iscoroutinefunction(getattr(AIOKafkaAdminClient, name))


def test_constructor_accepts_every_aiokafka_keyword() -> None:
    import inspect

    from aiokafka.admin import AIOKafkaAdminClient as Reference

    reference = inspect.signature(Reference.__init__).parameters
    keywords = {n for n, p in reference.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keywords - {"loop"} <= set(AdminConfig.model_fields)
    for name in keywords - {"loop", "api_version"}:
        assert AdminConfig.model_fields[name].default == reference[name].default or name in {
            "client_id"}  # we name ourselves, not aiokafka
