"""Sweep reports: the stored sweep as JSON, CSV, a recall-vs-latency PNG and one self-contained
HTML page, each saying what auto would choose; clear errors when there is nothing to report."""

import csv
import io
import json
import subprocess
import sys

import pytest

import vecdial
from vecdial.indexer.plan.calibration import choose

BUDGETS = ["dense:dim=32", "dense:dim=128", "binary:rescore=0", "binary:rescore=10", "exact"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory, demo_dataset):
    root = tmp_path_factory.mktemp("report")
    col = vecdial.connect(root).create("demo", vectors=demo_dataset.vectors, ids=demo_dataset.ids, show_progress=False)
    points = col.sweep(n=60, budgets=BUDGETS, show_progress=False)
    return root, col, points


def test_json_holds_every_point_and_autos_choices(swept, tmp_path):
    _, col, points = swept
    report = json.loads(col.report(tmp_path / "sweep.json").read_text())
    assert [p["budget"] for p in report["points"]] == [p.budget for p in points]
    assert report["auto"]["0.9"] == choose(points, 0.9).budget and report["queries"].startswith("documents (60")


def test_csv_has_a_header_and_one_row_per_budget(swept, tmp_path):
    _, col, points = swept
    rows = list(csv.DictReader(io.StringIO(col.report(tmp_path / "sweep.csv").read_text())))
    assert [r["budget"] for r in rows] == [p.budget for p in points]
    assert float(next(r for r in rows if r["budget"] == "exact")["recall_at_10"]) == 1.0
    assert {"recall_lower", "ms_per_query", "pareto"} <= set(rows[0])


def test_png_is_a_picture(swept, tmp_path):
    from matplotlib import image

    _, col, _ = swept
    picture = image.imread(col.report(tmp_path / "sweep.png"))
    assert picture.ndim == 3 and picture.shape[0] > 300 and picture.shape[1] > 500
    assert picture[..., :3].std() > 0.05  # not a blank canvas


def test_html_is_one_self_contained_page(swept, tmp_path):
    _, col, points = swept
    page = col.report(tmp_path / "sweep.html").read_text()
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page  # nothing fetched when opened offline
    assert all(p.budget in page for p in points) and "auto:target_recall=0.95" in page


def test_reports_need_a_sweep_and_a_known_format(tmp_path, tiny_dataset, swept):
    fresh = vecdial.connect(tmp_path).create("fresh", vectors=tiny_dataset.vectors, ids=tiny_dataset.ids, show_progress=False)
    with pytest.raises(vecdial.InvalidInput, match="no sweep to report.*vecdial sweep"):
        fresh.report(tmp_path / "a.html")
    with pytest.raises(vecdial.InvalidInput, match=r"\.json, \.csv, \.png or \.html"):
        swept[1].report(tmp_path / "a.txt")


def test_the_cli_sweep_writes_the_reports_asked_for(swept, tmp_path):
    root, _, _ = swept
    out = tmp_path / "out"
    out.mkdir()
    args = ["--data-dir", str(root), "sweep", "-c", "demo", "-n", "30", "--quiet", "--report", str(out / "s.html"), str(out / "s.csv")]
    done = subprocess.run([sys.executable, "-m", "vecdial.service.cli", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "s.html").read_text().startswith("<!doctype html>") and (out / "s.csv").read_text().startswith("budget,")
    bad = subprocess.run(
        [sys.executable, "-m", "vecdial.service.cli", "--data-dir", str(root), "sweep", "-c", "demo", "--report", "x.txt"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "--report x.txt: name a .json, .csv, .png, .html file" in bad.stderr
