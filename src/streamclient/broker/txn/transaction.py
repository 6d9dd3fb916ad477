"""Transaction coordinator state, sans-IO.

:class:`TransactionManager` holds one :class:`TransactionMetadata` per transactional id and
applies Kafka's transitions (Empty → Ongoing → PrepareCommit/PrepareAbort → CompleteCommit/
CompleteAbort, fencing by epoch bumps, KIP-360 epoch recovery). It never writes anything: a
transition that needs transaction markers returns a :class:`MarkerPlan`; the owner writes the
markers and reports back through :meth:`TransactionManager.markers_written`, which completes
the transaction once every partition has its marker. Until then the transaction stays in its
Prepare state and competing requests get CONCURRENT_TRANSACTIONS, as in Kafka.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum

from streamclient.broker.groups.error_code import Code

__all__ = [
    "MAX_EPOCH",
    "InitResult",
    "MarkerPlan",
    "TransactionConfig",
    "TransactionManager",
    "TransactionMetadata",
    "TxnState",
]

TopicPartition = tuple[str, int]

# Kafka's producer epoch is an int16; an epoch this high cannot be bumped again, so the
# producer gets a new id instead (KIP-360)
MAX_EPOCH = 32767


def _epoch_exhausted(epoch: int) -> bool:
    return epoch >= MAX_EPOCH - 1


class TxnState(IntEnum):
    """Values are Kafka's ``TransactionState`` ids (what ``__transaction_state`` stores)."""

    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def display_name(self) -> str:
        """The name DescribeTransactions and ListTransactions report."""
        return "".join(part.capitalize() for part in self.name.split("_"))


@dataclass(frozen=True)
class TransactionConfig:
    # transaction.max.timeout.ms
    max_timeout_ms: int = 900_000


@dataclass
class TransactionMetadata:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState = TxnState.EMPTY
    last_producer_id: int = -1
    last_producer_epoch: int = -1
    partitions: set[TopicPartition] = field(default_factory=set)
    start_timestamp_ms: int = -1
    last_update_ms: int = -1
    # partitions that still need a marker for the transaction being completed
    pending_markers: set[TopicPartition] = field(default_factory=set)


