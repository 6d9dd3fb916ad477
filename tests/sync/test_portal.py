"""The shared loop thread: one per process, hops counted, wakeups that do not wait,
blocking calls refused on the loop thread, a fresh loop in a forked child."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import anyio
import pytest
from tests.sync.producing import Produce

from streamclient.admin import NewTopic
from streamclient.broker.cluster import BlockingEmbeddedCluster
from streamclient.errors import IllegalStateError, KafkaConnectionError, KafkaTimeoutError
from streamclient.structs import TopicPartition
from streamclient.sync import KafkaAdminClient, KafkaConsumer
from streamclient.sync.portal import BACKEND_ENV, call, get_loop_thread, start_task_soon


def test_one_loop_thread_per_process_and_hops_are_counted() -> None:
    loop = get_loop_thread()
    assert get_loop_thread() is loop
    hops = loop.hops

    async def where() -> int:
        await anyio.sleep(0)
        return threading.get_ident()

    ident = call(where)
    assert ident == loop.thread_id != threading.get_ident()
    assert loop.call(len, [1, 2, 3]) == 3  # plain functions too
    assert loop.hops == hops + 2
    with pytest.raises(ValueError, match="already runs"):
        get_loop_thread("trio" if loop.backend == "asyncio" else "asyncio")


def test_call_soon_does_not_wait_and_runs_on_the_loop() -> None:
    loop = get_loop_thread()
    ran = threading.Event()
    seen: list[int] = []
    gate = threading.Event()

    def wakeup() -> None:
        gate.wait(5)  # the caller has returned long before this lets go
        seen.append(threading.get_ident())
        ran.set()

    hops, wakeups = loop.hops, loop.wakeups
    start_task_soon(wakeup)
    gate.set()
    assert ran.wait(5)
    assert seen == [loop.thread_id]
    assert (loop.hops, loop.wakeups) == (hops, wakeups + 1)


def test_blocking_call_on_the_loop_thread_raises_instead_of_deadlocking() -> None:
    loop = get_loop_thread()

    def nested() -> int:
        return loop.call(len, "abc")

    with pytest.raises(IllegalStateError, match="own event loop thread"):
        loop.call(nested)
    assert loop.call(len, "abc") == 3


def test_call_timeout_cancels_the_work() -> None:
    loop = get_loop_thread()
    finished = threading.Event()

    async def slow() -> None:
        await anyio.sleep(5)
        finished.set()

    with pytest.raises(KafkaTimeoutError):
        loop.call(slow, timeout=0.05)
    time.sleep(0.1)
    assert not finished.is_set()


def _child(bootstrap: str, parent_consumer: KafkaConsumer, parent_loop_id: int) -> int:
    """Runs in the forked child; returns its exit code (0: every check held)."""
    try:
        # the parent's client cannot work here: its loop thread does not exist
        try:
            parent_consumer.assignment()
            return 3
        except IllegalStateError:
            pass
        loop = get_loop_thread()
        if id(loop) == parent_loop_id or loop.pid != os.getpid():
            return 4
        with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
            if "forked" not in admin.list_topics():
                return 5
        tp = TopicPartition("forked", 0)
        with KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest") as c:
            c.assign([tp])
            got: list[bytes] = []
            deadline = time.monotonic() + 20
            while len(got) < 5 and time.monotonic() < deadline:
                got.extend(r.value for b in c.poll(timeout_ms=500).values() for r in b)
            return 0 if got == [b"v%d" % i for i in range(5)] else 6
    except BaseException:
        import traceback

        traceback.print_exc()
        return 2


def test_forked_child_gets_its_own_loop_thread(
    kafka_cluster_sync: BlockingEmbeddedCluster, produce: Produce
) -> None:
    bootstrap = kafka_cluster_sync.bootstrap_servers
    with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
        admin.create_topics([NewTopic("forked", 1, 1)], raise_on_error=True)
    produce("forked", 0, 5)
    parent_loop = get_loop_thread()
    with KafkaConsumer(bootstrap_servers=bootstrap) as parent_consumer:
        with warnings.catch_warnings():
            # Python 3.12+ warns about fork() in a process with threads; the point here
            # is exactly that the child does not reuse them
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit code
            os._exit(_child(bootstrap, parent_consumer, id(parent_loop)))
        deadline = time.monotonic() + 60
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                pytest.fail("the forked child hung")
            time.sleep(0.05)
        assert os.waitstatus_to_exitcode(status) == 0
        # the parent's loop thread is untouched
        assert get_loop_thread() is parent_loop
        parent_consumer.assign([TopicPartition("forked", 0)])
        assert parent_consumer.assignment() == {TopicPartition("forked", 0)}


def test_trio_backend_from_the_environment(
    kafka_cluster_sync: BlockingEmbeddedCluster, produce: Produce
) -> None:
    produce("on-trio", 0, 3)
    script = textwrap.dedent(
        f"""
        import sniffio
        from streamclient.sync import KafkaAdminClient, KafkaConsumer, KafkaProducer
        from streamclient.sync.portal import get_loop_thread
        bootstrap = {kafka_cluster_sync.bootstrap_servers!r}
        with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
            assert "on-trio" in admin.list_topics()
        with KafkaProducer(bootstrap_servers=bootstrap) as producer:
            futures = [producer.send("on-trio", b"v%d" % i, partition=0) for i in (3, 4)]
            producer.flush()
            assert [f.get(0).offset for f in futures] == [3, 4]
        with KafkaConsumer("on-trio", bootstrap_servers=bootstrap, group_id="trio",
                           auto_offset_reset="earliest", consumer_timeout_ms=500) as c:
            print(*[r.value.decode() for r in c])
            c.commit()
        loop = get_loop_thread()
        print(loop.backend, loop.call(sniffio.current_async_library))
        """
    )
    env = dict(os.environ, **{BACKEND_ENV: "trio"})
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["v0", "v1", "v2", "v3", "v4", "trio", "trio"]


def test_interpreter_exits_with_clients_left_open(
    kafka_cluster_sync: BlockingEmbeddedCluster,
) -> None:
    script = textwrap.dedent(
        f"""
        from streamclient.structs import TopicPartition
        from streamclient.sync import KafkaConsumer, KafkaProducer
        bootstrap = {kafka_cluster_sync.bootstrap_servers!r}
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        producer.send("left-open", b"v", partition=0).get(10)
        consumer = KafkaConsumer("left-open", bootstrap_servers=bootstrap, group_id="g")
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok"]


def test_constructor_failure_is_raised(kafka_cluster_sync: BlockingEmbeddedCluster) -> None:
    with KafkaAdminClient(bootstrap_servers=kafka_cluster_sync.bootstrap_servers) as admin:
        port = max(b["port"] for b in admin.describe_cluster()["brokers"]) + 1000
    with pytest.raises(KafkaConnectionError):
        KafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=2000)
