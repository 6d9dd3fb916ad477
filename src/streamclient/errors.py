"""Exceptions raised by streamclient.

Class names, hierarchy and the ``retriable`` / ``invalid_metadata`` flags follow
aiokafka's ``aiokafka.errors`` so that code written for aiokafka catches the same
classes here.  Broker error codes map to classes through :func:`for_code`; the table of
codes is generated from Apache Kafka's ``errors.tsv`` (``streamclient.protocol.error_codes``).

Unlike aiokafka, every code Kafka defines has its own class (aiokafka reports codes
73-78 and 80 and above as ``UnknownError``).  Classes aiokafka does not have are named
after Kafka's Java exception with an ``Error`` suffix (``FencedInstanceIdError`` for 82).

Two flags describe retrying:

* ``retriable`` - aiokafka's flag for aiokafka's classes, Kafka's for the others.  Seven
  codes differ (see ``AIOKAFKA_RETRIABLE_DIFFERENCES``): aiokafka calls them final,
  Kafka calls them retriable.  We keep aiokafka's answer on aiokafka's classes because
  applications written for aiokafka branch on it.
* ``kafka_retriable`` - Kafka's own judgement from ``errors.tsv``, on every broker error
  class.  Client internals that decide whether to retry a request use this one.

Code 90 (PRODUCER_FENCED) is ``ProducerFencedError``, a subclass of both
``BrokerResponseError`` and aiokafka's client-side ``ProducerFenced``, so
``except ProducerFenced`` catches the fencing however it was detected (aiokafka raises
``ProducerFenced`` itself when a transactional request fails with INVALID_PRODUCER_EPOCH).
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from streamclient.protocol.error_codes import ERROR_CODES

__all__ = [
    "AIOKAFKA_RETRIABLE_DIFFERENCES",
    "AuthenticationFailedError",
    "AuthenticationMethodNotSupported",
    "BrokerResponseError",
    "Cancelled",
    "CommitFailedError",
    "ConsumerStoppedError",
    "CorrelationIdError",
    "IllegalArgumentError",
    "IllegalOperation",
    "IllegalStateError",
    "IncompatibleBrokerVersion",
    "KafkaConfigurationError",
    "KafkaConnectionError",
    "KafkaError",
    "KafkaProtocolError",
    "KafkaTimeoutError",
    "KafkaUnavailableError",
    "MetadataEmptyBrokerList",
    "NoBrokersAvailable",
    "NoOffsetForPartitionError",
    "NodeNotReadyError",
    "ProducerClosed",
    "ProducerFenced",
    "ProtocolDecodeError",
    "QuotaViolationError",
    "RecordTooLargeError",
    "StaleMetadata",
    "TooManyInFlightRequests",
    "UnrecognizedBrokerVersion",
    "UnsupportedCodecError",
    "for_code",
    "kafka_errors",
]  # the broker error classes are appended below, as they are registered


# --- errors raised by the client itself ---------------------------------------------


class KafkaError(RuntimeError):
    retriable: ClassVar[bool] = False
    # whether the error means the client's metadata is stale and must be refreshed
    invalid_metadata: ClassVar[bool] = False

    def __str__(self) -> str:
        if not self.args:
            return self.__class__.__name__
        return f"{self.__class__.__name__}: {super().__str__()}"


class IllegalStateError(KafkaError):
    pass


class IllegalArgumentError(KafkaError):
    pass


class NoBrokersAvailable(KafkaError):
    retriable = True
    invalid_metadata = True


class NodeNotReadyError(KafkaError):
    retriable = True


class KafkaProtocolError(KafkaError):
    retriable = True


class CorrelationIdError(KafkaProtocolError):
    retriable = True


class ProtocolDecodeError(KafkaProtocolError):
    """Bytes that do not decode as the message they claim to be.

    Raised once, with the API, version and byte offset, instead of an IndexError or
    struct.error from deep inside a decoder.
    """

    retriable = False

    def __init__(
        self,
        message: str,
        *,
        api: str | None = None,
        version: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.api = api
        self.version = version
        self.offset = offset
        where = []
        if api is not None:
            where.append(api if version is None else f"{api} v{version}")
        if offset is not None:
            where.append(f"at byte {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class Cancelled(KafkaError):
    retriable = True


class TooManyInFlightRequests(KafkaError):
    retriable = True


class StaleMetadata(KafkaError):
    retriable = True
    invalid_metadata = True


class MetadataEmptyBrokerList(KafkaError):
    retriable = True


class UnrecognizedBrokerVersion(KafkaError):
    pass


class IncompatibleBrokerVersion(KafkaError):
    pass


class CommitFailedError(KafkaError):
    """The group rebalanced before the commit, so its partitions now belong to others."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(
            "Commit cannot be completed since the group has already rebalanced and "
            "assigned the partitions to another member. The time between calls to "
            "poll() (getmany()/getone()) was probably longer than max_poll_interval_ms: "
            "raise max_poll_interval_ms or lower max_poll_records.",
            *args,
            **kwargs,
        )


