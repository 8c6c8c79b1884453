"""Reading YAML seed files (``criteria_seeds/``) into a pydantic model, with errors that name the file
and the line a person has to fix.

Each file is parsed once (one pass gives both the data and the node tree that maps errors to lines), and
the parse is kept by content: the loaders, ``cdht seed`` and the tests read the same files many times in
one process, and pure-Python YAML is their slowest step. The file is read every time and its text is the
key, so an edited file is parsed again; the model is validated on every read (each caller gets its own
objects, and errors name the path read).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class SeedError(Exception):
    """A seed file is malformed or conflicts with the database; the message names file and line."""


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a 1-based line number."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


@dataclass(frozen=True)
class SeedDocument(Generic[M]):
    path: Path
    data: M
    root: yaml.Node | None

    def line(self, *loc: Any) -> int:
        return line_of(self.root, loc) or 1

    def error(self, loc: tuple[Any, ...], reason: str) -> SeedError:
        field = ".".join(str(p) for p in loc) or "(file)"
        return SeedError(f"{self.path}:{self.line(*loc)}: {field}: {reason}")


@lru_cache(maxsize=128)
def _parse(text: str) -> tuple[Any, yaml.Node | None]:
    """The data (as ``yaml.safe_load`` gives it) and the node tree, from one parse; cached by content."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    finally:
        loader.dispose()


def read_seed(path: Path, model: type[M]) -> SeedDocument[M]:
    text = path.read_text(encoding="utf-8")
    try:
        raw, root = _parse(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise SeedError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    try:
        data = model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        field = ".".join(str(p) for p in loc) or "(file)"
        raise SeedError(f"{path}:{line_of(root, loc) or 1}: {field}: {first['msg']}") from exc
    return SeedDocument(path=path, data=data, root=root)
