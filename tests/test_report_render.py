"""Rendering: the HTML is self-contained and its images decode; a failed fit says NOT RELIABLE
where the probabilities would be, in every format."""
import ast
import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from infscale_dsl.errors import LawError
from infscale_dsl.report.conditions import Condition
from infscale_dsl.report.document import Report, to_dict
from infscale_dsl.report.figure_data import FigureData, Frontier
from infscale_dsl.report.frontier import recommend
from infscale_dsl.report.render import write_report
from infscale_dsl.report.risk import Quantity, Summary, assess_candidates


def candidates_of(names: list[str]) -> list:
    """Candidates with a fitted loss near a 2.95 target and a measured latency under a 20 ms budget."""
    rng = np.random.default_rng(1)
    law = rng.normal(np.linspace(2.90, 2.91, len(names)), 0.02, size=(500, len(names)))
    quantities = {"loss": Quantity(observed=law + rng.normal(0, 0.01, law.shape), law=law, ess=400.0),
                  "latency": Quantity(observed=np.linspace(14.1, 7.7, len(names))[None, :], source="table")}
    conditions = [Condition.parse("loss <= 2.95"), Condition.parse("latency <= 20")]
    return assess_candidates(names, quantities, conditions, inputs={"N": np.linspace(1.4e9, 1.5e9, len(names))},
                             data_ranges={"N": (8e7, 1e9)}, flops=np.linspace(2.4e20, 2.6e20, len(names))), law


def small_report(reliable: bool) -> Report:
    candidates, law = candidates_of(["2048x24", "3072x12"])
    conditions = [Condition.parse("loss <= 2.95"), Condition.parse("latency <= 20")]
    p_all = np.array([c.p_all_met for c in candidates])
    frontier = Frontier(["2048x24", "3072x12"], [Summary.of(law[:, 0]), Summary.of(law[:, 1])],
                        [Summary(14.1, 14.1, 14.1), Summary(7.7, 7.7, 7.7)], np.array([True, True]),
                        "3072x12", 2.95, 20.0, "loss", "latency (ms per token)")
    return Report(
        title="Seed report", spec="models/bian2025.law", method="nuts", reliable=reliable,
        problems=[] if reliable else ["3 divergent transitions", "max r_hat 1.08 > 1.01"],
        diagnostics={"divergences": 0 if reliable else 3, "max_r_hat": 1.0 if reliable else 1.08,
                     "min_ess_bulk": 800.0, "ok": reliable}, mc_error_basis="min bulk ESS",
        conditions=[str(c) for c in conditions], candidates=candidates,
        on_frontier={"2048x24": True, "3072x12": True},
        recommendation=recommend(["2048x24", "3072x12"], p_all, np.array([14.1, 7.7])),
        figures=FigureData(frontier=frontier),
    )


