"""DescribeUserScramCredentials (key 50, KIP-554): mechanisms and iterations per user.

No users (null or empty) describes every user with a SCRAM credential.  A user named
twice gets DUPLICATE_RESOURCE, a user with no credential RESOURCE_NOT_FOUND; salts and
keys are never returned.
"""

from __future__ import annotations

from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.sasl import SCRAM_MECHANISMS, ScramCredential
from streamclient.protocol.messages import (
    DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
)

RESOURCE_NOT_FOUND = 91
DUPLICATE_RESOURCE = 92

_Result = DescribeUserScramCredentialsResponse.DescribeUserScramCredentialsResult


def _infos(credentials: dict[str, ScramCredential]) -> list[_Result.CredentialInfo]:
    return [_Result.CredentialInfo(mechanism=SCRAM_MECHANISMS[name].wire_type,
                                   iterations=credential.iterations)
            for name, credential in sorted(credentials.items(),
                                           key=lambda item: SCRAM_MECHANISMS[item[0]].wire_type)]


@handles(DescribeUserScramCredentialsRequest)
async def handle(ctx: RequestContext, request: DescribeUserScramCredentialsRequest,
                 version: int) -> DescribeUserScramCredentialsResponse:
    known = ctx.state.credentials.scram_users()
    if not request.users:
        results = [_Result(user=name, error_code=0, credential_infos=_infos(credentials))
                   for name, credentials in known.items()]
        return DescribeUserScramCredentialsResponse(error_code=0, results=results)
    names = [user.name for user in request.users]
    results = []
    for name in dict.fromkeys(names):
        if names.count(name) > 1:
            results.append(_Result(
                user=name, error_code=DUPLICATE_RESOURCE,
                error_message="Cannot describe SCRAM credentials for the same user twice in "
                              "a single request"))
        elif name not in known:
            results.append(_Result(
                user=name, error_code=RESOURCE_NOT_FOUND,
                error_message=f"Attempt to describe a user credential that does not exist: "
                              f"{name}"))
        else:
            results.append(_Result(user=name, error_code=0,
                                   credential_infos=_infos(known[name])))
    return DescribeUserScramCredentialsResponse(error_code=0, results=results)
