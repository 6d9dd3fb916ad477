"""``CompressionRatioEstimator``: a per-topic, per-codec guess of how well batches compress.

A builder filling a compressed batch only knows the uncompressed size; it multiplies by
this estimate to decide when the batch is full.  The estimate follows observed ratios
asymmetrically, as the Java client's does: it rises quickly when batches compress worse
than expected (an underestimate makes batches overshoot ``batch_size`` and, at worst,
``max.request.size``) and falls slowly when they compress better.
"""

from __future__ import annotations

from streamclient.protocol.records.compression import Compression

__all__ = ["CompressionRatioEstimator"]

DETERIORATE_STEP = 0.05
IMPROVE_STEP = 0.005


class CompressionRatioEstimator:
    def __init__(self, initial: float = 1.0) -> None:
        self._initial = initial
        self._ratios: dict[tuple[str, Compression], float] = {}

    def estimate(self, topic: str, codec: Compression) -> float:
        if codec == Compression.NONE:
            return 1.0
        return self._ratios.get((topic, codec), self._initial)

    def observe(self, topic: str, codec: Compression, observed: float) -> float:
        """Fold in a built batch's ratio (compressed / uncompressed); return the new estimate."""
        if codec == Compression.NONE:
            return 1.0
        key = (topic, codec)
        current = self._ratios.get(key, self._initial)
        if observed > current:
            current = max(current + DETERIORATE_STEP, observed)
        elif observed < current:
            current = max(current - IMPROVE_STEP, observed)
        self._ratios[key] = current
        return current

    def reset(self, topic: str | None = None) -> None:
        if topic is None:
            self._ratios.clear()
        else:
            for key in [k for k in self._ratios if k[0] == topic]:
                del self._ratios[key]
