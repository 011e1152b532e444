"""Safe YAML loading that remembers where every value came from.

Why not ``yaml.safe_load``: an error in case 37 of a 400-line golden file must say ``legal/drafting.yaml:212``,
and PyYAML silently keeps the last of two duplicate keys (a copy-paste bug that hides a case). We compose the
node tree with the *safe* loader and convert it ourselves, recording the line of every mapping key and sequence
item by its JSON path.

Speed: PyYAML's pure-Python scanner and parser cost ~0.5 ms per golden case, which made ``conformance lint`` and
the collection of a 10,000-case suite miss their 5 s goal (docs/PERFORMANCE.md, F6). When PyYAML was built with
libyaml we therefore let libyaml scan and parse, and keep everything after that in Python and unchanged: PyYAML's
own composer (recursive in Python, so absurd nesting is still a RecursionError — libyaml's C composer recurses in C
and crashes the process instead), the same resolvers, and :func:`_convert` (lines, duplicate keys, tag refusal).
Any error on that path, of any kind, discards its result and parses the text again the pure-Python way, so every
error message and line a contributor sees is exactly the pure-Python one. The remaining risk is the other way
round: a document libyaml accepts but PyYAML would reject would now load. The common case of that is a tab used as
separating white space (``key:<TAB>value``, ``[1,<TAB>2]``: libyaml accepts, PyYAML refuses), so text containing a
tab always takes the pure-Python path; what is left are malformed corners such as ``|#`` (a block scalar header
glued to a comment). tests/goldens/test_yamlsource_libyaml.py checks that both paths agree on generated documents.

Bounds (goldens are untrusted input, and so are suite.yaml and endpoints.yaml, which come through here too): an
alias shares its anchor's composed node, so composing stays linear in the text, but :func:`_convert` builds a new
value at every alias use, and a merge key (``<<``) copies its sources' entries. Ten levels of nine aliases fit in
600 bytes and expand to 9^10 values (a "billion laughs" bomb). So every document gets a budget of values — linear
in its size (:data:`VALUES_PER_BYTE`, :data:`VALUE_ALLOWANCE`) and never above :data:`MAX_VALUES` — that
conversion and merge keys spend, and a nesting limit (:data:`MAX_DEPTH`); crossing either is a GoldenError with
the line of the node where it happened, long before time or memory matter. Aliases are limited by what they expand
to rather than by their number: a count low enough to stop a bomb early would refuse a large golden set that
reuses an anchored tool list in every case.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from conformance.errors import GoldenError

PathKey = tuple[str | int, ...]

#: Values (mappings, sequences, scalars) one document may convert to: ``VALUE_ALLOWANCE`` plus ``VALUES_PER_BYTE``
#: per byte of its text, at most ``MAX_VALUES``. Without aliases a document holds at most ~0.6 values per byte
#: (``[1,1,1]``), so aliases may still repeat a document's content several times over; a 600-byte bomb is stopped
#: after ~22,000 values (milliseconds), a 10,000-case golden set (~2 MB, ~0.1 values per byte) is far inside.
VALUES_PER_BYTE = 4
VALUE_ALLOWANCE = 20_000
MAX_VALUES = 2_000_000
#: Nesting levels of mappings and sequences. Golden data (a case, its messages, a tool's JSON Schema) is a dozen
#: levels deep; a recursive alias (``&a [*a]``) hits this limit with a line instead of exhausting the stack.
MAX_DEPTH = 64
_MERGE_TAG = "tag:yaml.org,2002:merge"


def value_budget(text_length: int) -> int:
    """How many values a document of ``text_length`` characters may convert to (see the constants above)."""
    return min(MAX_VALUES, VALUE_ALLOWANCE + VALUES_PER_BYTE * text_length)


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
    # values this document may still convert to (see value_budget); spent by _convert and by merge keys
    _budget: int = field(default=MAX_VALUES, repr=False, compare=False)

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

_LibyamlLoader: Callable[[str], Any] | None = None
if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _CJsonLikeLoader(Composer, CParser, SafeConstructor, Resolver):
        """libyaml's scanner and parser under PyYAML's Python composer, constructor and :class:`_JsonLikeLoader`'s
        resolvers. ``Composer`` comes first so its ``get_single_node`` wins over ``CParser``'s C composer, which
        recurses on the C stack and segfaults on deeply nested input instead of raising RecursionError."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

        def compose_scalar_node(self, anchor: Any) -> yaml.ScalarNode:
            """PyYAML's parser lets the non-specific tag ``!`` resolve like a plain scalar (``! 12`` → 12, a bare
            ``!`` → None); libyaml marks it not implicit (→ "12", ""). Side with PyYAML, the reference."""
            event: Any = self.peek_event()
            if event.tag == "!":
                event.implicit = (True, False)
            return super().compose_scalar_node(anchor)

    _CJsonLikeLoader.yaml_implicit_resolvers = _JsonLikeLoader.yaml_implicit_resolvers
    _LibyamlLoader = _CJsonLikeLoader

