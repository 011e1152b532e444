"""The legal glossary: its file format, validation, and glossary-aware term counting.

Why a format of its own: a legal team knows which terms are *not* interchangeable (定金 vs 订金, 应当 vs 可以,
"shall" vs "may"); writing that knowledge down once, with a note on the legal difference, lets the drift
check (:mod:`conformance.checks.terms`) tell a consuming team *why* a candidate's wording matters.

``goldens/<system>/glossary.yaml``::

    version: 1
    near_miss_threshold: {cjk: 85, latin: 91}    # optional, see conformance.checks.terms
    terms:
      - term: 定金
        lookalikes: [订金, 押金]                   # legally distinct: a swap is drift (symmetric)
        variants: []                              # same legal meaning: never drift, satisfies `required`
        note: 定金适用定金罚则；订金只是预付款。     # printed next to every finding
        near_miss: true                           # fuzzy near-miss search for this term (default true)

Counting is glossary-aware: all surfaces (terms, variants, look-alikes) are matched leftmost-longest on
folded text (NFKC width folding, case folding, whitespace runs collapsed), so 撤销 inside 可撤销 is not
撤销, and Latin surfaces match whole words only ("may" is not in "mayor") but inside compounds ("jointly and
severally liable"; "best-efforts" is "best efforts"). Offsets always refer to the original text.
:func:`validate_glossary` is pure (it takes the parsed YAML) so ``conformance lint`` can report problems with
their file and line.

**Look-alikes inside longer terms.** Leftmost-longest makes 连带责任保证 *one* occurrence of that glossary term,
never also one of the 连带责任 inside it (no double counting; a longer form the glossary does not list, such as
连带责任人, leaves the inner 连带责任 to be found). The price is that a swap *inside* the longer term
(连带责任保证 → 按份责任保证) is not a swap of two glossary surfaces. :meth:`Glossary.compounds_of` lists, for
each glossary surface containing another glossary surface, the same surface with that inner surface replaced by
each of its look-alikes — the rest of the longer term unchanged — so the drift check can recognise the swap
(:class:`Compound`). Requiring the rest unchanged is what keeps 诉讼时效 dropped from a text while 仲裁 appears
elsewhere from counting as 诉讼 → 仲裁.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from conformance.checks.normalize import cjk_share, fold_width, strip_punct

__all__ = [
    "CONTEXT",
    "DEFAULT_THRESHOLDS",
    "LATIN_CHARS",
    "Compound",
    "Glossary",
    "GlossaryEntry",
    "Problem",
    "Span",
    "fold_term",
    "fold_with_offsets",
    "glossary_problems",
    "is_latin",
    "load_glossary",
    "scan",
    "surface_pattern",
    "validate_glossary",
]

#: Default near-miss thresholds (rapidfuzz ratio, 0–100); see :mod:`conformance.checks.terms` for why.
DEFAULT_THRESHOLDS: dict[str, float] = {"cjk": 85.0, "latin": 91.0}
#: Characters of context on each side of a finding's snippet.
CONTEXT = 10
#: Characters that make up a Latin word (after case folding).
LATIN_CHARS = "a-z0-9\u00c0-\u024f"
_LATIN_HYPHEN = re.compile(rf"(?<=[{LATIN_CHARS}])[-\u2010](?=[{LATIN_CHARS}])")
_SPACE_OR_HYPHEN = "[ \\-\u2010]"
_TOP_KEYS = {"version", "description", "near_miss_threshold", "terms"}
_ENTRY_KEYS = {"term", "lookalikes", "variants", "note", "near_miss"}


def fold_with_offsets(text: str, *, punctuation: bool = False,
                      case: bool = True) -> tuple[str, tuple[int, ...]]:
    """Fold like :func:`conformance.checks.normalize.fold`, mapping each folded character to its source index.

    Folding is per character (NFKC, casefold), so a ligature or ß that expands still maps back. With
    ``punctuation=True`` punctuation and whitespace are dropped; otherwise whitespace runs become one space.
    """
    out: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        folded = fold_width(ch)
        if case:
            folded = folded.casefold()
        for f in folded:
            if punctuation:
                if not strip_punct(f):
                    continue
            elif f.isspace():
                if not out or out[-1] == " ":
                    continue
                f = " "
            out.append(f)
            index.append(i)
    return "".join(out), tuple(index)


def fold_term(term: str) -> str:
    """The lookup key of a surface: folded, and a hyphen between two Latin letters read as a space, so
    "best-efforts" is the surface "best efforts" (see :func:`surface_pattern`)."""
    return _LATIN_HYPHEN.sub(" ", fold_with_offsets(term)[0].strip())


def is_latin(term: str) -> bool:
    return cjk_share(term) == 0.0 and re.search(f"[{LATIN_CHARS}]", term) is not None


@lru_cache(maxsize=256)
def surface_pattern(surfaces: tuple[str, ...]) -> re.Pattern[str]:
    """Leftmost-longest alternation; Latin surfaces only match as whole words, and the space between two words
    of a Latin surface also matches a hyphen (a "best-efforts obligation" is a best efforts obligation)."""
    parts = []
    for s in sorted(surfaces, key=lambda s: (-len(s), s)):
        esc = re.escape(s)
        if is_latin(s):
            esc = rf"(?<![{LATIN_CHARS}]){esc.replace(re.escape(' '), _SPACE_OR_HYPHEN)}(?![{LATIN_CHARS}])"
        parts.append(esc)
    return re.compile("|".join(parts) or r"(?!)")


@dataclass(frozen=True)
class Span:
    """One occurrence in the *original* text."""

    surface: str
    start: int
    end: int

    def describe(self, text: str) -> dict[str, Any]:
        lo = max(0, self.start - CONTEXT)
        return {"text": text[self.start:self.end], "start": self.start, "end": self.end,
                "snippet": text[lo:self.end + CONTEXT], "snippet_start": lo}


def scan(text: str, pattern: re.Pattern[str]) -> list[Span]:
    folded, index = fold_with_offsets(text)
    return [Span(m.group(), index[m.start()], index[m.end() - 1] + 1) for m in pattern.finditer(folded)]


@dataclass(frozen=True)
class Compound:
    """A glossary surface with one inner glossary surface swapped for a look-alike (all folded):
    ``surface`` 连带责任保证, ``inner`` 连带责任, ``lookalike`` 按份责任, ``swapped`` 按份责任保证, and the ``note`` of
    the inner pair."""

    surface: str
    inner: str
    lookalike: str
    swapped: str
    note: str


@dataclass(frozen=True)
class GlossaryEntry:
    """A term, the look-alikes that mean something else in law, the variants that mean the same."""

    term: str
    lookalikes: tuple[str, ...]
    variants: tuple[str, ...] = ()
    note: str = ""
    near_miss: bool = True


@dataclass(frozen=True)
class Glossary:
    """Entries plus the derived lookup tables (computed once, cached on the instance)."""

    entries: tuple[GlossaryEntry, ...]
    thresholds: Mapping[str, float] | None = None

    @cached_property
    def _groups(self) -> dict[str, str]:
        """Folded surface → its group key (the folded entry term for terms and variants)."""
        groups: dict[str, str] = {}
        for e in self.entries:
            key = fold_term(e.term)
            for s in (e.term, *e.variants):
                groups.setdefault(fold_term(s), key)
        for e in self.entries:
            for s in e.lookalikes:
                groups.setdefault(fold_term(s), fold_term(s))
        return groups

    @cached_property
    def _relations(self) -> dict[str, dict[str, str]]:
        """Group key → {look-alike group key: note}, symmetric."""
        rel: dict[str, dict[str, str]] = {}
        for e in self.entries:
            g = self._groups[fold_term(e.term)]
            for la in e.lookalikes:
                h = self._groups[fold_term(la)]
                if h != g:
                    rel.setdefault(g, {})[h] = e.note
                    rel.setdefault(h, {}).setdefault(g, e.note)
        return rel

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return surface_pattern(tuple(self._groups))

    def group(self, surface: str) -> str | None:
        """The group key of a surface (a variant maps to its term); None if the glossary does not know it."""
        return self._groups.get(fold_term(surface))

    def lookalikes_of(self, term: str) -> dict[str, str]:
        """Look-alike group keys of ``term`` with the note explaining the difference."""
        g = self.group(term)
        return dict(self._relations.get(g, {})) if g else {}

    def surfaces_of(self, group: str) -> tuple[str, ...]:
        return tuple(s for s, g in self._groups.items() if g == group)

    @cached_property
    def _compounds(self) -> dict[str, tuple[Compound, ...]]:
        """Group key → the swaps of an inner surface inside each of the group's surfaces (module docstring)."""
        groups = self._groups
        found: dict[str, list[Compound]] = {}
        for outer in sorted(groups):
            g = groups[outer]
            for inner in sorted(groups):
                if len(inner) >= len(outer) or groups[inner] == g:
                    continue
                for m in surface_pattern((inner,)).finditer(outer):
                    for other, note in sorted(self._relations.get(groups[inner], {}).items()):
                        for la in self.surfaces_of(other) if other != g else ():
                            swapped = outer[:m.start()] + la + outer[m.end():]
                            if groups.get(swapped) != g:
                                found.setdefault(g, []).append(Compound(outer, inner, la, swapped, note))
        return {g: tuple(cs) for g, cs in found.items()}

    def compounds_of(self, group: str) -> tuple[Compound, ...]:
        """Look-alike swaps inside the surfaces of ``group`` (连带责任保证 → 按份责任保证); empty for most terms."""
        return self._compounds.get(group, ())

    def near_miss_terms(self) -> list[GlossaryEntry]:
        return [e for e in self.entries if e.near_miss]

    def threshold(self, latin: bool) -> float:
        t = {**DEFAULT_THRESHOLDS, **(self.thresholds or {})}
        return float(t["latin" if latin else "cjk"])


