"""Honest labels on outputs (issue #21): warm demo timings, "(m)" only for metric plots,
benchmark file names that encode the mode and device."""
import json

import numpy as np

import pose
from pose.plots import plot_skeleton_3d
from learn.report import NON_METRIC_UNITS


def test_skeleton_plot_axes_name_the_units(tmp_path):
    import matplotlib.pyplot as plt
    X = pose.make_people(1, ("walk",), 4, seed=0).X[0]
    metric = plot_skeleton_3d(X, "h36m_17", path=tmp_path / "m.png")
    other = plot_skeleton_3d(X, "h36m_17", units=NON_METRIC_UNITS, path=tmp_path / "u.png")
    assert metric.axes[0].get_xlabel() == "x (m)"
    assert other.axes[0].get_zlabel() == "z (units: median camera distance)"
    assert (tmp_path / "u.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*"))                 # no temporary file left
    plt.close("all")


def test_benchmark_outputs_encode_mode_and_device(tmp_path, capsys):
    from benchmarks import _report
    saved = dict(_report._CONTEXT)
    try:
        for quick, value in ((True, 1.0), (False, 2.0)):
            _report.set_run_context(quick=quick, device="cpu")
            _report.write_report("two_view", [{"method": "a", "x": value}], tmp_path,
                                 plot=("method", "x"))
        assert _report.output_name("session_quick") == "session_quick_cpu"
    finally:
        _report._CONTEXT.update(saved)
    quick = json.loads((tmp_path / "two_view_quick_cpu.json").read_text())
    full = json.loads((tmp_path / "two_view_cpu.json").read_text())
    assert (quick["rows"][0]["x"], quick["quick"], full["rows"][0]["x"], full["quick"]) == \
        (1.0, True, 2.0, False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "two_view_cpu.json", "two_view_cpu.md", "two_view_cpu.png", "two_view_quick_cpu.json",
        "two_view_quick_cpu.md", "two_view_quick_cpu.png"]


def test_demo_reports_warm_timings_and_the_first_run_apart(tmp_path, capsys):
    from learn.demo import run_demo
    rep = run_demo(tmp_path, frames_per_clip=4, seed=0)
    out = capsys.readouterr().out
    assert "warm_seconds" in out and "mostly one-off Numba compilation" in out
    assert rep["first_run_seconds"] > 0
    assert all("warm_seconds" in r and "seconds" not in r for r in rep["rows"])
    saved = json.loads((tmp_path / "demo_report.json").read_text())
    assert np.isclose(saved["first_run_seconds"], rep["first_run_seconds"])
