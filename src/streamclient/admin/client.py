"""``AIOKafkaAdminClient``: aiokafka's admin client on anyio, and the Java admin's extras.

Compatibility with aiokafka 0.14: the constructor keywords, the 13 methods with their
signatures, and their return shapes.  Where aiokafka returns raw protocol responses
(``create_topics``, ``delete_topics``, ``create_partitions``, ``describe_configs``,
``alter_configs``, ``describe_consumer_groups``) this returns our generated response
objects the same way and, like aiokafka, leaves per-entry errors in them; pass
``raise_on_error=True`` to have the first failed entry (in request order) raised as its
error class instead.  ``create_partitions`` raises by default, as aiokafka's does.

Differences, all on the side of doing what the caller meant:

- ``async with AIOKafkaAdminClient(...) as admin:`` starts and closes it;
- every call is routed where Kafka serves it (topic creation and deletion to the
  controller, broker configs to that broker, group calls to the group's coordinator,
  DeleteRecords and ListOffsets to each partition's leader, grouped per leader) and
  retried on retriable errors (NOT_CONTROLLER: refresh the metadata; NOT_COORDINATOR:
  look the coordinator up again; NOT_LEADER: refresh; lost connections) with backoff
  until ``request_timeout_ms``, which bounds the whole call;
- calls before ``start()`` or after ``close()`` raise ``IllegalStateError``;
- ``NewTopic`` takes -1 for both counts (the broker's defaults, KIP-464).

The response objects carry Kafka's schema field names (``response.topics[i].error_code``),
not aiokafka's hand-written ones (``topic_errors`` tuples): code that unpacks aiokafka's
tuples must read the fields instead.

The Java admin's calls that aiokafka lacks return typed values: mutating ones
(``delete_consumer_groups``, ``alter_consumer_group_offsets``,
``delete_consumer_group_offsets``, ``incremental_alter_configs``) return ``{key: error or
None}`` and raise the first error unless ``raise_on_error=False``; the others
(``list_offsets``, ``describe_producers``, ``list_transactions``,
``describe_transactions``) return dataclasses from ``streamclient.admin.models`` and raise.

No background task: ``close()`` may be called from any task.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from streamclient.errors import BrokerResponseError
from streamclient.protocol.messages.alter_configs import AlterConfigsResponse
from streamclient.protocol.messages.create_partitions import CreatePartitionsResponse
from streamclient.protocol.messages.create_topics import CreateTopicsResponse
from streamclient.protocol.messages.delete_topics import DeleteTopicsResponse
from streamclient.protocol.messages.describe_configs import DescribeConfigsResponse
from streamclient.protocol.messages.describe_groups import DescribeGroupsResponse
from streamclient.structs import OffsetAndMetadata, TopicPartition

from .config import AdminConfig
from .configs import ConfigCalls
from .dispatch import Dispatcher
from .groups import GroupCalls
from .models import (
    ConfigResource,
    ConfigResourceType,
    ListOffsetsResultInfo,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ProducerState,
    RecordsToDelete,
    TopicDescription,
    TransactionDescription,
    TransactionListing,
)
from .partitions import PartitionCalls
from .topics import TopicCalls
from .transactions import TransactionCalls

__all__ = ["AIOKafkaAdminClient"]

log = logging.getLogger(__name__)


class AIOKafkaAdminClient:
    """Administer a Kafka cluster: topics, partitions, configs, groups, offsets, records,
    transactions.  Keywords are aiokafka's (see :class:`~streamclient.admin.AdminConfig`);
    construction does no I/O and needs no running event loop."""

    def __init__(self, *, loop: Any = None, **kwargs: Any) -> None:
        if loop is not None:
            warnings.warn("the `loop` argument is ignored: the client runs on the event "
                          "loop (asyncio or trio) that calls start()",
                          DeprecationWarning, stacklevel=2)
        config = AdminConfig.from_kwargs(**kwargs)
        # built now so that a setting the cluster layer refuses fails here, not at start()
        self._d = Dispatcher(config, config.cluster_config())
        self._topics = TopicCalls(self._d)
        self._configs = ConfigCalls(self._d)
        self._groups = GroupCalls(self._d)
        self._partitions = PartitionCalls(self._d)
        self._transactions = TransactionCalls(self._d)

    @property
    def config(self) -> AdminConfig:
        """The validated, frozen settings."""
        return self._d.config

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to the cluster (the first metadata).  Calling it again does nothing;
        after ``close()`` it raises ``IllegalStateError``."""
        await self._d.start()
        log.debug("AIOKafkaAdminClient started")

    async def close(self) -> None:
        """Close every connection.  Idempotent; any task may call it."""
        await self._d.close()

    async def __aenter__(self) -> AIOKafkaAdminClient:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    # --- topics (aiokafka's) -----------------------------------------------------------

    async def create_topics(self, new_topics: list[NewTopic], timeout_ms: int | None = None,
                            validate_only: bool = False, *,
                            raise_on_error: bool = False) -> CreateTopicsResponse:
        """Create topics (on the controller).  Returns the ``CreateTopicsResponse`` with
        one result per topic in request order; errors (TOPIC_ALREADY_EXISTS, …) stay in
        it unless ``raise_on_error``.  ``timeout_ms`` is how long the broker waits for the
        creation (default ``request_timeout_ms``)."""
        return await self._topics.create(new_topics, timeout_ms, validate_only,
                                        raise_on_error)

    async def delete_topics(self, topics: list[str], timeout_ms: int | None = None, *,
                            raise_on_error: bool = False) -> DeleteTopicsResponse:
        """Delete topics (on the controller); the ``DeleteTopicsResponse`` as
        :meth:`create_topics` returns its response."""
        return await self._topics.delete(topics, timeout_ms, raise_on_error)

    async def create_partitions(self, topic_partitions: dict[str, NewPartitions],
                                timeout_ms: int | None = None, validate_only: bool = False,
                                *, raise_on_error: bool = True) -> CreatePartitionsResponse:
        """Raise topics' partition counts (on the controller).  Raises the first
        per-topic error, as aiokafka does, unless ``raise_on_error=False``."""
        return await self._topics.create_partitions(topic_partitions, timeout_ms,
                                                   validate_only, raise_on_error)

    async def list_topics(self) -> list[str]:
        """Every topic's name, internal ones included (as aiokafka)."""
        return await self._topics.list_names()

    async def describe_topics(self, topics: list[str] | None = None, *,
                              raise_on_error: bool = False) -> list[TopicDescription]:
        """Topics (``None``: all) as typed ``TopicDescription``s, which also answer
        aiokafka's dictionary keys (``d["topic"]``, ``d["partitions"][0]["leader"]``).
        A topic that does not exist comes back with ``error_code`` 3 unless
        ``raise_on_error``.  Never creates a topic."""
        return await self._topics.describe(topics, raise_on_error)

    async def describe_cluster(self) -> dict[str, Any]:
        """aiokafka's dictionary: ``throttle_time_ms``, ``brokers`` (``node_id``,
        ``host``, ``port``, ``rack``), ``cluster_id``, ``controller_id``."""
        return await self._topics.describe_cluster()

    # --- configs (aiokafka's, and incremental) ---------------------------------------

    async def describe_configs(self, config_resources: list[ConfigResource],
                               include_synonyms: bool = False, *,
                               include_documentation: bool = False,
                               raise_on_error: bool = False) -> list[DescribeConfigsResponse]:
        """One ``DescribeConfigsResponse`` per broker asked: broker resources go to
        that broker, the rest to one broker.  ``ConfigResource.configs`` keys filter
        the names returned (``None``: all)."""
        return await self._configs.describe(config_resources, include_synonyms,
                                           include_documentation, raise_on_error)

    async def alter_configs(self, config_resources: list[ConfigResource], *,
                            validate_only: bool = False,
                            raise_on_error: bool = False) -> list[AlterConfigsResponse]:
        """Replace resources' configs (AlterConfigs: keys not given return to their
        defaults).  One ``AlterConfigsResponse`` per broker asked."""
        return await self._configs.alter(config_resources, validate_only, raise_on_error)

    async def incremental_alter_configs(
            self, config_resources: list[ConfigResource], *, validate_only: bool = False,
            raise_on_error: bool = True
    ) -> dict[tuple[ConfigResourceType, str], BrokerResponseError | None]:
        """Change some configs and leave the rest (KIP-339).  In ``configs`` a value
        means SET, ``None`` DELETE, an ``AlterConfigOp`` APPEND/SUBTRACT (or any).
        Returns ``{(resource_type, name): error or None}``; raises the first error
        unless ``raise_on_error=False``."""
        return await self._configs.incremental_alter(config_resources, validate_only,
                                                    raise_on_error)

    # --- groups ---------------------------------------------------------------------

    async def describe_consumer_groups(self, group_ids: list[str],
                                       group_coordinator_id: int | None = None,
                                       include_authorized_operations: bool = False, *,
                                       raise_on_error: bool = False) -> list[DescribeGroupsResponse]:
        """One ``DescribeGroupsResponse`` per coordinator, each describing the groups
        it coordinates."""
        return await self._groups.describe(group_ids, group_coordinator_id,
                                          include_authorized_operations, raise_on_error)

    async def list_consumer_groups(self, broker_ids: list[int] | None = None
                                   ) -> list[tuple[str, str]]:
        """``(group_id, protocol_type)`` of every group on ``broker_ids`` (default: all
        brokers)."""
        return await self._groups.list(broker_ids)

    async def find_coordinator(self, group_id: str, coordinator_type: int = 0) -> int:
        """The node id coordinating ``group_id`` (``coordinator_type`` 1: a
        transactional id), looked up afresh."""
        return await self._groups.find_coordinator(group_id, coordinator_type)

    async def list_consumer_group_offsets(
            self, group_id: str, group_coordinator_id: int | None = None,
            partitions: list[TopicPartition] | None = None, *,
            require_stable: bool = False) -> dict[TopicPartition, OffsetAndMetadata]:
        """The group's committed offsets (``partitions`` falsy: all it has).  Raises on
        errors, as aiokafka.  ``require_stable`` (KIP-447) waits out pending
        transactional commits."""
        return await self._groups.list_offsets(group_id, group_coordinator_id, partitions,
                                              require_stable)

    async def delete_consumer_groups(self, group_ids: list[str], *,
                                     raise_on_error: bool = True
                                     ) -> dict[str, BrokerResponseError | None]:
        """Delete empty groups: ``{group_id: error or None}``."""
        return await self._groups.delete(group_ids, raise_on_error)

    async def alter_consumer_group_offsets(
            self, group_id: str, offsets: Mapping[TopicPartition, OffsetAndMetadata | int], *,
            raise_on_error: bool = True) -> dict[TopicPartition, BrokerResponseError | None]:
        """Commit offsets (``OffsetAndMetadata`` or int) for a group with no members."""
        return await self._groups.alter_offsets(group_id, offsets, raise_on_error)

    async def delete_consumer_group_offsets(
            self, group_id: str, partitions: Sequence[TopicPartition], *,
            raise_on_error: bool = True) -> dict[TopicPartition, BrokerResponseError | None]:
        """Forget a group's committed offsets for partitions it no longer consumes."""
        return await self._groups.delete_offsets(group_id, partitions, raise_on_error)

    # --- partitions -----------------------------------------------------------------

    async def delete_records(self, records_to_delete: Mapping[TopicPartition, RecordsToDelete | int],
                             timeout_ms: int | None = None) -> dict[TopicPartition, int]:
        """Move partitions' log start offsets forward: ``{tp: new low watermark}``."""
        return await self._partitions.delete_records(records_to_delete, timeout_ms)

    async def list_offsets(self, topic_partitions: Mapping[TopicPartition, OffsetSpec | str | int], *,
                           isolation_level: str = "read_uncommitted"
                           ) -> dict[TopicPartition, ListOffsetsResultInfo]:
        """Offsets by spec (``OffsetSpec`` or ``"earliest"``/``"latest"``/
        ``"max_timestamp"`` or a timestamp in ms): ``{tp: ListOffsetsResultInfo}``."""
        return await self._partitions.list_offsets(topic_partitions, isolation_level)

    async def describe_producers(self, partitions: Sequence[TopicPartition]
                                 ) -> dict[TopicPartition, list[ProducerState]]:
        """The active producers each partition's leader knows (KIP-664)."""
        return await self._partitions.describe_producers(partitions)

    # --- transactions ---------------------------------------------------------------

    async def list_transactions(self, *, states: Sequence[str] | None = None,
                                producer_ids: Sequence[int] | None = None,
                                min_duration_ms: int | None = None) -> list[TransactionListing]:
        """Every transactional id the brokers coordinate (KIP-664), filtered."""
        return await self._transactions.list(states, producer_ids, min_duration_ms)

    async def describe_transactions(self, transactional_ids: Sequence[str]
                                    ) -> dict[str, TransactionDescription]:
        """``{transactional_id: TransactionDescription}`` from their coordinators."""
        return await self._transactions.describe(transactional_ids)

    def __repr__(self) -> str:
        return f"<AIOKafkaAdminClient {self._d.state}>"
