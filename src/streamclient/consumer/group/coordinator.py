"""The async loop around :class:`GroupMembership`: it runs the membership's actions.

Two tasks, both owned by the consumer's task group:

- the **main loop** finds the coordinator, joins (JoinGroup, the leader's assignment,
  SyncGroup), runs the rebalance listener, auto-commits every ``auto_commit_interval_ms``
  and executes the actions the heartbeat task hands over — one at a time, in order, so a
  listener never runs twice at once and every action sees the state its predecessor left;
- the **heartbeat task** sends Heartbeats on ``ConnectionGroup.COORDINATION`` (its own
  connection, so it never waits behind a long-polling fetch) and checks the session and
  poll deadlines; what it learns (rebalance, fenced, coordinator gone, poll timeout)
  becomes actions queued for the main loop.

Errors never escape into the application's task: a fatal one (fenced instance,
authorization, inconsistent protocol) is stored in :attr:`GroupCoordinator.fatal_error`
and the consumer raises it from its next call.  A listener's exception is logged and the
rebalance carries on, as in aiokafka.

:class:`NoGroupAssignment` is the subscription without a ``group_id``: every partition of
the subscribed topics is assigned, following the metadata (aiokafka's
``NoGroupCoordinator``).
"""

from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import anyio

from streamclient.cluster import ClusterClient, ConnectionGroup
from streamclient.cluster.metadata import ClusterMetadata
from streamclient.consumer.config import ConsumerConfig
from streamclient.consumer.group.actions import (
    Action,
    CommitOffsets,
    FindCoordinator,
    InvokeListener,
    ListenerCallback,
    Rejoin,
    ReleasePartitions,
    RunAssignment,
    SendJoinGroup,
    SendLeaveGroup,
    SendSyncGroup,
)
from streamclient.consumer.group.membership import (
    ConsumerGroupMetadata,
    GroupMembership,
    MemberState,
)
from streamclient.consumer.offsets import (
    CommittedOffsets,
    FetchPosition,
    offset_fetch_request,
    read_offset_fetch,
)
from streamclient.consumer.subscription import SubscriptionState
from streamclient.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    KafkaTimeoutError,
    RequestTimedOutError,
)
from streamclient.protocol.message import Message
from streamclient.protocol.messages.leave_group import LeaveGroupRequest
from streamclient.protocol.messages.offset_fetch import OffsetFetchRequest
from streamclient.structs import OffsetAndMetadata, TopicPartition

__all__ = ["GroupCoordinator", "NoGroupAssignment"]

log = logging.getLogger(__name__)

# errors looking up the coordinator that no retry will cure
_FATAL_LOOKUP = (GroupAuthorizationFailedError,)


