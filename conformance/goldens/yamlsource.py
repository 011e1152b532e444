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
    # id(mapping node) → how many of its entries came from merge keys (``<<``); kept because PyYAML flattens
    # the node in place, and an aliased mapping is converted again at every alias.
    _merged: dict[int, int] = field(default_factory=dict, repr=False, compare=False)

    def line_of(self, path: PathKey) -> int:
        """Line of ``path``, or of its nearest ancestor that has one (1 for the document)."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), 1)


class _JsonLikeLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 timestamps: an unquoted ``2024-05-01`` stays a string, as it would in JSON —
    a ``date`` object would never equal the model's JSON output and cannot be fingerprinted."""


_JsonLikeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_JSON_SCALARS = (str, int, float, bool, type(None))

#: Collections are converted here, not by PyYAML's constructor, so their tags must be checked here: a golden file
#: is JSON-like data, and ``!!python/object/apply:...``, ``!!set`` or ``!custom`` on a collection is refused.
_PLAIN_TAGS: dict[type[yaml.Node], str] = {
    yaml.MappingNode: "tag:yaml.org,2002:map",
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
}


def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: PathKey, doc: YamlDoc) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if type(node) in _PLAIN_TAGS and node.tag != _PLAIN_TAGS[type(node)]:
        raise GoldenError(doc.path, node.start_mark.line + 1, f"unsupported YAML tag {node.tag!r}")
    if isinstance(node, yaml.MappingNode):
        merged = doc._merged.get(id(node))
        if merged is None:
            own = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
            loader.flatten_mapping(node)  # resolves YAML merge keys (<<) the safe way: merged entries first
            merged = doc._merged[id(node)] = len(node.value) - own
        out: dict[Any, Any] = {}
        explicit: set[Any] = set()  # keys written in this mapping itself; they may override merged ones
        for i, (key_node, value_node) in enumerate(node.value):
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise GoldenError(doc.path, key_node.start_mark.line + 1, "mapping keys must be plain scalars")
            child = (*path, key if isinstance(key, str | int) else str(key))
            if i >= merged:
                if key in explicit:
                    doc.duplicates.append((child, key_node.start_mark.line + 1))
                explicit.add(key)
            doc.lines[child] = key_node.start_mark.line + 1
            out[key] = _convert(loader, value_node, child, doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            items.append(_convert(loader, item, (*path, i), doc))
        return items
    value = loader.construct_object(node, deep=True)
    if not isinstance(value, _JSON_SCALARS):  # `!!binary`, `!!timestamp`: not JSON, so not golden data
        raise GoldenError(doc.path, node.start_mark.line + 1, f"unsupported YAML value {node.tag!r}; quote it")
    return value


def parse_yaml(text: str, path: str | Path) -> YamlDoc:
    """Parse one YAML document; raise :class:`GoldenError` with the line of a syntax error."""
    p = Path(path)
    doc = YamlDoc(path=p, data=None)
    try:
        loader = _JsonLikeLoader(text)  # the reader rejects control characters right here
    except yaml.reader.ReaderError as exc:
        at = text.count("\n", 0, exc.position) + 1
        problem = f"special character #x{exc.character:04x} is not allowed"
        raise GoldenError(p, at, f"YAML syntax error: {problem}") from None
    try:
        node = loader.get_single_node()
        if node is not None:
            doc.data = _convert(loader, node, (), doc)
    except RecursionError:  # a recursive alias (`&a [*a]`) or absurd nesting
        raise GoldenError(p, None, "YAML nested too deeply (or a recursive alias)") from None
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
    except OSError as exc:  # a folder named *.yaml, no permission ...
        raise GoldenError(p, None, f"cannot read: {exc.strerror or exc}") from None
    return parse_yaml(text, p)
