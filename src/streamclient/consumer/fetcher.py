"""The fetcher: background prefetch per leader into a bounded buffer.

One task (owned by the consumer's task group) drives everything:

- per broker at most one Fetch in flight (as the Java client), listing every fetchable
  partition that broker leads and that has no data buffered yet;
- answers become :class:`CompletedFetch` objects, one per partition, kept until the
  application drains them (back-pressure: a partition with buffered data is not fetched
  again, and no fetch starts while the buffered bytes exceed ``fetch_max_bytes``);
- positions: partitions without one get their committed offset (in a group) or a reset
  (ListOffsets by the ``auto_offset_reset`` policy), in a side task;
- validation (KIP-320): after each metadata change every assigned partition learns its
  leader and epoch; a position with an epoch whose leader changed is checked with
  OffsetForLeaderEpoch (same side task) before it is fetched again, which detects a log
  truncated by an unclean election (:mod:`streamclient.consumer.validation`);
- errors the application must see (offset out of range with policy ``none``, no committed
  offset with policy ``none``, log truncation with policy ``none``, authorization,
  corrupt data) are stored per partition and raised by the next ``getone``/``getmany``
  that covers it.

The application's side (:meth:`Fetcher.drain`, :meth:`Fetcher.fetched_records`,
:meth:`Fetcher.next_record`) runs in the application's task and never blocks while
records are buffered: it hands out whole batches (no checkpoint per record).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import Any

import anyio
import anyio.abc

from streamclient.cluster import ClusterClient
from streamclient.consumer.config import ConsumerConfig
from streamclient.consumer.fetch_request import (
    FetchPlan,
    build_fetch_request,
    fetch_version,
    response_partitions,
)
from streamclient.consumer.offsets import (
    FetchPosition,
    ListedOffset,
    OffsetResetStrategy,
    list_offsets_request,
    read_list_offsets,
)
from streamclient.consumer.records import CompletedFetch, read_partition_response
from streamclient.consumer.subscription import FetchState, SubscriptionState
from streamclient.consumer.validation import (
    ValidationOutcome,
    ValidationResult,
    apply_epoch_end_offset,
    is_fatal,
    offset_for_leader_epoch_request,
    read_offset_for_leader_epoch,
    supports_validation,
    truncation_error,
)
from streamclient.errors import (
    KafkaError,
    KafkaTimeoutError,
    LogTruncationError,
    NoOffsetForPartitionError,
    for_code,
)
from streamclient.protocol.messages.fetch import FetchRequest, FetchResponse
from streamclient.protocol.messages.list_offsets import ListOffsetsRequest
from streamclient.protocol.messages.offset_for_leader_epoch import OffsetForLeaderEpochRequest
from streamclient.structs import ConsumerRecord, TopicPartition

__all__ = ["CommittedLookup", "Fetcher"]

log = logging.getLogger(__name__)

#: In a group, the coordinator's committed offsets (with the committed leader epoch,
#: when there is one) for partitions without a position.
CommittedLookup = Callable[[list[TopicPartition]], Awaitable[dict[TopicPartition, FetchPosition]]]

Records = dict[TopicPartition, list[ConsumerRecord[Any, Any]]]


class Fetcher:
    """Prefetches records for the assigned partitions; see the module doc."""

    def __init__(
        self,
        client: ClusterClient,
        subscription: SubscriptionState,
        config: ConsumerConfig,
        *,
        committed_lookup: CommittedLookup | None = None,
    ) -> None:
        self._client = client
        self._subs = subscription
        self._config = config
        self._committed_lookup = committed_lookup
        self._buffer: dict[TopicPartition, CompletedFetch] = {}
        self._buffer_sizes: dict[TopicPartition, int] = {}
        self._buffered_bytes = 0
        self._errors: dict[TopicPartition, KafkaError] = {}
        # partitions whose missing offset or log truncation was reported (policy
        # "none"): not looked up or validated again until the application sees the error,
        # seeks, or the assignment changes
        self._stalled: set[TopicPartition] = set()
        # (metadata version, assignment id) the partitions' leaders were last taken from
        self._leaders_synced: tuple[int, int] | None = None
        self._stalled_assignment = -1
        self._in_flight: set[int] = set()
        self._positions_running = False
        self._next_positions_ms = 0
        self._closed = False
        # created in run(): anyio objects need a running loop
        self._wakeup: anyio.Event | None = None
        self._data_event: anyio.Event | None = None
        self._positions_event: anyio.Event | None = None
        self.fatal_error: BaseException | None = None

    # --- signals ----------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the events (call inside the running loop, before any waiter)."""
        self._wakeup = anyio.Event()
        self._data_event = anyio.Event()
        self._positions_event = anyio.Event()

    def wake(self) -> None:
        """Something changed (assignment, seek, pause, data drained): look again."""
        if self._wakeup is not None:
            self._wakeup.set()

    def notify_waiters(self) -> None:
        """Wake every getone/getmany/position waiter (data, errors, or the consumer stopped)."""
        if self._data_event is not None:
            self._data_event.set()
            self._data_event = anyio.Event()
        if self._positions_event is not None:
            self._positions_event.set()
            self._positions_event = anyio.Event()

    def close(self) -> None:
        self._closed = True
        self.notify_waiters()

    # --- the background loop ----------------------------------------------------------

    async def run(self) -> None:
        """The fetch loop; runs until cancelled.  Errors never escape it: a failure that
        is not about one partition becomes :attr:`fatal_error`."""
        if self._wakeup is None:
            self.prepare()
        try:
            async with anyio.create_task_group() as tg:
                while not self._closed:
                    assert self._wakeup is not None
                    self._wakeup = anyio.Event()
                    await self._refresh_metadata()
                    self._sync_leaders()
                    self._maybe_update_positions(tg)
                    self._send_fetches(tg)
                    await self._sleep(self._wakeup)
                tg.cancel_scope.cancel()
        except Exception as exc:  # a bug, or something nobody can retry
            log.exception("the fetcher stopped")
            self.fatal_error = exc
            self.notify_waiters()

    async def _refresh_metadata(self) -> None:
        try:
            await self._client.maybe_refresh_metadata()
        except KafkaError as exc:
            log.debug("metadata refresh failed: %s", exc)

    def _sync_leaders(self) -> None:
        """Give each assigned partition its leader and epoch from metadata; a position
        whose leader changed then awaits validation (Java checks on every metadata
        update too).  Only runs when metadata or the assignment changed."""
        metadata = self._client.metadata
        key = (metadata.version, self._subs.assignment_id)
        if key == self._leaders_synced:
            return
        self._leaders_synced = key
        for tp in self._subs.assigned_partitions():
            info = metadata.partition(tp)
            if info is not None:
                self._subs.update_leader(tp, info.leader, info.leader_epoch)

    async def _sleep(self, wakeup: anyio.Event) -> None:
        now = self._client.now_ms()
        delay_ms = float(self._client.metadata.time_to_next_update(now))
        if self._positions_pending():
            delay_ms = min(delay_ms, max(0, self._next_positions_ms - now))
        retry_validation_ms = self._subs.next_validation_ms()
        if retry_validation_ms is not None:
            delay_ms = min(delay_ms, max(0, retry_validation_ms - now))
        # never spin: an update that is "due" but cannot run yet waits the backoff
        delay_ms = max(delay_ms, 1.0)
        with anyio.move_on_after(min(delay_ms, 60_000) / 1000):
            await wakeup.wait()

    # --- positions --------------------------------------------------------------------

    def _positions_pending(self) -> bool:
        self._clear_stalled_if_reassigned()
        now = self._client.now_ms()
        return bool(
            [tp for tp in self._subs.initializing_partitions() if tp not in self._stalled]
            or self._subs.partitions_needing_reset(now)
            or any(
                tp not in self._stalled for tp in self._subs.partitions_needing_validation(now)
            )
        )

    def _clear_stalled_if_reassigned(self) -> None:
        if self._stalled_assignment != self._subs.assignment_id:
            self._stalled.clear()
            self._stalled_assignment = self._subs.assignment_id

    def _maybe_update_positions(self, tg: anyio.abc.TaskGroup) -> None:
        if self._positions_running or self._client.now_ms() < self._next_positions_ms:
            return
        if not self._positions_pending():
            return
        self._positions_running = True
        tg.start_soon(self._update_positions)

    async def _update_positions(self) -> None:
        try:
            ok = await self._committed_positions()
            ok = await self._reset_positions() and ok
            ok = await self._validate_positions() and ok
        except KafkaError as exc:
            log.warning("looking up fetch positions failed: %s", exc)
            ok = False
        finally:
            self._positions_running = False
        if not ok:
            self._next_positions_ms = self._client.now_ms() + self._config.retry_backoff_ms
        self.notify_waiters()  # position() waiters
        self.wake()

    async def _committed_positions(self) -> bool:
        pending = [tp for tp in self._subs.initializing_partitions() if tp not in self._stalled]
        if not pending:
            return True
        committed: dict[TopicPartition, FetchPosition] = {}
        if self._committed_lookup is not None:
            committed = await self._committed_lookup(pending)
        for tp in pending:
            if not self._subs.is_assigned(tp):
                continue
            if self._subs.state(tp).fetch_state is not FetchState.INITIALIZING:
                continue  # seeked while the lookup was out
            found = committed.get(tp)
            if found is not None and found.offset >= 0:
                # with the committed leader epoch, the position is validated first
                self._subs.seek(tp, found.offset, found.leader_epoch)
            elif self._subs.default_reset_strategy is OffsetResetStrategy.NONE:
                self._stalled.add(tp)
                self._errors[tp] = NoOffsetForPartitionError(tp)
            else:
                self._subs.request_offset_reset(tp)
        return True

    async def _reset_positions(self) -> bool:
        now = self._client.now_ms()
        resets = self._subs.partitions_needing_reset(now)
        if not resets:
            return True
        by_node = self._group_by_leader(resets)
        ok = sum(len(parts) for parts in by_node.values()) == len(resets)
        for node, parts in by_node.items():
            try:
                found, failed = await self._list_offsets(
                    node, {tp: int(resets[tp]) for tp in parts}
                )
            except KafkaError as exc:
                log.debug("ListOffsets to node %s failed: %s", node, exc)
                found, failed = {}, dict.fromkeys(parts, type(exc))
            for tp, listed in found.items():
                if listed.leader_epoch is not None:
                    self._client.metadata.update_last_seen_epoch_if_newer(tp, listed.leader_epoch)
                self._subs.complete_reset(tp, resets[tp], listed.offset, listed.leader_epoch)
            retry_at = self._client.now_ms() + self._config.retry_backoff_ms
            for tp, error_type in failed.items():
                ok = False
                if getattr(error_type, "invalid_metadata", False):
                    self._client.metadata.request_update()
                self._subs.reset_failed(tp, retry_at)
        return ok

    async def _validate_positions(self) -> bool:
        """OffsetForLeaderEpoch for every partition awaiting validation, per leader."""
        pending = {
            tp: position
            for tp, position in self._subs.partitions_needing_validation(
                self._client.now_ms()
            ).items()
            if tp not in self._stalled
        }
        if not pending:
            return True
        ok = True
        by_node: dict[int, list[TopicPartition]] = {}
        for tp in pending:
            leader = self._subs.state(tp).current_leader
            if leader is None or leader < 0:
                self._client.metadata.request_update()
                ok = False
                continue
            by_node.setdefault(leader, []).append(tp)
        truncated: list[ValidationResult] = []
        for node, parts in by_node.items():
            ok = await self._validate_on(node, {tp: pending[tp] for tp in parts}, truncated) and ok
        if truncated:
            error = truncation_error(truncated)
            for result in truncated:
                self._stalled.add(result.tp)
                self._errors[result.tp] = error
        return ok

    async def _validate_on(
        self,
        node: int,
        positions: dict[TopicPartition, FetchPosition],
        truncated: list[ValidationResult],
    ) -> bool:
        subs = self._subs
        try:
            if not supports_validation(await self._client.api_versions(node)):
                # Java skips validation against a broker that cannot answer a consumer
                for tp in positions:
                    subs.complete_validation(tp)
                return True
            version = await self._client.version_for(node, OffsetForLeaderEpochRequest)
            # the assignment may have changed while we awaited the connection
            positions = {tp: pos for tp, pos in positions.items() if subs.is_assigned(tp)}
            if not positions:
                return True
            request = offset_for_leader_epoch_request(
                {tp: (pos, subs.state(tp).current_leader_epoch) for tp, pos in positions.items()}
            )
            response = await self._client.send(node, request, version)
            found, failed = read_offset_for_leader_epoch(response)
        except KafkaError as exc:
            log.debug("OffsetForLeaderEpoch to node %s failed: %s", node, exc)
            found, failed = {}, dict.fromkeys(positions, type(exc))
        for tp, end in found.items():
            requested = positions.get(tp)
            if requested is None or not subs.is_assigned(tp):
                continue
            result = apply_epoch_end_offset(subs, tp, requested, end)
            if result.outcome is ValidationOutcome.TRUNCATED:
                truncated.append(result)
        retry_at = self._client.now_ms() + self._config.retry_backoff_ms
        missing = [tp for tp in positions if tp not in found and tp not in failed]
        problems: list[tuple[TopicPartition, type[KafkaError]]] = list(failed.items())
        problems += [(tp, KafkaError) for tp in missing]  # a partition the answer left out
        for tp, error_type in problems:
            if not subs.is_assigned(tp):
                continue
            if is_fatal(error_type):
                self._stalled.add(tp)
                self._errors[tp] = error_type(tp.topic)
                continue
            # FENCED/UNKNOWN_LEADER_EPOCH, NOT_LEADER, …: our view of the leader is off
            log.debug("validating %s on node %s: %s, retrying", tp, node, error_type.__name__)
            self._client.metadata.request_update()
            subs.validation_failed(tp, retry_at)
        return not failed and not missing

    def _group_by_leader(self, tps: Iterable[TopicPartition]) -> dict[int, list[TopicPartition]]:
        by_node: dict[int, list[TopicPartition]] = {}
        metadata = self._client.metadata
        for tp in tps:
            leader = metadata.leader_for(tp)
            if leader is None or leader < 0:
                metadata.add_topics([tp.topic])
                metadata.request_update()
                continue
            by_node.setdefault(leader, []).append(tp)
        return by_node

    async def _list_offsets(
        self, node: int, timestamps: Mapping[TopicPartition, int]
    ) -> tuple[dict[TopicPartition, ListedOffset], dict[TopicPartition, type[KafkaError]]]:
        version = await self._client.version_for(node, ListOffsetsRequest)
        request = list_offsets_request(
            timestamps, isolation_level=self._config.isolation_level_id
        )
        response = await self._client.send(node, request, version)
        return read_list_offsets(response)

    async def list_offsets(
        self, timestamps: Mapping[TopicPartition, int], timeout_ms: int
    ) -> dict[TopicPartition, ListedOffset]:
        """ListOffsets for the application (offsets_for_times, beginning/end offsets):
        retries leader changes until ``timeout_ms``, then ``KafkaTimeoutError``."""
        pending = dict(timestamps)
        result: dict[TopicPartition, ListedOffset] = {}
        last_error: BaseException | None = None
        self._client.metadata.add_topics({tp.topic for tp in pending})
        with anyio.move_on_after(timeout_ms / 1000):
            while True:
                if any(self._client.metadata.leader_for(tp) is None for tp in pending):
                    try:
                        await self._client.refresh_metadata()
                    except KafkaError as exc:
                        last_error = exc
                for node, parts in self._group_by_leader(pending).items():
                    try:
                        found, failed = await self._list_offsets(
                            node, {tp: pending[tp] for tp in parts}
                        )
                    except KafkaError as exc:
                        last_error = exc
                        continue
                    for tp, listed in found.items():
                        result[tp] = listed
                        pending.pop(tp, None)
                    for tp, error_type in failed.items():
                        if not getattr(error_type, "kafka_retriable", False):
                            raise error_type(f"ListOffsets for {tp}")
                        last_error = error_type()
                        self._client.metadata.request_update()
                if not pending:
                    return result
                await anyio.sleep(self._config.retry_backoff_ms / 1000)
        raise KafkaTimeoutError(
            f"offsets for {sorted(pending)} not found within {timeout_ms} ms"
            + (f" (last error: {last_error})" if last_error else "")
        )

    async def wait_for_position(self, tp: TopicPartition, timeout_ms: int) -> bool:
        """Wait until ``tp`` has a valid position; False after ``timeout_ms``.  Raises the
        partition's stored error (no offset with policy none) at once."""
        self.wake()
        with anyio.move_on_after(timeout_ms / 1000):
            while True:
                if not self._subs.is_assigned(tp) or self._subs.has_valid_position(tp):
                    return True
                if tp in self._errors:
                    error = self._errors.pop(tp)
                    if isinstance(error, LogTruncationError):
                        error = self._take_truncations(error, (tp,))
                    raise error
                self._check_fatal()
                assert self._positions_event is not None
                await self._positions_event.wait()
        return False

    def _check_fatal(self) -> None:
        if self.fatal_error is not None:
            raise self.fatal_error

    # --- fetching ---------------------------------------------------------------------

    def _send_fetches(self, tg: anyio.abc.TaskGroup) -> None:
        if self._buffered_bytes >= self._config.fetch_max_bytes:
            return  # back-pressure: the application must drain first
        now = self._client.now_ms()
        metadata = self._client.metadata
        by_node: dict[int, list[TopicPartition]] = {}
        for tp in self._subs.fetchable_partitions():
            if tp in self._buffer or tp in self._errors:
                continue
            node = self._subs.preferred_read_replica(tp, now)
            if node is None:
                node = metadata.leader_for(tp)
            if node is None or node < 0:
                metadata.add_topics([tp.topic])
                metadata.request_update()
                continue
            by_node.setdefault(node, []).append(tp)
        for node, tps in by_node.items():
            if node not in self._in_flight:
                self._in_flight.add(node)
                tg.start_soon(self._fetch_from, node, tps)

    async def _fetch_from(self, node: int, tps: list[TopicPartition]) -> None:
        failed = False
        try:
            topics = {tp.topic for tp in tps}
            ids = {t: i for t in topics if (i := self._client.metadata.topic_id(t)) is not None}
            negotiated = await self._client.version_for(node, FetchRequest)
            version = fetch_version(negotiated, topics, ids)
            plan = build_fetch_request(self._subs, tps, self._config, version, topic_ids=ids)
            if not plan.fetch_offsets:
                return
            response = await self._client.send(node, plan.request, version)
            failed = not self._take_response(node, plan, response)
        except KafkaError as exc:
            log.debug("fetch from node %s failed: %s", node, exc)
            self._client.metadata.request_update()
            failed = True
        finally:
            if failed:
                # keep this node "in flight" for the backoff so it is not hammered
                await anyio.sleep(self._config.retry_backoff_ms / 1000)
            self._in_flight.discard(node)
            self.wake()

    def _take_response(self, node: int, plan: FetchPlan, response: FetchResponse) -> bool:
        if response.error_code:
            log.debug("fetch from node %s: %s", node, for_code(response.error_code).__name__)
            return False
        names = {
            info.topic_id: name
            for name in {tp.topic for tp in plan.fetch_offsets}
            if (info := self._client.metadata.topic(name)) is not None
        }
        now = self._client.now_ms()
        wall_ms = int(time.time() * 1000)
        subs = self._subs
        config = self._config
        metadata = self._client.metadata
        arrived = False
        for tp, data in response_partitions(response, plan, names):
            fetch_offset = plan.fetch_offsets[tp]
            position = subs.position(tp) if subs.is_assigned(tp) else None
            if position is None or position.offset != fetch_offset:
                continue  # seeked, reset or revoked while the fetch was out
            if not subs.has_valid_position(tp):
                continue  # awaiting validation: the answer may come from a diverged log
            decision = read_partition_response(
                tp,
                data,
                fetch_offset=fetch_offset,
                default_reset=subs.default_reset_strategy,
                from_follower=metadata.leader_for(tp) != node,
                isolation_level=config.isolation_level_id,
                check_crcs=config.check_crcs,
                key_deserializer=config.key_deserializer,
                value_deserializer=config.value_deserializer,
            )
            decision.apply_to(subs, now, config.metadata_max_age_ms)
            subs.record_poll(tp, wall_ms)
            if decision.refresh_metadata:
                metadata.request_update()
            if decision.error is not None:
                self._errors[tp] = decision.error
                arrived = True
            elif decision.completed is not None and data.records:
                size = len(data.records)
                self._buffer[tp] = decision.completed
                self._buffer_sizes[tp] = size
                self._buffered_bytes += size
                arrived = True
        if arrived:
            self.notify_waiters()
        return True

    # --- the application's side -------------------------------------------------------

    def drain(
        self, partitions: Collection[TopicPartition], max_records: int | None
    ) -> Records:
        """Buffered records (of ``partitions``, or all when empty), at most
        ``max_records`` in all; raises a stored error of a partition asked for."""
        self._check_fatal()
        if self._errors:
            self._raise_stored_error(partitions)
        out: Records = {}
        if not self._buffer:
            return out
        remaining = max_records
        drained: list[TopicPartition] = []
        for tp in list(self._buffer) if not partitions else [p for p in partitions if p in self._buffer]:
            completed = self._buffer[tp]
            try:
                records = completed.drain_into(self._subs, remaining)
            except KafkaError:
                self._discard(tp)
                raise
            if completed.exhausted:
                self._discard(tp)
            if records:
                out[tp] = records
                drained.append(tp)
                if remaining is not None:
                    remaining -= len(records)
                    if remaining <= 0:
                        break
        for tp in drained:  # round robin: the next call starts with the others
            completed_or_none = self._buffer.pop(tp, None)
            if completed_or_none is not None:
                self._buffer[tp] = completed_or_none
        return out

    def _raise_stored_error(self, partitions: Collection[TopicPartition]) -> None:
        for tp in list(self._errors):
            if partitions and tp not in partitions:
                continue
            error = self._errors.pop(tp)
            if not self._subs.is_assigned(tp):
                continue
            if isinstance(error, LogTruncationError):
                error = self._take_truncations(error, partitions)
            self.wake()
            raise error

    def _take_truncations(
        self, error: LogTruncationError, partitions: Collection[TopicPartition]
    ) -> LogTruncationError:
        """The truncations of every partition asked for, as one error.  Raising it lets
        those partitions be validated again, so (as in Java) each later poll raises it
        again until the application seeks them."""
        for tp in error.fetch_offsets:
            if not partitions or tp in partitions:
                if self._errors.get(tp) is error:
                    del self._errors[tp]
                self._stalled.discard(tp)
        covered = {
            tp: offset
            for tp, offset in error.fetch_offsets.items()
            if not partitions or tp in partitions
        }
        if covered == error.fetch_offsets:
            return error
        return LogTruncationError(
            covered, {tp: o for tp, o in error.divergent_offsets.items() if tp in covered}
        )

    def _discard(self, tp: TopicPartition) -> None:
        self._buffer.pop(tp, None)
        self._buffered_bytes -= self._buffer_sizes.pop(tp, 0)
        self.wake()

    def discard_unassigned(self) -> None:
        """Drop buffered data and errors of partitions no longer assigned."""
        for tp in [tp for tp in self._buffer if not self._subs.is_assigned(tp)]:
            self._discard(tp)
        for tp in [tp for tp in self._errors if not self._subs.is_assigned(tp)]:
            del self._errors[tp]

    def invalidate(self, tp: TopicPartition) -> None:
        """The application moved ``tp``'s position (seek): its buffered data and stored
        error belong to the old one."""
        if tp in self._buffer:
            self._discard(tp)
        self._errors.pop(tp, None)
        self._stalled.discard(tp)

    def has_buffered(self, tp: TopicPartition) -> bool:
        return tp in self._buffer

    async def fetched_records(
        self,
        partitions: Collection[TopicPartition],
        timeout_ms: float,
        max_records: int | None,
        stopped: Callable[[], BaseException | None],
    ) -> Records:
        """getmany: what is buffered now, else wait up to ``timeout_ms`` for data."""
        records = self.drain(partitions, max_records)
        if records or timeout_ms <= 0:
            return records
        with anyio.move_on_after(timeout_ms / 1000):
            while True:
                self._raise_if_stopped(stopped)
                assert self._data_event is not None
                await self._data_event.wait()
                records = self.drain(partitions, max_records)
                if records:
                    return records
        self._raise_if_stopped(stopped)
        return self.drain(partitions, max_records)

    async def next_record(
        self,
        partitions: Collection[TopicPartition],
        stopped: Callable[[], BaseException | None],
    ) -> ConsumerRecord[Any, Any]:
        """getone: the next buffered record, waiting as long as it takes."""
        while True:
            for records in self.drain(partitions, 1).values():
                return records[0]
            self._raise_if_stopped(stopped)
            assert self._data_event is not None
            await self._data_event.wait()

    @staticmethod
    def _raise_if_stopped(stopped: Callable[[], BaseException | None]) -> None:
        error = stopped()
        if error is not None:
            raise error
