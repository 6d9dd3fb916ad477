"""``streamclient demo``: an idempotent producer and a consumer group on an embedded cluster.

The demo starts a 3-node embedded cluster, a consumer group of three members using the
cooperative-sticky assignor and an idempotent producer; midway it stops one member, so
the group rebalances incrementally while records keep flowing.  It ends by proving that
every record produced was consumed, and prints the throughput it saw.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import sniffio

from streamclient.abc import ConsumerRebalanceListener
from streamclient.broker.cluster import EmbeddedCluster
from streamclient.consumer.assignors import CooperativeStickyAssignor
from streamclient.consumer.consumer import AIOKafkaConsumer
from streamclient.errors import IllegalStateError
from streamclient.producer.producer import AIOKafkaProducer
from streamclient.structs import TopicPartition

__all__ = ["DemoSummary", "register", "run_demo"]

TOPIC = "demo-events"
GROUP = "demo-group"


@dataclass
class MemberReport:
    name: str
    consumed: int = 0
    rebalances: int = 0
    stopped_midway: bool = False
    final_assignment: list[TopicPartition] = field(default_factory=list)


@dataclass
class DemoSummary:
    bootstrap_servers: str
    records: int
    partitions: int
    produce_seconds: float
    consume_seconds: float
    distinct_consumed: int
    deliveries: int
    members: list[MemberReport]
    backend: str

    @property
    def missing(self) -> int:
        return self.records - self.distinct_consumed

    @property
    def redelivered(self) -> int:
        return self.deliveries - self.distinct_consumed

    @property
    def ok(self) -> bool:
        return self.missing == 0

    def render(self) -> str:
        def rate(n: int, seconds: float) -> str:
            return f"{n / seconds:,.0f} records/s" if seconds > 0 else "n/a"

        lines = [
            f"streamclient demo on {self.backend}: 3-node embedded cluster at "
            f"{self.bootstrap_servers}",
            f"  topic {TOPIC!r}: {self.partitions} partitions, replication factor 3",
            f"  produced {self.records:,} records (idempotent, acks=all) in "
            f"{self.produce_seconds:.2f} s: {rate(self.records, self.produce_seconds)}",
            f"  consumer group {GROUP!r} with cooperative-sticky, {len(self.members)} members:",
        ]
        for member in self.members:
            note = " (stopped midway; its partitions moved to the others)" \
                if member.stopped_midway else ""
            parts = ", ".join(str(tp.partition) for tp in member.final_assignment) or "none"
            lines.append(
                f"    {member.name}: {member.consumed:,} records, {member.rebalances} "
                f"assignment changes, partitions when it left: [{parts}]{note}")
        lines += [
            f"  consumed {self.distinct_consumed:,} of {self.records:,} distinct records in "
            f"{self.consume_seconds:.2f} s ({rate(self.deliveries, self.consume_seconds)}); "
            f"redelivered after the rebalance: {self.redelivered:,}",
            "  every record consumed: " + ("yes" if self.ok else f"NO, {self.missing:,} missing"),
        ]
        return "\n".join(lines)


class _Listener(ConsumerRebalanceListener):
    """Counts each member's assignment changes, to show the incremental rebalance."""

    def __init__(self, report: MemberReport) -> None:
        self.report = report

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if revoked:
            self.report.rebalances += 1

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if assigned:
            self.report.rebalances += 1

    def on_partitions_lost(self, lost: list[TopicPartition]) -> None:
        self.on_partitions_revoked(lost)


class _Tally:
    """What the group has consumed so far, shared by the members' tasks."""

    def __init__(self, records: int) -> None:
        self.records = records
        self.seen = bytearray(records)
        self.distinct = 0
        self.deliveries = 0
        self.all_consumed = anyio.Event()
        self.halfway = anyio.Event()
        self.first_record_at: float | None = None
        self.last_record_at = 0.0

    def add(self, value: bytes) -> None:
        index = int(value.split(b":", 1)[0])
        now = time.perf_counter()
        if self.first_record_at is None:
            self.first_record_at = now
        self.last_record_at = now
        self.deliveries += 1
        if not self.seen[index]:
            self.seen[index] = 1
            self.distinct += 1
            if self.distinct >= self.records // 2:
                self.halfway.set()
            if self.distinct == self.records:
                self.all_consumed.set()


