"""``KafkaAdminClient``: :class:`~streamclient.admin.AIOKafkaAdminClient`, blocking.

Each call is one hop to the shared loop thread (admin calls are not hot), with the async
method's arguments, result and errors.  The async admin client has no background task, so
starting and closing it in different loop tasks is fine.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from streamclient.admin import AIOKafkaAdminClient
from streamclient.admin.config import AdminConfig
from streamclient.sync.portal import get_loop_thread

__all__ = ["KafkaAdminClient"]

P = ParamSpec("P")
R = TypeVar("R")


def _blocking(
    method: Callable[Concatenate[AIOKafkaAdminClient, P], Awaitable[R]],
) -> Callable[Concatenate[KafkaAdminClient, P], R]:
    """The blocking twin of an ``AIOKafkaAdminClient`` method (same signature and doc)."""
    name = method.__name__

    @functools.wraps(method)
    def call(self: KafkaAdminClient, *args: P.args, **kwargs: P.kwargs) -> R:
        bound = getattr(self._aio, name)
        return self._loop.call(functools.partial(bound, *args, **kwargs))

    return call


class KafkaAdminClient:
    """A blocking admin client: ``KafkaAdminClient(**kwargs)`` with aiokafka's admin
    keywords.  The constructor connects (bootstrap); ``close()`` or ``with`` releases it."""

    def __init__(self, **kwargs: Any) -> None:
        self._loop = get_loop_thread()
        self._aio = AIOKafkaAdminClient(**kwargs)
        self._loop.call(self._aio.start)

    @property
    def config(self) -> AdminConfig:
        return self._aio.config

    def close(self) -> None:
        self._loop.call(self._aio.close)

    def __enter__(self) -> KafkaAdminClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    create_topics = _blocking(AIOKafkaAdminClient.create_topics)
    delete_topics = _blocking(AIOKafkaAdminClient.delete_topics)
    create_partitions = _blocking(AIOKafkaAdminClient.create_partitions)
    list_topics = _blocking(AIOKafkaAdminClient.list_topics)
    describe_topics = _blocking(AIOKafkaAdminClient.describe_topics)
    describe_cluster = _blocking(AIOKafkaAdminClient.describe_cluster)
    describe_configs = _blocking(AIOKafkaAdminClient.describe_configs)
    alter_configs = _blocking(AIOKafkaAdminClient.alter_configs)
    incremental_alter_configs = _blocking(AIOKafkaAdminClient.incremental_alter_configs)
    describe_consumer_groups = _blocking(AIOKafkaAdminClient.describe_consumer_groups)
    list_consumer_groups = _blocking(AIOKafkaAdminClient.list_consumer_groups)
    find_coordinator = _blocking(AIOKafkaAdminClient.find_coordinator)
    list_consumer_group_offsets = _blocking(AIOKafkaAdminClient.list_consumer_group_offsets)
    delete_consumer_groups = _blocking(AIOKafkaAdminClient.delete_consumer_groups)
    alter_consumer_group_offsets = _blocking(AIOKafkaAdminClient.alter_consumer_group_offsets)
    delete_consumer_group_offsets = _blocking(AIOKafkaAdminClient.delete_consumer_group_offsets)
    delete_records = _blocking(AIOKafkaAdminClient.delete_records)
    list_offsets = _blocking(AIOKafkaAdminClient.list_offsets)
    describe_producers = _blocking(AIOKafkaAdminClient.describe_producers)
    list_transactions = _blocking(AIOKafkaAdminClient.list_transactions)
    describe_transactions = _blocking(AIOKafkaAdminClient.describe_transactions)

    def __repr__(self) -> str:
        return f"<KafkaAdminClient {self._aio!r}>"
