"""Target-versus-actual aggregates (the dashboards) and the metric registry they count."""

# Their session listeners (the counters' versions and the change epochs, moved as a transaction commits)
# must be in place before any write, whichever module a process imports first.
from app.aggregates import versions as _versions  # noqa: F401