class AuthenticationMethodNotSupported(KafkaError):
    pass


class AuthenticationFailedError(KafkaError):
    retriable = False


class KafkaUnavailableError(KafkaError):
    pass


class KafkaTimeoutError(KafkaError):
    pass


class KafkaConnectionError(KafkaError):
    retriable = True
    invalid_metadata = True


class UnsupportedCodecError(KafkaError):
    """A record batch names a compression codec this build cannot handle."""


class KafkaConfigurationError(KafkaError):
    pass


class QuotaViolationError(KafkaError):
    pass


class NoOffsetForPartitionError(KafkaError):
    """No committed offset and no reset policy (``auto_offset_reset="none"``)."""


class RecordTooLargeError(KafkaError):
    """A record is larger than ``max_request_size`` (checked before it is sent)."""


class ProducerClosed(KafkaError):
    pass


class ProducerFenced(KafkaError):
    """Another producer with the same transactional id took over (or the transaction
    timed out on the coordinator); this producer can no longer be used."""

    def __init__(
        self,
        msg: str = (
            "There is a newer producer using the same transactional_id or the "
            "transaction timed out (check that processing time is below "
            "transaction_timeout_ms)"
        ),
    ) -> None:
        super().__init__(msg)


# aiokafka makes these two plain Exceptions, outside the KafkaError tree, and code that
# catches KafkaError around getone() relies on ConsumerStoppedError slipping through.
class ConsumerStoppedError(Exception):
    """Raised when an iteration or a fetch finds the consumer stopped."""


class IllegalOperation(Exception):
    """Raised on a consumer call that its current subscription type does not allow."""


# --- errors returned by brokers --------------------------------------------------------

kafka_errors: dict[int, type[BrokerResponseError]] = {}

# aiokafka's classes whose ``retriable`` flag differs from Kafka's errors.tsv; the value
# is aiokafka's flag, which those classes keep (their ``kafka_retriable`` is Kafka's).
AIOKAFKA_RETRIABLE_DIFFERENCES: dict[int, bool] = {
    2: False,  # CORRUPT_MESSAGE
    9: False,  # REPLICA_NOT_AVAILABLE
    13: False,  # NETWORK_EXCEPTION (aiokafka names it StaleLeaderEpochCodeError)
    51: False,  # CONCURRENT_TRANSACTIONS
    70: False,  # FETCH_SESSION_ID_NOT_FOUND
    71: False,  # INVALID_FETCH_SESSION_EPOCH
    72: False,  # LISTENER_NOT_FOUND
}

# Descriptions for the errors applications meet most; the rest get one made from the
# Kafka name, which is descriptive enough for the rare ones.
_DESCRIPTIONS: dict[int, str] = {
    -1: "The broker hit an unexpected error while handling the request.",
    0: "No error.",
    1: "The requested offset is outside the range of offsets the broker holds.",
    2: "A record failed its CRC check, has an invalid size, or is otherwise corrupt.",
    3: "The broker does not host this topic-partition.",
    5: "The partition has no leader right now (a leader election is under way).",
    6: "The broker is not the leader (or not a replica) of this partition.",
    7: "The request timed out on the broker.",
    10: "The request carried a record batch larger than the broker accepts.",
    13: "The broker disconnected before it sent a response.",
    14: "The coordinator is loading its state and cannot serve the request yet.",
    15: "The coordinator is not available.",
    16: "The broker is not the coordinator for this group or transactional id.",
    17: "The topic name is not valid, or the topic is internal and cannot be written.",
    19: "Fewer in-sync replicas than min.insync.replicas; nothing was written.",
    20: "Written, but fewer in-sync replicas than min.insync.replicas acknowledged it.",
    22: "The group's generation has moved on; this member must rejoin.",
    25: "The group coordinator does not know this member id.",
    27: "The group is rebalancing; the member must rejoin.",
    29: "Not authorized to access the topic.",
    30: "Not authorized to access the group.",
    31: "Not authorized for this cluster operation.",
    35: "The broker does not support this version of the API.",
    36: "A topic with this name already exists.",
    45: "The broker received a sequence number out of order for this producer.",
    46: "The broker already has a batch with this sequence number.",
    47: "The producer's epoch is older than the one the broker knows.",
    48: "The transactional operation is not valid in the transaction's current state.",
    51: "Another transaction with this transactional id is still being completed.",
    58: "SASL authentication failed.",
    59: "The broker has no state for this producer id.",
    79: "The member must rejoin with the member id that the coordinator assigned.",
    82: "Another consumer with the same group.instance.id has joined the group.",
    87: "The broker rejected a record (for example a null key on a compacted topic).",
    90: "A newer producer with the same transactional id has fenced this one.",
}


