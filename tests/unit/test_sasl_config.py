"""SASL settings: accepted by every client config, checked at construction, carried to
the cluster client's connections."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from streamclient import AIOKafkaConsumer, AIOKafkaProducer
from streamclient.abc import AbstractTokenProvider
from streamclient.admin.config import AdminConfig
from streamclient.cluster import ClusterConfig, ClusterConfigError
from streamclient.consumer.config import ConsumerConfig
from streamclient.errors import KafkaConfigurationError
from streamclient.net.sasl import SaslSettings
from streamclient.producer.config import ProducerConfig


class Provider(AbstractTokenProvider):
    async def token(self) -> str:
        return "tok"


CONFIGS = [ProducerConfig, ConsumerConfig, AdminConfig]


@pytest.mark.parametrize("config_class", CONFIGS)
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_password_mechanisms_reach_the_cluster_config(config_class: Any,
                                                      mechanism: str) -> None:
    config = config_class(security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                          sasl_plain_username="alice", sasl_plain_password="pw")
    cluster = ClusterConfig.from_settings(config)
    assert cluster.sasl == SaslSettings(mechanism, "alice", "pw")
    assert cluster.tls_context is None


@pytest.mark.parametrize("config_class", CONFIGS)
def test_sasl_ssl_uses_tls_and_sasl(config_class: Any) -> None:
    context = ssl.create_default_context()
    config = config_class(security_protocol="SASL_SSL", ssl_context=context,
                          sasl_mechanism="OAUTHBEARER",
                          sasl_oauth_token_provider=Provider())
    cluster = ClusterConfig.from_settings(config)
    assert cluster.tls_context is context
    assert cluster.sasl is not None and cluster.sasl.mechanism == "OAUTHBEARER"


@pytest.mark.parametrize("config_class", CONFIGS)
def test_missing_credentials_are_refused_with_aiokafkas_messages(config_class: Any) -> None:
    with pytest.raises(KafkaConfigurationError,
                       match="sasl_plain_username and sasl_plain_password required for "
                             "PLAIN sasl"):
        config_class(security_protocol="SASL_PLAINTEXT", sasl_plain_username="alice")
    with pytest.raises(KafkaConfigurationError,
                       match="required for SCRAM-SHA-512 sasl"):
        config_class(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512")
    with pytest.raises(KafkaConfigurationError,
                       match="sasl_oauth_token_provider needs to be provided"):
        config_class(security_protocol="SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER")
    with pytest.raises(KafkaConfigurationError,
                       match="sasl_oauth_token_provider needs to be provided"):
        config_class(security_protocol="SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER",
                     sasl_oauth_token_provider="not a provider")


@pytest.mark.parametrize("config_class", CONFIGS)
def test_gssapi_is_refused_at_construction(config_class: Any) -> None:
    with pytest.raises(KafkaConfigurationError, match=r"GSSAPI.*not supported"):
        config_class(security_protocol="SASL_PLAINTEXT", sasl_mechanism="GSSAPI")


def test_the_facades_refuse_gssapi_before_any_io() -> None:
    with pytest.raises(KafkaConfigurationError, match="Kerberos"):
        AIOKafkaProducer(security_protocol="SASL_SSL", sasl_mechanism="GSSAPI",
                         ssl_context=ssl.create_default_context())
    with pytest.raises(KafkaConfigurationError, match="Kerberos"):
        AIOKafkaConsumer(security_protocol="SASL_PLAINTEXT", sasl_mechanism="GSSAPI")


def test_plaintext_ignores_sasl_fields() -> None:
    cluster = ClusterConfig(sasl_mechanism="GSSAPI")
    assert cluster.sasl is None


def test_cluster_config_checks_sasl_itself() -> None:
    with pytest.raises(ClusterConfigError, match="Kerberos"):
        ClusterConfig(security_protocol="SASL_PLAINTEXT", sasl_mechanism="GSSAPI")
    with pytest.raises(ClusterConfigError, match="not supported"):
        ClusterConfig(security_protocol="SASL_PLAINTEXT", sasl_mechanism="MAGIC",
                      sasl_plain_username="u", sasl_plain_password="p")
    with pytest.raises(ClusterConfigError, match="ssl_context"):
        ClusterConfig(security_protocol="SASL_SSL", sasl_plain_username="u",
                      sasl_plain_password="p")


def test_settings_never_show_the_password() -> None:
    settings = SaslSettings("SCRAM-SHA-256", "alice", "hunter2")
    assert "hunter2" not in repr(settings) and "alice" in repr(settings)
