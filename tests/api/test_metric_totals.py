"""``aggregates.metrics.total`` (the dashboards' sums, written out for speed) adds up exactly the cells
that ``Count.selects`` (the rule as the registry states it) selects, for every count of every metric."""

from __future__ import annotations

from app.aggregates.metrics import METRICS, Cells, Count, Kind, total

COUNTS = sorted({c for m in METRICS for c in (m.count_numerator, m.count_denominator)}, key=repr)
GROUPS = sorted({g for c in COUNTS for g in c.groups or ()} | {"other"})
LEVELS: list[str | None] = [*sorted({lv for c in COUNTS for lv in c.levels or ()}), "other", None]
AGES = sorted({c.adult_age for c in COUNTS if c.adult_age is not None})


def test_the_registry_has_counts_of_every_shape() -> None:
    assert any(c.groups is None and c.levels is None and c.adult_age is None for c in COUNTS)
    assert any(c.groups is not None for c in COUNTS)
    assert any(c.levels is not None for c in COUNTS)
    assert AGES


def test_total_adds_exactly_the_cells_selects_selects() -> None:
    for year in range(2020, 2032):
        # Every group and level, with birth years unknown (0), long ago, recent, and on each side of the
        # adult line; each cell weighs a distinct power of two, so the sum tells which cells were added.
        borns = sorted({0, 1950, year} | {year - age + d for age in AGES for d in (-1, 0, 1)})
        keys = [(g, lv, b) for g in GROUPS for lv in LEVELS for b in borns]
        cells: Cells = {key: 1 << i for i, key in enumerate(keys)}
        for count in COUNTS:
            expected = sum(n for (g, lv, born), n in cells.items() if count.selects(g, lv, born, year))
            assert total(count, {count.kind: cells}, year) == expected, (count, year)
            assert total(count, {}, year) == 0
        assert total(Count(kind=Kind.PEOPLE), {Kind.PEOPLE: cells}, year) == sum(cells.values())
