"""Training sessions on the criteria (tập huấn / quán triệt) and who attended them.

Its own package rather than part of ``plans``: a session is a record of something that happened (like an
evaluation), with person-level data (the attendees), while a plan is a target document. The plans only
meet the sessions through the ``trained_pct`` metric, counted in ``app/aggregates``.
"""