def test_html_is_self_contained_and_its_images_decode(tmp_path):
    path = write_report(small_report(reliable=True), tmp_path / "report.html")
    text = path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*['"]?\s*(https?:)?//""", text, re.IGNORECASE)
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    assert len(images) == 1
    pixels = matplotlib.image.imread(io.BytesIO(base64.b64decode(images[0])), format="png")
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert "3072x12" in text and "NOT RELIABLE" not in text


def test_json_is_the_contract(tmp_path):
    report = small_report(reliable=True)
    doc = json.loads(write_report(report, tmp_path / "report.json").read_text())
    assert doc["schema"] == "infscale-dsl/report" and doc["version"] == 1
    first = doc["candidates"][0]
    assert first["targets"][0]["condition"] == "loss <= 2.95"
    assert first["targets"][0]["p_met"] == pytest.approx(report.candidates[0].targets[0].p_met)
    assert set(first["quantities"]["loss"]["law"]) == {"median", "q05", "q95"}
    assert first["quantities"]["latency"]["law"] is None
    assert doc["recommendation"]["chosen"] == "3072x12"


def test_unreliable_fit_withholds_probabilities_everywhere(tmp_path):
    report = small_report(reliable=False)
    doc = to_dict(report)
    assert doc["reliable"] is False
    assert all(t["p_met"] is None and t["mc_error"] is None for c in doc["candidates"] for t in c["targets"])
    assert all(c["p_all_met"] is None for c in doc["candidates"])
    assert doc["recommendation"]["chosen"] is None
    assert "divergent" in doc["recommendation"]["reason"]
    for suffix in (".html", ".md"):
        text = write_report(report, tmp_path / f"r{suffix}").read_text()
        assert "NOT RELIABLE" in text and "3 divergent transitions" in text
        assert "±" not in text  # no probability with its Monte Carlo error is printed


def test_markdown_writes_its_figures_beside_it(tmp_path):
    text = write_report(small_report(reliable=True), tmp_path / "seed.md").read_text()
    (name,) = re.findall(r"\]\((seed_[a-z_]+\.png)\)", text)
    assert matplotlib.image.imread(tmp_path / name).shape[0] > 100


def test_unknown_extension_is_a_clear_error(tmp_path):
    with pytest.raises(LawError, match="name the output .html, .md or .json"):
        write_report(small_report(reliable=True), tmp_path / "report.pdf")


def test_many_candidates_get_one_probability_row_each(tmp_path):
    names = [f"c{i}" for i in range(8)]
    report = small_report(reliable=True)
    report.candidates, _ = candidates_of(names)
    text = write_report(report, tmp_path / "report.md").read_text()
    table = text[text.index("## Probability of meeting each target"):]
    header = next(line for line in table.splitlines() if line.startswith("| candidate"))
    assert header.split("|")[2:5] == [" P(loss <= 2.95) ", " P(latency <= 20) ", " P(all met) "]
    rows = [line for line in table.splitlines() if line.startswith("| c") and line != header]
    assert [row.split("|")[1].strip() for row in rows] == names  # one row per candidate, in order
    assert all("±" in cell for row in rows for cell in row.split("|")[2:5])
    few = write_report(small_report(reliable=True), tmp_path / "few.md").read_text()
    assert "| all of them |" in few  # two candidates keep the long table, a row per condition


REPORT = Path(__file__).resolve().parents[1] / "infscale_dsl" / "report"


def test_rendering_does_not_import_the_report_builder():
    code = ("import sys, infscale_dsl.report.render, infscale_dsl.report.figures\n"
            "print('infscale_dsl.report.build' in sys.modules, 'infscale_dsl.report.build_figures' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_the_report_modules_import_one_another_without_a_cycle():
    imports = {}  # module -> the report modules it imports (relative imports, at any depth in the file)
    for path in REPORT.glob("*.py"):
        nodes = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom) and n.level == 1]
        imports[path.stem] = {n.module.split(".")[0] if n.module else a.name for n in nodes for a in n.names}

    def reaches(start: str, goal: str, seen: set) -> bool:
        return any(m == goal or (m not in seen and reaches(m, goal, seen | {m})) for m in imports.get(start, ()))

    assert not [m for m in imports if reaches(m, m, set())]


def test_a_report_written_in_two_formats_draws_each_figure_once(tmp_path, monkeypatch):
    from infscale_dsl.report import figures
    from infscale_dsl.report.figure_data import FRONTIER_TITLE

    calls = []
    frontier_plot = figures.DRAWERS[FRONTIER_TITLE]
    monkeypatch.setitem(figures.DRAWERS, FRONTIER_TITLE, lambda data: calls.append(1) or frontier_plot(data))
    report = small_report(reliable=True)
    html_text = write_report(report, tmp_path / "r.html").read_text()
    write_report(report, tmp_path / "r.md")
    assert len(calls) == 1
    (png,) = tmp_path.glob("r_*.png")
    assert base64.b64encode(png.read_bytes()).decode() in html_text  # the same image in both
    assert not list(tmp_path.glob(".*.tmp"))  # written whole, nothing temporary left behind
