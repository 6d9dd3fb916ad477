"""Per-partition log settings, read from a topic's Kafka configs (``segment.bytes``, …)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from streamclient.errors import KafkaError

_INT64_MAX = (1 << 63) - 1

# Kafka's defaults (broker and topic level), so a topic created without configs behaves
# like one on a stock Kafka 4 broker.
DEFAULTS: dict[str, str] = {
    "segment.bytes": str(1 << 30),
    "segment.ms": str(7 * 24 * 3600 * 1000),
    "max.message.bytes": "1048588",
    "message.timestamp.type": "CreateTime",
    "message.timestamp.before.max.ms": str(_INT64_MAX),
    "message.timestamp.after.max.ms": "3600000",
    "min.insync.replicas": "1",
    "index.interval.bytes": "4096",
    "retention.ms": str(7 * 24 * 3600 * 1000),
    "retention.bytes": "-1",
    "cleanup.policy": "delete",
    # read by the disk store (fsync) and compaction
    "flush.messages": str(_INT64_MAX),
    "flush.ms": str(_INT64_MAX),
    "delete.retention.ms": "86400000",
    "min.compaction.lag.ms": "0",
}


class LogConfigError(KafkaError, ValueError):
    """A topic config value the log cannot use (wrong type or out of range)."""


def _int(configs: Mapping[str, str | None], name: str, minimum: int) -> int:
    raw = configs.get(name)
    if raw is None:
        raw = DEFAULTS[name]
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise LogConfigError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise LogConfigError(f"{name}={value} is below its minimum {minimum}")
    return value


@dataclass(frozen=True)
class LogConfig:
    segment_bytes: int = int(DEFAULTS["segment.bytes"])
    segment_ms: int = int(DEFAULTS["segment.ms"])
    max_message_bytes: int = int(DEFAULTS["max.message.bytes"])
    log_append_time: bool = False
    timestamp_before_max_ms: int = _INT64_MAX
    timestamp_after_max_ms: int = int(DEFAULTS["message.timestamp.after.max.ms"])
    min_insync_replicas: int = 1
    index_interval_bytes: int = int(DEFAULTS["index.interval.bytes"])
    retention_ms: int = int(DEFAULTS["retention.ms"])
    retention_bytes: int = -1
    flush_messages: int = _INT64_MAX
    flush_ms: int = _INT64_MAX
    delete_retention_ms: int = int(DEFAULTS["delete.retention.ms"])
    min_compaction_lag_ms: int = 0

    @classmethod
    def from_configs(cls, configs: Mapping[str, str | None] | None = None) -> LogConfig:
        configs = configs or {}
        ts_type = configs.get("message.timestamp.type") or DEFAULTS["message.timestamp.type"]
        if ts_type not in ("CreateTime", "LogAppendTime"):
            raise LogConfigError(
                f"message.timestamp.type={ts_type!r}: expected CreateTime or LogAppendTime")
        return cls(
            # Kafka's minimum segment is 14 bytes (one empty batch header would not fit a
            # record), but tests use tiny segments to force rolling: accept anything >= 1.
            segment_bytes=_int(configs, "segment.bytes", 1),
            segment_ms=_int(configs, "segment.ms", 1),
            max_message_bytes=_int(configs, "max.message.bytes", 0),
            log_append_time=ts_type == "LogAppendTime",
            timestamp_before_max_ms=_int(configs, "message.timestamp.before.max.ms", 0),
            timestamp_after_max_ms=_int(configs, "message.timestamp.after.max.ms", 0),
            min_insync_replicas=_int(configs, "min.insync.replicas", 1),
            index_interval_bytes=_int(configs, "index.interval.bytes", 0),
            retention_ms=_int(configs, "retention.ms", -1),
            retention_bytes=_int(configs, "retention.bytes", -1),
            flush_messages=_int(configs, "flush.messages", 1),
            flush_ms=_int(configs, "flush.ms", 0),
            delete_retention_ms=_int(configs, "delete.retention.ms", 0),
            min_compaction_lag_ms=_int(configs, "min.compaction.lag.ms", 0),
        )