def _describe(code: int, name: str) -> str:
    known = _DESCRIPTIONS.get(code)
    if known is not None:
        return known
    return name.replace("_", " ").capitalize() + "."


class BrokerResponseError(KafkaError):
    """An error code returned by a broker (or a client-side check with the same meaning).

    Subclasses set only ``errno``; ``message`` (Kafka's NAME), ``kafka_retriable``,
    ``java_exception`` and a default ``retriable`` come from the generated table.
    """

    errno: ClassVar[int] = -1
    message: ClassVar[str] = "UNKNOWN_SERVER_ERROR"
    description: ClassVar[str] = ""
    kafka_retriable: ClassVar[bool] = False
    java_exception: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "errno" not in cls.__dict__:
            return  # an intermediate base, not an error code of its own
        code = cls.errno
        if code in kafka_errors:
            raise TypeError(f"error code {code} already maps to {kafka_errors[code].__name__}")
        entry = ERROR_CODES.get(code)
        if entry is not None:
            cls.message = entry.name
            cls.kafka_retriable = entry.retriable
            cls.java_exception = entry.exception_class
            if "retriable" not in cls.__dict__:
                cls.retriable = entry.retriable
        if "description" not in cls.__dict__:
            cls.description = _describe(code, cls.message)
        kafka_errors[code] = cls
        __all__.append(cls.__name__)

    def __str__(self) -> str:
        text = f"[Error {self.errno}] {self.message}"
        if self.args:
            text += f": {super(KafkaError, self).__str__()}"
        return text


def for_code(code: int) -> type[BrokerResponseError]:
    """The exception class for a broker error code; codes Kafka does not define (yet)
    map to ``UnknownError``."""
    return kafka_errors.get(code, UnknownError)


def _declare(
    name: str,
    code: int,
    *,
    invalid_metadata: bool = False,
    bases: tuple[type, ...] = (BrokerResponseError,),
) -> type[BrokerResponseError]:
    namespace: dict[str, Any] = {"errno": code, "__module__": __name__, "__qualname__": name}
    if invalid_metadata:
        namespace["invalid_metadata"] = True
    # BrokerResponseError.__init_subclass__ fills in the table's attributes and registers it
    return cast("type[BrokerResponseError]", type(name, bases, namespace))


class NoError(BrokerResponseError):
    errno = 0
    message = "NONE"


class UnknownError(BrokerResponseError):
    errno = -1


class OffsetOutOfRangeError(BrokerResponseError):
    errno = 1


class LogTruncationError(OffsetOutOfRangeError):
    """After a leader change the partition's log ends below the consumer's position: an
    unclean election truncated records the consumer already read (KIP-320), and
    ``auto_offset_reset`` is ``"none"``.  Java's ``LogTruncationException``.

    ``fetch_offsets`` maps each partition to the position that ran past the new log;
    ``divergent_offsets`` to the offset where the logs diverged (where to seek to read
    what the new leader has), missing for a partition whose divergence point the broker
    could not say.  The partitions wait until the application seeks them.
    """

    def __init__(
        self, fetch_offsets: dict[Any, int], divergent_offsets: dict[Any, int]
    ) -> None:
        self.fetch_offsets = dict(fetch_offsets)
        self.divergent_offsets = dict(divergent_offsets)
        parts = ", ".join(
            f"{tp}: position {offset}, diverged at "
            + str(self.divergent_offsets.get(tp, "an unknown offset"))
            for tp, offset in sorted(self.fetch_offsets.items())
        )
        super().__init__(f"log truncation detected ({parts})")


