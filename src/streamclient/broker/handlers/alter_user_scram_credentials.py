"""AlterUserScramCredentials (key 51, KIP-554): add, replace and delete SCRAM credentials.

The client sends the salt and the salted password (``Hi(password, salt, iterations)``),
never the password; the broker keeps StoredKey and ServerKey from them.  Each user's
alterations are checked together and applied all or none: an empty name or a salt or
salted password that is empty is UNACCEPTABLE_CREDENTIAL, as are iterations outside
4096..16384; an unknown mechanism UNSUPPORTED_SASL_MECHANISM; the same (user, mechanism)
twice DUPLICATE_RESOURCE; deleting a credential that does not exist RESOURCE_NOT_FOUND.
A new credential is used by the next authentication; open connections stay as they are.
"""

from __future__ import annotations

from collections import Counter

from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.sasl import (
    MAX_SCRAM_ITERATIONS,
    MIN_SCRAM_ITERATIONS,
    SCRAM_BY_WIRE_TYPE,
    CredentialStore,
    ScramCredential,
)
from streamclient.protocol.messages import (
    AlterUserScramCredentialsRequest,
    AlterUserScramCredentialsResponse,
)

UNSUPPORTED_SASL_MECHANISM = 33
RESOURCE_NOT_FOUND = 91
DUPLICATE_RESOURCE = 92
UNACCEPTABLE_CREDENTIAL = 93

_Result = AlterUserScramCredentialsResponse.AlterUserScramCredentialsResult
_Upsertion = AlterUserScramCredentialsRequest.ScramCredentialUpsertion
_Deletion = AlterUserScramCredentialsRequest.ScramCredentialDeletion


@handles(AlterUserScramCredentialsRequest)
async def handle(ctx: RequestContext, request: AlterUserScramCredentialsRequest,
                 version: int) -> AlterUserScramCredentialsResponse:
    store = ctx.state.credentials
    alterations: list[_Upsertion | _Deletion] = [*request.deletions, *request.upsertions]
    pairs = Counter((a.name, a.mechanism) for a in alterations)
    results = []
    for name in dict.fromkeys(a.name for a in alterations):
        mine = [a for a in alterations if a.name == name]
        error = _check(store, name, mine, pairs)
        if error is not None:
            results.append(_Result(user=name, error_code=error[0], error_message=error[1]))
            continue
        for alteration in mine:
            mechanism = SCRAM_BY_WIRE_TYPE[alteration.mechanism]
            if isinstance(alteration, _Upsertion):
                store.set_scram(name, mechanism.name, ScramCredential.from_salted_password(
                    mechanism, bytes(alteration.salted_password), bytes(alteration.salt),
                    alteration.iterations))
            else:
                store.delete_scram(name, mechanism.name)
        results.append(_Result(user=name, error_code=0))
    return AlterUserScramCredentialsResponse(results=results)


def _check(store: CredentialStore, name: str, alterations: list[_Upsertion | _Deletion],
           pairs: Counter[tuple[str, int]]) -> tuple[int, str] | None:
    if not name:
        return UNACCEPTABLE_CREDENTIAL, "Username must not be empty"
    for alteration in alterations:
        mechanism = SCRAM_BY_WIRE_TYPE.get(alteration.mechanism)
        if mechanism is None:
            return (UNSUPPORTED_SASL_MECHANISM,
                    f"Unknown SCRAM mechanism type {alteration.mechanism}")
        if pairs[(name, alteration.mechanism)] > 1:
            return (DUPLICATE_RESOURCE,
                    "A user credential cannot be altered twice in the same request")
        if isinstance(alteration, _Upsertion):
            if alteration.iterations < MIN_SCRAM_ITERATIONS:
                return UNACCEPTABLE_CREDENTIAL, "Too few iterations"
            if alteration.iterations > MAX_SCRAM_ITERATIONS:
                return UNACCEPTABLE_CREDENTIAL, "Too many iterations"
            if not alteration.salt or not alteration.salted_password:
                return UNACCEPTABLE_CREDENTIAL, "The salt and salted password must not be empty"
        elif store.scram(name, mechanism.name) is None:
            return (RESOURCE_NOT_FOUND,
                    "Attempt to delete a user credential that does not exist")
    return None
