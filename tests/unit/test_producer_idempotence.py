"""Idempotence: every rule of handle_produce_error, epoch bumps, and a model-based check
that retries and reordered responses never leave a gap or a reordering on the broker."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streamclient.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    ProducerFencedError,
)
from streamclient.producer.accumulator import LeaderMap, RecordAccumulator
from streamclient.producer.batch import ProducerBatch
from streamclient.producer.config import ProducerConfig
from streamclient.producer.idempotence import (
    MAX_EPOCH,
    Action,
    IdempotenceState,
    handle_produce_error,
)
from streamclient.producer.transactions import TransactionManager
from streamclient.structs import TopicPartition

T0, T1 = TopicPartition("t", 0), TopicPartition("t", 1)
CLUSTER = LeaderMap({T0: 1, T1: 1})
VALUE = b"v" * 100

NOT_LEADER = 6
REQUEST_TIMED_OUT = 7
NETWORK_EXCEPTION = 13
MESSAGE_TOO_LARGE = 10
OUT_OF_ORDER = 45
DUPLICATE = 46
INVALID_PRODUCER_EPOCH = 47
UNKNOWN_PRODUCER_ID = 59
INVALID_RECORD = 87
PRODUCER_FENCED = 90


class Setup:
    def __init__(self, *, transactional: bool = False, retries: int = 2**31 - 1) -> None:
        kwargs: dict[str, object] = {"max_batch_size": 512}
        if transactional:
            kwargs["transactional_id"] = "tx"
        config = ProducerConfig(**kwargs)
        self.idem = IdempotenceState(retries=retries, delivery_timeout_ms=config.delivery_timeout)
        self.txn = None
        if transactional:
            self.txn = TransactionManager("tx", 60000, self.idem)
            self.txn.state = self.txn.state.IN_TRANSACTION
            self.txn.partitions_in_transaction |= {T0, T1}
            self.txn.transaction_started = True
        self.idem.set_producer_id_and_epoch(42, 3)
        self.acc = RecordAccumulator(config, idempotence=self.idem, transactions=self.txn,
                                     rng=random.Random(1))

    def batches(self, count: int, records: int = 4, tp: TopicPartition = T0) -> list[ProducerBatch]:
        out = []
        for _ in range(count):
            for _ in range(records):
                self.acc.append(tp.topic, tp.partition, 0, None, VALUE, (), CLUSTER, 0)
            out.append(self.acc.drain(CLUSTER, {1}, 600, 0)[1][0])
        return out

    def decide(self, batch: ProducerBatch, code: int, lso: int = -1, now_ms: int = 1):
        return self.idem.handle_produce_error(batch, code, lso, now_ms)


# --- the table of §2.6 -------------------------------------------------------------------

# (error, transactional, setup, expected action, epoch bump requested)
CASES = [
    ("not leader: retriable, refresh metadata", NOT_LEADER, False, "first", Action.RETRY, False),
    ("request timeout: retriable", REQUEST_TIMED_OUT, False, "first", Action.RETRY, False),
    ("disconnect: retriable", NETWORK_EXCEPTION, True, "first", Action.RETRY, False),
    ("duplicate sequence: success", DUPLICATE, False, "first", Action.COMPLETE, False),
    ("too large, several records: split", MESSAGE_TOO_LARGE, False, "first", Action.SPLIT,
     False),
    ("invalid record: fatal for the batch", INVALID_RECORD, False, "first", Action.FAIL, False),
    ("unknown pid, no log start: retry", UNKNOWN_PRODUCER_ID, False, "lso-1", Action.RETRY,
     False),
    ("unknown pid, log truncated: idempotent bumps", UNKNOWN_PRODUCER_ID, False, "truncated",
     Action.RETRY, True),
    ("unknown pid, log truncated: txn renumbers", UNKNOWN_PRODUCER_ID, True, "truncated",
     Action.RETRY, False),
    ("unknown pid otherwise: idempotent bumps", UNKNOWN_PRODUCER_ID, False, "kept",
     Action.RETRY, True),
    ("unknown pid otherwise: txn fails", UNKNOWN_PRODUCER_ID, True, "kept", Action.FAIL, False),
    ("out of order, not next: retry", OUT_OF_ORDER, False, "second", Action.RETRY, False),
    ("out of order, not next: txn retry too", OUT_OF_ORDER, True, "second", Action.RETRY,
     False),
    ("out of order, next: idempotent bumps", OUT_OF_ORDER, False, "first", Action.RETRY, True),
    ("out of order, next: txn fails", OUT_OF_ORDER, True, "first", Action.FAIL, False),
    ("invalid epoch on produce: fail", INVALID_PRODUCER_EPOCH, False, "first", Action.FAIL,
     False),
    ("producer fenced: fail", PRODUCER_FENCED, True, "first", Action.FAIL, False),
]


@pytest.mark.parametrize("name, code, transactional, setup, action, bump", CASES,
                         ids=[c[0] for c in CASES])
def test_produce_error_rules(name: str, code: int, transactional: bool, setup: str,
                             action: Action, bump: bool) -> None:
    s = Setup(transactional=transactional)
    first, second = s.batches(2)
    batch, lso = first, 0
    if setup == "second":
        batch = second
    elif setup == "lso-1":
        lso = -1
    elif setup in ("truncated", "kept"):
        # the first batch was acked at offsets 100..103; the second gets the error
        s.acc.complete_batch(first, 100)
        batch = second
        lso = 200 if setup == "truncated" else 50
    decision = s.decide(batch, code, lso)
    assert decision.action is action, name
    assert s.idem.epoch_bump_required is bump
    if bump:
        assert T0 in s.idem.partitions_to_rewrite
    if code == NOT_LEADER:
        assert decision.refresh_metadata
    if setup == "truncated" and transactional:
        # renumbered from 0 under the same epoch, and marked as reset
        assert second.base_sequence == 0 and second.sequence_has_been_reset
    if action is Action.FAIL:
        assert isinstance(decision.error, KafkaError)


def test_single_record_too_large_fails() -> None:
    s = Setup()
    (batch,) = s.batches(1, records=1)
    decision = s.decide(batch, MESSAGE_TOO_LARGE)
    assert decision.action is Action.FAIL
    assert isinstance(decision.error, MessageSizeTooLargeError)


def test_no_retry_past_delivery_timeout_or_retries() -> None:
    s = Setup()
    (batch,) = s.batches(1)
    assert s.decide(batch, NOT_LEADER, now_ms=s.idem.delivery_timeout_ms).action is Action.FAIL
    s2 = Setup(retries=1)
    (batch2,) = s2.batches(1)
    s2.acc.reenqueue(batch2, 0)
    decision = s2.decide(batch2, NOT_LEADER)
    assert decision.action is Action.FAIL and not decision.adjust_sequences


def test_without_idempotence_only_retriable_codes_retry() -> None:
    s = Setup()
    (batch,) = s.batches(1)
    kwargs = {"retries": 10, "delivery_timeout_ms": 120000}
    assert handle_produce_error(batch, NOT_LEADER, -1, 0, **kwargs).action is Action.RETRY
    assert handle_produce_error(batch, OUT_OF_ORDER, -1, 0, **kwargs).action is Action.FAIL
    assert handle_produce_error(batch, DUPLICATE, -1, 0, **kwargs).action is Action.COMPLETE


def test_failed_batch_with_invalid_epoch_bumps_idempotent_producer() -> None:
    s = Setup()
    first, _ = s.batches(2)
    decision = s.decide(first, INVALID_PRODUCER_EPOCH)
    s.acc.fail_batch(first, decision.error, decision.adjust_sequences)
    assert s.idem.epoch_bump_required and not s.idem.has_fatal_error


def test_failed_batch_in_transaction_is_abortable_and_shifts_sequences() -> None:
    s = Setup(transactional=True)
    first, second, third = s.batches(3)
    decision = s.decide(second, INVALID_RECORD)
    s.acc.fail_batch(second, decision.error, decision.adjust_sequences)
    assert s.txn is not None and s.txn.has_abortable_error
    assert [first.base_sequence, third.base_sequence] == [0, 4]
    assert s.idem.next_sequence(T0) == 8


def test_fenced_is_fatal() -> None:
    s = Setup(transactional=True)
    (batch,) = s.batches(1)
    decision = s.decide(batch, PRODUCER_FENCED)
    s.acc.fail_batch(batch, decision.error, decision.adjust_sequences)
    assert isinstance(decision.error, ProducerFencedError)
    assert s.txn is not None and s.txn.has_fatal_error
    assert s.idem.has_fatal_error
    s2 = Setup()
    (batch2,) = s2.batches(1)
    s2.acc.fail_batch(batch2, ProducerFencedError(), True)
    assert s2.idem.fatal_error is not None


# --- epoch bumps -------------------------------------------------------------------------


def test_epoch_bump_rewrites_in_flight_sequences() -> None:
    s = Setup()
    first, second, third = s.batches(3)
    s.acc.complete_batch(first, 100)  # sequences 0..3 acked
    other = s.batches(1, tp=T1)[0]
    decision = s.decide(second, UNKNOWN_PRODUCER_ID, lso=50)
    assert decision.action is Action.RETRY
    s.acc.reenqueue(second, 1)
    assert s.idem.bump_epoch_and_reset_id_if_needed() is False
    assert s.idem.producer_id_and_epoch == (42, 4)
    assert [(b.producer_epoch, b.base_sequence) for b in (second, third)] == [(4, 0), (4, 4)]
    assert second.sequence_has_been_reset and third.sequence_has_been_reset
    assert s.idem.next_sequence(T0) == 8 and s.idem.last_acked_sequence(T0) == -1
    # the untouched partition keeps its old epoch until its batches are done
    assert (other.producer_epoch, other.base_sequence) == (3, 0)
    assert s.idem.has_stale_producer_id_and_epoch(T1)
    s.acc.complete_batch(other, 10)
    for _ in range(4):
        s.acc.append("t", 1, 0, None, VALUE, (), CLUSTER, 0)
    new = s.acc.drain(CLUSTER, {1}, 10**6, 1000)[1]
    fresh = next(b for b in new if b.topic_partition == T1)
    assert (fresh.producer_epoch, fresh.base_sequence) == (4, 0)


def test_bump_at_max_epoch_resets_producer_id() -> None:
    s = Setup()
    s.idem.set_producer_id_and_epoch(42, MAX_EPOCH)
    s.idem.request_epoch_bump(T0)
    assert s.idem.bump_epoch_and_reset_id_if_needed() is True
    assert not s.idem.has_producer_id


def test_unresolved_sequence_blocks_new_batches_then_resolves() -> None:
    s = Setup()
    first, second = s.batches(2)
    s.acc.reenqueue(second, 0)
    assert s.acc.drain(CLUSTER, {1}, 10**6, 0) == {}  # second waits for first
    s.acc.expired_batches(0)  # nothing old yet
    s.idem.mark_sequence_unresolved(second)
    s.acc.append("t", 0, 0, None, VALUE, (), CLUSTER, 0)
    # a new batch may not go while sequence 8 is in doubt
    s.idem.remove_in_flight(second)
    s.acc._topics["t"].batches[0].popleft()
    assert s.acc.drain(CLUSTER, {1}, 10**6, 1000) == {}
    s.acc.complete_batch(first, 0)  # last acked 3, next is 8: a real gap
    s.idem.maybe_resolve_sequences()
    assert s.idem.epoch_bump_required and not s.idem.unresolved
    s.idem.bump_epoch_and_reset_id_if_needed()
    drained = s.acc.drain(CLUSTER, {1}, 10**6, 1000)[1]
    assert (drained[0].producer_epoch, drained[0].base_sequence) == (4, 0)


# --- model-based: the broker never sees a gap or a reordering ----------------------------


@dataclass
class Broker:
    """Kafka's acceptance rule for one producer id, per partition."""

    epoch: dict[TopicPartition, int] = field(default_factory=dict)
    last_seq: dict[TopicPartition, int] = field(default_factory=dict)
    written: dict[TopicPartition, list[tuple[int, int, int]]] = field(default_factory=dict)
    log: dict[TopicPartition, list[bytes]] = field(default_factory=dict)

    def produce(self, batch: ProducerBatch) -> tuple[int, int]:
        tp = batch.topic_partition
        epoch, seq, last = batch.producer_epoch, batch.base_sequence, batch.last_sequence
        current = self.epoch.get(tp, -1)
        if epoch < current:
            return INVALID_PRODUCER_EPOCH, -1
        if (epoch, seq, last) in self.written.get(tp, []):
            return DUPLICATE, -1
        expected = 0 if epoch > current else self.last_seq[tp] + 1
        if seq != expected:
            return OUT_OF_ORDER, -1
        self.epoch[tp], self.last_seq[tp] = epoch, last
        self.written.setdefault(tp, []).append((epoch, seq, last))
        log = self.log.setdefault(tp, [])
        base = len(log)
        log.extend(r.value for r in _records(batch))
        return 0, base


