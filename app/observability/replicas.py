"""The read replicas' routing as Prometheus metrics (``app/core/replicas.py`` reports to :data:`PROMETHEUS`).

- ``cdht_replica_fallbacks_total{reason}``: dashboard reads the primary answered because no replica was fit
  (``lag``: every reachable replica too far behind; ``down``: none reachable);
- ``cdht_replica_reads_total{target}``: dashboard reads by where they went (``replica``; ``recent_write``:
  the caller wrote within ``CDHT_READ_YOUR_WRITES_SECONDS``, so the primary; ``fallback``);
- ``cdht_replica_measured_lag_seconds{replica}``: each replica's lag as the router last measured it (the
  highest of the live processes; NaN while unreachable). ``cdht_replica_lag_seconds`` (``service.py``) is
  the primary's own view, from ``pg_stat_replication``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from app.observability.metrics import REGISTRY

FALLBACKS = Counter(
    "cdht_replica_fallbacks",
    "Dashboard reads answered by the primary because no read replica was fit, by reason (lag, down).",
    ["reason"],
    registry=REGISTRY,
)
READS = Counter(
    "cdht_replica_reads",
    "Dashboard reads by where they went (replica, recent_write: the caller's own write is recent, fallback).",
    ["target"],
    registry=REGISTRY,
)
LAG = Gauge(
    "cdht_replica_measured_lag_seconds",
    "Each read replica's lag as the router last measured it (NaN while unreachable).",
    ["replica"],
    multiprocess_mode="livemax",
    registry=REGISTRY,
)


class PrometheusReplicaMetrics:
    def read(self, target: str) -> None:
        READS.labels(target).inc()

    def fallback(self, reason: str) -> None:
        FALLBACKS.labels(reason).inc()

    def lag(self, replica: str, seconds: float | None) -> None:
        LAG.labels(replica).set(float("nan") if seconds is None else seconds)


PROMETHEUS = PrometheusReplicaMetrics()
