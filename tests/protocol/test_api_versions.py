"""Version negotiation against a broker's ApiVersions answer."""

from __future__ import annotations

from streamclient.protocol.api_versions import (
    VersionTable,
    negotiate,
    retry_api_versions_version,
    supported_versions,
)
from streamclient.protocol.messages import (
    REQUEST_TYPES,
    ApiVersionsResponse,
    ShareFetchRequest,
)

ApiVersion = ApiVersionsResponse.ApiVersion


def test_highest_common_version_or_none() -> None:
    ours = {0: (3, 11), 1: (4, 17), 3: (1, 12), 18: (0, 4), 60: (0, 1)}
    broker = [(0, 0, 9), (1, 0, 11), (3, 0, 0), (18, 0, 3)]
    assert negotiate(ours, broker) == {0: 9, 1: 11, 3: None, 18: 3, 60: None}


def test_broker_range_above_ours() -> None:
    assert negotiate({0: (3, 8)}, [(0, 9, 11)]) == {0: None}
    assert negotiate({0: (3, 8)}, [(0, 5, 11)]) == {0: 8}


def test_negotiate_reads_api_versions_entries() -> None:
    response = ApiVersionsResponse(
        api_keys=[
            ApiVersion(api_key=3, min_version=0, max_version=7),
            ApiVersion(api_key=18, min_version=0, max_version=4),
        ]
    )
    table = VersionTable({3: (1, 12), 18: (0, 3), 0: (3, 11)}, response.api_keys)
    assert table.version_for(3) == 7
    assert table.version_for(18) == 3
    assert table.version_for(0) is None
    assert table.version_for(999) is None
    assert table.broker_range(3) == (0, 7)


def test_supported_versions_come_from_the_generated_classes() -> None:
    ours = supported_versions()
    assert set(ours) == set(REQUEST_TYPES)
    assert ours[0] == (0, 11)
    # an API whose only version is unstable is not offered unless asked for
    key = ShareFetchRequest.API_KEY
    assert ours[key][1] < ours[key][0]
    assert negotiate({key: ours[key]}, [(key, 0, 0)]) == {key: None}
    assert supported_versions(include_unstable=True)[key] == (0, 0)


def test_retry_with_the_version_the_broker_lists() -> None:
    answer = ApiVersionsResponse(
        error_code=35, api_keys=[ApiVersion(api_key=18, min_version=0, max_version=2)]
    )
    assert retry_api_versions_version(answer, sent=4) == 2
    assert retry_api_versions_version(answer, sent=4, our_max=1) == 1


def test_retry_with_v0_when_the_broker_lists_nothing() -> None:
    assert retry_api_versions_version(ApiVersionsResponse(error_code=35), sent=3) == 0


def test_no_retry_when_not_needed_or_nothing_lower() -> None:
    assert retry_api_versions_version(ApiVersionsResponse(error_code=0), sent=3) is None
    assert retry_api_versions_version(ApiVersionsResponse(error_code=35), sent=0) is None
    # a broker listing the version that just failed: fall to v0 rather than loop
    odd = ApiVersionsResponse(
        error_code=35, api_keys=[ApiVersion(api_key=18, min_version=0, max_version=3)]
    )
    assert retry_api_versions_version(odd, sent=3) == 0