#: Collections are converted here, not by PyYAML's constructor, so their tags must be checked here: a golden file
#: is JSON-like data, and ``!!python/object/apply:...``, ``!!set`` or ``!custom`` on a collection is refused.
_PLAIN_TAGS: dict[type[yaml.Node], str] = {
    yaml.MappingNode: "tag:yaml.org,2002:map",
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
}


def _convert(loader: SafeConstructor, node: yaml.Node, path: PathKey, doc: YamlDoc) -> Any:
    doc._budget -= 1
    if doc._budget < 0:
        raise _too_large(doc, node)
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if type(node) in _PLAIN_TAGS:
        if node.tag != _PLAIN_TAGS[type(node)]:
            raise GoldenError(doc.path, node.start_mark.line + 1, f"unsupported YAML tag {node.tag!r}")
        if len(path) >= MAX_DEPTH:
            raise GoldenError(doc.path, node.start_mark.line + 1,
                              f"YAML nested deeper than {MAX_DEPTH} levels (or a recursive alias)")
    if isinstance(node, yaml.MappingNode):
        merged = doc._merged.get(id(node))
        if merged is None:
            own = sum(1 for k, _ in node.value if k.tag != _MERGE_TAG)
            if own != len(node.value):  # merge keys copy entries: refuse before copying more than the budget
                _check_merge_size(node, doc)
            loader.flatten_mapping(node)  # resolves YAML merge keys (<<) the safe way: merged entries first
            merged = doc._merged[id(node)] = len(node.value) - own
        out: dict[Any, Any] = {}
        explicit: set[Any] = set()  # keys written in this mapping itself; they may override merged ones
        for i, (key_node, value_node) in enumerate(node.value):
            # a collection key is refused unbuilt: PyYAML would construct it (merges included) outside the budget
            key = loader.construct_object(key_node, deep=True) if type(key_node) is yaml.ScalarNode else key_node
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


def _too_large(doc: YamlDoc, node: yaml.Node) -> GoldenError:
    return GoldenError(doc.path, node.start_mark.line + 1,
                       f"YAML expands to too many values (aliases repeated too often: an alias bomb?); the limit is "
                       f"{VALUE_ALLOWANCE:,} + {VALUES_PER_BYTE} per character of the file, at most {MAX_VALUES:,}")