@dataclass(frozen=True)
class MarkerPlan:
    """Write a COMMIT/ABORT marker for ``producer_id``/``producer_epoch`` to each partition."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    commit: bool
    partitions: frozenset[TopicPartition]


@dataclass(frozen=True)
class InitResult:
    error: Code
    producer_id: int = -1
    producer_epoch: int = -1
    # an ongoing transaction that must be aborted before the producer can be initialised
    abort: MarkerPlan | None = None


class TransactionManager:
    def __init__(self, config: TransactionConfig | None = None, first_producer_id: int = 1000):
        self.config = config or TransactionConfig()
        self.transactions: dict[str, TransactionMetadata] = {}
        self._next_producer_id = first_producer_id
        # bumped on every change that ``__transaction_state`` must record, per id
        self.changed: set[str] = set()

    def allocate_producer_id(self) -> int:
        pid = self._next_producer_id
        self._next_producer_id += 1
        return pid

    def reserve_producer_ids_through(self, producer_id: int) -> None:
        """After reloading state, never hand out an id that is already in use."""
        self._next_producer_id = max(self._next_producer_id, producer_id + 1)

    def get(self, transactional_id: str) -> TransactionMetadata | None:
        return self.transactions.get(transactional_id)

    def __iter__(self) -> Iterator[TransactionMetadata]:
        return iter(self.transactions.values())

    # --- InitProducerId -----------------------------------------------------------------

    def init_producer_id(
        self,
        transactional_id: str | None,
        timeout_ms: int,
        now_ms: int,
        expected: tuple[int, int] | None = None,
    ) -> InitResult:
        """``expected`` is the (producer id, epoch) a v3+ client sends to resume (KIP-360)."""
        if transactional_id is None:
            # idempotent producers always get a fresh id, whatever they had before
            return InitResult(Code.NONE, self.allocate_producer_id(), 0)
        if not transactional_id:
            return InitResult(Code.INVALID_REQUEST)
        if timeout_ms <= 0 or timeout_ms > self.config.max_timeout_ms:
            return InitResult(Code.INVALID_TRANSACTION_TIMEOUT)
        md = self.transactions.get(transactional_id)
        if md is None:
            md = TransactionMetadata(
                transactional_id, self.allocate_producer_id(), -1, timeout_ms,
                last_update_ms=now_ms,
            )
            self.transactions[transactional_id] = md
        if expected is not None and not self._valid_expected(md, expected):
            return InitResult(Code.PRODUCER_FENCED)
        if md.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
            return InitResult(Code.CONCURRENT_TRANSACTIONS)
        if md.state is TxnState.ONGOING:
            # fence the current producer and abort its transaction with the bumped epoch;
            # the caller retries once the markers are written (Kafka answers
            # CONCURRENT_TRANSACTIONS and lets the client retry)
            md.producer_epoch = min(md.producer_epoch + 1, MAX_EPOCH)
            md.last_producer_epoch = -1
            plan = self._prepare_end(md, commit=False, now_ms=now_ms)
            return InitResult(Code.CONCURRENT_TRANSACTIONS, abort=plan)
        if md.state in (TxnState.DEAD, TxnState.PREPARE_EPOCH_FENCE):
            return InitResult(Code.CONCURRENT_TRANSACTIONS)
        # Empty, CompleteCommit, CompleteAbort
        md.timeout_ms = timeout_ms
        if _epoch_exhausted(md.producer_epoch) and (
            expected is None or expected[1] == md.producer_epoch
        ):
            md.last_producer_id = md.producer_id
            md.producer_id = self.allocate_producer_id()
            md.last_producer_epoch = -1
            md.producer_epoch = 0
        elif expected is not None and expected[0] == md.last_producer_id != md.producer_id:
            # a retry of the switch to a new producer id after epoch exhaustion
            pass
        elif expected is None or md.producer_epoch == -1 or expected[1] == md.producer_epoch:
            md.last_producer_epoch = md.producer_epoch if expected is not None else -1
            md.producer_epoch += 1
        elif expected[1] == md.last_producer_epoch:
            # a retry of a bump whose answer the producer lost: answer the same epoch again
            pass
        else:
            return InitResult(Code.PRODUCER_FENCED)
        md.state = TxnState.EMPTY
        md.partitions.clear()
        md.start_timestamp_ms = -1
        md.last_update_ms = now_ms
        self.changed.add(transactional_id)
        return InitResult(Code.NONE, md.producer_id, md.producer_epoch)

    @staticmethod
    def _valid_expected(md: TransactionMetadata, expected: tuple[int, int]) -> bool:
        pid, epoch = expected
        return (
            md.producer_epoch == -1
            or pid == md.producer_id
            or (pid == md.last_producer_id and _epoch_exhausted(epoch))
        )

    # --- AddPartitionsToTxn / AddOffsetsToTxn -------------------------------------------

    def _check_producer(self, transactional_id: str, producer_id: int, epoch: int) -> Code:
        md = self.transactions.get(transactional_id)
        if md is None or md.producer_id != producer_id:
            return Code.INVALID_PRODUCER_ID_MAPPING
        if md.producer_epoch != epoch:
            return Code.PRODUCER_FENCED
        if md.state in (
            TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT, TxnState.PREPARE_EPOCH_FENCE
        ):
            return Code.CONCURRENT_TRANSACTIONS
        if md.state is TxnState.DEAD:
            return Code.INVALID_PRODUCER_ID_MAPPING
        return Code.NONE

    def add_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
        now_ms: int,
    ) -> Code:
        error = self._check_producer(transactional_id, producer_id, producer_epoch)
        if error is not Code.NONE:
            return error
        md = self.transactions[transactional_id]
        wanted = set(partitions)
        if md.state is TxnState.ONGOING and wanted <= md.partitions:
            return Code.NONE
        if md.state is not TxnState.ONGOING:
            md.partitions = set()
            md.start_timestamp_ms = now_ms
            md.state = TxnState.ONGOING
        md.partitions |= wanted
        md.last_update_ms = now_ms
        self.changed.add(transactional_id)
        return Code.NONE

    def is_partition_in_transaction(
        self, producer_id: int, producer_epoch: int, tp: TopicPartition
    ) -> bool:
        for md in self.transactions.values():
            if md.producer_id == producer_id:
                return (
                    md.producer_epoch == producer_epoch
                    and md.state is TxnState.ONGOING
                    and tp in md.partitions
                )
        return False

    # --- EndTxn -------------------------------------------------------------------------

    def end_txn(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        now_ms: int,
    ) -> tuple[Code, MarkerPlan | None]:
        md = self.transactions.get(transactional_id)
        if md is None or md.producer_id != producer_id:
            return Code.INVALID_PRODUCER_ID_MAPPING, None
        if md.producer_epoch != producer_epoch:
            return Code.PRODUCER_FENCED, None
        state = md.state
        if state is TxnState.ONGOING:
            return Code.NONE, self._prepare_end(md, commit=commit, now_ms=now_ms)
        if state is TxnState.COMPLETE_COMMIT:
            return (Code.NONE if commit else Code.INVALID_TXN_STATE), None
        if state is TxnState.COMPLETE_ABORT:
            return (Code.INVALID_TXN_STATE if commit else Code.NONE), None
        if state is TxnState.PREPARE_COMMIT:
            return (Code.CONCURRENT_TRANSACTIONS if commit else Code.INVALID_TXN_STATE), None
        if state is TxnState.PREPARE_ABORT:
            return (Code.INVALID_TXN_STATE if commit else Code.CONCURRENT_TRANSACTIONS), None
        if state is TxnState.PREPARE_EPOCH_FENCE:
            return Code.CONCURRENT_TRANSACTIONS, None
        return Code.INVALID_TXN_STATE, None

    def _prepare_end(self, md: TransactionMetadata, *, commit: bool, now_ms: int) -> MarkerPlan:
        md.state = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
        md.pending_markers = set(md.partitions)
        md.last_update_ms = now_ms
        self.changed.add(md.transactional_id)
        return self.plan_for(md)

    def plan_for(self, md: TransactionMetadata) -> MarkerPlan:
        return MarkerPlan(
            md.transactional_id,
            md.producer_id,
            md.producer_epoch,
            md.state is TxnState.PREPARE_COMMIT,
            frozenset(md.pending_markers),
        )

    def markers_written(
        self, transactional_id: str, partitions: Iterable[TopicPartition], now_ms: int
    ) -> bool:
        """Record markers that reached their partitions; True once the transaction completed."""
        md = self.transactions.get(transactional_id)
        if md is None or md.state not in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
            return False
        md.pending_markers -= set(partitions)
        if md.pending_markers:
            return False
        md.state = (
            TxnState.COMPLETE_COMMIT
            if md.state is TxnState.PREPARE_COMMIT
            else TxnState.COMPLETE_ABORT
        )
        md.partitions = set()
        md.start_timestamp_ms = -1
        md.last_update_ms = now_ms
        self.changed.add(transactional_id)
        return True

    def pending_plans(self) -> list[MarkerPlan]:
        """Transactions whose markers are not all written yet (retried from ``tick``)."""
        return [
            self.plan_for(md)
            for md in self.transactions.values()
            if md.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)
        ]

    # --- timeouts -----------------------------------------------------------------------

    def expire(self, now_ms: int) -> list[MarkerPlan]:
        """Abort transactions that outlived their timeout.

        Like Kafka, the epoch is bumped first so the producer that let its transaction time
        out is fenced: its next request fails with PRODUCER_FENCED instead of writing into a
        transaction that no longer exists.
        """
        plans = []
        for md in self.transactions.values():
            if (
                md.state is TxnState.ONGOING
                and now_ms >= md.start_timestamp_ms + md.timeout_ms
                and md.producer_epoch < MAX_EPOCH
            ):
                md.producer_epoch += 1
                md.last_producer_epoch = -1
                plans.append(self._prepare_end(md, commit=False, now_ms=now_ms))
        return plans

    # --- reload ---------------------------------------------------------------------------

    def restore(self, md: TransactionMetadata | None, transactional_id: str) -> None:
        """Apply one ``__transaction_state`` record (``None`` is a tombstone)."""
        if md is None:
            self.transactions.pop(transactional_id, None)
            return
        if md.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
            md.pending_markers = set(md.partitions)
        self.transactions[transactional_id] = md
        self.reserve_producer_ids_through(max(md.producer_id, md.last_producer_id))
