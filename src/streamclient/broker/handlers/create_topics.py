"""CreateTopics (key 19): validate and create topics; v5+ echoes their configs."""

from __future__ import annotations

from collections import Counter

from streamclient.broker.handlers.config_resources import error_of, topic_entries
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.state import TopicState
from streamclient.errors import BrokerResponseError, for_code
from streamclient.protocol.messages import CreateTopicsRequest, CreateTopicsResponse

InvalidRequestError = for_code(42)
Result = CreateTopicsResponse.CreatableTopicResult
ResultConfig = Result.CreatableTopicConfigs


def _create(ctx: RequestContext, topic: CreateTopicsRequest.CreatableTopic,
            validate_only: bool) -> TopicState:
    assignments = None
    if topic.assignments:
        if topic.num_partitions != -1 or topic.replication_factor != -1:
            raise InvalidRequestError(
                "with replica assignments, num_partitions and replication_factor must be -1")
        assignments = {a.partition_index: list(a.broker_ids) for a in topic.assignments}
        if len(assignments) != len(topic.assignments):
            raise for_code(39)("a partition is assigned twice")  # INVALID_REPLICA_ASSIGNMENT
    configs: dict[str, str | None] = {}
    for entry in topic.configs:
        if entry.value is None:
            raise for_code(40)(f"null value for config {entry.name!r}")  # INVALID_CONFIG
        configs[entry.name] = entry.value
    return ctx.state.create_topic(
        topic.name,
        None if assignments else topic.num_partitions,
        None if assignments else topic.replication_factor,
        configs,
        assignments=assignments,
        validate_only=validate_only,
    )


def _result(ctx: RequestContext, meta: TopicState, version: int) -> Result:
    result = Result(name=meta.name, topic_id=meta.topic_id, error_message=None,
                    num_partitions=len(meta.partitions),
                    replication_factor=meta.replication_factor)
    if version >= 5:
        # validate_only topics are not in the state: describe them from their own configs
        known = ctx.state.topics.get(meta.name) is meta
        if known:
            entries = topic_entries(ctx.state, meta.name)
            result.configs = [ResultConfig(name=e.name, value=e.value, read_only=e.read_only,
                                           config_source=int(e.source), is_sensitive=False)
                              for e in entries]
        else:
            result.configs = [ResultConfig(name=k, value=v, read_only=False, is_sensitive=False)
                              for k, v in sorted(meta.effective_configs().items())]
    return result


@handles(CreateTopicsRequest)
async def handle(ctx: RequestContext, request: CreateTopicsRequest,
                 version: int) -> CreateTopicsResponse:
    counts = Counter(t.name for t in request.topics)
    results = []
    for topic in request.topics:
        try:
            if counts[topic.name] > 1:
                raise InvalidRequestError(f"topic {topic.name!r} appears twice in the request")
            meta = _create(ctx, topic, bool(request.validate_only))
            results.append(_result(ctx, meta, version))
        except BrokerResponseError as exc:
            code, message = error_of(exc)
            results.append(Result(name=topic.name, error_code=code, error_message=message,
                                  configs=None if version >= 5 else []))
    return CreateTopicsResponse(topics=results)
