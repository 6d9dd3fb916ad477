"""The admin client: aiokafka's ``AIOKafkaAdminClient`` and its argument classes (the
import path ``aiokafka.admin`` has), plus the Java admin's extras and their results."""

from .client import AIOKafkaAdminClient
from .config import AdminConfig, AdminConfigError
from .models import (
    AlterConfigOp,
    AlterConfigOpType,
    ConfigResource,
    ConfigResourceType,
    ListOffsetsResultInfo,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    PartitionDescription,
    ProducerState,
    RecordsToDelete,
    TopicDescription,
    TransactionDescription,
    TransactionListing,
)

__all__ = [
    "AIOKafkaAdminClient",
    "AdminConfig",
    "AdminConfigError",
    "AlterConfigOp",
    "AlterConfigOpType",
    "ConfigResource",
    "ConfigResourceType",
    "ListOffsetsResultInfo",
    "NewPartitions",
    "NewTopic",
    "OffsetSpec",
    "PartitionDescription",
    "ProducerState",
    "RecordsToDelete",
    "TopicDescription",
    "TransactionDescription",
    "TransactionListing",
]
