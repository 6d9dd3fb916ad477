"""File names and binary/text formats of the disk store, laid out as Kafka lays out a log dir.

::

    LOG_DIR/
      .kafka_cleanshutdown              written on close, removed on open (crash detection)
      cluster-metadata.json             topics, ids, replicas, configs, leader epochs
      log-start-offset-checkpoint       "0", count, then "topic partition offset" lines
      TOPIC-PARTITION/
        partition.metadata              "version: 0" / "topic_id: <base64 uuid>"
        leader-epoch-checkpoint         "0", count, then "epoch start_offset" lines
        00000000000000000000.log        record batches exactly as on the wire
        00000000000000000000.index      (relative offset int32, position int32) entries
        00000000000000000000.timeindex  (timestamp int64, relative offset int32) entries

Index files hold only whole entries (Kafka preallocates and trims them; here they grow
entry by entry).  Compaction writes ``*.cleaned`` files, renames them ``*.swap`` once
complete, then replaces the old segments; recovery finishes or discards that work.
"""

from __future__ import annotations

import base64
import os
import struct
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
SEGMENT_SUFFIXES = (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX)
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
DELETED_SUFFIX = ".deleted"

CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
CLUSTER_METADATA_FILE = "cluster-metadata.json"
LOG_START_CHECKPOINT_FILE = "log-start-offset-checkpoint"
PARTITION_METADATA_FILE = "partition.metadata"
LEADER_EPOCH_CHECKPOINT_FILE = "leader-epoch-checkpoint"

OFFSET_ENTRY = struct.Struct(">ii")
TIME_ENTRY = struct.Struct(">qi")
_CHECKPOINT_VERSION = 0


class DiskFormatError(ValueError):
    """A metadata or checkpoint file that cannot be parsed."""


def segment_stem(base_offset: int) -> str:
    return f"{base_offset:020d}"


def segment_paths(directory: Path, base_offset: int, suffix: str = "") -> tuple[Path, Path, Path]:
    stem = segment_stem(base_offset)
    log_path, index_path, time_path = (directory / f"{stem}{ext}{suffix}"
                                       for ext in SEGMENT_SUFFIXES)
    return log_path, index_path, time_path


def partition_dir_name(topic: str, partition: int) -> str:
    return f"{topic}-{partition}"


def parse_partition_dir(name: str) -> tuple[str, int] | None:
    """``("t", 3)`` for ``t-3``; None for anything that is not a partition folder."""
    topic, sep, index = name.rpartition("-")
    if not sep or not topic or not index.isdigit():
        return None
    return topic, int(index)


# -- index entries -------------------------------------------------------------------------

def encode_offset_entries(entries: Iterable[tuple[int, int]]) -> bytes:
    return b"".join(OFFSET_ENTRY.pack(rel, pos) for rel, pos in entries)


def decode_offset_entries(data: bytes) -> list[tuple[int, int]]:
    """Entries of an ``.index`` file; a trailing partial entry raises DiskFormatError."""
    if len(data) % OFFSET_ENTRY.size:
        raise DiskFormatError(f"offset index of {len(data)} bytes holds a partial entry")
    return [tuple(e) for e in OFFSET_ENTRY.iter_unpack(data)]


def encode_time_entries(entries: Iterable[tuple[int, int]]) -> bytes:
    """``(timestamp, relative offset)`` pairs as ``.timeindex`` bytes."""
    return b"".join(TIME_ENTRY.pack(ts, rel) for ts, rel in entries)


def decode_time_entries(data: bytes) -> list[tuple[int, int]]:
    if len(data) % TIME_ENTRY.size:
        raise DiskFormatError(f"time index of {len(data)} bytes holds a partial entry")
    return [tuple(e) for e in TIME_ENTRY.iter_unpack(data)]


# -- whole small files ------------------------------------------------------------------------

def write_atomically(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """Replace ``path`` with ``data`` so a crash leaves the old or the new file, never half."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def _checkpoint_lines(path: Path) -> list[str]:
    lines = path.read_text("utf-8").splitlines()
    if len(lines) < 2 or lines[0].strip() != str(_CHECKPOINT_VERSION):
        raise DiskFormatError(f"{path} is not a version-0 checkpoint file")
    try:
        count = int(lines[1])
    except ValueError:
        raise DiskFormatError(f"{path}: bad entry count {lines[1]!r}") from None
    entries = [line for line in lines[2:] if line.strip()]
    if len(entries) != count:
        raise DiskFormatError(f"{path}: {len(entries)} entries, header says {count}")
    return entries


def _checkpoint_text(lines: list[str]) -> bytes:
    return "".join(f"{line}\n" for line in [str(_CHECKPOINT_VERSION), str(len(lines)), *lines]).encode()


def write_offsets_checkpoint(path: Path, offsets: Mapping[tuple[str, int], int]) -> None:
    lines = [f"{topic} {partition} {offset}" for (topic, partition), offset in sorted(offsets.items())]
    write_atomically(path, _checkpoint_text(lines))


def read_offsets_checkpoint(path: Path) -> dict[tuple[str, int], int]:
    if not path.exists():
        return {}
    result: dict[tuple[str, int], int] = {}
    for line in _checkpoint_lines(path):
        try:
            topic, partition, offset = line.split()
            result[(topic, int(partition))] = int(offset)
        except ValueError:
            raise DiskFormatError(f"{path}: bad line {line!r}") from None
    return result


def write_epoch_checkpoint(path: Path, entries: Iterable[tuple[int, int]]) -> None:
    write_atomically(path, _checkpoint_text([f"{epoch} {offset}" for epoch, offset in entries]))


def read_epoch_checkpoint(path: Path) -> list[tuple[int, int]]:
    if not path.exists():
        return []
    result: list[tuple[int, int]] = []
    for line in _checkpoint_lines(path):
        try:
            epoch, offset = line.split()
            result.append((int(epoch), int(offset)))
        except ValueError:
            raise DiskFormatError(f"{path}: bad line {line!r}") from None
    return result


def topic_id_text(topic_id: uuid.UUID) -> str:
    """Kafka prints topic ids as url-safe base64 without padding."""
    return base64.urlsafe_b64encode(topic_id.bytes).decode("ascii").rstrip("=")


def parse_topic_id(text: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return uuid.UUID(bytes=raw)
    except ValueError:
        raise DiskFormatError(f"{text!r} is not a topic id") from None


def write_partition_metadata(path: Path, topic_id: uuid.UUID) -> None:
    write_atomically(path, f"version: 0\ntopic_id: {topic_id_text(topic_id)}\n".encode())


def read_partition_metadata(path: Path) -> uuid.UUID | None:
    if not path.exists():
        return None
    fields: dict[str, str] = {}
    for line in path.read_text("utf-8").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    if fields.get("version") != "0" or "topic_id" not in fields:
        raise DiskFormatError(f"{path} is not a version-0 partition.metadata file")
    return parse_topic_id(fields["topic_id"])
