"""``streamclient broker``: run an embedded cluster until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import ssl
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
    security = parser.add_argument_group(
        "security", "SASL and TLS on every listener (SASL_PLAINTEXT, SSL or SASL_SSL)")
    security.add_argument("--sasl-user", action="append", default=[], metavar="NAME:PASSWORD",
                          type=_user, help="a SASL user (repeatable); PLAIN checks the "
                          "password, SCRAM gets salted credentials")
    security.add_argument("--sasl-mechanisms", default=None, metavar="LIST",
                          help="enabled mechanisms, comma-separated: PLAIN, SCRAM-SHA-256, "
                          "SCRAM-SHA-512, OAUTHBEARER (default with --sasl-user: PLAIN,"
                          "SCRAM-SHA-256,SCRAM-SHA-512)")
    security.add_argument("--reauth-ms", type=int, default=0, metavar="MS",
                          help="SASL session lifetime (connections.max.reauth.ms; 0: none)")
    security.add_argument("--ssl-certfile", default=None, metavar="PEM",
                          help="serve TLS with this certificate (chain)")
    security.add_argument("--ssl-keyfile", default=None, metavar="PEM",
                          help="the certificate's private key (default: in --ssl-certfile)")
    security.add_argument("--ssl-key-password", default=None, help="the key's password")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--verbose", "-v", action="store_true", help="log broker activity")
    parser.set_defaults(handler=run_broker)


def _user(value: str) -> tuple[str, str]:
    name, sep, password = value.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:PASSWORD, got {value!r}")
    return name, password


def _security_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    mechanisms = args.sasl_mechanisms
    if mechanisms is None and args.sasl_user:
        mechanisms = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    if mechanisms:
        options["sasl_enabled_mechanisms"] = mechanisms
        options["sasl_users"] = dict(args.sasl_user)
    if args.reauth_ms:
        options["connections_max_reauth_ms"] = args.reauth_ms
    if args.ssl_keyfile and not args.ssl_certfile:
        raise _UsageError("--ssl-keyfile needs --ssl-certfile")
    if args.ssl_certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(args.ssl_certfile, args.ssl_keyfile,
                                    args.ssl_key_password)
        except (OSError, ssl.SSLError) as exc:
            raise _UsageError(f"cannot load the TLS certificate: {exc}") from None
        options["ssl_context"] = context
    return options


class _UsageError(Exception):
    pass


async def _serve(args: argparse.Namespace) -> None:
    cluster = EmbeddedCluster(
        args.nodes, host=args.host, port=args.port, log_dir=args.log_dir,
        default_partitions=args.partitions,
        default_replication_factor=args.replication_factor,
        auto_create_topics=not args.no_auto_create, **_security_options(args))
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with cluster:
            config = cluster.state.config
            if config.security_protocol != "PLAINTEXT":
                mechanisms = ", ".join(config.sasl_enabled_mechanisms)
                print(f"listeners: {config.security_protocol}"
                      + (f" ({mechanisms})" if mechanisms else ""), file=sys.stderr,
                      flush=True)
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
    except (KafkaError, _UsageError) as exc:
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
