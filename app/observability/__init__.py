"""What operators watch: Prometheus metrics (``metrics.py``, served at ``GET /metrics`` by ``router.py``,
with the values read from the database at scrape time in ``service.py``) and JSON logs (``logs.py``)."""
