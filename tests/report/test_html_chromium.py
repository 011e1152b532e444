"""The report in a real browser: it renders (a screenshot that is not blank) and hostile text stays text.

Needs a Chromium-family browser: Debian's ``chromium`` (``apt-get install -y --no-install-recommends chromium``),
or Google Chrome as preinstalled on GitHub's Ubuntu runners, or the binary named by ``$CONFORMANCE_CHROMIUM``;
skipped otherwise. Slow-ish (a browser start per check, ~5 s), so it lives in its own file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from conformance.report.write import write_report
from tests.report.png import decode_png
from tests.report.runfolder import ADVERSARIAL, build_run
from tests.report.test_html import Tags

CHROMIUM = next((found for name in (os.environ.get("CONFORMANCE_CHROMIUM"), "chromium", "chromium-browser",
                                    "google-chrome", "google-chrome-stable") if name and (found := shutil.which(name))),
                None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium)")


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}", *args],
            cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(build_run(tmp_path_factory.mktemp("chromium") / "run", extra_gate=True))


def test_screenshot_is_a_rendered_page(report: Path) -> None:
    png = report.parent / "out.png"
    proc = chromium(f"--screenshot={png}", "--window-size=1280,2000", report.as_uri(), cwd=report.parent)
    assert png.is_file(), proc.stderr[-2000:]
    data = png.read_bytes()
    assert len(data) > 30_000  # a blank 1280×2000 page compresses to a few kB
    pixels = decode_png(data)
    assert pixels.shape[:2] == (2000, 1280)
    colours = np.unique(pixels.reshape(-1, pixels.shape[2])[:, :3], axis=0)
    assert len(colours) > 50, f"only {len(colours)} distinct colours: the page looks blank"
    red = np.all(pixels[:, :, :3] == (0xC6, 0x28, 0x28), axis=2).sum()
    assert red > 10_000  # the FAIL banner (#c62828) was painted


def test_hostile_text_did_not_become_markup_in_the_browser(report: Path) -> None:
    proc = chromium("--dump-dom", report.as_uri(), cwd=report.parent)
    assert proc.returncode == 0 and "</html>" in proc.stdout, proc.stderr[-2000:]
    dom = Tags()
    dom.feed(proc.stdout)
    tags = {t for t, _ in dom.tags}
    assert not tags & {"script", "img", "textarea", "iframe", "object"}
    assert not any("onerror" in a or a.get("id") == "pwn" for _, a in dom.tags)
    text = "".join(dom.text)
    for evil in ADVERSARIAL:
        assert evil in text
