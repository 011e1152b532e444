"""Keep API keys out of everything we write.

Keys only ever come from environment variables named in endpoints.yaml; a :class:`Redactor` built from those values
is applied to error messages, recordings, reports and logs before they leave memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "***REDACTED***"
# Bearer tokens and sk-style keys that reach us from elsewhere (e.g. echoed by a gateway in an error body).
_PATTERNS = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}|\bsk-[A-Za-z0-9_-]{12,}")
#: Every alternative of ``_PATTERNS`` starts with one of these literals (case-sensitive), so text holding none of
#: them cannot match: a substring test is several times cheaper than the regex pass over a whole line, and the run
#: cache redacts every answer it stores (docs/PERFORMANCE.md, F3). Change both together (tests/test_redact.py).
_LITERALS = ("Bearer", "sk-")


class Redactor:
    """Callable that masks known secrets (exact values) and bearer-token-looking strings."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Short values would mask innocent text; a real key is never that short.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, MASK)
        if not any(lit in text for lit in _LITERALS):
            return text
        return _PATTERNS.sub(lambda m: (m.group(1) or "") + MASK, text)

    def deep(self, obj: Any) -> Any:
        """Redact every string inside a JSON-like structure."""
        if isinstance(obj, str):
            return self(obj)
        if isinstance(obj, dict):
            return {k: self.deep(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.deep(v) for v in obj]
        return obj
