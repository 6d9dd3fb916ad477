"""``AIOKafkaConsumer``: aiokafka's consumer API on anyio (asyncio and trio).

The facade validates arguments the way aiokafka does and delegates: the
:class:`~streamclient.consumer.fetcher.Fetcher` prefetches into a bounded buffer, the
:class:`~streamclient.consumer.group.coordinator.GroupCoordinator` runs group membership
(or :class:`NoGroupAssignment` follows the metadata for a subscription without a group).

Lifecycle under structured concurrency (DESIGN §4): ``start()`` enters a task group that
owns the background tasks and ``stop()`` leaves it, so both must run in the same task
(``async with consumer:`` does that); ``stop()`` from another task raises
``IllegalStateError``.  Background failures never escape into the application's task:
they are stored and raised by the next call.  A ``stop()`` that runs while its task is
being cancelled cannot send anything (every wait is cancelled): the consumer then
disappears the way a crashed one does — no final commit, no LeaveGroup.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from streamclient.abc import ConsumerRebalanceListener
from streamclient.cluster import ClusterClient, ClusterConfig
from streamclient.consumer.config import ConsumerConfig
from streamclient.consumer.fetcher import Fetcher
from streamclient.consumer.group.coordinator import GroupCoordinator, NoGroupAssignment
from streamclient.consumer.group.membership import ConsumerGroupMetadata
from streamclient.consumer.offsets import OffsetResetStrategy
from streamclient.consumer.subscription import PartitionState, SubscriptionState
from streamclient.errors import (
    ConsumerStoppedError,
    IllegalOperation,
    IllegalStateError,
    KafkaError,
    RecordTooLargeError,
)
from streamclient.protocol.messages.metadata import MetadataRequest
from streamclient.structs import (
    ConsumerRecord,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    TopicPartition,
)

__all__ = ["AIOKafkaConsumer"]

log = logging.getLogger(__name__)

# getone() hands out one record per call; a full checkpoint every so many calls lets the
# background tasks run without paying one per record (DESIGN §6)
_GETONE_CHECKPOINT_EVERY = 64


class AIOKafkaConsumer:
    """A Kafka consumer with aiokafka's API: ``AIOKafkaConsumer(*topics, **kwargs)``.

    Every keyword of aiokafka 0.14's consumer is accepted (see
    :class:`~streamclient.consumer.config.ConsumerConfig`); construction needs no running
    event loop.
    """

    def __init__(self, *topics: str, loop: Any = None, **kwargs: Any) -> None:
        if loop is not None:
            warnings.warn(
                "The loop argument is deprecated since 0.7.1 and ignored",
                DeprecationWarning,
                stacklevel=2,
            )
        self._config = ConsumerConfig.from_kwargs(**kwargs)
        config = self._config
        self._subscription = SubscriptionState.from_config(config)
        self._client = ClusterClient(ClusterConfig.from_settings(config))
        self._listener: ConsumerRebalanceListener | None = None
        self._fetcher: Fetcher | None = None
        self._coordinator: GroupCoordinator | None = None
        self._no_group: NoGroupAssignment | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._owner: int | None = None
        self._state = "new"
        self._getone_calls = 0
        if topics:
            self._subscription.subscribe(_validate_topics(topics))
            self._sync_metadata_topics()

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, start the background tasks and, when subscribed with a group, wait
        for the first assignment.  Call :meth:`stop` from the same task."""
        if self._state != "new":
            raise IllegalStateError(f"start() called on a {self._state} consumer")
        # Bootstrap before the task group exists, so a broker that cannot be reached
        # surfaces as the KafkaConnectionError itself (aiokafka's behaviour), not wrapped
        # in an exception group; start() may then be retried.
        await self._client.start()
        self._state = "starting"
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        try:
            self._build()
            assert self._fetcher is not None
            task_group.start_soon(self._fetcher.run)
            if self._coordinator is not None:
                task_group.start_soon(self._coordinator.run)
            self._task_group = task_group
            self._owner = anyio.get_current_task().id
            self._state = "started"
            await self._initial_assignment()
        except BaseException:
            self._state = "stopped"
            self._close_helpers()
            task_group.cancel_scope.cancel()
            try:
                # Leave the group as if nothing were raised inside it: its children are
                # cancelled, and the caller gets the original error, not an exception
                # group around it.  A child's own failure still propagates.
                await task_group.__aexit__(None, None, None)
            finally:
                with anyio.CancelScope(shield=True):
                    await self._client.close()
            raise

    def _build(self) -> None:
        config = self._config
        if config.group_id is not None:
            self._coordinator = GroupCoordinator(
                self._client,
                self._subscription,
                config,
                on_assignment_change=self._on_assignment_change,
                on_fatal=self._wake_waiters,
            )
            self._coordinator.listener = self._listener
            self._coordinator.prepare()
        else:
            self._no_group = NoGroupAssignment(
                self._client,
                self._subscription,
                on_assignment_change=self._on_assignment_change,
            )
        self._fetcher = Fetcher(
            self._client,
            self._subscription,
            config,
            committed_lookup=None
            if self._coordinator is None
            else self._coordinator.fetch_committed_positions,
        )
        self._fetcher.prepare()

    async def _initial_assignment(self) -> None:
        if not self._subscription.has_auto_assigned_partitions:
            return
        try:
            await self._client.refresh_metadata()
        except KafkaError as exc:
            log.warning("metadata at start failed: %s", exc)
        if self._no_group is not None:
            self._no_group.update()
        elif self._coordinator is not None:
            await self._coordinator.wait_for_assignment()

    async def stop(self) -> None:
        """Commit (auto-commit), run the revocation listener, leave the group (dynamic
        members), stop the background tasks and close the connections.  Idempotent."""
        if self._state in ("new", "stopped"):
            self._state = "stopped"
            return
        if self._state != "started":
            raise IllegalStateError(f"stop() called on a {self._state} consumer")
        if anyio.get_current_task().id != self._owner:
            raise IllegalStateError(
                "stop() must be called from the task that called start() (the consumer's "
                "background tasks belong to a task group entered there)"
            )
        self._state = "stopped"
        assert self._task_group is not None and self._fetcher is not None
        error: BaseException | None = None
        try:
            if self._coordinator is not None:
                with anyio.move_on_after(self._config.request_timeout_ms / 1000):
                    await self._coordinator.close()
        except BaseException as exc:  # cancelled: leave abruptly, as a crash would
            error = exc
        self._close_helpers()
        self._fetcher.close()
        self._task_group.cancel_scope.cancel()
        try:
            await self._task_group.__aexit__(None, None, None)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._client.close()
        if error is not None:
            raise error

    def _close_helpers(self) -> None:
        if self._no_group is not None:
            self._no_group.close()
        if self._fetcher is not None:
            self._fetcher.close()

    async def __aenter__(self) -> AIOKafkaConsumer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _check_started(self) -> tuple[Fetcher, ClusterClient]:
        if self._state == "stopped":
            raise ConsumerStoppedError()
        if self._state != "started" or self._fetcher is None:
            raise IllegalStateError("the consumer is not started: call start() first")
        self._raise_background_error()
        return self._fetcher, self._client

    def _raise_background_error(self) -> None:
        if self._coordinator is not None and self._coordinator.fatal_error is not None:
            raise self._coordinator.fatal_error
        if self._fetcher is not None and self._fetcher.fatal_error is not None:
            raise self._fetcher.fatal_error

    def _stopped_error(self) -> BaseException | None:
        if self._state == "stopped":
            return ConsumerStoppedError()
        if self._coordinator is not None and self._coordinator.fatal_error is not None:
            return self._coordinator.fatal_error
        if self._fetcher is not None:
            return self._fetcher.fatal_error
        return None

    def _wake_waiters(self) -> None:
        if self._fetcher is not None:
            self._fetcher.notify_waiters()

    def _on_assignment_change(self) -> None:
        if self._fetcher is not None:
            self._fetcher.discard_unassigned()
            self._fetcher.wake()
            self._fetcher.notify_waiters()

    # --- subscription -------------------------------------------------------------------

    def subscribe(
        self,
        topics: Iterable[str] = (),
        pattern: str | re.Pattern[str] | None = None,
        listener: ConsumerRebalanceListener | None = None,
    ) -> None:
        """Subscribe to ``topics`` or to the topics matching ``pattern`` (``re.match``);
        partitions are assigned by the group (or, without ``group_id``, all of them)."""
        if not (topics or pattern):
            raise TypeError("You should provide either `topics` or `pattern`")
        if topics and pattern:
            raise TypeError("You can't provide both `topics` and `pattern`")
        if listener is not None and not isinstance(listener, ConsumerRebalanceListener):
            raise TypeError("listener should be an instance of ConsumerRebalanceListener")
        if pattern is not None:
            try:
                compiled = re.compile(pattern)
            except re.error as err:
                raise ValueError(f"{pattern!r} is not a valid pattern: {err}") from err
            self._subscription.subscribe_pattern(compiled)
            if self._state == "started":
                self._subscription.subscribe_from_pattern(
                    self._client.metadata.topics(), self._client.metadata.internal_topics()
                )
        else:
            self._subscription.subscribe(_validate_topics(topics))
        self._listener = listener
        self._sync_metadata_topics()
        if self._coordinator is not None:
            self._coordinator.listener = listener
            self._coordinator.subscription_changed()
        if self._no_group is not None:
            self._no_group.update()

    def subscription(self) -> frozenset[str]:
        return self._subscription.subscription

    def unsubscribe(self) -> None:
        """Drop the subscription and the assignment; leave the group."""
        self._subscription.unsubscribe()
        if self._coordinator is not None:
            self._coordinator.unsubscribed()
        self._sync_metadata_topics()
        self._on_assignment_change()

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Manually assign ``partitions`` (no group management; replaces the previous
        manual assignment)."""
        self._subscription.assign(partitions)
        self._sync_metadata_topics()
        self._on_assignment_change()

    def assignment(self) -> set[TopicPartition]:
        return self._subscription.assigned_partitions()

    def _sync_metadata_topics(self) -> None:
        metadata = self._client.metadata
        subs = self._subscription
        metadata.set_need_all_topics(subs.pattern is not None)
        topics = set(subs.group_subscription) | {tp.topic for tp in subs.assigned_partitions()}
        metadata.set_topics(topics)

    # --- fetching -----------------------------------------------------------------------

    def _poll_started(self) -> None:
        if self._coordinator is not None:
            self._coordinator.record_poll()

    async def getone(self, *partitions: TopicPartition) -> ConsumerRecord[Any, Any]:
        """The next record (of ``partitions``, or any assigned), waiting for one."""
        _check_partitions(partitions)
        fetcher, _ = self._check_started()
        self._getone_calls += 1
        if self._getone_calls % _GETONE_CHECKPOINT_EVERY == 0:
            await anyio.lowlevel.checkpoint()
        else:
            await anyio.lowlevel.checkpoint_if_cancelled()
        self._poll_started()
        return await fetcher.next_record(partitions, self._stopped_error)

    async def getmany(
        self,
        *partitions: TopicPartition,
        timeout_ms: int = 0,
        max_records: int | None = None,
    ) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
        """Buffered records by partition; waits up to ``timeout_ms`` when none are."""
        _check_partitions(partitions)
        fetcher, _ = self._check_started()
        if max_records is not None and (
            not isinstance(max_records, int) or isinstance(max_records, bool) or max_records < 1
        ):
            raise ValueError("`max_records` must be a positive Integer")
        if timeout_ms < 0:
            raise ValueError("`timeout_ms` must not be negative")
        # one checkpoint per call (never per record), so a tight getmany loop still lets
        # the fetcher and the heartbeat run
        await anyio.lowlevel.checkpoint()
        self._poll_started()
        return await fetcher.fetched_records(
            partitions,
            timeout_ms,
            max_records or self._config.max_poll_records,
            self._stopped_error,
        )

    def __aiter__(self) -> AIOKafkaConsumer:
        if self._state == "stopped":
            raise ConsumerStoppedError()
        return self

    async def __anext__(self) -> ConsumerRecord[Any, Any]:
        while True:
            try:
                return await self.getone()
            except ConsumerStoppedError:
                raise StopAsyncIteration from None
            except RecordTooLargeError:
                log.exception("a record too large for max_partition_fetch_bytes was skipped")

    # --- positions ----------------------------------------------------------------------

    def _assigned_state(self, tp: TopicPartition) -> PartitionState:
        if not self._subscription.is_assigned(tp):
            raise IllegalStateError(f"Partition {tp} is not assigned")
        return self._subscription.state(tp)

    async def position(self, partition: TopicPartition) -> int:
        """The offset of the next record to fetch, waiting for the lookup if needed."""
        fetcher, _ = self._check_started()
        while True:
            self._assigned_state(partition)
            position = self._subscription.position(partition)
            if position is not None and self._subscription.has_valid_position(partition):
                return position.offset
            await fetcher.wait_for_position(partition, self._config.request_timeout_ms)
            self._raise_background_error()
            if self._state == "stopped":
                raise ConsumerStoppedError()

    def highwater(self, partition: TopicPartition) -> int | None:
        return self._assigned_state(partition).high_watermark

    def last_stable_offset(self, partition: TopicPartition) -> int | None:
        return self._assigned_state(partition).last_stable_offset

    def last_poll_timestamp(self, partition: TopicPartition) -> int | None:
        return self._assigned_state(partition).last_poll_timestamp_ms

    def seek(
        self, partition: TopicPartition, offset: int, *, leader_epoch: int | None = None
    ) -> None:
        """Fetch ``partition`` from ``offset`` next.

        ``leader_epoch`` (not in aiokafka; Java's ``OffsetAndMetadata.leaderEpoch``) is the
        epoch of the record before ``offset``, as stored beside an offset: with it the
        position is first checked against the leader's log (KIP-320), so a log truncated
        below it is detected instead of read past.
        """
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError("Offset must be a positive integer")
        if leader_epoch is not None and (
            isinstance(leader_epoch, bool) or not isinstance(leader_epoch, int) or leader_epoch < 0
        ):
            raise ValueError("leader_epoch must be a non-negative integer or None")
        self._assigned_state(partition)
        self._subscription.seek(partition, offset, leader_epoch)
        self._after_seek([partition])

    def _after_seek(self, partitions: Iterable[TopicPartition]) -> None:
        if self._fetcher is not None:
            for tp in partitions:
                self._fetcher.invalidate(tp)
            self._fetcher.wake()

    def _seek_targets(self, partitions: tuple[TopicPartition, ...]) -> list[TopicPartition]:
        if not all(isinstance(p, TopicPartition) for p in partitions):
            raise TypeError("partitions must be TopicPartition instances")
        assigned = self._subscription.assigned_partitions()
        if not partitions:
            if not assigned:
                raise IllegalStateError("No partitions are currently assigned")
            return sorted(assigned)
        not_assigned = set(partitions) - assigned
        if not_assigned:
            raise IllegalStateError(f"Partitions {not_assigned} are not assigned")
        return list(partitions)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> bool:
        return await self._seek_to(partitions, OffsetResetStrategy.EARLIEST)

    async def seek_to_end(self, *partitions: TopicPartition) -> bool:
        return await self._seek_to(partitions, OffsetResetStrategy.LATEST)

    async def _seek_to(
        self, partitions: tuple[TopicPartition, ...], strategy: OffsetResetStrategy
    ) -> bool:
        """Reset to the log's start or end; True if done within ``request_timeout_ms``."""
        targets = self._seek_targets(partitions)
        fetcher, _ = self._check_started()
        for tp in targets:
            self._subscription.request_offset_reset(tp, strategy)
        self._after_seek(targets)
        with anyio.move_on_after(self._config.request_timeout_ms / 1000):
            for tp in targets:
                while self._subscription.is_assigned(tp) and not (
                    self._subscription.has_valid_position(tp)
                ):
                    await fetcher.wait_for_position(tp, self._config.request_timeout_ms)
                    self._raise_background_error()
            return True
        return False

    async def seek_to_committed(
        self, *partitions: TopicPartition
    ) -> dict[TopicPartition, int | None]:
        """Seek to the group's committed offsets; returns them (``None``: none)."""
        targets = self._seek_targets(partitions)
        coordinator = self._require_group()
        committed = await coordinator.fetch_committed_positions(targets)
        result: dict[TopicPartition, int | None] = {}
        for tp in targets:
            found = committed.get(tp)
            result[tp] = None if found is None else found.offset
            if found is not None and self._subscription.is_assigned(tp):
                self._subscription.seek(tp, found.offset, found.leader_epoch)
        self._after_seek(targets)
        return result

    # --- offsets ------------------------------------------------------------------------

    def _require_group(self) -> GroupCoordinator:
        if self._config.group_id is None:
            raise IllegalOperation("Requires group_id")
        self._check_started()
        assert self._coordinator is not None
        return self._coordinator

    async def commit(
        self, offsets: Mapping[TopicPartition, int | tuple[int, str] | OffsetAndMetadata]
        | None = None
    ) -> None:
        """Commit ``offsets`` (default: the positions of every assigned partition)."""
        if self._config.group_id is None:
            raise IllegalOperation("Requires group_id")
        subs = self._subscription
        if not subs.has_auto_assigned_partitions and not subs.is_user_assigned:
            raise IllegalStateError("Not subscribed to any topics")
        coordinator = self._require_group()
        if offsets is None:
            to_commit = subs.all_consumed()
        else:
            to_commit = _commit_structure(offsets)
            for tp in to_commit:
                if not subs.is_assigned(tp):
                    raise IllegalStateError(f"Partition {tp} is not assigned")
        await coordinator.commit_offsets(dict(to_commit))

    async def committed(self, partition: TopicPartition) -> int | None:
        """The group's committed offset for ``partition`` (a remote call), or ``None``."""
        coordinator = self._require_group()
        found = (await coordinator.fetch_committed([partition])).get(partition)
        return None if found is None else found.offset

    async def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """The first offset whose timestamp is at or after each timestamp (``None`` when
        no record is that recent)."""
        wanted: dict[TopicPartition, int] = {}
        for tp, ts in timestamps.items():
            if ts < 0:
                raise ValueError(
                    f"The target time for partition {tp} is {ts}. "
                    "The target time cannot be negative."
                )
            wanted[tp] = int(ts)
        fetcher, _ = self._check_started()
        found = await fetcher.list_offsets(wanted, self._config.request_timeout_ms)
        return {
            tp: None
            if (listed := found.get(tp)) is None or listed.offset < 0
            else OffsetAndTimestamp(listed.offset, listed.timestamp)
            for tp in wanted
        }

    async def beginning_offsets(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return await self._offsets_at(partitions, OffsetResetStrategy.EARLIEST)

    async def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return await self._offsets_at(partitions, OffsetResetStrategy.LATEST)

    async def _offsets_at(
        self, partitions: Iterable[TopicPartition], strategy: OffsetResetStrategy
    ) -> dict[TopicPartition, int]:
        fetcher, _ = self._check_started()
        wanted = dict.fromkeys(partitions, int(strategy))
        found = await fetcher.list_offsets(wanted, self._config.request_timeout_ms)
        return {tp: found[tp].offset for tp in wanted}

    # --- pause / resume -----------------------------------------------------------------

    def pause(self, *partitions: TopicPartition) -> None:
        if not all(isinstance(p, TopicPartition) for p in partitions):
            raise TypeError("partitions must be TopicPartition namedtuples")
        for tp in partitions:
            self._subscription.pause(tp)

    def resume(self, *partitions: TopicPartition) -> None:
        if not all(isinstance(p, TopicPartition) for p in partitions):
            raise TypeError("partitions must be TopicPartition namedtuples")
        for tp in partitions:
            self._subscription.resume(tp)
        if self._fetcher is not None:
            self._fetcher.wake()

    def paused(self) -> set[TopicPartition]:
        return self._subscription.paused()

    # --- metadata -----------------------------------------------------------------------

    async def topics(self) -> set[str]:
        """Every topic the cluster shows us (a full metadata request)."""
        _, client = self._check_started()
        response = await client.send_to_any(
            MetadataRequest(topics=None, allow_auto_topic_creation=False)
        )
        return {t.name for t in response.topics if t.error_code == 0 and t.name}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        """Partition ids from the cached metadata (``None`` if the topic is unknown)."""
        return self._client.metadata.partitions_for_topic(topic)

    def group_metadata(self) -> ConsumerGroupMetadata:
        """The member's identity for ``AIOKafkaProducer.send_offsets_to_transaction``
        (KIP-447)."""
        if self._config.group_id is None:
            raise IllegalOperation("Requires group_id")
        if self._coordinator is None:
            return ConsumerGroupMetadata(self._config.group_id, -1, "",
                                         self._config.group_instance_id)
        return self._coordinator.group_metadata()


def _validate_topics(topics: Any) -> set[str]:
    if not isinstance(topics, (tuple, set, list, frozenset)):
        raise TypeError("Topics should be list of strings")
    return set(topics)


def _check_partitions(partitions: tuple[Any, ...]) -> None:
    if not all(isinstance(p, TopicPartition) for p in partitions):
        raise TypeError("partitions must be TopicPartition instances")


def _commit_structure(offsets: Any) -> dict[TopicPartition, OffsetAndMetadata]:
    """aiokafka's accepted shapes: {tp: offset | (offset, metadata) | OffsetAndMetadata}."""
    if not offsets or not isinstance(offsets, Mapping):
        raise ValueError(offsets)
    formatted: dict[TopicPartition, OffsetAndMetadata] = {}
    for tp, entry in offsets.items():
        if not isinstance(tp, TopicPartition):
            raise ValueError(f"expected a TopicPartition key, got {tp!r}")
        if isinstance(entry, int) and not isinstance(entry, bool):
            offset, metadata = entry, ""
        else:
            try:
                offset, metadata = entry
            except Exception:
                raise ValueError(offsets) from None
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset for {tp} must be an int >= 0, got {offset!r}")
        if not isinstance(metadata, str):
            raise ValueError("Metadata should be a string")
        formatted[tp] = OffsetAndMetadata(offset, metadata)
    return formatted
