"""Interfaces an application implements and hands to the client (aiokafka's ``aiokafka.abc``)."""

from __future__ import annotations

import abc
from collections.abc import Awaitable

from streamclient.structs import TopicPartition

__all__ = ["AbstractTokenProvider", "ConsumerRebalanceListener"]


class ConsumerRebalanceListener(abc.ABC):
    """Callbacks run by a group consumer when its assignment changes.

    Each callback may be a plain method or a coroutine function; the consumer awaits
    what a callback returns if it is awaitable.  An exception raised by a callback is
    logged and does not stop the consumer, as in aiokafka.

    With the eager protocol every rebalance revokes the whole assignment before the
    new one is assigned.  With the cooperative protocol only the partitions that move
    are revoked.  When partitions are lost instead (the member was fenced or its
    session expired, so another member may already own them)
    :meth:`on_partitions_lost` runs; its default calls :meth:`on_partitions_revoked`,
    as the Java client does, so listeners written for aiokafka keep working.
    """

    @abc.abstractmethod
    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> Awaitable[None] | None:
        """Called before a rebalance takes partitions away; commit offsets here."""

    @abc.abstractmethod
    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> Awaitable[None] | None:
        """Called after a rebalance with the partitions now assigned to this member."""

    def on_partitions_lost(self, lost: list[TopicPartition]) -> Awaitable[None] | None:
        """Called when partitions were lost without an orderly revocation.

        Committing offsets for them would fail (another member may own them); override
        this to skip the work ``on_partitions_revoked`` does for a clean handover.
        """
        return self.on_partitions_revoked(lost)


class AbstractTokenProvider(abc.ABC):
    """Supplies OAuth bearer tokens for SASL/OAUTHBEARER.

    :meth:`token` is awaited at every authentication; an implementation should cache
    the token and refresh it before it expires rather than fetch one per call.
    """

    @abc.abstractmethod
    async def token(self) -> str:
        """Return the access token to send to the broker."""

    def extensions(self) -> dict[str, str]:
        """SASL extensions to send with the token (KIP-342); none by default."""
        return {}
