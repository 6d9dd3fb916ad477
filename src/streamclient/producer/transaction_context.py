"""``TransactionContext``: what ``AIOKafkaProducer.transaction()`` returns (aiokafka's)."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamclient.producer.producer import AIOKafkaProducer

__all__ = ["TransactionContext"]


class TransactionContext:
    """``async with producer.transaction():`` begins a transaction, commits it when the
    block ends normally and aborts it when the block raises (unless the producer is in
    a fatal state, where an abort cannot succeed either).  The block's exception always
    propagates."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def __aenter__(self) -> TransactionContext:
        await self._producer.begin_transaction()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        producer = self._producer
        if exc_type is None:
            await producer.commit_transaction()
        elif not producer.has_fatal_error:
            await producer.abort_transaction()