def _check_merge_size(node: yaml.MappingNode, doc: YamlDoc) -> None:
    """Raise when flattening ``node``'s merge keys would create more entries than the budget has left.

    PyYAML's ``flatten_mapping`` copies every source's (flattened) entries into the node, so merges of merges
    grow geometrically: ten levels of ``<<: [*a, *a, ...]`` copy 9^10 entries before any value is converted. The
    size after flattening is counted here first, through the merge keys only, each source once."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node, active: frozenset[int]) -> int:
        if not isinstance(n, yaml.MappingNode):
            return 0  # not a mapping: flatten_mapping itself refuses it, with its line
        if id(n) in sizes:
            return sizes[id(n)]
        if id(n) in active:
            raise GoldenError(doc.path, n.start_mark.line + 1, "YAML merge key (<<) merges a mapping into itself")
        total = 0
        for key_node, value_node in n.value:
            if key_node.tag != _MERGE_TAG:
                total += 1
                continue
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                total += size(source, active | {id(n)})
                if total > doc._budget:
                    raise _too_large(doc, n)
        sizes[id(n)] = total
        return total

    size(node, frozenset())


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Hold off the cyclic garbage collector while golden data is loaded in bulk.

    Why: composing a 10,000-case file allocates ~10 container objects per line, all of them kept (nodes, then data),
    so CPython's generational collector keeps running full passes over a growing heap that holds no cycles to find:
    40 % of the parse time, and about a second of a 10,000-case collection. Nothing here makes cycles worth
    collecting before the load ends, when the collector is switched back on. Re-entrant: an inner pause leaves the
    collector as the outer one found it, and a caller who disabled it keeps it disabled."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def parse_yaml(text: str, path: str | Path) -> YamlDoc:
    """Parse one YAML document; raise :class:`GoldenError` with the line of a syntax error.

    Through libyaml when available (fast); every document it cannot load goes through the pure-Python loader, which
    alone words the errors (see the module docstring)."""
    p = Path(path)
    with paused_gc():
        if _LibyamlLoader is not None and "\t" not in text:  # tabs: where the two parsers disagree most, see above
            doc = _parse_libyaml(_LibyamlLoader, text, p)
            if doc is not None:
                return doc
        return _parse_pure(text, p)


def _parse_libyaml(make_loader: Callable[[str], Any], text: str, path: Path) -> YamlDoc | None:
    """The document parsed by libyaml, or None when anything at all went wrong (the caller then asks the
    pure-Python loader, whose errors are the ones we promise). Deliberately broad: besides YAML errors, libyaml
    raises UnicodeEncodeError on lone surrogates where PyYAML raises a ReaderError, and _convert's GoldenErrors
    (tags, keys) must come out worded by the pure-Python path too."""
    doc = YamlDoc(path=path, data=None, _budget=value_budget(len(text)))
    loader: Any = None
    try:
        loader = make_loader(text)
        node = loader.get_single_node()
        if node is not None:
            doc.data = _convert(loader, node, (), doc)
    except Exception:
        return None
    finally:
        if loader is not None:
            loader.dispose()
    return doc


def _parse_pure(text: str, p: Path) -> YamlDoc:
    """PyYAML's pure-Python loader: the reference behaviour, and the one that words every error."""
    doc = YamlDoc(path=p, data=None, _budget=value_budget(len(text)))
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


def link_outside(path: Path, root: Path) -> Path | None:
    """Where ``path`` leads when a symlink — the file itself or a folder on the way — takes it out of ``root``.

    None when it stays inside ``root`` (a link within the repository is fine), and when ``path`` is spelled outside
    ``root`` in the first place: a file named explicitly on the command line was not smuggled in by a link."""
    try:
        target = path.resolve()
        real_root = root.resolve()
    except (OSError, RuntimeError):  # a symlink loop: reading it fails on its own, with its path
        return None
    if target.is_relative_to(real_root):
        return None
    spelled = Path(os.path.abspath(path))
    return target if spelled.is_relative_to(os.path.abspath(root)) or spelled.is_relative_to(real_root) else None


def read_yaml(path: str | Path, root: Path | None = None) -> YamlDoc:
    """Read and parse a YAML file (UTF-8).

    With ``root`` (the repository), a file a symlink leads out of it is refused unread: goldens arrive in pull
    requests, and a golden file linked to ``/etc/passwd`` would otherwise be parsed and quoted in error messages."""
    p = Path(path)
    if root is not None and (target := link_outside(p, root)) is not None:
        raise GoldenError(p, None, f"a symlink to {target}, outside the repository: refused")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GoldenError(p, None, "file not found") from None
    except UnicodeDecodeError as exc:
        raise GoldenError(p, None, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:  # a folder named *.yaml, no permission ...
        raise GoldenError(p, None, f"cannot read: {exc.strerror or exc}") from None
    return parse_yaml(text, p)
