"""The change generations shared by a host's processes (``app/core/generations.py``): which committed
writes move which generation, that a rolled-back one moves nothing, and that every process mapping the
file sees each move and none is lost when processes move at once."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import LoginAttempt, User
from app.core import generations
from app.core.generations import AUTH, CRITERIA, DASHBOARDS, ORGS, Generations
from app.criteria.models import CriteriaSet
from tests.builders import Tree, build_country

MOVES = 300


def _move_many(path: str) -> None:
    shared = Generations(Path(path))
    for _ in range(MOVES):
        shared.move(auth=True)


def test_every_mapping_of_the_file_sees_every_move_of_every_process(tmp_path: Path) -> None:
    path = tmp_path / "run" / "generations"
    here, there = Generations(path), Generations(path)
    assert here.read() == (0, 0, 0, 0)
    there.move(dashboards=True)
    assert here.read() == (0, 1, 0, 0)
    there.move(auth=True)  # who may see what is part of every dashboard's tag too
    assert here.read() == (1, 2, 0, 0)
    there.move(criteria=True)  # the scoring terms of criteria sets: nothing a dashboard's tag is made of
    assert here.read() == (1, 2, 1, 0)
    there.move(orgs=True)  # the tree: pages of units (a dashboard's tag has the reference epoch for it)
    assert here.read() == (1, 2, 1, 1)

    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_move_many, args=(str(path),)) for _ in range(3)]
    for worker in workers:
        worker.start()
    _move_many(str(path))
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert here.read() == (1 + 4 * MOVES, 2 + 4 * MOVES, 1, 1)  # moved at once by four processes: none lost


async def test_which_committed_writes_move_which_generation(session: AsyncSession, tree: Tree) -> None:
    def now() -> tuple[int, ...]:
        return generations.current().read()

    before = now()
    c = await build_country(tree)  # the tree: the reference epoch moves, so the dashboards' generation
    after_tree = now()
    assert after_tree[AUTH] == before[AUTH] and after_tree[DASHBOARDS] > before[DASHBOARDS]
    assert after_tree[CRITERIA] == before[CRITERIA] and after_tree[ORGS] > before[ORGS]

    user = await tree.user(("viewer", c.province_a))  # a user and a role: auth (and with it dashboards)
    after_user = now()
    assert after_user[AUTH] > after_tree[AUTH] and after_user[DASHBOARDS] > after_tree[DASHBOARDS]
    assert after_user[ORGS] == after_tree[ORGS]

    session.add(LoginAttempt(kind="user", key="nobody", failures=1, last_attempt_at=datetime.now(UTC)))
    await session.commit()  # sign-in bookkeeping: nothing any copy is made of
    assert now() == after_user

    await session.execute(update(User).where(User.id == user.id).values(is_active=False))
    assert now() == after_user  # not before the commit: another process would read the old row again
    await session.rollback()
    assert now() == after_user  # rolled back: nothing changed

    session.add(CriteriaSet(code="GEN-TEST", title="Bộ tiêu chí thử", group="staff"))
    await session.commit()  # a criteria set: the criteria generation, not who may see what
    after_set = now()
    assert after_set[CRITERIA] > after_user[CRITERIA] and after_set[AUTH] == after_user[AUTH]

    await session.execute(text("UPDATE login_attempts SET failures = 2"))
    await session.commit()  # SQL text: its tables are not known, so every generation moves
    assert all(n > was for n, was in zip(now(), after_set, strict=True))


def test_every_table_a_generation_watches_exists() -> None:
    """A name that is no table never moves its generation: ``people`` was once watched as ``persons``,
    so a person linked to a user, or renamed, reached a kept caller and ``GET /me`` only with age."""
    import app.models  # noqa: F401  # every model, so the metadata knows every table
    from app.core.db import Base

    watched = (
        generations.AUTH_TABLES
        | generations.DASHBOARD_TABLES
        | generations.CRITERIA_TABLES
        | generations.ORG_TABLES
    )
    assert watched <= set(Base.metadata.tables), sorted(watched - set(Base.metadata.tables))
