"""streamclient child (asyncio or trio): the same workload as aiokafka's, through the
same API (``benchmarks.clients.aiokafka_api``)."""

from __future__ import annotations

from benchmarks.workload import Measurement, Runner, Workload, client_main


def _load() -> tuple[Runner, Runner]:
    import anyio

    import streamclient  # an ImportError here is reported as "unavailable"
    from benchmarks.clients.aiokafka_api import AiokafkaApi, consume, produce

    api = AiokafkaApi(
        client="streamclient", version=streamclient.__version__,
        producer_type=streamclient.AIOKafkaProducer,
        consumer_type=streamclient.AIOKafkaConsumer,
        topic_partition=streamclient.TopicPartition,
        default_labels={"linger_ms": "default", "max_batch_size": "default",
                        "idempotence": "default"})

    def run_produce(w: Workload) -> Measurement:
        return anyio.run(produce, w, api, w.backend, backend=w.backend)

    def run_consume(w: Workload) -> Measurement:
        return anyio.run(consume, w, api, w.backend, backend=w.backend)

    return run_produce, run_consume


if __name__ == "__main__":
    raise SystemExit(client_main("streamclient", _load))
