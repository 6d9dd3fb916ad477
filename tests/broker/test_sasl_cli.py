"""``streamclient broker`` with SASL users and a TLS certificate, driven by kafka-python."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from streamclient.cli.main import main

STARTUP_TIMEOUT_S = 20


@pytest.mark.interop
def test_broker_command_serves_sasl_ssl(tmp_path: Path) -> None:
    import kafka
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_path, key_path, ca_path = (tmp_path / "cert.pem", tmp_path / "key.pem",
                                    tmp_path / "ca.pem")
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    ca.cert_pem.write_to_path(str(ca_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamclient", "broker", "--port", "0",
         "--sasl-user", "alice:pa:ss", "--sasl-user", "bob:x",
         "--sasl-mechanisms", "SCRAM-SHA-512", "--ssl-certfile", str(cert_path),
         "--ssl-keyfile", str(key_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        bootstrap = proc.stdout.readline().strip()
        assert bootstrap.startswith("127.0.0.1:"), proc.stderr.read()
        producer = kafka.KafkaProducer(
            bootstrap_servers=bootstrap, security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="alice",
            sasl_plain_password="pa:ss", ssl_cafile=str(ca_path))
        try:
            metadata = producer.send("cli-topic", b"hello").get(timeout=STARTUP_TIMEOUT_S)
            assert metadata.offset == 0
        finally:
            producer.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STARTUP_TIMEOUT_S) == 0
        assert "listeners: SASL_SSL (SCRAM-SHA-512)" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize(("argv", "words"), [
    (["--sasl-mechanisms", "GSSAPI"], "GSSAPI"),
    (["--ssl-keyfile", "key.pem"], "--ssl-keyfile needs --ssl-certfile"),
    (["--ssl-certfile", "/nonexistent/cert.pem"], "cannot load the TLS certificate"),
    (["--sasl-mechanisms", "PLAIN", "--reauth-ms", "-5"], "reauth"),
])
def test_broker_command_reports_bad_security_options(
        argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broker", "--port", "0", *argv]) == 2
    assert words in capsys.readouterr().err


def test_sasl_user_needs_a_colon(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["broker", "--port", "0", "--sasl-user", "alice"])
    assert exited.value.code == 2
    assert "NAME:PASSWORD" in capsys.readouterr().err