# a subclass without its own code is not registered, so not listed automatically
__all__.append("LogTruncationError")


class CorruptRecordException(BrokerResponseError):
    """A record batch failed its CRC, its lengths or its framing."""

    errno = 2
    retriable = False  # aiokafka's flag; Kafka's is True


class UnknownTopicOrPartitionError(BrokerResponseError):
    errno = 3
    invalid_metadata = True


class InvalidFetchRequestError(BrokerResponseError):
    errno = 4


class LeaderNotAvailableError(BrokerResponseError):
    errno = 5
    invalid_metadata = True


class NotLeaderForPartitionError(BrokerResponseError):
    errno = 6
    invalid_metadata = True


class RequestTimedOutError(BrokerResponseError):
    errno = 7


class BrokerNotAvailableError(BrokerResponseError):
    errno = 8


class ReplicaNotAvailableError(BrokerResponseError):
    errno = 9
    retriable = False  # aiokafka's flag; Kafka's is True


class MessageSizeTooLargeError(BrokerResponseError):
    errno = 10


class StaleControllerEpochError(BrokerResponseError):
    errno = 11


class OffsetMetadataTooLargeError(BrokerResponseError):
    errno = 12


class StaleLeaderEpochCodeError(BrokerResponseError):
    errno = 13
    retriable = False  # aiokafka's flag; Kafka's is True


class GroupLoadInProgressError(BrokerResponseError):
    errno = 14


class GroupCoordinatorNotAvailableError(BrokerResponseError):
    errno = 15


class NotCoordinatorForGroupError(BrokerResponseError):
    errno = 16


class InvalidTopicError(BrokerResponseError):
    errno = 17


class RecordListTooLargeError(BrokerResponseError):
    errno = 18


class NotEnoughReplicasError(BrokerResponseError):
    errno = 19


class NotEnoughReplicasAfterAppendError(BrokerResponseError):
    errno = 20


class InvalidRequiredAcksError(BrokerResponseError):
    errno = 21


class IllegalGenerationError(BrokerResponseError):
    errno = 22


class InconsistentGroupProtocolError(BrokerResponseError):
    errno = 23


class InvalidGroupIdError(BrokerResponseError):
    errno = 24


class UnknownMemberIdError(BrokerResponseError):
    errno = 25


class InvalidSessionTimeoutError(BrokerResponseError):
    errno = 26


class RebalanceInProgressError(BrokerResponseError):
    errno = 27


class InvalidCommitOffsetSizeError(BrokerResponseError):
    errno = 28


class TopicAuthorizationFailedError(BrokerResponseError):
    errno = 29


class GroupAuthorizationFailedError(BrokerResponseError):
    errno = 30


class ClusterAuthorizationFailedError(BrokerResponseError):
    errno = 31


class InvalidTimestampError(BrokerResponseError):
    errno = 32


class UnsupportedSaslMechanismError(BrokerResponseError):
    errno = 33


class IllegalSaslStateError(BrokerResponseError):
    errno = 34


class UnsupportedVersionError(BrokerResponseError):
    errno = 35


class TopicAlreadyExistsError(BrokerResponseError):
    errno = 36


class InvalidPartitionsError(BrokerResponseError):
    errno = 37


class InvalidReplicationFactorError(BrokerResponseError):
    errno = 38


class InvalidReplicationAssignmentError(BrokerResponseError):
    errno = 39


class InvalidConfigurationError(BrokerResponseError):
    errno = 40


class NotControllerError(BrokerResponseError):
    errno = 41


class InvalidRequestError(BrokerResponseError):
    errno = 42


class UnsupportedForMessageFormatError(BrokerResponseError):
    errno = 43


class PolicyViolationError(BrokerResponseError):
    errno = 44


class OutOfOrderSequenceNumber(BrokerResponseError):
    errno = 45


class DuplicateSequenceNumber(BrokerResponseError):
    errno = 46


class InvalidProducerEpoch(BrokerResponseError):
    errno = 47


class InvalidTxnState(BrokerResponseError):
    errno = 48


class InvalidProducerIdMapping(BrokerResponseError):
    errno = 49


