"""Personal data in golden sets: find it before it is committed.

Why: goldens are copied from production traffic (medical records, résumés, customer tickets) and end up in a
repository many people read and in CI logs. The medical-summary team's rule — personal data must never appear in
goldens — only holds if lint checks it. :func:`find_pii` looks for what actually leaks in Chinese business text:

``id_card``
    resident identity card numbers: 17 digits + a check character (digit or X) that satisfies ISO 7064
    MOD 11-2, with a plausible region digit and a real birth date (YYYYMMDD at positions 7–14). Only valid
    checksums count: an 18-digit order number is not flagged 10 times out of 11.
``mobile``
    mainland mobile numbers ``1[3-9]`` + 9 digits (optionally after ``+86`` or ``86 ``, optionally written 3-4-4
    with spaces or hyphens), not part of a longer digit run.
``email``
    e-mail addresses.
``bank_card``
    13–19 digit card numbers (plain, or in groups of four) passing the Luhn check; a run of one repeated digit
    (``0000000000000``, a placeholder) is not a card.

Full-width digits (１３８…) are matched like ASCII ones (a 1:1 translation, so offsets stay those of the original
text). Overlaps resolve in the order email > id_card > mobile > bank_card (``13812345678@qq.com`` is one e-mail).

Synthetic values are allowed in two ways: e-mail addresses on reserved domains (RFC 2606 / 6761:
``example.com/.net/.org`` and their subdomains, the ``.example``, ``.test``, ``.invalid``, ``.localhost`` TLDs),
and cases tagged ``synthetic-pii`` (``tags: [synthetic-pii]`` on the case, or in the set's ``defaults.tags`` for
the whole set) — a reviewer then sees the claim in the diff. A YAML comment marker would be lost by the parser.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from conformance.goldens.model import Case, GoldenSet

PiiKind = Literal["email", "id_card", "mobile", "bank_card"]

#: The tag that marks a case (or, through ``defaults.tags``, a whole set) as using synthetic personal data.
SYNTHETIC_TAG = "synthetic-pii"

RESERVED_DOMAINS: tuple[str, ...] = ("example.com", "example.net", "example.org")
RESERVED_TLDS: tuple[str, ...] = ("example", "test", "invalid", "localhost")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # 2^(17-i) mod 11
_ID_CHECK = "10X98765432"  # (sum mod 11) → check character

# Full-width forms → ASCII, one character for one: offsets in the translated text are offsets in the original.
_FOLD = str.maketrans({**{chr(0xFF10 + i): str(i) for i in range(10)}, "Ｘ": "X", "ｘ": "x", "＠": "@",
                       "．": ".", "＋": "+", "－": "-"})

_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                    r"[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])", re.ASCII)
_ID_CARD = re.compile(r"(?<!\d)[1-9]\d{16}[\dXx](?!\d)", re.ASCII)
_MOBILE = re.compile(r"(?<![\d+])(?:\+86[ -]?|86[ -])?1[3-9]\d(?:\d{8}|[ -]\d{4}[ -]\d{4})(?!\d)", re.ASCII)
_CARD = re.compile(r"(?<!\d)(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,4})?)(?!\d)", re.ASCII)


@dataclass(frozen=True)
class PiiHit:
    """One piece of personal data: where it is and what kind it is. ``masked`` is safe to print in CI logs."""

    kind: PiiKind
    start: int
    end: int
    value: str

    @property
    def synthetic(self) -> bool:
        """A reserved example value (only e-mail addresses have reserved forms)."""
        if self.kind != "email":
            return False
        domain = self.value.rsplit("@", 1)[-1].lower().translate(_FOLD)
        return (any(domain == d or domain.endswith("." + d) for d in RESERVED_DOMAINS)
                or domain.rsplit(".", 1)[-1] in RESERVED_TLDS)

    @property
    def masked(self) -> str:
        """``110105********123X`` / ``z***@corp.cn``: enough to find it in the file, not enough to leak it."""
        if self.kind == "email":
            local, _, domain = self.value.rpartition("@")
            return f"{local[:1]}***@{domain}"
        v = self.value
        keep_head, keep_tail = (6, 4) if self.kind in ("id_card", "bank_card") else (3, 2)
        if len(v) <= keep_head + keep_tail:
            return "*" * len(v)
        return v[:keep_head] + "*" * (len(v) - keep_head - keep_tail) + v[-keep_tail:]


def id_card_valid(number: str) -> bool:
    """18 characters, region digit 1–9, a real birth date 1900–2099, and the ISO 7064 MOD 11-2 check."""
    if len(number) != 18 or not number[:17].isascii() or not number[:17].isdigit() or number[0] == "0":
        return False
    try:
        born = _dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    if not 1900 <= born.year <= 2099:
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def id_card_check_char(first17: str) -> str:
    """The check character completing 17 digits (for tests and for generating synthetic numbers)."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment cards."""
    if not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _candidates(text: str) -> Iterator[PiiHit]:
    folded = text.translate(_FOLD)
    for m in _EMAIL.finditer(folded):
        yield PiiHit("email", m.start(), m.end(), text[m.start():m.end()])
    for m in _ID_CARD.finditer(folded):
        if id_card_valid(m.group()):
            yield PiiHit("id_card", m.start(), m.end(), text[m.start():m.end()])
    for m in _MOBILE.finditer(folded):
        yield PiiHit("mobile", m.start(), m.end(), text[m.start():m.end()])
    for m in _CARD.finditer(folded):
        digits = re.sub(r"[ -]", "", m.group())
        if 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_valid(digits):
            yield PiiHit("bank_card", m.start(), m.end(), text[m.start():m.end()])


def find_pii(text: str, *, include_synthetic: bool = False) -> list[PiiHit]:
    """Every piece of personal data in ``text``, by position; reserved example values only on request."""
    kept: list[PiiHit] = []
    for hit in _candidates(text):  # already in priority order: email, id_card, mobile, bank_card
        if any(hit.start < k.end and k.start < hit.end for k in kept):
            continue
        kept.append(hit)
    return sorted((h for h in kept if include_synthetic or not h.synthetic), key=lambda h: (h.start, h.kind))


def _strings(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield where, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f"{where}.{k}" if where else str(k))
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            yield from _strings(v, f"{where}[{i}]")


def case_strings(case: Case) -> Iterator[tuple[str, str]]:
    """(location, text) of everything in a case that could carry personal data."""
    for i, m in enumerate(case.messages):
        yield from _strings(dict(m), f"messages[{i}]")
    yield from _strings(case.expect.raw, "expect")
    for i, t in enumerate(case.tools):
        yield from _strings(dict(t), f"tools[{i}]")


_LABEL = {"id_card": "resident ID number", "mobile": "mobile number", "email": "e-mail address",
          "bank_card": "bank card number"}


def lint_pii(gset: GoldenSet) -> list[tuple[Case, str]]:
    """One message per piece of personal data in a set's cases (tagged ``synthetic-pii`` cases are skipped).

    Messages print masked values only — lint output ends up in CI logs.
    """
    out: list[tuple[Case, str]] = []
    for case in gset.cases:
        if SYNTHETIC_TAG in case.tags:
            continue
        for where, text in case_strings(case):
            for hit in find_pii(text):
                out.append((case, f"{case.id}: {_LABEL[hit.kind]} {hit.masked} in {where} — personal data must "
                                  f"not be committed; replace it with a synthetic value (e-mail: @example.com) or "
                                  f"tag the case `{SYNTHETIC_TAG}` if it is already synthetic"))
    return out