Problem = tuple[tuple[str | int, ...], str]


def _entry_problems(i: int, e: Any, seen: dict[str, int]) -> list[Problem]:
    where: tuple[str | int, ...] = ("terms", i)
    if not isinstance(e, Mapping):
        return [(where, f"terms[{i}] must be a mapping")]
    out: list[Problem] = [((*where, k), f"terms[{i}]: unknown key {k!r} (allowed: {sorted(_ENTRY_KEYS)})")
                          for k in e if k not in _ENTRY_KEYS]
    term = e.get("term")
    if not isinstance(term, str) or not fold_term(term):
        return [*out, ((*where, "term"), f"terms[{i}]: 'term' must be a non-empty string")]
    name = f"terms[{i}] ({term})"
    looks, variants = e.get("lookalikes"), e.get("variants", [])
    if not isinstance(looks, list) or not looks:
        out.append(((*where, "lookalikes"), f"{name}: 'lookalikes' must be a non-empty list"))
        looks = []
    if not isinstance(variants, list):
        out.append(((*where, "variants"), f"{name}: 'variants' must be a list"))
        variants = []
    if not isinstance(e.get("note"), str) or not e["note"].strip():
        out.append(((*where, "note"), f"{name}: 'note' must say what the legal difference is"))
    if not isinstance(e.get("near_miss", True), bool):
        out.append(((*where, "near_miss"), f"{name}: 'near_miss' must be true or false"))
    for field, items in (("lookalikes", looks), ("variants", variants)):
        folded = [fold_term(x) if isinstance(x, str) else "" for x in items]
        for j, (x, f) in enumerate(zip(items, folded, strict=True)):
            if not f:
                out.append(((*where, field, j), f"{name}: {field}[{j}] must be a non-empty string"))
            elif f == fold_term(term):
                out.append(((*where, field, j), f"{name}: {x!r} is listed as its own {field[:-1]}"))
            elif folded.index(f) != j:
                out.append(((*where, field, j), f"{name}: {x!r} is listed twice in {field}"))
    both = ({fold_term(x) for x in looks if isinstance(x, str)}
            & {fold_term(x) for x in variants if isinstance(x, str)})
    out += [(where, f"{name}: {x!r} cannot be both a variant and a look-alike") for x in sorted(both)]
    for surface in (term, *(v for v in variants if isinstance(v, str))):
        f = fold_term(surface)
        if seen.setdefault(f, i) != i:
            out.append(((*where, "term"),
                        f"{name}: duplicate term {surface!r} (already in terms[{seen[f]}])"))
    return out


