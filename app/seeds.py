"""``cdht seed``: load ``criteria_seeds/`` into the database (idempotent, all or nothing)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.criteria.loader import load_criteria
from app.plans.loader import load_plans

SEEDS_DIR = Path(__file__).resolve().parent.parent / "criteria_seeds"


async def load_seeds(session: AsyncSession, seeds_dir: Path = SEEDS_DIR) -> list[str]:
    return await load_criteria(session, seeds_dir / "criteria") + await load_plans(
        session, seeds_dir / "plans"
    )