class GroupCoordinator:
    """Runs one consumer's group membership; see the module doc."""

    def __init__(
        self,
        client: ClusterClient,
        subscription: SubscriptionState,
        config: ConsumerConfig,
        *,
        on_assignment_change: Callable[[], None],
        on_fatal: Callable[[], None],
    ) -> None:
        self._client = client
        self._subs = subscription
        self._config = config
        assert config.group_id is not None
        self.group_id: str = config.group_id
        self.membership = GroupMembership.from_config(config, subscription, client.now_ms())
        self._on_assignment_change = on_assignment_change
        self._on_fatal = on_fatal
        self.listener: Any = None
        self.fatal_error: BaseException | None = None
        self._pending: deque[Action] = deque()
        self._coordinator_id: int | None = None
        self._closing = False
        # set when the member left because the application stopped polling: it rejoins
        # only when the application polls again (Java's rule)
        self._left_for_poll_timeout = False
        self._last_commit_ms = client.now_ms()
        self._last_committed: dict[TopicPartition, OffsetAndMetadata] = {}
        self._scope: anyio.CancelScope | None = None
        self._wakeup: anyio.Event | None = None
        self._hb_wakeup: anyio.Event | None = None
        self._assigned: anyio.Event | None = None
        client.metadata.add_listener(self._on_metadata)

    # --- signals from the facade ------------------------------------------------------

    def prepare(self) -> None:
        self._wakeup = anyio.Event()
        self._hb_wakeup = anyio.Event()
        self._assigned = anyio.Event()

    def wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
        if self._hb_wakeup is not None:
            self._hb_wakeup.set()

    def record_poll(self) -> None:
        """The application polled: restart the poll timer (and rejoin after a poll-timeout
        leave)."""
        self.membership.record_poll(self._client.now_ms())
        if self._left_for_poll_timeout:
            self._left_for_poll_timeout = False
            self.wake()

    def subscription_changed(self) -> None:
        """subscribe() changed the topics: rejoin with them."""
        if self._subs.has_auto_assigned_partitions:
            self.membership.request_rejoin("the subscription changed")
        self.wake()

    def unsubscribed(self) -> None:
        """unsubscribe(): leave the group (dynamic members send LeaveGroup)."""
        self._pending.extend(
            self.membership.leave_group("the consumer unsubscribed", self._client.now_ms())
        )
        self.wake()

    def group_metadata(self) -> ConsumerGroupMetadata:
        return self.membership.group_metadata()

    def _on_metadata(self, metadata: ClusterMetadata) -> None:
        counts = {t: len(metadata.partitions_for_topic(t) or ()) for t in metadata.topics()}
        if self._subs.has_auto_assigned_partitions and self.membership.on_metadata_update(
            counts, metadata.internal_topics()
        ):
            self.wake()

    async def wait_for_assignment(self) -> None:
        """Until the first join completes (start() of a subscribed consumer)."""
        assert self._assigned is not None
        await self._assigned.wait()
        self._check_fatal()

    def _check_fatal(self) -> None:
        if self.fatal_error is not None:
            raise self.fatal_error

    def _fail(self, error: BaseException) -> None:
        log.error("consumer group %r failed: %r", self.group_id, error)
        self.fatal_error = error
        if self._assigned is not None:
            self._assigned.set()
        self._on_fatal()

    # --- the tasks ----------------------------------------------------------------------

    async def run(self) -> None:
        if self._wakeup is None:
            self.prepare()
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._heartbeat_loop)
                    await self._main_loop()
                    tg.cancel_scope.cancel()
            except KafkaError as exc:
                self._fail(exc)
            except Exception as exc:  # a bug: stop the group, tell the application
                log.exception("the group coordinator loop failed")
                self._fail(exc)

    async def _main_loop(self) -> None:
        while not self._closing:
            assert self._wakeup is not None
            self._wakeup = anyio.Event()
            wakeup = self._wakeup
            if self._pending:
                actions = list(self._pending)
                self._pending.clear()
                await self._execute(actions)
                continue
            if (
                self._subs.has_auto_assigned_partitions
                and self.membership.rejoin_needed
                and not self._left_for_poll_timeout
            ):
                await self._ensure_coordinator()
                if self._subs.pattern is not None:
                    # the metadata listener only hears changes: match what is known now
                    metadata = self._client.metadata
                    self._subs.subscribe_from_pattern(
                        metadata.topics(), metadata.internal_topics()
                    )
                await self._execute(self.membership.start_join(self._client.now_ms()))
                continue
            delay_ms = await self._maybe_auto_commit()
            with anyio.move_on_after(delay_ms / 1000):
                await wakeup.wait()

    async def _heartbeat_loop(self) -> None:
        membership = self.membership
        while not self._closing:
            assert self._hb_wakeup is not None
            self._hb_wakeup = anyio.Event()
            wakeup = self._hb_wakeup
            now = self._client.now_ms()
            request = membership.heartbeat_request(now)
            if request is not None:
                actions = await self._heartbeat(request)
                self._queue(actions)
            now = self._client.now_ms()
            poll_expired = membership.in_group and membership.timers.poll_expired(now)
            actions = membership.check_timers(now)
            if poll_expired:
                log.warning(
                    "group %r: no poll for max_poll_interval_ms (%d ms): leaving the group",
                    self.group_id,
                    self._config.max_poll_interval_ms,
                )
                self._left_for_poll_timeout = True
                # Its partitions now go to others: stop handing them out at once (the
                # application's next poll must not return them), then tell the listener.
                owned = tuple(sorted(self._subs.owned_partitions()))
                if owned:
                    self._subs.mark_pending_revocation(owned)
                    actions = [
                        InvokeListener(ListenerCallback.REVOKED, owned),
                        ReleasePartitions(owned),
                        *actions,
                    ]
            self._queue(actions)
            deadline = membership.next_deadline(self._client.now_ms())
            delay_s = (
                None if deadline is None else max(0, deadline - self._client.now_ms()) / 1000
            )
            with anyio.move_on_after(60 if delay_s is None else delay_s):
                await wakeup.wait()

    async def _heartbeat(self, request: Message) -> list[Action]:
        generation = getattr(request, "generation_id", None)
        node = self._coordinator_id
        if node is None:
            return self.membership.on_heartbeat_failure(self._client.now_ms())
        try:
            response = await self._client.send(node, request, group=ConnectionGroup.COORDINATION)
        except KafkaError as exc:
            log.debug("heartbeat for group %r failed: %s", self.group_id, exc)
            self._forget_coordinator()
            return self.membership.on_heartbeat_failure(self._client.now_ms())
        try:
            return self.membership.on_heartbeat_response(
                response, self._client.now_ms(), generation
            )
        except KafkaError as exc:
            self._fail(exc)
            self._closing = True
            self.wake()
            return []

    def _queue(self, actions: list[Action]) -> None:
        if actions:
            self._pending.extend(actions)
            if self._wakeup is not None:
                self._wakeup.set()

    # --- running actions ----------------------------------------------------------------

    async def _execute(self, actions: Iterable[Action]) -> None:
        queue = deque(actions)
        while queue:
            action = queue.popleft()
            follow_ups = await self._run(action)
            queue.extendleft(reversed(follow_ups))
            if self._hb_wakeup is not None:
                self._hb_wakeup.set()  # membership may have entered or left the group

    async def _run(self, action: Action) -> list[Action]:
        membership = self.membership
        if isinstance(action, CommitOffsets):
            try:
                await self.commit_offsets(action.offsets)
            except KafkaError as exc:
                log.warning("group %r: %s failed: %s", self.group_id, action.reason, exc)
            return []
        if isinstance(action, InvokeListener):
            if action.callback is ListenerCallback.REVOKED:
                await self._commit_before_revocation(action.partitions)
            await self._call_listener(action.callback, action.partitions)
            return []
        if isinstance(action, ReleasePartitions):
            membership.release(action.partitions)
            self._on_assignment_change()
            return []
        if isinstance(action, SendJoinGroup):
            return await self._join()
        if isinstance(action, RunAssignment):
            return await self._assign(action.topics)
        if isinstance(action, SendSyncGroup):
            return await self._sync(action)
        if isinstance(action, SendLeaveGroup):
            await self._leave(action)
            return []
        if isinstance(action, Rejoin):
            if action.delay_ms:
                await anyio.sleep(action.delay_ms / 1000)
            return []  # the main loop starts the join: rejoin_needed is set
        if isinstance(action, FindCoordinator):
            self._forget_coordinator()
            await self._ensure_coordinator()
            return []
        raise AssertionError(f"unknown action {action!r}")

    async def _join(self) -> list[Action]:
        membership = self.membership
        request = membership.join_group_request(self._client.now_ms())
        try:
            response = await self._send(request, timeout_ms=membership.join_request_timeout_ms)
        except KafkaError as exc:
            log.info("group %r: JoinGroup failed: %s", self.group_id, exc)
            membership.request_rejoin(f"JoinGroup failed: {exc}")
            return [Rejoin(membership.rejoin_reason, self._config.retry_backoff_ms)]
        return membership.on_join_response(response, self._client.now_ms())

    async def _assign(self, topics: frozenset[str]) -> list[Action]:
        metadata = self._client.metadata
        metadata.add_topics(topics)
        try:
            await self._client.refresh_metadata()
        except KafkaError as exc:
            log.warning("group %r: metadata for the assignment failed: %s", self.group_id, exc)
        counts = {t: len(p) for t in topics if (p := metadata.partitions_for_topic(t))}
        return self.membership.assign(counts, self._client.now_ms())

    async def _sync(self, action: SendSyncGroup) -> list[Action]:
        membership = self.membership
        try:
            response = await self._send(
                action.request, timeout_ms=membership.join_request_timeout_ms
            )
        except KafkaError as exc:
            log.info("group %r: SyncGroup failed: %s", self.group_id, exc)
            membership.request_rejoin(f"SyncGroup failed: {exc}")
            return [Rejoin(membership.rejoin_reason, self._config.retry_backoff_ms)]
        follow_ups = membership.on_sync_response(response, self._client.now_ms())
        if membership.state is MemberState.STABLE:
            log.info(
                "group %r generation %d: assigned %s",
                self.group_id,
                membership.generation.generation_id,
                sorted(self._subs.assigned_partitions()),
            )
            self._on_assignment_change()
            assert self._assigned is not None
            self._assigned.set()
        return follow_ups

    async def _leave(self, action: SendLeaveGroup) -> None:
        node = self._coordinator_id
        if node is None:
            return
        try:
            version = await self._client.version_for(node, LeaveGroupRequest)
            await self._client.send(
                node, action.request(version), version, group=ConnectionGroup.COORDINATION
            )
        except KafkaError as exc:
            log.info("group %r: LeaveGroup failed: %s", self.group_id, exc)

    async def _commit_before_revocation(self, partitions: tuple[TopicPartition, ...]) -> None:
        """Auto-commit what was consumed of partitions about to move, so their next owner
        starts where we stopped.  The join's own commit covers eager rebalances; this one
        covers the cooperative revocation after the SyncGroup, which the member fetched
        for until then."""
        if not self._config.enable_auto_commit or self.membership.generation.generation_id < 0:
            return
        wanted = set(partitions)
        offsets = {
            tp: o
            for tp, o in self._subs.all_consumed().items()
            if tp in wanted and self._last_committed.get(tp) != o
        }
        if offsets:
            try:
                await self.commit_offsets(offsets)
            except KafkaError as exc:
                log.warning("group %r: commit before revocation failed: %s", self.group_id, exc)

    async def _call_listener(
        self, callback: ListenerCallback, partitions: tuple[TopicPartition, ...]
    ) -> None:
        listener = self.listener
        if listener is None:
            return
        method = getattr(listener, callback.value, None)
        if method is None and callback is ListenerCallback.LOST:
            method = getattr(listener, ListenerCallback.REVOKED.value, None)
        if method is None:
            return
        try:
            # aiokafka hands listeners a set of partitions
            result = method(set(partitions))
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception(
                "group %r: the rebalance listener %r failed in %s",
                self.group_id,
                listener,
                callback.value,
            )

    # --- the coordinator ----------------------------------------------------------------

    def _forget_coordinator(self) -> None:
        self._coordinator_id = None
        self._client.invalidate_coordinator(self.group_id)

    async def _ensure_coordinator(self) -> int:
        while True:
            if self._coordinator_id is not None:
                return self._coordinator_id
            try:
                self._coordinator_id = await self._client.coordinator(self.group_id)
            except _FATAL_LOOKUP:
                raise
            except KafkaError as exc:
                log.info("group %r: no coordinator yet: %s", self.group_id, exc)
                await anyio.sleep(self._config.retry_backoff_ms / 1000)

    async def _send(
        self, request: Message, version: int | None = None, *, timeout_ms: int | None = None
    ) -> Any:
        node = await self._ensure_coordinator()
        limit_ms = self._config.request_timeout_ms if timeout_ms is None else timeout_ms
        try:
            with anyio.fail_after(limit_ms / 1000):
                return await self._client.send(
                    node, request, version, group=ConnectionGroup.COORDINATION
                )
        except TimeoutError:
            self._forget_coordinator()
            raise RequestTimedOutError(f"{type(request).__name__} took over {limit_ms} ms") from None
        except KafkaError:
            if self._client.connection(node, ConnectionGroup.COORDINATION) is None:
                self._forget_coordinator()
            raise

    # --- commits ------------------------------------------------------------------------

    async def _maybe_auto_commit(self) -> float:
        """Commit the consumed positions when due; returns the ms until the next one."""
        interval = self._config.auto_commit_interval_ms
        if not self._config.enable_auto_commit:
            return 60_000
        stable = self.membership.state is MemberState.STABLE or self._subs.is_user_assigned
        now = self._client.now_ms()
        due = self._last_commit_ms + interval
        if now < due:
            return due - now
        self._last_commit_ms = now
        if stable:
            offsets = self._subs.all_consumed()
            changed = {tp: o for tp, o in offsets.items() if self._last_committed.get(tp) != o}
            if changed:
                try:
                    await self.commit_offsets(changed)
                except KafkaError as exc:
                    log.warning("group %r: auto-commit failed: %s", self.group_id, exc)
        return interval

    def _position_epochs(self, offsets: dict[TopicPartition, Any]) -> dict[TopicPartition, int]:
        """The leader epoch to commit beside each offset that is the partition's current
        position (as Java commits ``allConsumed()``), so whoever resumes from it can
        detect a log truncated below it (KIP-320).  Other offsets go without one."""
        epochs = self._subs.consumed_leader_epochs()
        return {
            tp: epoch
            for tp, epoch in epochs.items()
            if tp in offsets
            and (position := self._subs.position(tp)) is not None
            and position.offset == offsets[tp].offset
        }

    async def commit_offsets(self, offsets: dict[TopicPartition, Any]) -> None:
        """OffsetCommit with the member's generation; retriable errors are retried (a
        moved coordinator is looked up again) until ``request_timeout_ms`` has passed."""
        if not offsets:
            return
        membership = self.membership
        last_error: KafkaError | None = None
        leader_epochs = self._position_epochs(offsets)
        with anyio.move_on_after(self._config.request_timeout_ms / 1000):
            while True:
                request = membership.commit_request(offsets, leader_epochs)
                try:
                    response = await self._send(request)
                except KafkaError as exc:
                    last_error = exc
                    await anyio.sleep(self._config.retry_backoff_ms / 1000)
                    continue
                outcome = membership.on_commit_response(response, self._client.now_ms())
                if outcome.ok:
                    for tp in outcome.committed:
                        entry = offsets[tp]
                        self._last_committed[tp] = (
                            OffsetAndMetadata(*entry)
                            if isinstance(entry, tuple)
                            else OffsetAndMetadata(entry, "")
                        )
                    return
                if outcome.rejoin or membership.rejoin_needed:
                    self.wake()
                if not outcome.retry:
                    assert outcome.error is not None
                    raise outcome.error
                if outcome.coordinator_moved:
                    self._forget_coordinator()
                last_error = outcome.error
                await anyio.sleep(self._config.retry_backoff_ms / 1000)
        if last_error is not None:
            raise last_error
        raise KafkaTimeoutError("offset commit timed out")

    async def fetch_committed(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """The group's committed offsets (partitions without one are left out)."""
        return (await self._fetch_committed(list(partitions))).offsets

    async def fetch_committed_positions(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, FetchPosition]:
        """The committed offsets as fetch positions, each with the leader epoch committed
        beside it (KIP-320: the consumer validates such a position before fetching)."""
        answer = await self._fetch_committed(list(partitions))
        return {
            tp: FetchPosition(found.offset, answer.leader_epochs.get(tp))
            for tp, found in answer.offsets.items()
        }

    async def _fetch_committed(self, wanted: list[TopicPartition]) -> CommittedOffsets:
        if not wanted:
            return CommittedOffsets({}, {}, set())
        last_error: KafkaError | None = None
        with anyio.move_on_after(self._config.request_timeout_ms / 1000):
            while True:
                try:
                    node = await self._ensure_coordinator()
                    version = await self._client.version_for(node, OffsetFetchRequest)
                    request = offset_fetch_request(self.group_id, wanted, version)
                    response = await self._send(request, version)
                except KafkaError as exc:
                    last_error = exc
                    await anyio.sleep(self._config.retry_backoff_ms / 1000)
                    continue
                answer = read_offset_fetch(response, self.group_id)
                if answer.error is None:
                    return answer
                if not answer.retry:
                    raise answer.error
                if answer.coordinator_moved:
                    self._forget_coordinator()
                last_error = answer.error
                await anyio.sleep(self._config.retry_backoff_ms / 1000)
        if last_error is not None:
            raise last_error
        raise KafkaTimeoutError("fetching committed offsets timed out")

    # --- closing ------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the loops, then the last auto-commit, the revocation listener and
        LeaveGroup (dynamic members only), in the caller's task."""
        self._closing = True
        if self._scope is not None:
            self._scope.cancel()
        self._client.metadata.remove_listener(self._on_metadata)
        if self.fatal_error is not None:
            return
        membership = self.membership
        subs = self._subs
        actions: list[Action] = []
        if subs.has_auto_assigned_partitions:
            # GroupMembership.close() resets the generation as it builds LeaveGroup, so
            # the commit and the listener (which may commit too) run first, while the
            # member still owns its partitions; close() then only leaves.
            owned = tuple(sorted(subs.owned_partitions()))
            healthy = (
                membership.state is MemberState.STABLE
                and membership.generation.generation_id >= 0
            )
            offsets = subs.all_consumed()
            if self._config.enable_auto_commit and healthy and offsets:
                actions.append(CommitOffsets(offsets, "auto-commit on close"))
            if owned:
                subs.mark_pending_revocation(owned)
                callback = ListenerCallback.REVOKED if healthy else ListenerCallback.LOST
                actions += [InvokeListener(callback, owned), ReleasePartitions(owned)]
            await self._execute_quietly(actions)
            actions = membership.close(self._client.now_ms())
        else:
            offsets = subs.all_consumed()
            if self._config.enable_auto_commit and offsets:
                actions.append(CommitOffsets(offsets, "auto-commit on close"))
        await self._execute_quietly(actions)

    async def _execute_quietly(self, actions: list[Action]) -> None:
        if self._coordinator_id is None:
            # nobody to tell: only the listener still runs
            actions = [a for a in actions if isinstance(a, (InvokeListener, ReleasePartitions))]
        try:
            await self._execute(actions)
        except KafkaError as exc:
            log.warning("group %r: closing: %s", self.group_id, exc)


class NoGroupAssignment:
    """A topic or pattern subscription without a group: assign every partition of the
    subscribed topics, and follow the metadata as partitions and topics come and go."""

    def __init__(
        self,
        client: ClusterClient,
        subscription: SubscriptionState,
        *,
        on_assignment_change: Callable[[], None],
    ) -> None:
        self._client = client
        self._subs = subscription
        self._on_assignment_change = on_assignment_change
        client.metadata.add_listener(self.update)

    def update(self, metadata: ClusterMetadata | None = None) -> None:
        metadata = metadata or self._client.metadata
        subs = self._subs
        if not subs.has_auto_assigned_partitions:
            return
        if subs.pattern is not None:
            subs.subscribe_from_pattern(metadata.topics(), metadata.internal_topics())
        wanted = {
            TopicPartition(t, p)
            for t in subs.subscription
            for p in (metadata.partitions_for_topic(t) or ())
        }
        if wanted != subs.assigned_partitions():
            subs.assign_from_subscribed(sorted(wanted))
            self._on_assignment_change()

    def close(self) -> None:
        self._client.metadata.remove_listener(self.update)
