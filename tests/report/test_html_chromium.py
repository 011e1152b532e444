"""The report in a real browser: it renders (a screenshot that is not blank), hostile text stays text, text is
escaped once, a right-to-left override does not reorder what a reviewer reads, and Chinese is drawn with real glyphs.

Needs a Chromium-family browser: Debian's ``chromium`` (``apt-get install -y --no-install-recommends chromium``),
or Google Chrome as preinstalled on GitHub's Ubuntu runners, or the binary named by ``$CONFORMANCE_CHROMIUM``;
skipped otherwise. The glyph test also needs a CJK font (Debian's ``fonts-noto-cjk``; ``scripts/test.sh`` installs
both where it runs as root with apt). Slow-ish (a browser start per check, ~5 s), so it lives in its own file.

How the layout is read: the report forbids scripts (its Content-Security-Policy), so a probe page of the test's own
loads it in an iframe (same origin thanks to ``--allow-file-access-from-files``), measures where the browser drew
each character with ``Range.getBoundingClientRect`` and writes the figures into its own DOM, which ``--dump-dom``
prints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from conformance.report.write import write_report
from tests.report.png import decode_png
from tests.report.runfolder import ADVERSARIAL, BIDI, build_run
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
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", *args],
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
    assert "'shall' replaced by look-alike 'may' (1×)" in text  # escaped once: no entity shown literally
    assert not re.search(r"&(?:#\d+|#x[0-9a-f]+|amp|quot|lt|gt);", text, re.I)


#: Where the browser drew each of the four letters of "evil" that follow a right-to-left override (raw, or as the
#: ⟨U+202E⟩ marker the report shows instead), per text node: ``[{"where": …, "xs": [x_e, x_v, x_i, x_l]}]``.
PROBE = """<!DOCTYPE html><meta charset="utf-8"><body>
<iframe id="r" src="report.html" style="width:1280px;height:3000px"></iframe><pre id="out">pending</pre>
<script>
window.addEventListener("load", () => {
  const doc = document.getElementById("r").contentDocument;
  const found = [];
  const walk = doc.createTreeWalker(doc.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    for (let i = n.data.indexOf("evil"); i >= 0; i = n.data.indexOf("evil", i + 1)) {
      if (n.data[i - 1] !== "\u202e" && !n.data.slice(0, i).endsWith("\u27e8U+202E\u27e9")) continue;
      const xs = [0, 1, 2, 3].map(k => {
        const r = doc.createRange(); r.setStart(n, i + k); r.setEnd(n, i + k + 1);
        return r.getBoundingClientRect().left;
      });
      found.push({where: n.parentElement.className || n.parentElement.tagName, xs});
    }
  }
  document.getElementById("out").textContent = JSON.stringify(found);
});
</script>"""


def test_a_right_to_left_override_does_not_reorder_the_text(report: Path) -> None:
    """An answer holding ``RLO evil PDF`` would read "live" on screen; the page shows the override as a marker and
    the letters in their logical order, left to right, wherever the text appears."""
    assert BIDI == "\u202eevil\u202c"
    (report.parent / "probe.html").write_text(PROBE, encoding="utf-8")
    proc = chromium("--allow-file-access-from-files", "--dump-dom", (report.parent / "probe.html").as_uri(),
                    cwd=report.parent)
    out = re.search(r'<pre id="out">(.*?)</pre>', proc.stdout, re.S)
    assert out and out.group(1) != "pending", proc.stderr[-2000:]
    found = json.loads(out.group(1).replace("&quot;", '"'))
    assert {f["where"] for f in found} >= {"text", "LI"}  # both answers' boxes and the test's message
    assert len(found) >= 3
    for f in found:
        assert f["xs"] == sorted(f["xs"]) and len(set(f["xs"])) == 4, f  # e, v, i, l from left to right


def _has_cjk_font() -> bool:
    """False only when fontconfig is there and knows no Chinese font (then every CJK character is a box)."""
    if shutil.which("fc-list") is None:
        return True
    found = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False)
    return found.returncode != 0 or bool(found.stdout.strip())


#: 80 px cells, one glyph each: 定, 订 and an unassigned code point (drawn as the font's .notdef box), in the body
#: font and in the monospace font of answers and snippets.
GLYPHS = ("定", "订", "\u0378")


@pytest.mark.skipif(not _has_cjk_font(), reason="no CJK font installed (apt-get install -y fonts-noto-cjk)")
def test_chinese_is_drawn_with_real_glyphs(report: Path) -> None:
    """With the fonts the page names, 定 and 订 are two different glyphs, neither of them the empty box a browser
    draws for a character no font has — what a reviewer without a CJK font sees for every Chinese character."""
    css = re.search(r"<style>(.*?)</style>", report.read_text(encoding="utf-8"), re.S)
    assert css and "Noto Sans CJK SC" in css.group(1) and "Microsoft YaHei" in css.group(1)
    cells = "".join(f'<div class="g{" snip" if row else ""}" style="left:{120 * col}px;top:{20 + 120 * row}px">'
                    f"{ch}</div>" for row in (0, 1) for col, ch in enumerate(GLYPHS))
    page = report.parent / "glyphs.html"
    page.write_text(f'<!DOCTYPE html><meta charset="utf-8"><style>{css.group(1)}</style><style>body{{margin:0;'
                    "background:#fff}.g.g{position:absolute;width:100px;height:100px;font-size:80px;"
                    f"line-height:100px;text-align:center;color:#000;white-space:nowrap}}</style><body>{cells}",
                    encoding="utf-8")
    png = report.parent / "glyphs.png"
    proc = chromium(f"--screenshot={png}", "--window-size=800,600", "--hide-scrollbars",
                    "--force-device-scale-factor=1", page.as_uri(), cwd=report.parent)
    assert png.is_file(), proc.stderr[-2000:]
    ink = decode_png(png.read_bytes())[:, :, :3].min(axis=2) < 128
    for row, font in enumerate(("body", "answers")):
        dingjin, dingjin2, notdef = (ink[20 + 120 * row:120 + 120 * row, 120 * c:120 * c + 100] for c in range(3))
        for glyph in (dingjin, dingjin2, notdef):
            assert glyph.sum() > 100, f"{font}: nothing drawn"
        assert _differ(dingjin, dingjin2), f"{font}: 定 and 订 look the same (boxes?)"
        assert _differ(dingjin, notdef) and _differ(dingjin2, notdef), f"{font}: a CJK glyph is the .notdef box"


def _differ(a: np.ndarray, b: np.ndarray) -> bool:
    """More than 10% of the inked pixels of either glyph are not inked in the other."""
    return bool((a ^ b).sum() > 0.1 * max(a.sum(), b.sum()))
