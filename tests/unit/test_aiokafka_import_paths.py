"""Code written against aiokafka's documented import paths imports unchanged."""

from __future__ import annotations

import importlib
import ssl
import subprocess
from pathlib import Path

import aiokafka.helpers
import aiokafka.partitioner
import pytest

from streamclient import consumer
from streamclient.consumer.config import ConsumerConfig
from streamclient.helpers import create_ssl_context
from streamclient.partitioner import DefaultPartitioner, murmur2

# aiokafka's module path -> the names aiokafka's docs and users import from it
PATHS = {
    "aiokafka.coordinator.assignors.abstract": ["AbstractPartitionAssignor"],
    "aiokafka.coordinator.assignors.range": ["RangePartitionAssignor"],
    "aiokafka.coordinator.assignors.roundrobin": ["RoundRobinPartitionAssignor"],
    "aiokafka.coordinator.assignors.sticky.sticky_assignor": ["StickyPartitionAssignor"],
    "aiokafka.coordinator.protocol": ["ConsumerProtocol", "ConsumerProtocolMemberMetadata",
                                      "ConsumerProtocolMemberAssignment"],
    "aiokafka.helpers": ["create_ssl_context"],
    "aiokafka.partitioner": ["DefaultPartitioner", "murmur2"],
    "aiokafka.structs": ["TopicPartition", "ConsumerRecord", "OffsetAndMetadata",
                         "RecordMetadata", "BrokerMetadata", "PartitionMetadata"],
    "aiokafka.abc": ["ConsumerRebalanceListener", "AbstractTokenProvider"],
    "aiokafka.admin": ["AIOKafkaAdminClient", "NewTopic", "NewPartitions", "RecordsToDelete"],
    "aiokafka.producer": ["AIOKafkaProducer"],
    "aiokafka.consumer": ["AIOKafkaConsumer"],
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_documented_aiokafka_path_has_its_names(path: str) -> None:
    ours = importlib.import_module("streamclient" + path.removeprefix("aiokafka"))
    theirs = importlib.import_module(path)
    for name in PATHS[path]:
        assert hasattr(theirs, name), f"{path}.{name} is not aiokafka's (test is wrong)"
        assert hasattr(ours, name), f"streamclient lacks {path}.{name}"


def test_assignors_from_aiokafka_paths_are_ours_and_configure_a_consumer() -> None:
    from streamclient.coordinator.assignors.range import RangePartitionAssignor
    from streamclient.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    assert RangePartitionAssignor is consumer.assignors.RangePartitionAssignor
    config = ConsumerConfig(group_id="g", partition_assignment_strategy=(
        RangePartitionAssignor, RoundRobinPartitionAssignor))
    assert [a.name for a in config.partition_assignment_strategy] == ["range", "roundrobin"]


def test_default_partitioner_and_murmur2_agree_with_aiokafka() -> None:
    keys = [b"", b"a", b"21", b"foobar", b"a-little-bit-long-string", bytes(range(37))]
    for key in keys:
        assert murmur2(key) == aiokafka.partitioner.murmur2(key)
        assert DefaultPartitioner()(key, list(range(7)), list(range(7))) == \
            aiokafka.partitioner.DefaultPartitioner()(key, list(range(7)), list(range(7)))


def test_create_ssl_context_verifies_like_aiokafka() -> None:
    ours, theirs = create_ssl_context(), aiokafka.helpers.create_ssl_context()
    assert ours.verify_mode == theirs.verify_mode == ssl.CERT_REQUIRED
    assert ours.check_hostname and theirs.check_hostname
    with pytest.raises(FileNotFoundError):
        create_ssl_context(cafile="/nonexistent/ca.pem")


def test_create_ssl_context_loads_a_ca_and_a_client_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost"],
        check=True, capture_output=True, timeout=30)
    context = create_ssl_context(cafile=cert, certfile=cert, keyfile=key)
    subjects = [dict(item[0] for item in ca["subject"]) for ca in context.get_ca_certs()]
    assert {"commonName": "localhost"} in subjects
    with pytest.raises(ssl.SSLError):
        create_ssl_context(certfile=cert, keyfile=cert)  # a certificate is not a key
