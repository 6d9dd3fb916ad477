"""DeleteTopics (key 20): by name, and from v6 by topic id."""

from __future__ import annotations

import uuid

from streamclient.broker.handlers.config_resources import error_of
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.errors import BrokerResponseError, for_code
from streamclient.protocol.messages import DeleteTopicsRequest, DeleteTopicsResponse

Result = DeleteTopicsResponse.DeletableTopicResult
ZERO_UUID = uuid.UUID(int=0)


def _delete(ctx: RequestContext, name: str | None, topic_id: uuid.UUID) -> Result:
    result = Result(name=name, topic_id=topic_id, error_message=None)
    try:
        if name is not None and topic_id != ZERO_UUID:
            raise for_code(42)("give a topic name or a topic id, not both")
        if name is None:
            meta = ctx.state.topic_by_id(topic_id)
            if meta is None:
                raise for_code(100)(f"no topic has id {topic_id}")  # UNKNOWN_TOPIC_ID
            name = meta.name
        deleted = ctx.state.delete_topic(name)
        result.name, result.topic_id = deleted.name, deleted.topic_id
    except BrokerResponseError as exc:
        result.error_code, result.error_message = error_of(exc)
    return result


@handles(DeleteTopicsRequest)
async def handle(ctx: RequestContext, request: DeleteTopicsRequest,
                 version: int) -> DeleteTopicsResponse:
    if version >= 6:
        wanted = [(t.name, t.topic_id) for t in request.topics]
    else:
        wanted = [(name, ZERO_UUID) for name in request.topic_names]
    return DeleteTopicsResponse(responses=[_delete(ctx, name, tid) for name, tid in wanted])