def glossary_problems(data: Any) -> list[Problem]:
    """Problems with a parsed glossary mapping, each with the YAML path it is about (for ``path:line``)."""
    if not isinstance(data, Mapping):
        return [((), "a glossary is a mapping with a 'terms' list")]
    out: list[Problem] = [((k,), f"unknown key {k!r} (allowed: {sorted(_TOP_KEYS)})")
                          for k in data if k not in _TOP_KEYS]
    thr = data.get("near_miss_threshold")
    if thr is not None and not (isinstance(thr, Mapping) and set(thr) <= {"cjk", "latin"}
                                and all(isinstance(v, int | float) and 0 < v <= 100 for v in thr.values())):
        out.append((("near_miss_threshold",), "near_miss_threshold must map cjk/latin to a score in "
                                              "(0, 100]"))
    entries = data.get("terms")
    if not isinstance(entries, list) or not entries:
        return [*out, (("terms",), "'terms' must be a non-empty list of entries")]
    seen: dict[str, int] = {}
    for i, e in enumerate(entries):
        out += _entry_problems(i, e, seen)
    return out


def validate_glossary(data: Any) -> list[str]:
    """Human-readable problems (empty when the glossary is usable); ``conformance lint`` prints them."""
    return [msg for _, msg in glossary_problems(data)]


def load_glossary(data: Mapping[str, Any]) -> Glossary:
    """Build a :class:`Glossary` from the parsed YAML mapping; raises ValueError listing every problem."""
    problems = validate_glossary(data)
    if problems:
        raise ValueError("invalid glossary:\n  " + "\n  ".join(problems))
    entries = tuple(GlossaryEntry(term=e["term"], lookalikes=tuple(e["lookalikes"]),
                                  variants=tuple(e.get("variants", ())), note=e["note"].strip(),
                                  near_miss=e.get("near_miss", True)) for e in data["terms"])
    return Glossary(entries, dict(data.get("near_miss_threshold") or {}))
