"""Safe YAML loading that remembers where every value came from.

Why not ``yaml.safe_load``: an error in case 37 of a 400-line golden file must say ``legal/drafting.yaml:212``,
and PyYAML silently keeps the last of two duplicate keys (a copy-paste bug that hides a case). We compose the
node tree with the *safe* loader and convert it ourselves, recording the line of every mapping key and sequence
item by its JSON path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conformance.errors import GoldenError

PathKey = tuple[str | int, ...]


@dataclass
class YamlDoc:
    """Parsed data plus a map JSON path → 1-based line, and the duplicate keys found on the way."""

    path: Path
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)
    duplicates: list[tuple[PathKey, int]] = field(default_factory=list)

    def line_of(self, path: PathKey) -> int:
        """Line of ``path``, or of its nearest ancestor that has one (1 for the document)."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), 1)


def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: PathKey, doc: YamlDoc) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<) the safe way
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise GoldenError(doc.path, key_node.start_mark.line + 1, "mapping keys must be plain scalars")
            child = (*path, key if isinstance(key, str | int) else str(key))
            if key in out:
                doc.duplicates.append((child, key_node.start_mark.line + 1))
            doc.lines[child] = key_node.start_mark.line + 1
            out[key] = _convert(loader, value_node, child, doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            items.append(_convert(loader, item, (*path, i), doc))
        return items
    return loader.construct_object(node, deep=True)


def parse_yaml(text: str, path: str | Path) -> YamlDoc:
    """Parse one YAML document; raise :class:`GoldenError` with the line of a syntax error."""
    p = Path(path)
    doc = YamlDoc(path=p, data=None)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            doc.data = _convert(loader, node, (), doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or str(exc)
        raise GoldenError(p, line, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise GoldenError(p, None, f"YAML error: {exc}") from None
    finally:
        loader.dispose()
    return doc


def read_yaml(path: str | Path) -> YamlDoc:
    """Read and parse a YAML file (UTF-8)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GoldenError(p, None, "file not found") from None
    except UnicodeDecodeError as exc:
        raise GoldenError(p, None, f"not UTF-8 text ({exc.reason})") from None
    return parse_yaml(text, p)
