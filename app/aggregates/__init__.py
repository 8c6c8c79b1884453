"""Target-versus-actual aggregates (the dashboards) and the metric registry they count."""
