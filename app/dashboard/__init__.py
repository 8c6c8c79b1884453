"""The web dashboard (issue #17): a page for the associations and education offices, served by the API
process at ``/dashboard/``. Its source is ``frontend/``; ``make dashboard`` builds it into ``static/``
(committed, so the package serves it without Node)."""
