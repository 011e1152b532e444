"""redact: known secrets and bearer/sk- tokens never reach what we write; innocent text is left alone."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from conformance.redact import MASK, Redactor

secrets_st = st.text(string.ascii_letters + string.digits + "_-.", min_size=6, max_size=24)
texts = st.text(max_size=60)


def _no_secret_in_mask(secret: str) -> bool:
    return secret not in MASK


@given(st.lists(secrets_st, min_size=1, max_size=3), st.lists(texts, min_size=1, max_size=4))
def test_known_secrets_never_survive(secrets: list[str], pieces: list[str]) -> None:
    assume(all(map(_no_secret_in_mask, secrets)))
    text = "".join(p + secrets[i % len(secrets)] for i, p in enumerate(pieces))
    out = Redactor(secrets)(text)
    for s in secrets:
        assert s not in out
    assert MASK in out


@given(st.lists(secrets_st, max_size=3), texts)
def test_redaction_is_idempotent(secrets: list[str], text: str) -> None:
    assume(all(map(_no_secret_in_mask, secrets)))
    redact = Redactor(secrets)
    once = redact(text)
    assert redact(once) == once


@given(texts)
def test_text_without_secrets_or_tokens_is_unchanged(text: str) -> None:
    assume("Bearer" not in text and "sk-" not in text)
    assert Redactor()(text) == text


def test_short_values_are_not_treated_as_secrets() -> None:
    redact = Redactor(["abc", "", "12345"])
    assert redact.secrets == []
    assert redact("abc 12345") == "abc 12345"


def test_longest_secret_first_so_no_fragment_remains() -> None:
    short, long = "key-12345", "key-12345-and-more"
    out = Redactor([short, long])(f"a {long} b {short}")
    assert out == f"a {MASK} b {MASK}"


@given(st.text(string.ascii_letters + string.digits + "._~+/=-", min_size=8, max_size=40))
def test_bearer_tokens_keep_the_scheme_and_lose_the_token(token: str) -> None:
    out = Redactor()(f'Authorization: Bearer {token}"')
    assert out == f'Authorization: Bearer {MASK}"'


@given(st.text(string.ascii_letters + string.digits + "_-", min_size=12, max_size=40))
def test_sk_style_keys_are_masked(key: str) -> None:
    assert Redactor()(f"error: invalid key sk-{key}.") == f"error: invalid key {MASK}."


def test_short_or_embedded_sk_strings_are_not_keys() -> None:
    assert Redactor()("task-123 sk-short risk-assessment-framework-v2") == (
        "task-123 sk-short risk-assessment-framework-v2")
    assert Redactor()("Bearer short") == "Bearer short"


json_like = st.recursive(
    st.none() | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list | tuple):
        return [s for v in obj for s in _strings(v)]
    return []


@given(json_like, secrets_st)
def test_deep_redacts_every_string_and_keeps_the_shape(obj: Any, secret: str) -> None:
    assume(_no_secret_in_mask(secret))
    wrapped = {"error": f"upstream said {secret}", "body": obj, "list": (secret, 1)}
    out = Redactor([secret]).deep(wrapped)
    assert all(secret not in s for s in _strings(out))
    assert out["list"] == [MASK, 1]  # tuples come back as lists (JSON shape)
    assert set(out) == set(wrapped)
    plain = Redactor().deep(obj)
    assert plain == Redactor().deep(plain)  # idempotent on structures too


def test_every_pattern_starts_with_a_literal_the_shortcut_looks_for() -> None:
    """Redactor skips the regex when none of ``_LITERALS`` occurs; that is only sound while every alternative of
    ``_PATTERNS`` begins with one of them (case-sensitively). Change the patterns: re-prove, then update this."""
    import re

    from conformance.redact import _LITERALS, _PATTERNS

    assert not _PATTERNS.flags & re.IGNORECASE
    alternatives = _PATTERNS.pattern.split("|")
    assert [a.removeprefix("(").removeprefix("\\b") for a in alternatives] == [
        "Bearer\\s+)[A-Za-z0-9._~+/=-]{8,}", "sk-[A-Za-z0-9_-]{12,}"]
    assert _LITERALS == ("Bearer", "sk-")


@given(st.lists(st.sampled_from([*"ab 定金\"\\\n\t", "Bearer ", "bearer ", "sk-", "SK-", "hunter2-secret",
                                 "x" * 12]), max_size=12).map("".join))
def test_the_literal_shortcut_changes_nothing(text: str) -> None:
    """Same output as the full pass (exact secrets, then the regex over everything)."""
    from conformance.redact import _PATTERNS

    full = _PATTERNS.sub(lambda m: (m.group(1) or "") + MASK, text.replace("hunter2-secret", MASK))
    assert Redactor(["hunter2-secret"])(text) == full
