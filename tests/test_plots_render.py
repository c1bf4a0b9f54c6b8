"""`dvc plots show` renders every declared plot: the page it writes, opened in headless Chromium.

dvc-render's page loads vega from a CDN; CI has no network, so the test hands ``dvc plots show``
a page template with the same vega versions inlined (installed from npm by
``.ci/install-test-extras``). The plot divs and specs are what DVC writes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from e2e import REPO_ROOT, clone_study, dvc

pytestmark = pytest.mark.e2e

VEGA_JS = Path(os.environ.get("GANAUG_VEGA_JS", REPO_ROOT / ".cache/js/node_modules"))
SCRIPTS = ("vega/build/vega.min.js", "vega-lite/build/vega-lite.min.js",
           "vega-embed/build/vega-embed.min.js")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--virtual-time-budget=15000")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("no Chromium (Debian: apt-get install chromium; see .ci/install-test-extras)")


@pytest.fixture(scope="module")
def rendered(tiny_study, tmp_path_factory):
    """``(page html as written, DOM after Chromium ran its scripts, output dir)``."""
    browser = chromium()
    missing = [s for s in SCRIPTS if not (VEGA_JS / s).is_file()]
    if missing:
        pytest.skip(f"vega JS not installed under {VEGA_JS} (run .ci/install-test-extras)")
    tmp = tmp_path_factory.mktemp("plots")
    scripts = "\n".join(f"<script>{(VEGA_JS / s).read_text()}</script>" for s in SCRIPTS)
    template = tmp / "page.html"
    template.write_text(f"<!DOCTYPE html><html><head><title>DVC Plot</title>{scripts}</head>"
                        "<body>{plot_divs}</body></html>")
    out = tmp / "out"
    # In a copy: the study is shared by the test workers, and dvc locks the repo it runs in.
    study = clone_study(tiny_study[0], tmp / "study")
    dvc(study, "plots", "show", "--html-template", str(template), "-o", str(out))
    page = out / "index.html"
    dom = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    return page.read_text(), dom, out


def vega_divs(html: str) -> list[str]:
    return re.findall(r"vegaEmbed\('#([^']+)'", html)


def test_every_vega_plot_is_drawn(rendered):
    html, dom, _ = rendered
    ids = vega_divs(html)
    assert "Accuracy_vs_synthetic_ratio" in ids and "GAN_losses" in ids
    assert any(i.startswith("plots_confusion_none-0-0") for i in ids)
    for div in ids:
        # vega-embed replaces the div's content with a canvas (or svg) once the spec rendered.
        block = re.search(rf'<div id="{re.escape(div)}"[^>]*>(.*?)</div>\s*</div>', dom, re.S)
        assert block is not None, f"{div}: not in the rendered DOM"
        assert "<canvas" in block.group(1) or "<svg" in block.group(1), f"{div}: not drawn"
    assert "Error" not in re.sub(r"<script.*?</script>", "", dom, flags=re.S)


def test_every_image_plot_is_on_the_page(rendered, tiny_study):
    html, _, out = rendered
    study = tiny_study[0]
    spec = yaml.safe_load((study / "dvc.yaml").read_text())
    declared = [next(iter(p)) if isinstance(p, dict) else p for p in spec["plots"]]
    images = {p for p in declared if p.endswith(".png")}
    # A stage's plot folder (plots/gan/<seed>, plots/score/<seed>: one per replicate) puts every
    # image inside it on the page.
    seeds = yaml.safe_load((study / "params.yaml").read_text())["study"]["seeds"]
    for stage in spec["stages"].values():
        for entry in stage.get("plots", []):
            template = next(iter(entry)) if isinstance(entry, dict) else entry
            for path in {template.replace("${item.seed}", str(seed)) for seed in seeds}:
                if "${" not in path and (study / path).is_dir():
                    images |= {p.relative_to(study).as_posix()
                               for p in (study / path).rglob("*.png")}
    body = html.split("</head>", 1)[1]  # the inlined vega scripts mention <img> too
    sources = re.findall(r'<img src="([^"]+)"', body)
    assert len(sources) == len(set(sources)), "an image is shown twice"
    assert sorted(sources) == sorted("static/workspace_" + p.replace("/", "_") for p in images)
    for src in sources:
        assert (out / src).stat().st_size > 0, src
