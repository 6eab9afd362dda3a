"""``report.html`` of a several-people run (``epigeo reconstruct --people``): the tables of
:mod:`learn.html_report`, a people table in each person's colour and the 3D view of everyone."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .html_report import _esc, _figures, _page, _table, _tables
from .report_3d import view3d_people

__all__ = ["write_people_report"]


def write_people_report(out_dir, report: dict, points3d, R, t, K, image_size, skeleton,
                        metric: bool, *, camera_names=None, fps: float = 0.0, plots=None,
                        max_frames: int = 200, name: str = "report.html") -> Path:
    """``report.html`` of a several-people run (``epigeo reconstruct --people``): the summary,
    calibration-accuracy and camera tables of :func:`write_html_report`, a people table (one
    row per person in their colour: track length, frames with 3D, reprojection error, labelled
    fraction, cameras flagged inconsistent for that person, from ``report["people"]``), the 3D
    view of everyone (:func:`learn.report_3d.view3d_people`) and the PNGs (default
    ``people.png``). ``points3d (T, N, J, 3)`` (NaN = missing), cameras as in
    :func:`write_html_report`. Written atomically; returns the path."""
    import plotly.io as pio

    import pose
    from pose.io_atomic import atomic_write_text
    from pose.plots import PERSON_COLOURS
    sk = pose.get_skeleton(skeleton)
    X = np.asarray(points3d, np.float64)
    if X.ndim != 4 or X.shape[2:] != (sk.num_joints, 3) or len(X) == 0:
        raise ValueError(f"points3d: expected shape (T, N, {sk.num_joints}, 3) with T >= 1, "
                         f"got {X.shape}")
    R, t, K = (np.asarray(a, np.float64) for a in (R, t, K))
    C = len(R)
    names = [str(n) for n in (camera_names if camera_names is not None else range(C))]
    size = np.broadcast_to(np.asarray(image_size, np.float64), (C, 2))
    used = np.isfinite(R).all(axis=(1, 2))
    parts = [f"<h1>epigeo reconstruction, {X.shape[1]} people: {_esc(report.get('input', ''))}"
             "</h1>", "<p class=note>World frame: " + ("metres" if metric else "arbitrary scale "
             "(not metric)") + "; cameras x<sub>cam</sub> = R X + t (OpenCV). Each person keeps "
             "one colour in the table, the 3D view and the PNG.</p>"]
    parts += _tables(report, names, K, R, t, size, None, metric, used)
    rows = []
    for r in report.get("people", []):
        bad = [c["camera"] for c in r.get("cameras", []) if not c.get("consistent", True)]
        rows.append((f"person {r['person']}", r.get("track_length"), r.get("frames_3d"),
                     r.get("median_reprojection_px"), r.get("p90_reprojection_px"),
                     r.get("labelled_fraction"), ", ".join(bad) or "none"))
    table = _table(("person", "track length (frames)", "frames with 3D",
                    "reprojection median (px)", "p90 (px)", "labelled fraction",
                    "inconsistent cameras"), rows)
    for r in report.get("people", []):     # colour each person's first cell
        label = f"<td>person {r['person']}</td>"
        table = table.replace(label, f"<td style='border-left:8px solid "
                                     f"{_esc(r.get('colour', '#000'))}'>person {r['person']}</td>",
                              1)
    parts += ["<h2>People</h2>", table]
    fig = view3d_people(X, R, t, K, size, sk, metric, names, PERSON_COLOURS, fps=fps,
                        max_frames=max_frames, used=used)
    parts += ["<h2>3D view</h2><p class=note>Drag to rotate, scroll to zoom, the slider moves "
              "through time; click a legend entry to hide a person.</p>",
              pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id="view3d",
                          auto_play=False, config={"displaylogo": False})]
    out_dir = Path(out_dir)
    if plots is None:
        plots = [out_dir / "people.png"] if (out_dir / "people.png").is_file() else []
    parts.extend(_figures(plots))
    return atomic_write_text(out_dir / name, _page(
        f"epigeo report: {report.get('input', '')}", parts))
