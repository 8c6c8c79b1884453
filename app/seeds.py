"""``cdht seed``: load ``criteria_seeds/`` into the database (idempotent)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

SEEDS_DIR = Path(__file__).resolve().parent.parent / "criteria_seeds"


async def load_seeds(session: AsyncSession, seeds_dir: Path = SEEDS_DIR) -> list[str]:
    return [f"no seed loaders yet ({seeds_dir})"]
