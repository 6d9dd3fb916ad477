"""LogManager: partitions by (topic, partition), configs, deletion, retention ticks."""

from __future__ import annotations

import anyio
import pytest

from streamclient.broker.log import LogConfigError, LogManager
from streamclient.protocol.records import RecordBatchBuilder

NOW = 1_700_000_000_000


def batch(ts: int) -> bytes:
    builder = RecordBatchBuilder()
    builder.append(ts, b"k", b"v", [])
    return builder.build()


def test_create_is_idempotent_and_lookups_work() -> None:
    logs = LogManager()
    a = logs.create_partition("t", 0, {"segment.bytes": "100"})
    assert logs.create_partition("t", 0) is a
    assert a.config.segment_bytes == 100
    logs.create_partition("t", 1)
    logs.create_partition("u", 0)
    assert logs.partition("t", 1) is not None and logs.partition("t", 2) is None
    assert sorted(key for key, _ in logs.partitions()) == [("t", 0), ("t", 1), ("u", 0)]
    logs.delete_topic("t")
    assert [key for key, _ in logs.partitions()] == [("u", 0)]


def test_bad_configs_are_refused_with_a_typed_error() -> None:
    logs = LogManager()
    with pytest.raises(LogConfigError, match=r"segment\.bytes"):
        logs.create_partition("t", 0, {"segment.bytes": "lots"})
    with pytest.raises(LogConfigError, match=r"message\.timestamp\.type"):
        logs.create_partition("t", 0, {"message.timestamp.type": "WallClock"})
    log = logs.create_partition("t", 0)
    log.update_config({"message.timestamp.type": "LogAppendTime", "cleanup.policy": "compact"})
    assert log.config.log_append_time and log.cleanup_policy == "compact"


def test_tick_applies_retention_to_delete_topics_only() -> None:
    logs = LogManager()
    configs = {"segment.bytes": "1", "retention.ms": "1000"}
    deleting = logs.create_partition("d", 0, configs, now_ms=NOW)
    compacting = logs.create_partition("c", 0, {**configs, "cleanup.policy": "compact"}, now_ms=NOW)
    for log in (deleting, compacting):
        for _ in range(3):
            log.append(batch(NOW), now_ms=NOW)
    logs.tick(NOW + 5000)
    assert deleting.log_start_offset == 2
    assert compacting.log_start_offset == 0


@pytest.mark.anyio
async def test_deleting_a_topic_wakes_parked_fetches() -> None:
    logs = LogManager()
    log = logs.create_partition("t", 0)
    woke: list[bool] = []

    async def park() -> None:
        woke.append(await log.wait_for_data(30_000))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(park)
            await anyio.wait_all_tasks_blocked()
            logs.delete_topic("t")
    assert woke == [True]
