"""``streamclient broker``: run an embedded cluster until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

import anyio

from streamclient.broker.cluster import EmbeddedCluster
from streamclient.errors import KafkaError

__all__ = ["register", "run_broker"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "broker", help="run an embedded Kafka-compatible cluster",
        description="Run an in-process Kafka-compatible cluster. Node i listens on PORT+i "
                    "(PORT 0 picks free ports). The bootstrap address is printed on one "
                    "line once every node listens; SIGINT or SIGTERM stops it.")
    parser.add_argument("--nodes", type=int, default=1, help="number of nodes (default 1)")
    parser.add_argument("--port", type=int, default=9092,
                        help="port of node 0; node i uses PORT+i (default 9092)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--log-dir", default=None, help="keep logs on disk in this directory")
    parser.add_argument("--partitions", type=int, default=1,
                        help="partitions of auto-created topics (num.partitions)")
    parser.add_argument("--replication-factor", type=int, default=1,
                        help="replication factor of auto-created topics")
    parser.add_argument("--no-auto-create", action="store_true",
                        help="do not create topics on first use")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--verbose", "-v", action="store_true", help="log broker activity")
    parser.set_defaults(handler=run_broker)


async def _serve(args: argparse.Namespace) -> None:
    cluster = EmbeddedCluster(
        args.nodes, host=args.host, port=args.port, log_dir=args.log_dir,
        default_partitions=args.partitions,
        default_replication_factor=args.replication_factor,
        auto_create_topics=not args.no_auto_create)
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with cluster:
            print(cluster.bootstrap_servers, flush=True)
            async for signum in signals:
                print(f"received {signal.Signals(signum).name}, stopping", file=sys.stderr,
                      flush=True)
                break


def run_broker(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        anyio.run(_serve, args, backend=args.backend)
    except KafkaError as exc:
        print(f"streamclient broker: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"streamclient broker: cannot listen: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # asyncio's runner can turn the SIGINT we already handled into a late
        # KeyboardInterrupt while it closes the loop; the cluster has stopped by then
        return 0
    return 0
