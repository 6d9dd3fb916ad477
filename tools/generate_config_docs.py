"""Generate the configuration reference (``docs/config.md``) from the config classes.

    python tools/generate_config_docs.py            # write docs/config.md and the API table
    python tools/generate_config_docs.py --check    # exit 1 if either is stale or undocumented

The reference is read from the code: each class in :data:`SOURCES` gives its fields, their
declared types (as written in the source), defaults, and pydantic constraints; the topic
configs come from ``streamclient.broker.config.TOPIC_CONFIG_DEFS``.  The table of the
embedded broker's APIs and versions, written between markers in ``docs/broker.md``, is read
from the handler registry.

A field's description is, in this order: its pydantic ``Field(description=...)``, a string
literal right after it in the class body, an entry of :data:`DESCRIPTIONS` below, or the
comment on or above it.  ``--check`` fails when a field has none, so a new field cannot go
undocumented.  The rules between settings are written here (:data:`RULES`) because the code
keeps their reasons in comments; each rule method's syntax tree is fingerprinted in
:data:`RULES_REVIEWED`, and ``--check`` fails when the code changed and the list was not
reviewed.  To document another config class, add one line to :data:`SOURCES`.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import importlib
import inspect
import io
import itertools
import sys
import textwrap
import tokenize
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONFIG_DOC = REPO / "docs" / "config.md"
BROKER_DOC = REPO / "docs" / "broker.md"
API_TABLE_BEGIN = "<!-- BEGIN GENERATED: broker API table (tools/generate_config_docs.py) -->"
API_TABLE_END = "<!-- END GENERATED: broker API table -->"


@dataclass(frozen=True)
class Source:
    """One documented config: a class (or a constructor's keywords) in a module."""

    title: str
    module: str
    # None: the one class named ``*Config`` that the module defines
    name: str | None
    intro: str
    # the aiokafka constructor whose defaults the table is compared with
    aiokafka: str | None = None
    # skipped when the module does not exist yet (a part still being written)
    optional: bool = False
    # document the keywords of ``__init__`` rather than the fields
    signature: bool = False


SOURCES: tuple[Source, ...] = (
    Source("Producer", "streamclient.producer.config", "ProducerConfig",
           "Keywords of `AIOKafkaProducer(...)` and `KafkaProducer(...)`, validated once into a "
           "frozen `ProducerConfig`. `ProducerConfig.from_kwargs` also takes Java's `batch_size` "
           "for `max_batch_size`. Why the defaults differ from aiokafka: "
           "[the producer guide](producer.md#defaults-that-differ-from-aiokafka).",
           aiokafka="producer"),
    Source("Consumer", "streamclient.consumer.config", "ConsumerConfig",
           "Keywords of `AIOKafkaConsumer(*topics, ...)` and `KafkaConsumer(...)`, validated "
           "once into a frozen `ConsumerConfig` (the facade keeps aiokafka's deprecated `loop` "
           "argument to itself).",
           aiokafka="consumer"),
    Source("Admin client", "streamclient.admin.config", None,
           "Keywords of `AIOKafkaAdminClient(...)` and `KafkaAdminClient(...)`.",
           aiokafka="admin", optional=True),
    Source("Cluster client", "streamclient.cluster.config", "ClusterConfig",
           "The connection settings every client shares. The producer, consumer and admin "
           "configs carry them under the same names and `ClusterConfig.from_settings` copies "
           "them, so applications rarely build one; `ClusterClient(**fields)` takes them "
           "directly."),
    Source("Embedded cluster", "streamclient.broker.cluster", "EmbeddedCluster",
           "Keywords of `EmbeddedCluster(nodes, ...)` and `BlockingEmbeddedCluster(nodes, "
           "...)` (the latter adds `backend=\"asyncio\"`). Any other keyword is a "
           "`BrokerConfig` field (next section). See [testing.md](testing.md).",
           signature=True),
    Source("Broker", "streamclient.broker.config", "BrokerConfig",
           "Cluster-wide settings of the embedded broker, Kafka's broker configs in snake "
           "case; `DescribeConfigs` shows them under Kafka's dotted names."),
)

# aiokafka 0.14's constructor defaults (see /work/shared/reference/aiokafka-api.md §1.2, §1.3,
# §1.7); tests/unit/test_config_docs.py checks them against the installed aiokafka.
AIOKAFKA_DEFAULTS: dict[str, dict[str, Any]] = {
    "producer": {
        "bootstrap_servers": "localhost", "client_id": None, "metadata_max_age_ms": 300000,
        "request_timeout_ms": 40000, "api_version": None, "acks": 1,
        "key_serializer": None, "value_serializer": None, "compression_type": None,
        "max_batch_size": 16384, "partitioner": "DefaultPartitioner()",
        "max_request_size": 1048576, "linger_ms": 0, "retry_backoff_ms": 100,
        "security_protocol": "PLAINTEXT", "ssl_context": None,
        "connections_max_idle_ms": 540000, "enable_idempotence": False,
        "transactional_id": None, "transaction_timeout_ms": 60000, "sasl_mechanism": "PLAIN",
        "sasl_plain_password": None, "sasl_plain_username": None,
        "sasl_kerberos_service_name": "kafka", "sasl_kerberos_domain_name": None,
        "sasl_oauth_token_provider": None,
    },
    "consumer": {
        "bootstrap_servers": "localhost", "client_id": "aiokafka-0.14.0", "group_id": None,
        "group_instance_id": None, "key_deserializer": None, "value_deserializer": None,
        "fetch_max_wait_ms": 500, "fetch_max_bytes": 52428800, "fetch_min_bytes": 1,
        "max_partition_fetch_bytes": 1048576, "request_timeout_ms": 40000,
        "retry_backoff_ms": 100, "auto_offset_reset": "latest", "enable_auto_commit": True,
        "auto_commit_interval_ms": 5000, "check_crcs": True, "metadata_max_age_ms": 300000,
        "partition_assignment_strategy": "(RoundRobinPartitionAssignor,)",
        "max_poll_interval_ms": 300000, "rebalance_timeout_ms": None,
        "session_timeout_ms": 10000, "heartbeat_interval_ms": 3000,
        "consumer_timeout_ms": 200, "max_poll_records": None, "ssl_context": None,
        "security_protocol": "PLAINTEXT", "api_version": None, "exclude_internal_topics": True,
        "connections_max_idle_ms": 540000, "isolation_level": "read_uncommitted",
        "sasl_mechanism": "PLAIN", "sasl_plain_password": None, "sasl_plain_username": None,
        "sasl_kerberos_service_name": "kafka", "sasl_kerberos_domain_name": None,
        "sasl_oauth_token_provider": None, "client_rack": None,
    },
    "admin": {
        "bootstrap_servers": "localhost", "client_id": "aiokafka-0.14.0",
        "request_timeout_ms": 40000, "connections_max_idle_ms": 540000,
        "retry_backoff_ms": 100, "metadata_max_age_ms": 300000,
        "security_protocol": "PLAINTEXT", "ssl_context": None, "api_version": None,
        "sasl_mechanism": "PLAIN", "sasl_plain_username": None, "sasl_plain_password": None,
        "sasl_kerberos_service_name": "kafka", "sasl_kerberos_domain_name": None,
        "sasl_oauth_token_provider": None,
    },
}
# aiokafka defaults that are not plain values in its signature (a sentinel, a class)
AIOKAFKA_COMPUTED = {("producer", "acks"), ("producer", "partitioner"),
                     ("consumer", "partition_assignment_strategy")}
# defaults that read differently but are the same: our RoundRobinAssignor is exported as
# aiokafka's RoundRobinPartitionAssignor
AIOKAFKA_SAME = {("consumer", "partition_assignment_strategy")}

_KERBEROS = ("Accepted for aiokafka compatibility and unused: GSSAPI (Kerberos) is not "
             "supported, and choosing it is refused when the client is built.")

# Field descriptions: "Class.field" for one class, "field" for every class that has it.
DESCRIPTIONS: dict[str, str] = {
    # --- connection, shared by the clients ----------------------------------------------
    "bootstrap_servers": "`host[:port]` addresses (a comma-separated string or a list; "
        "port 9092 by default) tried in order to fetch the first metadata; the cluster's "
        "own broker list is used afterwards.",
    "client_id": "Sent with every request; brokers use it in logs and quotas.",
    "ProducerConfig.client_id": "Sent with every request; brokers use it in logs and quotas. "
        "`None`: `AIOKafkaProducer` names itself `streamclient-producer-<n>` (aiokafka: "
        "`aiokafka-producer-<n>`).",
    "metadata_max_age_ms": "Refresh metadata at least this often, even without errors, "
        "to see new partitions and leaders.",
    "request_timeout_ms": "How long to wait for any response before the request fails "
        "with `RequestTimedOutError` and its connection is closed.",
    "api_version": "Deprecated by aiokafka 0.13 and ignored; passing a value other than "
        "`None`/`\"auto\"` warns (`DeprecationWarning`). Versions are negotiated per "
        "connection with ApiVersions.",
    "security_protocol": "`PLAINTEXT`, `SSL` (TLS with `ssl_context`), `SASL_PLAINTEXT` "
        "(SASL authentication) or `SASL_SSL` (TLS first, then SASL); see "
        "[security.md](security.md).",
    "ssl_context": "The `ssl.SSLContext` for `SSL` and `SASL_SSL`; required with them.",
    "connections_max_idle_ms": "Close a connection idle for this long; `None` keeps idle "
        "connections open.",
    "retry_backoff_ms": "First delay before retrying a failed request or metadata "
        "refresh; it doubles per attempt up to `retry_backoff_max_ms`, with ±20 % jitter "
        "(KIP-580).",
    "retry_backoff_max_ms": "Upper bound of the exponential retry backoff.",
    "sasl_mechanism": "With `SASL_PLAINTEXT`/`SASL_SSL`: `PLAIN`, `SCRAM-SHA-256`, "
        "`SCRAM-SHA-512` or `OAUTHBEARER` (`GSSAPI` is refused). A session lifetime the "
        "broker sets (KIP-368) is honoured by re-authenticating on a new connection.",
    "sasl_plain_username": "The user for `PLAIN` and `SCRAM-*` (required with them).",
    "sasl_plain_password": "The password for `PLAIN` and `SCRAM-*` (required with them).",
    "sasl_kerberos_service_name": _KERBEROS,
    "sasl_kerberos_domain_name": _KERBEROS,
    "sasl_oauth_token_provider": "For `OAUTHBEARER` (required with it): an "
        "`AbstractTokenProvider`, whose `token()` is awaited at every authentication and "
        "whose `extensions()` are sent with the token (KIP-342).",
    # --- producer --------------------------------------------------------------------------
    "acks": "How many replicas must have a record before the broker acknowledges it: `0` "
        "(none, no response), `1` (the leader), `-1`/`\"all\"` (every in-sync replica, at "
        "least the topic's `min.insync.replicas`). Stored as an int.",
    "key_serializer": "`f(key) -> bytes | None`, applied in `send()`.",
    "value_serializer": "`f(value) -> bytes | None`, applied in `send()`.",
    "compression_type": "Codec of the record batches: `gzip`, `snappy`, `lz4`, `zstd` or "
        "`None`.",
    "compression_level": "Level for the codec in use (Java's `compression.<codec>.level`); "
        "`None` uses the codec's default.",
    "max_batch_size": "Bytes per partition batch (Java's `batch.size`). A batch is sent "
        "when full, after `linger_ms`, or on flush; a larger record gets a batch of its own.",
    "partitioner": "Chooses the partition of a record sent without one: a `Partitioner`, "
        "a `Partitioner` class, or aiokafka's callable `(key_bytes, all_partitions, "
        "available_partitions) -> int`. See [the producer guide](producer.md#partitioners-"
        "streamclientproducerpartitioner).",
    "max_request_size": "Largest produce request; a bigger record raises "
        "`MessageSizeTooLargeError` in `send()`.",
    "linger_ms": "How long a batch that is not full waits for more records before it is "
        "sent. Kafka 4.0 uses 5 (KIP-1030); 0 is kept because `send()` only appends and the "
        "sender runs when the application yields, so bursts share batches anyway.",
    "buffer_memory": "Bytes of records the producer may hold unsent; `send()` waits for room "
        "up to `max_block_ms`.",
    "max_block_ms": "How long `send()` may wait for buffer room before raising "
        "`KafkaTimeoutError`.",
    "delivery_timeout_ms": "Upper bound on the time from `send()` to success or failure, "
        "retries included (KIP-91); at least `linger_ms + request_timeout_ms`. `None` "
        "means 120000 (or that floor when it is higher).",
    "max_in_flight_requests_per_connection": "Produce requests sent to one broker before "
        "waiting for an answer; with 1, each partition has one batch in flight.",
    "retries": "How often a failed batch is retried; by default as often as "
        "`delivery_timeout_ms` allows. `0` turns off default idempotence.",
    "partitioner_adaptive_partitioning_enable": "Keyless records favour partitions whose "
        "leaders have shorter queues (KIP-794).",
    "partitioner_availability_timeout_ms": "Leave out a partition whose leader has not "
        "accepted a batch for this long (KIP-794); 0 turns it off.",
    "partitioner_ignore_keys": "Partition keyed records as if they had no key.",
    "enable_idempotence": "Broker-side de-duplication of retried batches with a producer "
        "id and sequence numbers, so retries neither duplicate nor reorder records. `None` "
        "(unset) means on unless `acks`, `retries` or "
        "`max_in_flight_requests_per_connection` rule it out.",
    "transactional_id": "Makes the producer transactional (`begin_transaction`, "
        "`commit_transaction`, `send_offsets_to_transaction`); a restarted producer with the "
        "same id fences the old one.",
    "transaction_timeout_ms": "How long a transaction may stay open before the coordinator "
        "aborts it.",
    # --- consumer --------------------------------------------------------------------------
    "ConsumerConfig.client_id": "Sent with every request; brokers use it in logs and "
        "quotas. aiokafka sends `aiokafka-<version>`; this names the library talking.",
    "client_rack": "The consumer's rack, for fetching from the closest replica (KIP-392) "
        "and rack-aware assignment.",
    "group_id": "The consumer group to join; `None` means no group: partitions are "
        "assigned by hand and nothing is committed.",
    "group_instance_id": "Static membership (KIP-345): a restarted member with the same id "
        "takes its place back without a rebalance; `stop()` does not leave the group.",
    "enable_auto_commit": "Commit the consumed positions every `auto_commit_interval_ms` "
        "and on rebalance and stop. Off when there is no `group_id`.",
    "auto_commit_interval_ms": "Interval between automatic commits.",
    "partition_assignment_strategy": "Assignors in preference order: classes (one "
        "instance each per consumer), instances, or aiokafka-style assignor classes. "
        "Cooperative rebalancing is used when every assignor supports it "
        "(`CooperativeStickyAssignor`).",
    "max_poll_interval_ms": "Longest allowed gap between two `getone`/`getmany` calls "
        "before the member leaves the group so its partitions move elsewhere.",
    "rebalance_timeout_ms": "How long the coordinator waits for members to rejoin during a "
        "rebalance; `None` means `session_timeout_ms` (aiokafka's choice; Java uses "
        "`max_poll_interval_ms`).",
    "session_timeout_ms": "The coordinator removes a member it has not heard from for this "
        "long.",
    "heartbeat_interval_ms": "Interval between heartbeats; lower than "
        "`session_timeout_ms`, usually a third of it.",
    "exclude_internal_topics": "Pattern subscriptions never match internal topics "
        "(`__consumer_offsets`, …).",
    "key_deserializer": "`f(raw_key) -> key`, applied to each fetched record.",
    "value_deserializer": "`f(raw_value) -> value`, applied to each fetched record.",
    "fetch_max_wait_ms": "How long the broker may hold a fetch waiting for "
        "`fetch_min_bytes`.",
    "fetch_max_bytes": "Most bytes one fetch response may carry (a first batch larger than "
        "this is still returned, so the consumer never stalls).",
    "fetch_min_bytes": "Bytes the broker waits for before answering a fetch.",
    "max_partition_fetch_bytes": "Most bytes per partition in one fetch response.",
    "auto_offset_reset": "Where to start when there is no committed offset or it is out of "
        "range: `earliest`, `latest`, or `none` (raise `NoOffsetForPartitionError`). An "
        "unknown value is an error.",
    "check_crcs": "Check the CRC-32C of fetched batches.",
    "consumer_timeout_ms": "aiokafka's background fetcher wait between checks for new "
        "data.",
    "max_poll_records": "Most records one `getmany` returns; `None` means no limit.",
    "isolation_level": "`read_committed` hides records of open and aborted transactions; "
        "`read_uncommitted` returns everything.",
    # --- admin client ----------------------------------------------------------------------
    "AdminConfig.request_timeout_ms": "The bound on one admin call, retries included "
        "(aiokafka bounds one request).",
    # --- cluster client --------------------------------------------------------------------
    "ClusterConfig.client_id": "Sent with every request.",
    "connect_timeout_ms": "How long a TCP (and TLS) connect may take; `None` means "
        "`request_timeout_ms`.",
    "reconnect_backoff_ms": "First wait before reconnecting to a broker that could not be "
        "reached; it grows exponentially.",
    "reconnect_backoff_max_ms": "Upper bound of the reconnect backoff.",
    "ClusterConfig.security_protocol": "`PLAINTEXT` or `SSL`; the SASL protocols are "
        "refused (not implemented yet).",
    "allow_auto_topic_creation": "Whether metadata requests may create a missing topic "
        "(the broker must allow it too).",
    # --- embedded cluster ------------------------------------------------------------------
    "nodes": "Number of broker nodes; node ids are 0 to `nodes - 1`.",
    "host": "The address every node listens on and advertises.",
    "port": "0 picks a free port per node; otherwise node `i` listens on `port + i`.",
    "log_dir": "Keep the logs on disk in this directory (segments, `.index`, "
        "`.timeindex`), so a cluster started again on it finds its topics, records, "
        "committed offsets and transactions; `None` keeps everything in memory.",
    "auto_create_topics": "Create a topic on first use by Metadata or Produce "
        "(`auto.create.topics.enable`).",
    "default_partitions": "Partitions of auto-created topics and of CreateTopics without a "
        "count (`num.partitions`).",
    "EmbeddedCluster.default_replication_factor": "Replication factor of auto-created "
        "topics (`default.replication.factor`); at most `nodes`.",
    "EmbeddedCluster.topic_defaults": "Topic configs (Kafka's dotted names) applied to "
        "every new topic under its own configs.",
    "clock": "The time source (`now_ms()`); a `ManualClock` lets a test drive timeouts.",
    "cluster_id": "The cluster id Metadata and DescribeCluster report; random when `None`.",
    "max_frame_bytes": "Largest request frame; a bigger one closes the connection "
        "(`socket.request.max.bytes`).",
    "tick_interval_ms": "How often the group and transaction coordinators' timers and log "
        "retention run.",
    # --- broker ----------------------------------------------------------------------------
    "auto_create_topics_enable": "Create a topic on first use by Metadata or Produce.",
    "num_partitions": "Partitions of auto-created topics.",
    "BrokerConfig.default_replication_factor": "Replication factor of auto-created topics.",
    "offsets_topic_num_partitions": "Partitions of `__consumer_offsets`; a group's "
        "coordinator leads the partition a stock broker would pick (Java's string hash of the "
        "group id, modulo n).",
    "offsets_topic_replication_factor": "Replication factor of `__consumer_offsets`, "
        "capped at the node count.",
    "transaction_state_log_num_partitions": "Partitions of `__transaction_state`.",
    "transaction_state_log_replication_factor": "Replication factor of "
        "`__transaction_state`, capped at the node count.",
    "transaction_state_log_min_isr": "Reported by DescribeConfigs; not enforced.",
    "delete_topic_enable": "Whether DeleteTopics may delete topics.",
    "message_max_bytes": "Reported by DescribeConfigs; the limit the log enforces is the "
        "topic config `max.message.bytes`.",
    "socket_request_max_bytes": "Largest request frame (set from `EmbeddedCluster`'s "
        "`max_frame_bytes`).",
    "min_insync_replicas": "Reported by DescribeConfigs; the limit `acks=all` enforces is "
        "the topic config `min.insync.replicas` (set it in `topic_defaults`).",
    "group_initial_rebalance_delay_ms": "How long a new group waits for more members before "
        "its first rebalance; tests use 0 (the pytest fixtures do).",
    "group_min_session_timeout_ms": "Smallest session timeout a member may ask for.",
    "group_max_session_timeout_ms": "Largest session timeout a member may ask for.",
    "transaction_max_timeout_ms": "Largest `transaction_timeout_ms` a producer may ask "
        "for.",
    "transactional_id_expiration_ms": "Reported by DescribeConfigs; transactional ids do "
        "not expire.",
    "offsets_retention_minutes": "Reported by DescribeConfigs; committed offsets do not "
        "expire.",
    "log_retention_check_interval_ms": "How often a disk log dir runs time and size "
        "retention and compaction.",
    "BrokerConfig.topic_defaults": "Topic configs applied to every new topic under its own "
        "configs (validated like CreateTopics configs).",
}

# Checks the code makes beyond pydantic's ge/gt: "Class.field" or "field".
CONSTRAINTS: dict[str, str] = {
    "security_protocol": "`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`",
    "ClusterConfig.security_protocol": "`PLAINTEXT` or `SSL`",
    "connections_max_idle_ms": "≥ 0 or `None`",
    "sasl_mechanism": "`PLAIN`, `GSSAPI`, `SCRAM-SHA-256`, `SCRAM-SHA-512`, `OAUTHBEARER`",
    "partitioner": "a `Partitioner` or aiokafka-style callable",
    "compression_level": "gzip 1..9, lz4 0..16, zstd -131072..22",
    "max_poll_records": "≥ 1 or `None`",
    "key_deserializer": "callable or `None`",
    "value_deserializer": "callable or `None`",
    "ClusterConfig.bootstrap_servers": "at least one `host[:port]`",
    "ClusterConfig.request_timeout_ms": "> 0",
    "ClusterConfig.connect_timeout_ms": "> 0 or `None`",
    "ClusterConfig.retry_backoff_ms": "≥ 0",
    "ClusterConfig.retry_backoff_max_ms": "≥ 0",
    "ClusterConfig.reconnect_backoff_ms": "≥ 0",
    "ClusterConfig.reconnect_backoff_max_ms": "≥ 0",
    "ClusterConfig.metadata_max_age_ms": "≥ 0",
    "ClusterConfig.ssl_context": "an `ssl.SSLContext`",
    "nodes": "≥ 1",
    "port": "0..65535 for every node",
    "EmbeddedCluster.default_replication_factor": "≤ `nodes`",
    "max_frame_bytes": "≥ 1024",
    "BrokerConfig.num_partitions": "≥ 1",
    "BrokerConfig.default_replication_factor": "≥ 1",
    "offsets_topic_num_partitions": "≥ 1",
    "offsets_topic_replication_factor": "≥ 1",
    "transaction_state_log_num_partitions": "≥ 1",
    "transaction_state_log_replication_factor": "≥ 1",
    "socket_request_max_bytes": "≥ 1024",
    "BrokerConfig.topic_defaults": "valid topic configs",
}

# The rules between settings, per class: (rule, why).
RULES: dict[str, list[tuple[str, str]]] = {
    "ProducerConfig": [
        ("`security_protocol` `SSL`/`SASL_SSL` needs `ssl_context`.",
         "TLS needs certificates to check; no default context is guessed (aiokafka's rule "
         "and message)."),
        ("With a SASL protocol, `sasl_mechanism` must be a known one; `PLAIN` and `SCRAM-*` "
         "need `sasl_plain_username` and `sasl_plain_password`, `OAUTHBEARER` a "
         "`sasl_oauth_token_provider`; `GSSAPI` is refused.",
         "aiokafka's rules and messages (aiokafka checks SCRAM and OAUTHBEARER only when it "
         "connects); Kerberos is not implemented, which is better said before any I/O."),
        ("`compression_level` needs `compression_type` gzip, lz4 or zstd, and a level in that "
         "codec's range.", "A level only means something to the codec that reads it."),
        ("`max_batch_size` ≤ `buffer_memory`.",
         "A batch that can never fit in the buffer would block `send()` forever."),
        ("An explicit `retry_backoff_max_ms` must be ≥ `retry_backoff_ms`.",
         "Java silently treats a smaller maximum as a constant backoff; an error says so."),
        ("`transactional_id` needs idempotence: `enable_idempotence=False` with it is an "
         "error, and it must not be empty.",
         "A transaction spans partitions through one producer id, so it is idempotent by "
         "definition; aiokafka silently overrides the contradiction."),
        ("Idempotence needs `acks=\"all\"`, `retries` > 0 and "
         "`max_in_flight_requests_per_connection` ≤ 5. Asked for explicitly (or through "
         "`transactional_id`), a conflict is an error; left unset, idempotence turns off.",
         "Without acks=all a leader change loses acknowledged records and the sequence "
         "state; a retry is what idempotence de-duplicates; the broker keeps sequence "
         "metadata for 5 batches per partition. Java's rule."),
        ("`delivery_timeout_ms` ≥ `linger_ms + request_timeout_ms`; unset, it is "
         "`max(120000, linger_ms + request_timeout_ms)`.",
         "A batch must be allowed its linger and one whole request before it counts as "
         "undeliverable (Java's rule)."),
    ],
    "ConsumerConfig": [
        ("`security_protocol` `SSL`/`SASL_SSL` needs `ssl_context`; SASL needs a known "
         "`sasl_mechanism` with its credentials (`GSSAPI` is refused).",
         "As for the producer (aiokafka's rules)."),
        ("`heartbeat_interval_ms` < `session_timeout_ms`.",
         "A member silent for a session is declared dead; a longer heartbeat interval would "
         "let every session lapse between two beats."),
        ("`rebalance_timeout_ms` unset means `session_timeout_ms`.",
         "aiokafka's choice (the Java client uses `max_poll_interval_ms`)."),
        ("`group_instance_id` needs `group_id` and must not be empty; `group_id` must be "
         "`None` or non-empty.",
         "A static member is identified within a group, and the coordinator reads an empty "
         "instance id as \"dynamic member\"."),
        ("Without `group_id`, `enable_auto_commit` is turned off.",
         "There is nowhere to commit; aiokafka ignores the flag then, and its default is on."),
        ("`fetch_min_bytes` ≤ `fetch_max_bytes`.",
         "A broker never sends more than the maximum, so a larger minimum makes every fetch "
         "wait out `fetch_max_wait_ms`."),
        ("`request_timeout_ms` > `fetch_max_wait_ms`.",
         "A fetch may park on the broker for `fetch_max_wait_ms`; a shorter request timeout "
         "would fail every idle long-poll."),
    ],
    "AdminConfig": [
        ("`security_protocol` `SSL`/`SASL_SSL` needs `ssl_context`; SASL needs a known "
         "`sasl_mechanism` with its credentials (`GSSAPI` is refused).",
         "As for the producer (aiokafka's rules)."),
        ("`retry_backoff_max_ms` ≥ `retry_backoff_ms` and `reconnect_backoff_max_ms` ≥ "
         "`reconnect_backoff_ms`.",
         "The backoff grows from the first delay up to the maximum; a lower maximum would "
         "make the first delay the longest."),
    ],
    "ClusterConfig": [
        ("`security_protocol=\"SSL\"` needs `ssl_context`.", "TLS needs certificates to check."),
    ],
    "EmbeddedCluster": [
        ("`default_replication_factor` ≤ `nodes`.",
         "Auto-created topics could not be placed otherwise."),
    ],
}

# sha256 (first 16 hex digits) of the syntax tree of each class's ``_cross_field_rules``,
# when RULES was last reviewed against it.  --check prints the new value when it changes.
RULES_REVIEWED: dict[str, str] = {
    "ProducerConfig": "61a1032b0b20382d",
    "ConsumerConfig": "6f0854b098f08d15",
    "AdminConfig": "7f8823fb55ec069f",
}
RULE_METHOD = "_cross_field_rules"


# --- reading the code ------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldDoc:
    name: str
    type: str
    default: str
    resolved: str | None
    constraint: str
    description: str | None
    aiokafka: str


@dataclass(frozen=True)
class ConfigDoc:
    source: Source
    cls: type
    fields: list[FieldDoc]
    rules: list[tuple[str, str]]


_MISSING = object()


def _config_class(module: Any, source: Source) -> type:
    if source.name is not None:
        return typing.cast(type, getattr(module, source.name))
    found = sorted(
        (obj for name, obj in vars(module).items()
         if inspect.isclass(obj) and obj.__module__ == module.__name__
         and name.endswith("Config")),
        key=lambda c: c.__name__)
    if len(found) != 1:
        raise SystemExit(f"{module.__name__}: expected one *Config class, found "
                         f"{[c.__name__ for c in found]}; name it in SOURCES")
    return found[0]


def _literal(value: Any) -> str:
    """A default as Python source, stable across runs and releases."""
    from streamclient._version import __version__

    if isinstance(value, str):
        text = value.replace(__version__, "{__version__}")
        return f'f"{text}"' if text != value else f'"{text}"'
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if inspect.isclass(value) or inspect.isfunction(value):
        return value.__name__
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, (dict, list)) and not value:
        return repr(value)
    return f"{type(value).__name__}()"


