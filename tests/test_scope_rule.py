"""The scope rule is a check, not a convention (issue #16): every visibility decision lives in
``app/auth/scope.py``. Outside ``app/auth/`` and the repositories, no module may

- read the tree tables (``OrgUnitClosure``, ``OrgUnitLink``) — who sees what is decided in scope.py;
- read the subject's grants (``.grants``, ``.units_with``) or the policy's roles (``roles_for``);
- narrow a query by unit ids by hand (``X.org_unit_id.in_(...)`` with anything but scope's
  ``subtree_ids``/``ancestor_ids`` or a repository's query).

The modules below are the documented exceptions: they *count* or *maintain* the tree, they do not decide
who sees it. A new exception needs its reason here, where review sees it.
"""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

EXCEPTIONS = {
    "aggregates/cells.py": "the counters' definition: where each subject counts through the dated tree",
    "aggregates/counters.py": "keeps the counters equal to a recount along the tree",
    "aggregates/affected.py": "finds the people a recount concerns along the dated tree (for counters.py)",
    "aggregates/naive.py": "the hand-written recount the counters are tested against",
    "aggregates/waiting.py": "keeps the review queue rolled up along today's tree",
    "aggregates/versions.py": "keeps the counters' change counters (read for units already authorised)",
    "orgs/history.py": "maintains the tree tables themselves (moves, ends, links)",
    "orgs/past.py": "reads the dated links to show a page of units as the tree stood (split from history.py)",
    "webhooks/outbox.py": "fans an event out to the subscriptions at or above its unit (each subscription's "
    "scope was checked by authorize when it was made)",
    "imports/events.py": "names the unit an import's webhook event belongs to (the sender's import unit)",
    "demo_evaluations.py": "the demo acts as its users (builds their Subject)",
}
TREE_TABLES = {"OrgUnitClosure", "OrgUnitLink"}
GRANT_ATTRIBUTES = {"grants", "units_with"}
NARROWERS = {"subtree_ids", "ancestor_ids"}


def _exempt(relative: str) -> bool:
    return (
        relative.startswith("auth/")
        or relative.endswith(("repository.py", "models.py"))
        or (relative in EXCEPTIONS)
    )


def _narrowed_properly(arg: ast.expr) -> bool:
    if not isinstance(arg, ast.Call):
        return False
    func = arg.func
    if isinstance(func, ast.Name):
        return func.id in NARROWERS
    # repo.children_ids(...), orgs_repo.x(...): a repository's query
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id.endswith("repo")
    )


def violations(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and node.id in TREE_TABLES | {"roles_for"}:
            found.append(f"line {node.lineno}: uses {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in GRANT_ATTRIBUTES:
            found.append(f"line {node.lineno}: reads the subject's .{node.attr}")
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in TREE_TABLES | {"roles_for"}:
                    found.append(f"line {node.lineno}: imports {alias.name}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "in_"
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "org_unit_id"
            and not (node.args and _narrowed_properly(node.args[0]))
        ):
            found.append(f"line {node.lineno}: narrows by unit ids by hand (.org_unit_id.in_)")
    return found


def test_no_module_outside_the_choke_point_decides_visibility() -> None:
    problems = {}
    for path in sorted(APP.rglob("*.py")):
        relative = path.relative_to(APP).as_posix()
        if not _exempt(relative) and (found := violations(path.read_text(encoding="utf-8"))):
            problems[relative] = found
    assert not problems, (
        "Visibility is decided in app/auth/scope.py (its docstring lists the rules); move these there, or "
        f"add the module to EXCEPTIONS with its reason: {problems}"
    )


def test_every_exception_still_exists_and_the_check_catches_what_it_should() -> None:
    assert all((APP / name).is_file() for name in EXCEPTIONS), "an exception names a module that is gone"
    sample = (
        "from app.orgs.models import OrgUnitClosure\n"
        "def f(subject, q):\n"
        "    units = subject.units_with()\n"
        "    return q.where(Person.org_unit_id.in_(units))\n"
    )
    assert len(violations(sample)) == 3
    fine = "def f(q, unit):\n    return q.where(Person.org_unit_id.in_(subtree_ids([unit])))\n"
    assert violations(fine) == []