async def _member(bootstrap: str, report: MemberReport, tally: _Tally,
                  leave: anyio.Event | None = None, left: anyio.Event | None = None) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=GROUP, client_id=report.name,
        auto_offset_reset="earliest", enable_auto_commit=False,
        partition_assignment_strategy=(CooperativeStickyAssignor,),
        session_timeout_ms=6000, heartbeat_interval_ms=500)
    consumer.subscribe([TOPIC], listener=_Listener(report))
    await consumer.start()
    try:
        while not tally.all_consumed.is_set():
            if leave is not None and leave.is_set():
                report.stopped_midway = True
                break
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            for records in batches.values():
                for record in records:
                    if record.value is None:
                        # only the demo writes this topic, and never a null value
                        raise IllegalStateError(
                            f"a record without a value at {record.topic}-"
                            f"{record.partition}@{record.offset}")
                    tally.add(record.value)
                report.consumed += len(records)
            if batches:
                # commit what this member processed, so a rebalance redelivers little
                await consumer.commit()
    finally:
        # what the member owned when it left the loop; stop() revokes everything after it
        report.final_assignment = sorted(consumer.assignment())
        await consumer.stop()
        if left is not None:
            left.set()


async def _produce(bootstrap: str, tally: _Tally, leave: anyio.Event,
                   left: anyio.Event) -> float:
    """Produce the first half, let one member leave once it is consumed, then the rest.

    Returns the seconds spent producing, not counting the wait for the member to leave.
    """
    payload = b"x" * 80
    half = tally.records // 2
    spent = 0.0
    async with AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                acks="all", linger_ms=5) as producer:
        for start, stop in ((0, half), (half, tally.records)):
            started = time.perf_counter()
            for index in range(start, stop):
                await producer.send(TOPIC, value=b"%d:" % index + payload,
                                    key=b"key-%d" % (index % 997))
            await producer.flush()
            spent += time.perf_counter() - started
            if start == 0:
                await tally.halfway.wait()
                leave.set()
                await left.wait()
    return spent


async def run_demo(records: int = 30_000, partitions: int = 6, members: int = 3,
                   timeout_s: float = 120.0) -> DemoSummary:
    """Run the demo and return its summary; raises TimeoutError if it does not finish."""
    if records < 2 or partitions < 1 or members < 2:
        raise ValueError("the demo needs at least 2 records, 1 partition and 2 members")
    tally = _Tally(records)
    reports = [MemberReport(f"member-{i + 1}") for i in range(members)]
    async with EmbeddedCluster(3, group_initial_rebalance_delay_ms=0) as cluster:
        cluster.state.create_topic(TOPIC, partitions, 3)
        bootstrap = cluster.bootstrap_servers
        with anyio.fail_after(timeout_s):
            leave, left = anyio.Event(), anyio.Event()
            async with anyio.create_task_group() as group:
                for report in reports[:-1]:
                    group.start_soon(_member, bootstrap, report, tally)
                group.start_soon(_member, bootstrap, reports[-1], tally, leave, left)
                produce_seconds = await _produce(bootstrap, tally, leave, left)
                await tally.all_consumed.wait()
    consume_seconds = tally.last_record_at - (tally.first_record_at or tally.last_record_at)
    return DemoSummary(
        bootstrap_servers=bootstrap, records=records, partitions=partitions,
        produce_seconds=produce_seconds, consume_seconds=consume_seconds,
        distinct_consumed=tally.distinct, deliveries=tally.deliveries, members=reports,
        backend=sniffio.current_async_library())


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="produce and consume through an embedded 3-node cluster",
        description=__doc__)
    parser.add_argument("--records", type=int, default=30_000, help="records to produce")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the topic")
    parser.add_argument("--members", type=int, default=3, help="consumer group members")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="give up after this many seconds")
    parser.set_defaults(handler=_main)


def _main(args: argparse.Namespace) -> int:
    try:
        summary = anyio.run(
            lambda: run_demo(args.records, args.partitions, args.members, args.timeout),
            backend=args.backend)
    except TimeoutError:
        print(f"the demo did not finish within {args.timeout:g} s", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"streamclient demo: {exc}", file=sys.stderr)
        return 2
    print(summary.render())
    return 0 if summary.ok else 1