class InvalidTransactionTimeout(BrokerResponseError):
    errno = 50


class ConcurrentTransactions(BrokerResponseError):
    errno = 51
    retriable = False  # aiokafka's flag; Kafka's is True


class TransactionCoordinatorFenced(BrokerResponseError):
    errno = 52


class TransactionalIdAuthorizationFailed(BrokerResponseError):
    errno = 53


class SecurityDisabled(BrokerResponseError):
    errno = 54


class OperationNotAttempted(BrokerResponseError):
    errno = 55


class KafkaStorageError(BrokerResponseError):
    errno = 56
    invalid_metadata = True


class LogDirNotFound(BrokerResponseError):
    errno = 57


class SaslAuthenticationFailed(BrokerResponseError):
    errno = 58


class SaslServerSignatureError(SaslAuthenticationFailed):
    """A SCRAM server's final signature does not verify: the server does not know the
    password (or the exchange was tampered with), so the client must not trust it."""


# a subclass without its own code is not registered, so not listed automatically
__all__.append("SaslServerSignatureError")


class UnknownProducerId(BrokerResponseError):
    errno = 59


class ReassignmentInProgress(BrokerResponseError):
    errno = 60


class DelegationTokenAuthDisabled(BrokerResponseError):
    errno = 61


class DelegationTokenNotFound(BrokerResponseError):
    errno = 62


class DelegationTokenOwnerMismatch(BrokerResponseError):
    errno = 63


class DelegationTokenRequestNotAllowed(BrokerResponseError):
    errno = 64


class DelegationTokenAuthorizationFailed(BrokerResponseError):
    errno = 65


class DelegationTokenExpired(BrokerResponseError):
    errno = 66


class InvalidPrincipalType(BrokerResponseError):
    errno = 67


class NonEmptyGroup(BrokerResponseError):
    errno = 68


class GroupIdNotFound(BrokerResponseError):
    errno = 69


class FetchSessionIdNotFound(BrokerResponseError):
    errno = 70
    retriable = False  # aiokafka's flag; Kafka's is True


class InvalidFetchSessionEpoch(BrokerResponseError):
    errno = 71
    retriable = False  # aiokafka's flag; Kafka's is True


class ListenerNotFound(BrokerResponseError):
    errno = 72
    retriable = False  # aiokafka's flag; Kafka's is True


class MemberIdRequired(BrokerResponseError):
    errno = 79


