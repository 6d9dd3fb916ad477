"""aiokafka child (asyncio): produce or consume one workload and report it."""

from __future__ import annotations

from benchmarks.workload import Measurement, Runner, Workload, client_main


def _load() -> tuple[Runner, Runner]:
    import aiokafka  # an ImportError here is reported as "unavailable"
    import anyio

    from benchmarks.clients.aiokafka_api import AiokafkaApi, consume, produce

    api = AiokafkaApi(
        client="aiokafka", version=aiokafka.__version__,
        producer_type=aiokafka.AIOKafkaProducer, consumer_type=aiokafka.AIOKafkaConsumer,
        topic_partition=aiokafka.TopicPartition,
        default_labels={"linger_ms": "default (0)", "max_batch_size": "default (16384)",
                        "idempotence": "default (off)"})

    def run_produce(w: Workload) -> Measurement:
        return anyio.run(produce, w, api, "asyncio", backend="asyncio")

    def run_consume(w: Workload) -> Measurement:
        return anyio.run(consume, w, api, "asyncio", backend="asyncio")

    return run_produce, run_consume


if __name__ == "__main__":
    raise SystemExit(client_main("aiokafka", _load))