def _records(batch: ProducerBatch) -> list:
    from streamclient.protocol.records import RecordBatch

    return list(RecordBatch(batch.build()))


ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 1), st.integers(1, 12)),
        st.tuples(st.just("drain"), st.sampled_from(["ok", "drop", "lost_ack"])),
        st.tuples(st.just("respond"), st.integers(0, 10)),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(actions=ACTIONS, seed=st.integers(0, 2**16))
# a dropped first batch makes the next one out of order; a lost ack makes a duplicate
@example(actions=[("append", 0, 12), ("drain", "drop"), ("drain", "ok"),
                  ("drain", "lost_ack"), ("respond", 1), ("respond", 0), ("respond", 0)],
         seed=3)
@example(actions=[("append", 0, 12), ("append", 1, 12), ("drain", "lost_ack"),
                  ("drain", "drop"), ("drain", "ok"), ("respond", 3), ("respond", 1),
                  ("drain", "ok"), ("respond", 2)], seed=1)
def test_retries_and_reordering_never_break_sequences(actions: list, seed: int) -> None:
    s = Setup()
    broker = Broker()
    sent: dict[TopicPartition, list[bytes]] = {T0: [], T1: []}
    handles = []
    # requests whose responses are still to be read: (batch, error code, base offset)
    pending: list[tuple[ProducerBatch, int, int]] = []
    counter = 0
    now = 0

    def append(tp: TopicPartition, n: int) -> None:
        nonlocal counter
        for _ in range(n):
            value = b"r%06d" % counter + b"." * 93  # about four records per batch
            counter += 1
            handle = s.acc.append("t", tp.partition, 0, None, value, (), CLUSTER, now).future
            sent[tp].append(value)
            handles.append((tp, value, handle))

    def drain(fate: str) -> None:
        s.idem.maybe_resolve_sequences()
        s.idem.bump_epoch_and_reset_id_if_needed()
        if len(pending) >= 5:
            return
        for batch in s.acc.drain(CLUSTER, {1}, 700, now).get(1, []):
            if fate == "drop":  # never reached the broker
                pending.append((batch, NETWORK_EXCEPTION, -1))
                continue
            code, base = broker.produce(batch)
            if fate == "lost_ack" and code == 0:
                code = REQUEST_TIMED_OUT  # written, but the client never hears so
            pending.append((batch, code, base))

    def respond(index: int) -> None:
        batch, code, base = pending.pop(index % len(pending))
        if code == 0:
            s.acc.complete_batch(batch, base)
            return
        decision = s.decide(batch, code, -1, now)
        if decision.action is Action.RETRY:
            s.acc.reenqueue(batch, now)
        elif decision.action is Action.COMPLETE:
            s.acc.complete_batch(batch, -1)
        else:
            raise AssertionError(f"{batch!r} failed with {code}: {decision}")

    for action in actions:
        now += 200  # past any backoff: the model is about order, not time
        if action[0] == "append":
            append(T0 if action[1] == 0 else T1, action[2])
        elif action[0] == "drain":
            drain(action[1])
        elif pending:
            respond(action[1])
    # settle: everything is delivered in the end
    for _ in range(500):
        if not s.acc.has_incomplete():
            break
        now += 2000
        if pending:
            respond(seed)
        else:
            drain("ok")
    assert not s.acc.has_incomplete()
    for tp in (T0, T1):
        assert broker.log.get(tp, []) == sent[tp]  # no gap, no duplicate, no reordering
    for tp, value, handle in handles:
        meta = handle.value()
        if meta.offset >= 0:
            assert broker.log[tp][meta.offset] == value