class _FactoryText(str):
    """A default already rendered: the call of a default factory."""


def _factory_literal(factory: Callable[[], Any]) -> _FactoryText:
    if factory in (dict, list, tuple, set):
        return _FactoryText(repr(factory()))
    return _FactoryText(f"{getattr(factory, '__name__', repr(factory))}()")


def _annotation(cls: type, name: str, fallback: Any) -> str:
    for klass in cls.__mro__:
        raw = inspect.get_annotations(klass).get(name)
        if raw is not None:
            return raw if isinstance(raw, str) else _type_name(raw)
    return _type_name(fallback)


def _type_name(tp: Any) -> str:
    if isinstance(tp, str):
        return tp
    if inspect.isclass(tp) and not typing.get_args(tp):
        return tp.__name__
    return repr(tp).replace("typing.", "")


def _pydantic_constraint(metadata: Iterable[Any]) -> str:
    parts = []
    symbols = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "min_length": "length ≥",
               "max_length": "length ≤", "multiple_of": "multiple of"}
    for item in metadata:
        for attr, symbol in symbols.items():
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)


def _comments(cls: type) -> dict[str, str]:
    """The comment on, or directly above, each field assignment of the class body."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    by_line: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            by_line[tok.start[0]] = tok.string.lstrip("#").strip()
    result: dict[str, str] = {}
    body = typing.cast(ast.ClassDef, ast.parse(source).body[0]).body
    for node in body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        lines = []
        line = node.lineno - 1
        while line in by_line and not by_line[line].startswith("---"):
            lines.insert(0, by_line[line])
            line -= 1
        if node.lineno in by_line:
            lines.append(by_line[node.lineno])
        if lines:
            result[node.target.id] = " ".join(lines)
    return result


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """A string literal right after a field, the convention Sphinx reads."""
    try:
        body = typing.cast(ast.ClassDef, ast.parse(
            textwrap.dedent(inspect.getsource(cls))).body[0]).body
    except (OSError, TypeError):
        return {}
    result = {}
    for node, following in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            result[node.target.id] = " ".join(following.value.value.split())
    return result


def _lookup(table: dict[str, str], cls: type, name: str) -> str | None:
    return table.get(f"{cls.__name__}.{name}", table.get(name))


def _raw_fields(cls: type, source: Source) -> list[tuple[str, str, Any, str, str | None]]:
    """(name, type, default, pydantic constraint, Field description) per field."""
    out = []
    if source.signature:
        for p in inspect.signature(cls).parameters.values():
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            default = _MISSING if p.default is p.empty else p.default
            out.append((p.name, _type_name(p.annotation), default, "", None))
    elif hasattr(cls, "model_fields"):
        for name, info in cls.model_fields.items():
            if info.default_factory is not None:
                default: Any = _factory_literal(info.default_factory)
            else:
                default = info.default
            out.append((name, _annotation(cls, name, info.annotation), default,
                        _pydantic_constraint(info.metadata), info.description))
    elif dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = _factory_literal(f.default_factory)
            else:
                default = _MISSING
            out.append((f.name, _annotation(cls, f.name, f.type), default, "", None))
    else:
        raise SystemExit(f"{cls.__name__}: not a pydantic model, dataclass or signature")
    return out


def _render_default(value: Any) -> str:
    if value is _MISSING:
        return "required"
    if isinstance(value, _FactoryText):
        return str(value)
    return _literal(value)


def _resolved_defaults(cls: type, source: Source) -> dict[str, Any]:
    """The values a config built with no arguments holds (rules fill some in)."""
    if source.signature:
        return {}
    try:
        instance = cls()
    except Exception:
        return {}
    names = cls.model_fields if hasattr(cls, "model_fields") else [
        f.name for f in dataclasses.fields(cls)]
    return {name: getattr(instance, name) for name in names}


def _aiokafka_note(source: Source, name: str, default: str) -> str:
    if source.aiokafka is None:
        return ""
    table = AIOKAFKA_DEFAULTS[source.aiokafka]
    if name not in table:
        return "not in aiokafka"
    if (source.aiokafka, name) in AIOKAFKA_SAME:
        return ""
    theirs = table[name]
    computed = (source.aiokafka, name) in AIOKAFKA_COMPUTED
    theirs_text = str(theirs) if computed else _literal(theirs)
    return "" if theirs_text == default else f"**differs**: `{theirs_text}`"


def read_config(source: Source) -> ConfigDoc | None:
    try:
        module = importlib.import_module(source.module)
    except ModuleNotFoundError as exc:
        if source.optional and exc.name is not None and source.module.startswith(exc.name):
            return None
        raise
    cls = _config_class(module, source)
    comments = _comments(cls)
    docstrings = _attribute_docstrings(cls)
    resolved = _resolved_defaults(cls, source)
    fields = []
    for name, type_, default, constraint, description in _raw_fields(cls, source):
        shown = _render_default(default)
        after: str | None = None
        if name in resolved:
            value = resolved[name]
            if (value is None or isinstance(value, (bool, int, float, str))) and (
                    _literal(value) != shown):
                after = _literal(value)
        extra = _lookup(CONSTRAINTS, cls, name)
        constraint = ", ".join(c for c in (constraint, extra) if c)
        text = (description or docstrings.get(name) or _lookup(DESCRIPTIONS, cls, name)
                or comments.get(name))
        fields.append(FieldDoc(name, type_, shown, after, constraint, text,
                               _aiokafka_note(source, name, shown)))
    return ConfigDoc(source, cls, fields, RULES.get(cls.__name__, []))


def rules_fingerprint(cls: type) -> str | None:
    method = getattr(cls, RULE_METHOD, None)
    if method is None:
        return None
    tree = ast.parse(textwrap.dedent(inspect.getsource(method)))
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]


# --- writing --------------------------------------------------------------------------------

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _anchor(title: str) -> str:
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c == "-")


def render_config(doc: ConfigDoc) -> list[str]:
    src = doc.source
    what = f"`{src.module}.{doc.cls.__name__}`"
    lines = [f"## {src.title}", "", f"{what}. {src.intro}", ""]
    head = ["keyword", "type", "default", "constraint", "description"]
    if src.aiokafka:
        head.append("vs aiokafka")
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in doc.fields:
        default = _code(f.default)
        if f.resolved is not None:
            default += f" (resolved: `{f.resolved}`)"
        row = [f"`{f.name}`", _code(f.type), default, f.constraint, f.description or ""]
        if src.aiokafka:
            row.append(f.aiokafka)
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    lines.append("")
    if doc.rules:
        lines += ["Rules between settings (checked at construction; a broken rule raises a "
                  "`ValueError` subclass):", ""]
        for i, (rule, why) in enumerate(doc.rules, 1):
            lines.append(f"{i}. {rule} *Why:* {why}")
        lines.append("")
    return lines


def render_topic_configs() -> list[str]:
    from streamclient.broker.config import TOPIC_CONFIG_DEFS
    from streamclient.broker.log.config import DEFAULTS as LOG_CONFIGS

    lines = ["## Topic configs", "",
             "What `CreateTopics`, `AlterConfigs`, `IncrementalAlterConfigs` and "
             "`EmbeddedCluster(topic_defaults=...)` accept (Kafka's names and defaults, from "
             "`streamclient.broker.config.TOPIC_CONFIG_DEFS`). The embedded log acts on the "
             "ones marked *applied*; the others are validated, stored and reported by "
             "`DescribeConfigs`.", "",
             "| name | type | default | broker default (synonym) | valid values | applied | "
             "description |", "|---|---|---|---|---|---|---|"]
    for name in sorted(TOPIC_CONFIG_DEFS):
        d = TOPIC_CONFIG_DEFS[name]
        valid = []
        if d.minimum is not None:
            valid.append(f"≥ {d.minimum:g}")
        if d.choices:
            valid.append(", ".join(f"`{c}`" for c in d.choices))
        row = [f"`{name}`", d.type.name.lower(), _code(d.default or ""),
               _code(d.broker_synonym or ""), "; ".join(valid),
               "applied" if name in LOG_CONFIGS else "", d.doc]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return [*lines, ""]


def render_config_doc(docs: list[ConfigDoc]) -> str:
    lines = [
        "<!-- GENERATED by tools/generate_config_docs.py from the config classes; do not "
        "edit. Run `python tools/generate_config_docs.py` after changing a config. -->",
        "",
        "# Configuration reference",
        "",
        "Every client takes aiokafka's keywords and validates them once, at construction, "
        "into a frozen config object: an unknown keyword raises `TypeError` naming it, a bad "
        "value raises a `KafkaConfigurationError` that is also a `ValueError` (with "
        "aiokafka's message where aiokafka has one). Nothing is validated again on the "
        "per-record path.",
        "",
        "Columns: *default* is the declared default; *resolved* is what it becomes after "
        "the rules between settings run with every other setting at its default. *vs "
        "aiokafka* marks a default that differs from aiokafka 0.14's, and keywords aiokafka "
        "does not have. See also [aiokafka-differences.md](aiokafka-differences.md).",
        "",
    ]
    lines += [f"- [{d.source.title}](#{_anchor(d.source.title)})" for d in docs]
    lines += ["- [Topic configs](#topic-configs)", ""]
    for doc in docs:
        lines += render_config(doc)
    lines += render_topic_configs()
    return "\n".join(lines).rstrip("\n") + "\n"


def render_api_table() -> str:
    from streamclient.broker.handlers.registry import REGISTRY

    lines = [API_TABLE_BEGIN, "",
             "| key | API | versions served | newest in the schema |", "|---|---|---|---|"]
    for reg in REGISTRY:
        lo, hi = reg.advertised
        newest = reg.request_type.VALID_VERSIONS[1]
        lines.append(f"| {reg.api_key} | {reg.request_type.API_NAME} | {lo}-{hi} | {newest} |")
    return "\n".join([*lines, "", API_TABLE_END])


def splice_api_table(text: str, table: str) -> str:
    start, end = text.find(API_TABLE_BEGIN), text.find(API_TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"the markers {API_TABLE_BEGIN!r} … {API_TABLE_END!r} are missing")
    return text[:start] + table + text[end + len(API_TABLE_END):]


# --- checks ---------------------------------------------------------------------------------

def problems(docs: list[ConfigDoc]) -> list[str]:
    """Undocumented fields and rule methods changed since RULES was reviewed."""
    found = []
    for doc in docs:
        for f in doc.fields:
            if not f.description:
                found.append(f"{doc.cls.__name__}.{f.name} has no description: give it "
                             f"Field(description=...) or an entry in DESCRIPTIONS")
        fingerprint = rules_fingerprint(doc.cls)
        if fingerprint is not None and RULES_REVIEWED.get(doc.cls.__name__) != fingerprint:
            found.append(f"{doc.cls.__name__}.{RULE_METHOD} changed since RULES was reviewed: "
                         f"update RULES[{doc.cls.__name__!r}], then set "
                         f"RULES_REVIEWED[{doc.cls.__name__!r}] = {fingerprint!r}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=CONFIG_DOC,
                        help="the configuration reference to write (default docs/config.md)")
    parser.add_argument("--broker-doc", type=Path, default=BROKER_DOC,
                        help="the file holding the generated API table (default docs/broker.md)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a file is stale or a field undocumented")
    args = parser.parse_args(argv)

    docs = [d for d in (read_config(s) for s in SOURCES) if d is not None]
    config_text = render_config_doc(docs)
    try:
        broker_old = args.broker_doc.read_text(encoding="utf-8")
        broker_text = splice_api_table(broker_old, render_api_table())
    except (OSError, ValueError) as exc:
        print(f"{args.broker_doc}: {exc}", file=sys.stderr)
        return 2

    issues = problems(docs)
    if args.check:
        if not args.out.exists() or args.out.read_text(encoding="utf-8") != config_text:
            issues.append(f"{args.out} is stale: run python tools/generate_config_docs.py")
        if broker_old != broker_text:
            issues.append(f"the API table in {args.broker_doc} is stale: run "
                          "python tools/generate_config_docs.py")
        for issue in issues:
            print(issue, file=sys.stderr)
        return 1 if issues else 0

    args.out.write_text(config_text, encoding="utf-8")
    if broker_old != broker_text:
        args.broker_doc.write_text(broker_text, encoding="utf-8")
    for issue in issues:
        print(f"warning: {issue}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
