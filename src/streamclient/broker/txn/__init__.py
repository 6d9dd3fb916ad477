"""The embedded broker's transaction coordinator."""

from streamclient.broker.txn.coordinator import (
    TRANSACTION_STATE_TOPIC,
    TransactionCoordinator,
    TransactionCoordinatorConfig,
)
from streamclient.broker.txn.transaction import TransactionManager, TxnState

__all__ = [
    "TRANSACTION_STATE_TOPIC",
    "TransactionCoordinator",
    "TransactionCoordinatorConfig",
    "TransactionManager",
    "TxnState",
]
