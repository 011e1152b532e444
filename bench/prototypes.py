"""Prototypes of the fixes PERFORMANCE.md proposes, applied by monkeypatching — for measurement only.

Nothing here changes the shipped package on disk: each prototype is a context manager (or an ``apply()`` for a
subprocess) that swaps one internal for the duration of a measurement, so the benchmark can print "as shipped"
and "with the proposed fix" side by side. Once a fix lands in ``conformance/``, its prototype measures the same
thing twice.

Also a pytest plugin (``-p bench.prototypes``): see :func:`pytest_configure`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any


class _NoFsyncOs:
    """``os`` as ``conformance.runstore`` sees it, minus ``fsync`` (flush per answer stays)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def fsync(fd: int) -> None:
        return None


@contextlib.contextmanager
def runstore_without_fsync() -> Iterator[None]:
    """RunStore.put without ``os.fsync``: every answer is still written and flushed to the OS at once (so a killed
    process loses nothing); only the wait for the disk — a crash of the *machine* — is given up."""
    import conformance.runstore as runstore

    saved = runstore.os
    runstore.os = _NoFsyncOs()  # type: ignore[assignment]
    try:
        yield
    finally:
        runstore.os = saved


def libyaml_composer() -> None:
    """yamlsource composes nodes with libyaml (``yaml.CSafeLoader``, same resolvers, same conversion); any YAML
    error falls back to the pure-Python loader so error messages and lines stay exactly as shipped."""
    import yaml

    import conformance.goldens.yamlsource as ys

    if not yaml.__with_libyaml__ or getattr(ys, "_bench_libyaml", False):
        return

    class _CJsonLikeLoader(yaml.CSafeLoader):  # type: ignore[misc, name-defined]
        pass

    _CJsonLikeLoader.yaml_implicit_resolvers = ys._JsonLikeLoader.yaml_implicit_resolvers
    shipped = ys.parse_yaml

    def parse_yaml(text: str, path: Any) -> Any:
        from pathlib import Path

        doc = ys.YamlDoc(path=Path(path), data=None)
        loader = _CJsonLikeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                doc.data = ys._convert(loader, node, (), doc)
        except (yaml.YAMLError, RecursionError, ys.GoldenError):
            return shipped(text, path)
        finally:
            loader.dispose()
        return doc

    ys.parse_yaml = parse_yaml
    ys._bench_libyaml = True  # type: ignore[attr-defined]


def pytest_configure(config: Any) -> None:
    """``pytest -p bench.prototypes``: apply the libyaml prototype once every plugin is imported (so the
    conformance plugin is still assertion-rewritten as usual) and before the plugin loads any suite."""
    libyaml_composer()
