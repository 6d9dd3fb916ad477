"""The ``streamclient broker`` command: starts, serves, stops on SIGINT/SIGTERM (subprocess)."""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import sys

import pytest

from streamclient.cli.main import build_parser, main
from streamclient.protocol.framing import decode_response, encode_request
from streamclient.protocol.messages import ApiVersionsRequest

STARTUP_TIMEOUT_S = 20


def api_versions(host: str, port: int) -> int:
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(encode_request(ApiVersionsRequest(), 2, 9, "cli-test"))
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
    correlation_id, response = decode_response(data[4:], ApiVersionsRequest, 2)
    assert correlation_id == 9
    return int(response.error_code)


@pytest.mark.parametrize(("signum", "backend"), [
    (signal.SIGINT, "asyncio"), (signal.SIGTERM, "asyncio"), (signal.SIGINT, "trio")])
def test_broker_command_serves_and_stops_on_signal(signum: int, backend: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamclient", "broker", "--nodes", "2", "--port", "0",
         "--backend", backend],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        addresses = [a.rsplit(":", 1) for a in line.split(",")]
        assert len(addresses) == 2, line
        for host, port in addresses:
            assert api_versions(host, int(port)) == 0
        proc.send_signal(signum)
        assert proc.wait(timeout=STARTUP_TIMEOUT_S) == 0
        assert proc.stderr is not None
        assert f"received {signal.Signals(signum).name}" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_broker_command_reports_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broker", "--nodes", "0", "--port", "0"]) == 2
    assert "at least one node" in capsys.readouterr().err


def test_parser_lists_the_broker_subcommand() -> None:
    args = build_parser().parse_args(["broker", "--nodes", "3", "--port", "19092"])
    assert (args.command, args.nodes, args.port, args.log_dir) == ("broker", 3, 19092, None)
    with pytest.raises(SystemExit):
        build_parser().parse_args([])
