"""Reporting cycle endpoints: ``/report-submissions``, ``/reporting-calendars``, ``/reporting/completeness``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["reporting"])
