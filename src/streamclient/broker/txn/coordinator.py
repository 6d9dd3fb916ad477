"""The transaction coordinator: the :class:`TransactionManager` plus the cluster around it.

A transactional id is served by the leader of its ``__transaction_state`` partition
(NOT_COORDINATOR elsewhere). Every state change is written there as a record; markers go to
the data partitions through ``PartitionLog.append_control``. Logs live in this process and
appends are synchronous, so a transaction usually completes inside its EndTxn; when a
partition's leader is down, its marker is retried from :meth:`TransactionCoordinator.tick` and
the transaction stays in PrepareCommit/PrepareAbort meanwhile (CONCURRENT_TRANSACTIONS).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from streamclient.broker.groups.error_code import Code
from streamclient.broker.groups.internal_topic import InternalTopic
from streamclient.broker.txn.records import (
    decode_txn_key,
    decode_txn_value,
    encode_txn_key,
    encode_txn_value,
)
from streamclient.broker.txn.transaction import (
    InitResult,
    MarkerPlan,
    TransactionConfig,
    TransactionManager,
    TransactionMetadata,
    TxnState,
)

__all__ = ["TRANSACTION_STATE_TOPIC", "TransactionCoordinator", "TransactionCoordinatorConfig"]

TRANSACTION_STATE_TOPIC = "__transaction_state"
_OFFSETS_TOPIC = "__consumer_offsets"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransactionCoordinatorConfig:
    max_timeout_ms: int = 900_000
    # transaction.state.log.num.partitions
    state_topic_partitions: int = 50

    @classmethod
    def from_broker_config(cls, broker: Any) -> TransactionCoordinatorConfig:
        return cls(
            max_timeout_ms=getattr(broker, "transaction_max_timeout_ms", 900_000),
            state_topic_partitions=getattr(broker, "transaction_state_log_num_partitions", 50),
        )


class TransactionCoordinator:
    def __init__(self, state: Any, config: TransactionCoordinatorConfig | None = None) -> None:
        self.state = state
        if config is None:
            config = TransactionCoordinatorConfig.from_broker_config(getattr(state, "config", None))
        self.config = config
        self.topic = InternalTopic(state, TRANSACTION_STATE_TOPIC, config.state_topic_partitions)
        self.manager = TransactionManager(TransactionConfig(max_timeout_ms=config.max_timeout_ms))

    # --- placement ------------------------------------------------------------------------

    def coordinator_for(self, transactional_id: str) -> int | None:
        return self.topic.coordinator_for(transactional_id)

    def check_coordinator(self, node_id: int, transactional_id: str) -> Code:
        """NOT_COORDINATOR unless ``node_id`` leads the id's transaction-state partition."""
        return self.topic.check_coordinator(node_id, transactional_id)

    def _now(self) -> int:
        return int(self.state.clock.now_ms())

    # --- the Produce handler's question -------------------------------------------------------

    def is_partition_in_transaction(
        self, producer_id: int, producer_epoch: int, topic: str, partition: int
    ) -> bool:
        """Whether the producer's ongoing transaction (at that epoch) includes the partition."""
        return self.manager.is_partition_in_transaction(
            producer_id, producer_epoch, (topic, partition)
        )

    # --- requests ---------------------------------------------------------------------------

    def init_producer_id(
        self,
        node_id: int,
        transactional_id: str | None,
        timeout_ms: int,
        expected: tuple[int, int] | None = None,
    ) -> InitResult:
        if transactional_id:
            error = self.check_coordinator(node_id, transactional_id)
            if error is not Code.NONE:
                return InitResult(error)
        result = self.manager.init_producer_id(transactional_id, timeout_ms, self._now(), expected)
        if result.abort is not None:
            self._persist()
            if self._write_markers(result.abort):
                # the ongoing transaction is aborted already: finish the initialisation now
                # instead of making the client retry (Kafka answers CONCURRENT_TRANSACTIONS)
                result = self.manager.init_producer_id(
                    transactional_id, timeout_ms, self._now(), expected
                )
        self._persist()
        return result

    def add_partitions(
        self,
        node_id: int,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: list[tuple[str, int]],
    ) -> dict[tuple[str, int], Code]:
        error = self.check_coordinator(node_id, transactional_id)
        if error is Code.NONE:
            unknown = [tp for tp in partitions if self.state.partition(*tp) is None]
            if unknown:
                # Kafka refuses the whole request and says which partitions were the reason
                return {
                    tp: Code.UNKNOWN_TOPIC_OR_PARTITION if tp in unknown
                    else Code.OPERATION_NOT_ATTEMPTED
                    for tp in partitions
                }
            error = self.manager.add_partitions(
                transactional_id, producer_id, producer_epoch, partitions, self._now()
            )
            self._persist()
        return dict.fromkeys(partitions, error)

    def verify_partitions(
        self, transactional_id: str, producer_id: int, producer_epoch: int,
        partitions: list[tuple[str, int]],
    ) -> dict[tuple[str, int], Code]:
        """AddPartitionsToTxn v4+ ``verify_only``: which partitions are already in the txn."""
        md = self.manager.get(transactional_id)
        if md is None or md.producer_id != producer_id:
            return dict.fromkeys(partitions, Code.INVALID_PRODUCER_ID_MAPPING)
        if md.producer_epoch != producer_epoch:
            return dict.fromkeys(partitions, Code.PRODUCER_FENCED)
        return {
            tp: Code.NONE
            if md.state is TxnState.ONGOING and tp in md.partitions
            else Code.INVALID_TXN_STATE
            for tp in partitions
        }

    def add_offsets(
        self,
        node_id: int,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        group_id: str,
    ) -> Code:
        error = self.check_coordinator(node_id, transactional_id)
        if error is not Code.NONE:
            return error
        partition = self.state.groups.topic.partition_for(group_id)
        if not self.state.groups.topic.ensure():
            return Code.COORDINATOR_NOT_AVAILABLE
        error = self.manager.add_partitions(
            transactional_id, producer_id, producer_epoch, [(_OFFSETS_TOPIC, partition)],
            self._now(),
        )
        self._persist()
        return error

    def end_txn(
        self,
        node_id: int,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
    ) -> Code:
        error = self.check_coordinator(node_id, transactional_id)
        if error is not Code.NONE:
            return error
        error, plan = self.manager.end_txn(
            transactional_id, producer_id, producer_epoch, commit, self._now()
        )
        self._persist()
        if plan is not None:
            self._write_markers(plan)
            self._persist()
        return error

    # --- markers and timers -------------------------------------------------------------------

    def _write_markers(self, plan: MarkerPlan) -> bool:
        """Write what markers can be written now; True when the transaction completed."""
        now = self._now()
        coordinator_epoch = self.topic.leader_epoch(
            self.topic.partition_for(plan.transactional_id)
        )
        done: list[tuple[str, int]] = []
        for topic, partition in sorted(plan.partitions):
            if self.state.partition(topic, partition) is None:
                done.append((topic, partition))  # the topic was deleted meanwhile
                continue
            leader = self.state.partition_leader(topic, partition)
            log_ = self.state.partition_log(topic, partition)
            if leader is None or leader < 0 or not self.state.is_alive(leader) or log_ is None:
                continue  # retried from tick once the partition has a leader again
            try:
                log_.append_control(
                    plan.producer_id, plan.producer_epoch, plan.commit, coordinator_epoch, now
                )
            except Exception:
                # Kafka gives up on a marker the partition refuses for good (not for leadership)
                log.exception("transaction marker for %s-%d refused", topic, partition)
            if topic == _OFFSETS_TOPIC:
                self.state.groups.complete_txn(partition, plan.producer_id, plan.commit)
            done.append((topic, partition))
        return self.manager.markers_written(plan.transactional_id, done, now)

    def tick(self, now_ms: int) -> None:
        """Abort transactions past their timeout, and retry markers that could not be written."""
        for plan in self.manager.expire(now_ms):
            log.info("aborting transaction %s: timed out", plan.transactional_id)
        self._persist()
        for plan in self.manager.pending_plans():
            self._write_markers(plan)
        self._persist()

    # --- queries -------------------------------------------------------------------------------

    def describe(self, node_id: int, transactional_id: str) -> tuple[Code, TransactionMetadata | None]:
        error = self.check_coordinator(node_id, transactional_id)
        if error is not Code.NONE:
            return error, None
        md = self.manager.get(transactional_id)
        if md is None:
            return Code.TRANSACTIONAL_ID_NOT_FOUND, None
        return Code.NONE, md

    def list_transactions(
        self,
        node_id: int,
        *,
        states: list[str] | None = None,
        producer_ids: list[int] | None = None,
        min_duration_ms: int = -1,
    ) -> list[TransactionMetadata]:
        now = self._now()
        result = []
        for md in self.manager:
            if self.coordinator_for(md.transactional_id) != node_id:
                continue
            if states and md.state.display_name not in states:
                continue
            if producer_ids and md.producer_id not in producer_ids:
                continue
            if min_duration_ms >= 0 and (
                md.start_timestamp_ms < 0 or now - md.start_timestamp_ms < min_duration_ms
            ):
                continue
            result.append(md)
        return result

    # --- persistence ---------------------------------------------------------------------------

    def _persist(self) -> None:
        changed, self.manager.changed = self.manager.changed, set()
        now = self._now()
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for tid in sorted(changed):
            md = self.manager.get(tid)
            value = None if md is None else encode_txn_value(md)
            by_partition.setdefault(self.topic.partition_for(tid), []).append(
                (encode_txn_key(tid), value)
            )
        for partition, records in by_partition.items():
            try:
                self.topic.append(partition, records, now)
            except Exception:  # state survives in memory; only a restart would lose it
                log.exception("could not write %s-%d", TRANSACTION_STATE_TOPIC, partition)

    def load_from_log(self) -> None:
        """Rebuild transaction state from ``__transaction_state`` (after a restart).

        Transactions caught in PrepareCommit/PrepareAbort get their markers written again by
        the next :meth:`tick`, as Kafka's coordinator does when it loads a partition.
        """
        self.manager = TransactionManager(self.manager.config)
        for partition in range(self.topic.num_partitions):
            for batch in self.topic.batches(partition):
                if batch.is_control:
                    continue
                for record in batch:
                    if record.key is None:
                        continue
                    tid = decode_txn_key(record.key)
                    md = None if record.value is None else decode_txn_value(tid, record.value)
                    self.manager.restore(md, tid)
        self.manager.changed.clear()
