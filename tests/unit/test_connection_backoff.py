"""ExponentialBackoff: the reconnect/retry curve, its cap and its jitter."""

from __future__ import annotations

import pytest

from streamclient.net.backoff import ExponentialBackoff


def test_doubles_until_the_cap_without_jitter() -> None:
    backoff = ExponentialBackoff(50, 1000, jitter=0)
    assert [backoff.delay_ms(n) for n in range(7)] == [50, 100, 200, 400, 800, 1000, 1000]
    assert backoff.delay_ms(10_000) == 1000  # no overflow however long it has failed


@pytest.mark.parametrize(("draw", "factor"), [(0.0, 0.8), (0.5, 1.0), (1.0, 1.2)])
def test_jitter_spreads_twenty_percent_each_way(draw: float, factor: float) -> None:
    backoff = ExponentialBackoff(100, 10_000, random_source=lambda: draw)
    assert backoff.delay_ms(2) == pytest.approx(400 * factor)
    assert backoff.delay_ms(50) == pytest.approx(10_000 * factor)


def test_max_not_above_initial_means_constant() -> None:
    backoff = ExponentialBackoff(500, 100, jitter=0)
    assert {backoff.delay_ms(n) for n in range(5)} == {100}
    assert ExponentialBackoff(0, 0).delay_ms(3) == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"initial_ms": -1, "max_ms": 1}, {"initial_ms": 1, "max_ms": 2, "multiplier": 0.5},
     {"initial_ms": 1, "max_ms": 2, "jitter": 1.0}],
)
def test_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ExponentialBackoff(**kwargs)


def test_rejects_negative_attempts() -> None:
    with pytest.raises(ValueError):
        ExponentialBackoff(1, 2).delay_ms(-1)
