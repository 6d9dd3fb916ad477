"""``cluster-metadata.json``: the topics of a log dir, so they come back after a restart.

Kafka keeps this in its KRaft metadata log; a single JSON snapshot is enough here::

    {"version": 1, "cluster_id": "...",
     "topics": [{"name": "t", "topic_id": "<base64>", "internal": false,
                 "configs": {"cleanup.policy": "compact"},
                 "partitions": [{"replicas": [0, 1], "leader_epoch": 3}]}]}

``configs`` are the explicit overrides only (broker defaults stay the broker's).  A
partition folder the snapshot does not know (a crash right after a topic was created)
is still brought back, from its ``partition.metadata``, with default configs.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from streamclient.broker.log.disk_files import (
    PARTITION_METADATA_FILE,
    DiskFormatError,
    parse_partition_dir,
    parse_topic_id,
    read_partition_metadata,
    topic_id_text,
    write_atomically,
)

log = logging.getLogger("streamclient.broker.log")

_VERSION = 1
_INTERNAL = {"__consumer_offsets", "__transaction_state"}


def snapshot(state: Any) -> dict[str, Any]:
    """The persistent part of ``state``'s topics (a plain, comparable dict)."""
    return {
        "version": _VERSION,
        "cluster_id": state.cluster_id,
        "topics": [
            {"name": meta.name, "topic_id": topic_id_text(meta.topic_id),
             "internal": meta.internal, "configs": dict(sorted(meta.configs.items())),
             "partitions": [{"replicas": list(p.replicas), "leader_epoch": p.leader_epoch}
                            for p in meta.partitions]}
            for meta in sorted(state.topics.values(), key=lambda m: m.name)
        ],
    }


def save(path: Path, snap: dict[str, Any]) -> None:
    write_atomically(path, json.dumps(snap, indent=1).encode())


def load(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        snap = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise DiskFormatError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(snap, dict) or snap.get("version") != _VERSION:
        raise DiskFormatError(f"{path} is not a version-{_VERSION} cluster metadata file")
    return snap


def restore(state: Any, snap: dict[str, Any] | None, log_dir: Path) -> list[str]:
    """Recreate the saved topics in ``state`` (their logs open from ``log_dir``)."""
    restored: list[str] = []
    known_nodes = sorted(state.nodes)
    if snap is not None:
        state.cluster_id = snap.get("cluster_id") or state.cluster_id
        for topic in snap.get("topics", []):
            name = topic["name"]
            if name in state.topics:
                continue
            replica_lists = [_known(p["replicas"], known_nodes) for p in topic["partitions"]]
            state.restore_topic(
                name, parse_topic_id(topic["topic_id"]), replica_lists,
                {str(k): str(v) for k, v in topic.get("configs", {}).items()},
                internal=bool(topic.get("internal")),
                leader_epochs=[int(p.get("leader_epoch", 0)) for p in topic["partitions"]])
            restored.append(name)
    restored.extend(_restore_orphans(state, log_dir, known_nodes))
    return restored


def _known(replicas: list[int], known_nodes: list[int]) -> list[int]:
    # a restart with fewer nodes keeps the replicas that still exist
    kept = [r for r in replicas if r in known_nodes]
    return kept or [known_nodes[0]]


def _restore_orphans(state: Any, log_dir: Path, known_nodes: list[int]) -> list[str]:
    found: dict[str, set[int]] = defaultdict(set)
    for path in log_dir.iterdir():
        parsed = parse_partition_dir(path.name) if path.is_dir() else None
        if parsed is not None and parsed[0] not in state.topics:
            found[parsed[0]].add(parsed[1])
    restored: list[str] = []
    for name, partitions in sorted(found.items()):
        topic_id: uuid.UUID | None = None
        for p in sorted(partitions):
            try:
                topic_id = read_partition_metadata(
                    log_dir / f"{name}-{p}" / PARTITION_METADATA_FILE)
            except DiskFormatError:
                topic_id = None
            if topic_id is not None:
                break
        count = max(partitions) + 1
        log.warning("bringing back topic %r from %d partition folder(s) with default configs",
                    name, len(partitions))
        internal = name in _INTERNAL
        state.restore_topic(
            name, topic_id or uuid.uuid4(),
            [[known_nodes[p % len(known_nodes)]] for p in range(count)],
            {"cleanup.policy": "compact"} if internal else {}, internal=internal)
        restored.append(name)
    return restored
