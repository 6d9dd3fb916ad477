"""Error codes of the transactional APIs as each request version understands them."""

from __future__ import annotations

from streamclient.broker.groups.error_code import Code

__all__ = ["for_version"]


def for_version(code: Code, version: int, fenced_since: int) -> Code:
    """PRODUCER_FENCED (KIP-588) is INVALID_PRODUCER_EPOCH for versions before ``fenced_since``."""
    if code is Code.PRODUCER_FENCED and version < fenced_since:
        return Code.INVALID_PRODUCER_EPOCH
    return code