# Codes aiokafka has no class for.  They are declared through _declare() (type checkers
# see them as type[BrokerResponseError]) to keep this file short; _declare() is also how
# codes added to errors.tsv later get a class (see _synthesize_missing).
TopicDeletionDisabledError = _declare("TopicDeletionDisabledError", 73)
FencedLeaderEpochError = _declare("FencedLeaderEpochError", 74, invalid_metadata=True)
UnknownLeaderEpochError = _declare("UnknownLeaderEpochError", 75)
UnsupportedCompressionTypeError = _declare("UnsupportedCompressionTypeError", 76)
StaleBrokerEpochError = _declare("StaleBrokerEpochError", 77)
OffsetNotAvailableError = _declare("OffsetNotAvailableError", 78)
PreferredLeaderNotAvailableError = _declare("PreferredLeaderNotAvailableError", 80)
GroupMaxSizeReachedError = _declare("GroupMaxSizeReachedError", 81)
FencedInstanceIdError = _declare("FencedInstanceIdError", 82)
EligibleLeadersNotAvailableError = _declare("EligibleLeadersNotAvailableError", 83)
ElectionNotNeededError = _declare("ElectionNotNeededError", 84)
NoReassignmentInProgressError = _declare("NoReassignmentInProgressError", 85)
GroupSubscribedToTopicError = _declare("GroupSubscribedToTopicError", 86)
InvalidRecordError = _declare("InvalidRecordError", 87)
UnstableOffsetCommitError = _declare("UnstableOffsetCommitError", 88)
ThrottlingQuotaExceededError = _declare("ThrottlingQuotaExceededError", 89)
# ``except ProducerFenced`` also catches the broker telling us so
ProducerFencedError = _declare(
    "ProducerFencedError", 90, bases=(BrokerResponseError, ProducerFenced)
)
ResourceNotFoundError = _declare("ResourceNotFoundError", 91)
DuplicateResourceError = _declare("DuplicateResourceError", 92)
UnacceptableCredentialError = _declare("UnacceptableCredentialError", 93)
InconsistentVoterSetError = _declare("InconsistentVoterSetError", 94)
InvalidUpdateVersionError = _declare("InvalidUpdateVersionError", 95)
FeatureUpdateFailedError = _declare("FeatureUpdateFailedError", 96)
PrincipalDeserializationError = _declare("PrincipalDeserializationError", 97)
SnapshotNotFoundError = _declare("SnapshotNotFoundError", 98)
UnknownTopicIdError = _declare("UnknownTopicIdError", 100, invalid_metadata=True)
DuplicateBrokerRegistrationError = _declare("DuplicateBrokerRegistrationError", 101)
BrokerIdNotRegisteredError = _declare("BrokerIdNotRegisteredError", 102)
InconsistentTopicIdError = _declare("InconsistentTopicIdError", 103, invalid_metadata=True)
InconsistentClusterIdError = _declare("InconsistentClusterIdError", 104)
TransactionalIdNotFoundError = _declare("TransactionalIdNotFoundError", 105)
FetchSessionTopicIdError = _declare("FetchSessionTopicIdError", 106)
IneligibleReplicaError = _declare("IneligibleReplicaError", 107)
NewLeaderElectedError = _declare("NewLeaderElectedError", 108)
OffsetMovedToTieredStorageError = _declare("OffsetMovedToTieredStorageError", 109)
FencedMemberEpochError = _declare("FencedMemberEpochError", 110)
UnreleasedInstanceIdError = _declare("UnreleasedInstanceIdError", 111)
UnsupportedAssignorError = _declare("UnsupportedAssignorError", 112)
StaleMemberEpochError = _declare("StaleMemberEpochError", 113)
MismatchedEndpointTypeError = _declare("MismatchedEndpointTypeError", 114)
UnsupportedEndpointTypeError = _declare("UnsupportedEndpointTypeError", 115)
UnknownControllerIdError = _declare("UnknownControllerIdError", 116)
UnknownSubscriptionIdError = _declare("UnknownSubscriptionIdError", 117)
TelemetryTooLargeError = _declare("TelemetryTooLargeError", 118)
InvalidRegistrationError = _declare("InvalidRegistrationError", 119)
TransactionAbortableError = _declare("TransactionAbortableError", 120)
InvalidRecordStateError = _declare("InvalidRecordStateError", 121)
ShareSessionNotFoundError = _declare("ShareSessionNotFoundError", 122)
InvalidShareSessionEpochError = _declare("InvalidShareSessionEpochError", 123)
FencedStateEpochError = _declare("FencedStateEpochError", 124)
InvalidVoterKeyError = _declare("InvalidVoterKeyError", 125)
DuplicateVoterError = _declare("DuplicateVoterError", 126)
VoterNotFoundError = _declare("VoterNotFoundError", 127)
InvalidRegularExpressionError = _declare("InvalidRegularExpressionError", 128)

# aiokafka's aliases
InvalidMessageError = CorruptRecordException
CoordinatorLoadInProgressError = GroupLoadInProgressError
CoordinatorNotAvailableError = GroupCoordinatorNotAvailableError
NotCoordinatorError = NotCoordinatorForGroupError
# Kafka's names where aiokafka's name says something else
UnknownServerError = UnknownError
NotLeaderOrFollowerError = NotLeaderForPartitionError
NetworkError = StaleLeaderEpochCodeError
__all__ += [
    "CoordinatorLoadInProgressError",
    "CoordinatorNotAvailableError",
    "InvalidMessageError",
    "NetworkError",
    "NotCoordinatorError",
    "NotLeaderOrFollowerError",
    "UnknownServerError",
]


def _class_name(java_exception: str) -> str:
    stem = java_exception.removesuffix("Exception")
    return f"{stem}Error"


def _synthesize_missing() -> tuple[str, ...]:
    """Give codes added to errors.tsv after this file was written a class of their own.

    The test-suite requires this to return nothing for the committed table, so every
    class is also declared above where readers and type checkers can see it.
    """
    made = []
    for code, entry in ERROR_CODES.items():
        if code in kafka_errors:
            continue
        name = _class_name(entry.exception_class)
        if name in globals():
            name = f"{name}{code}"
        globals()[name] = _declare(name, code)
        made.append(name)
    return tuple(made)


SYNTHESIZED_CLASSES = _synthesize_missing()
