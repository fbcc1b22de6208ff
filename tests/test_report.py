"""``als4gan report``: every section present, every embedded image decodes, graceful gaps."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from als4gan.cli import main
from als4gan.io import write_yaml
from als4gan.report.html import RUN_SECTIONS
from tests.fake_runs import make_run


class PageParser(HTMLParser):
    """Collects data-section markers (with their run), image sources and link targets."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[tuple[str | None, str]] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.run: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        section = values.get("data-section")
        if section == "run":
            self.run = values.get("id")
        if section:
            self.sections.append((self.run, section))
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag in ("a", "link", "script") and (values.get("href") or values.get("src")):
            self.links.append(values.get("href") or values.get("src") or "")


def parse(path: Path) -> tuple[PageParser, str]:
    text = path.read_text(encoding="utf-8")
    parser = PageParser()
    parser.feed(text)
    return parser, text


def decode_all(images: list[str]) -> list[Image.Image]:
    decoded = []
    for src in images:
        match = re.fullmatch(r"data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)", src)
        assert match, f"image is not an embedded data URI: {src[:60]}"
        image = Image.open(io.BytesIO(base64.b64decode(match.group(2))))
        image.load()
        assert image.width > 10 and image.height > 10
        decoded.append(image)
    return decoded


@pytest.fixture(scope="module")
def runs(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("report")
    seeds = [make_run(base / f"entropy_seed{s}", synthetic_root, seed=s) for s in (1, 2)]
    random = make_run(
        base / "random_seed1",
        synthetic_root,
        seed=1,
        selection=False,
        method="supervised",
        extra_config={"labeled_ratio": 0.05},
    )
    for run in seeds:
        assert main(["evaluate", "--checkpoint", str(run), "--window", "0"]) == 0
    # the random run keeps no evaluation, only the prediction examples evaluate writes
    elsewhere = base / "random_seed1_val"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(random),
                "--window",
                "0",
                "--split",
                "val",
                "--out",
                str(elsewhere),
            ]
        )
        == 0
    )
    shutil.copytree(elsewhere / "examples", random / "eval" / "val" / "examples")
    shutil.copy(elsewhere / "examples.json", random / "eval" / "val" / "examples.json")
    return [*seeds, random]


def test_report_holds_every_section_and_images_decode(runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    args = ["report", *map(str, runs), "--out", str(out), "--title", "Entropy vs random"]
    assert main([*args, "--examples", "1"]) == 0
    parser, text = parse(out)
    assert "<title>Entropy vs random</title>" in text
    page_sections = {section for run, section in parser.sections if run is None}
    assert {"overview", "comparison"} <= page_sections
    run_ids = [run for run, section in parser.sections if section == "run"]
    assert len(run_ids) == 3
    for run_id in run_ids:
        found = [section for run, section in parser.sections if run == run_id]
        assert found[1:] == [key for key, _ in RUN_SECTIONS], run_id
    # self-contained: images are data URIs, links only jump inside the page
    assert all(link.startswith("#") for link in parser.links)
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text
    images = decode_all(parser.images)
    # imagery (contact sheets, prediction overlays) is embedded as JPEG, plots as PNG
    kinds = {image.format for image in images}
    assert kinds == {"PNG", "JPEG"}
    assert sum(image.format == "JPEG" for image in images) == 3 + 3  # sheets + predictions
    # comparison: 2 charts; seeded s4GAN runs: losses, discriminator, val curve, per-class,
    # confusion, sheet, predictions (7 each); supervised random run: no discriminator, no eval
    # so no confusion matrix (5)
    assert len(images) == 2 + 7 + 7 + 5
    assert text.count("Discriminator: mean D output") == 2
    # the two entropy seeds form one group with mean ± sd; the random run has no test score
    assert "± " in text and "n=0" not in text
    assert "random subset" in text and "3 randomly drawn labelled images" in text
    assert "No confusion matrix" in text  # the random run was not evaluated
    assert "test mIoU" in text


def test_report_of_a_bare_run_says_what_is_missing(tmp_path: Path) -> None:
    run = tmp_path / "bare"
    run.mkdir()
    write_yaml(run / "config.yaml", {"dataset": "synthetic", "method": "s4gan", "seed": 0})
    assert main(["report", str(run)]) == 0
    parser, text = parse(run / "report.html")
    assert [s for r, s in parser.sections if r is not None][1:] == [k for k, _ in RUN_SECTIONS]
    for message in (
        "No training records",
        "No per-class scores yet",
        "No confusion matrix",
        "No selection found",
        "No checkpoint",
    ):
        assert message in text
    assert parser.images == []


def test_report_rejects_missing_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_report_renders_in_chromium(runs: list[Path], tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    out = tmp_path / "report.html"
    assert main(["report", str(runs[0]), "--out", str(out), "--examples", "1"]) == 0
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={shot}",
                "--window-size=1400,3000",
                out.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert pixels.shape[:2] == (3000, 1400)
    assert pixels.std() > 20  # a rendered page, not a blank one
    header = pixels[:60].mean(axis=(0, 1))
    assert header.max() < 80  # the dark page header rendered with its CSS
