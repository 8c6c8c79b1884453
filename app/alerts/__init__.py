"""Alerts (cảnh báo), computed from the data: units behind their plan's trajectory, reports overdue,
evaluations waiting for review too long."""
