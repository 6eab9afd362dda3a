"""``report.html``: one self-contained page a user opens after ``epigeo reconstruct``.

The page holds the run's tables (summary, cameras, reprojection per camera, accuracy against a
calibration), the PNG plots (kept as files for papers, embedded here as base64), a few video
frames with the detected (coloured) and the reprojected (white crosses) keypoints, and an
interactive plotly 3D view: the cameras as frustums built from ``K``, ``R``, ``t`` and the
skeleton over time (slider, play), beside a close-up of the body centred on itself. plotly.js
is inlined (``plotly.offline.get_plotlyjs()``): the page loads no file and no URL, so it opens
offline and can be mailed as one file. Axes say "(m)" only when the reconstruction is metric.
"""
from __future__ import annotations

import base64
import html
import json
import warnings
from pathlib import Path

import cv2
import numpy as np

from .report_3d import CAMERA_COLOURS, bone_groups, view3d

__all__ = ["write_html_report", "write_run_report", "video_frames"]

_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:.2em .6em;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.note{color:#555;font-size:.9em}.imgs{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0}figcaption{font-size:.85em;color:#444}img{max-width:100%}"""


def _figures(plots) -> list:
    """HTML parts that inline the PNG files ``plots`` (none: nothing)."""
    if not plots:
        return []
    parts = ["<h2>Plots (also saved as PNG files)</h2><div class=imgs>"]
    for p in plots:
        data = base64.b64encode(Path(p).read_bytes()).decode("ascii")
        parts.append(f"<figure><img alt='{_esc(Path(p).name)}' "
                     f"src='data:image/png;base64,{data}'><figcaption>{_esc(Path(p).name)}"
                     "</figcaption></figure>")
    return parts + ["</div>"]


def _esc(v) -> str:
    return html.escape(str(v), quote=True)


def _fmt(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "–" if not np.isfinite(v) else f"{v:.4g}"
    return str(v)


def _table(header, rows) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(_fmt(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _flatten(d: dict, prefix: str = "") -> list:
    rows = []
    for k, v in d.items():
        if isinstance(v, dict):
            rows += _flatten(v, f"{prefix}{k}.")
        elif isinstance(v, (list, tuple, np.ndarray)) and np.size(v) > 8:
            rows.append((prefix + str(k), f"[{np.size(v)} values]"))
        else:
            rows.append((prefix + str(k), v if np.isscalar(v) else json.dumps(np.asarray(v).tolist())))
    return rows


def _error_plot(residuals, names, fps):
    """Per-frame median reprojection error per camera (plotly line chart), or None."""
    import plotly.graph_objects as go
    res = np.asarray(residuals, np.float64)
    if not np.isfinite(res).any():
        return None
    fig = go.Figure()
    T = res.shape[1]
    tt = np.arange(T) / fps if fps else np.arange(T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # all-NaN frames
        med = np.nanmedian(res, axis=2)                         # (C, T)
    for c in range(res.shape[0]):
        y = [None if not np.isfinite(v) else float(v) for v in med[c]]
        fig.add_trace(go.Scatter(x=tt.tolist(), y=y, mode="lines", name=str(names[c]),
                                 line=dict(color=CAMERA_COLOURS[c % len(CAMERA_COLOURS)])))
    fig.update_layout(height=320, margin=dict(l=50, r=10, t=30, b=40),
                      title="median reprojection error per frame",
                      xaxis_title="time (s)" if fps else "frame", yaxis_title="px")
    return fig


def _draw_frame(image, detected, reprojected, skeleton, max_side: int = 560) -> str:
    """JPEG data URI of BGR ``image`` with ``detected (J, 2)`` (coloured bones and dots) and
    ``reprojected (J, 2)`` (white bones and crosses) keypoints; NaN joints skipped."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"frames: expected uint8 BGR images, got dtype {img.dtype}")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"frames: expected BGR images (H, W, 3), got shape {image.shape}")
    s = min(1.0, max_side / max(img.shape[:2]))
    img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else img.copy()
    r = max(3, int(round(max(img.shape[:2]) / 160)))
    bgr = {"left": (180, 119, 31), "right": (40, 39, 214), "mid": (80, 80, 80)}
    for pts, det in ((detected, True), (reprojected, False)):
        if pts is None:
            continue
        p = np.asarray(pts, np.float64)[:, :2] * s
        lim = 4 * max(img.shape[:2])                           # e.g. points behind a camera
        ok = np.isfinite(p).all(1) & (np.abs(p) < lim).all(1)
        q = lambda j: (int(round(p[j, 0])), int(round(p[j, 1])))      # noqa: E731
        for side, bones in bone_groups(skeleton).items():
            for a, b in bones:
                if ok[a] and ok[b]:
                    cv2.line(img, q(a), q(b), bgr[side] if det else (255, 255, 255),
                             r if det else max(1, r // 3), cv2.LINE_AA)
        for j in np.flatnonzero(ok):
            if det:
                cv2.circle(img, q(j), r, (0, 215, 255), -1, cv2.LINE_AA)
            else:
                cv2.drawMarker(img, q(j), (255, 255, 255), cv2.MARKER_CROSS, 3 * r,
                               max(1, r // 2), cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("frames: an image could not be encoded as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _tables(report, names, K, R, t, size, res, metric, used) -> list:
    """HTML of the summary, calibration-accuracy, camera and figure tables."""
    unit = "m" if metric else f"{report.get('units') or 'arbitrary'} (not metric)"
    rows = [(k, report[k]) for k in ("input", "mode", "skeleton", "frames", "joints", "seconds")
            if k in report]
    rows += [("cameras", ", ".join(names)), ("units", unit)]
    rows += [(f"reprojection error {k} (px)", v)
             for k, v in (report.get("reprojection_px") or {}).items()]
    parts = ["<h2>Summary</h2>", _table(("", "value"), rows)]
    if report.get("warnings"):
        parts.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{_esc(w)}</li>"
                                                       for w in report["warnings"]) + "</ul>")
    ac = report.get("against_calibration")
    if ac:
        parts += ["<h2>Against the reference calibration</h2>", _table(("", "median", "max"), [
            ("relative rotation (°)", ac.get("median_rotation_deg"), ac.get("max_rotation_deg")),
            ("translation direction (°)", ac.get("median_translation_deg"),
             ac.get("max_translation_deg"))]),
            _table(("camera pair", "rotation (°)", "translation direction (°)"),
                   [(p["pair"], p["rotation_deg"], p["translation_deg"])
                    for p in ac.get("pairs", [])])]
    status = {r.get("camera"): r.get("status", "used" if r.get("used", True) else "left out")
              for r in report.get("camera_quality") or [] if isinstance(r, dict)}
    u = "m" if metric else "units"
    head = ["camera", "status", "fx (px)", "fy (px)", "cx (px)", "cy (px)", "image",
            f"centre x ({u})", f"centre y ({u})", f"centre z ({u})"]
    head += ["reprojection median (px)", "p90 (px)", "observations"] if res is not None else []
    cam_rows = []
    for c, name in enumerate(names):
        centre = -R[c].T @ t[c]
        row = [name, status.get(name, "used" if used[c] else "left out"), K[c, 0, 0],
               K[c, 1, 1], K[c, 0, 2], K[c, 1, 2], f"{size[c, 0]:.0f}×{size[c, 1]:.0f}", *centre]
        if res is not None:
            v = res[c][np.isfinite(res[c])]
            row += [np.median(v) if v.size else np.nan,
                    np.percentile(v, 90) if v.size else np.nan, v.size]
        cam_rows.append(row)
    parts += ["<h2>Cameras</h2>", _table(head, cam_rows)]
    if report.get("summary"):
        parts += ["<h2>Reconstruction figures</h2>",
                  _table(("", "value"), _flatten(report["summary"]))]
    return parts


def _frame_figures(frames, skeleton) -> list:
    parts = ["<h2>Video frames</h2><p class=note>Detected keypoints: coloured bones (left blue, "
             "right red) and yellow dots; the reconstruction reprojected: white bones and "
             "crosses.</p><div class=imgs>"]
    for k, fr in enumerate(frames):
        if len(fr) != 4:
            raise ValueError(f"frames[{k}]: expected (camera_name, image, detected, "
                             f"reprojected), got {len(fr)} items")
        cam, img, det, rep = fr
        det = None if det is None else np.asarray(det, np.float64)[:, :2]
        rep = None if rep is None else np.asarray(rep, np.float64)[:, :2]
        for what, a in (("detected", det), ("reprojected", rep)):
            if a is not None and a.shape != (skeleton.num_joints, 2):
                raise ValueError(f"frames[{k}] ({cam}): {what} expected shape "
                                 f"({skeleton.num_joints}, 2), got {a.shape}")
        cap = f"camera {cam}"
        if det is not None and rep is not None:
            d = np.linalg.norm(det - rep, axis=1)
            d = d[np.isfinite(d)]
            cap += f": median distance {np.median(d):.1f} px" if d.size else ""
        parts.append(f"<figure><img alt='{_esc(cam)}' src='{_draw_frame(img, det, rep, skeleton)}'"
                     f"><figcaption>{_esc(cap)}</figcaption></figure>")
    return parts + ["</div>"]


def write_html_report(out_dir, report: dict, X, R, t, K, image_size, skeleton, metric: bool,
                      frames=None, *, residuals=None, camera_names=None, camera_used=None,
                      fps: float = 0.0, plots=None, max_frames: int = 200,
                      name: str = "report.html") -> Path:
    """Write ``out_dir/name`` (default ``report.html``), one self-contained HTML page; returns
    its path (written atomically).

    ``report``: the run's ``report.json`` dictionary (its ``summary``, ``warnings``,
    ``camera_quality`` and ``against_calibration`` become tables); ``X (T, J, 3)`` world points
    (NaN = missing), in metres when ``metric``, else in the reconstruction's arbitrary units
    (the axes then carry no "(m)"); ``R (C, 3, 3)``, ``t (C, 3)`` world→camera (OpenCV:
    x_cam = R X + t), ``K (C, 3, 3)``, ``image_size`` ``(W, H)`` px or ``(C, 2)``; ``skeleton``:
    a :class:`pose.Skeleton` or its name; ``frames``: optional ``[(camera_name, BGR image
    (H, W, 3) uint8, detected (J, 2) px, reprojected (J, 2) px), ...]`` drawn as JPEGs (NaN
    joints skipped); ``residuals (C, T, J)`` px (NaN = unused): per-camera figures and a
    per-frame error chart; ``camera_used (C,)`` False marks cameras left out (dashed);
    ``plots``: PNG paths to embed (default the ``rig.png``, ``skeleton.png``,
    ``reprojection.png`` found in ``out_dir``); ``max_frames``: time steps the 3D slider holds
    (evenly spaced); ``fps`` > 0 labels time in seconds."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    import pose
    from pose.io_atomic import atomic_write_text
    sk = pose.get_skeleton(skeleton)
    X = np.asarray(X, np.float64)
    R, t, K = (np.asarray(a, np.float64) for a in (R, t, K))
    if X.ndim != 3 or X.shape[1:] != (sk.num_joints, 3) or len(X) == 0:
        raise ValueError(f"X: expected shape (T, {sk.num_joints}, 3) with T >= 1 for skeleton "
                         f"{sk.name}, got {X.shape}")
    C = len(R)
    if R.shape != (C, 3, 3) or t.shape != (C, 3) or K.shape != (C, 3, 3) or C == 0:
        raise ValueError(f"R, t, K: expected (C, 3, 3), (C, 3), (C, 3, 3) with C >= 1, got "
                         f"{R.shape}, {t.shape}, {K.shape}")
    names = [str(n) for n in (camera_names if camera_names is not None else range(C))]
    if len(names) != C:
        raise ValueError(f"camera_names: expected {C} names, got {len(names)}")
    used = np.ones(C, bool) if camera_used is None else np.asarray(camera_used, bool)
    if used.shape != (C,):
        raise ValueError(f"camera_used: expected shape ({C},), got {used.shape}")
    try:
        size = np.broadcast_to(np.asarray(image_size, np.float64), (C, 2))
    except ValueError:
        raise ValueError(f"image_size: expected (W, H) or ({C}, 2), got "
                         f"{np.shape(image_size)}") from None
    res = None if residuals is None else np.asarray(residuals, np.float64)
    if res is not None and (res.ndim != 3 or res.shape[0] != C):
        raise ValueError(f"residuals: expected shape ({C}, T, J), got {res.shape}")
    out_dir = Path(out_dir)
    cfg = {"displaylogo": False}

    parts = [f"<h1>epigeo reconstruction: {_esc(report.get('input', ''))}</h1>",
             "<p class=note>World frame: " + ("metres" if metric else "arbitrary scale (not "
                                               "metric: lengths are relative)") +
             "; cameras x<sub>cam</sub> = R X + t (OpenCV).</p>"]
    parts += _tables(report, names, K, R, t, size, res, metric, used)
    fig = view3d(X, R, t, K, size, sk, metric, names, fps=fps, max_frames=max_frames,
                 used=used)
    parts += ["<h2>3D view</h2><p class=note>Drag to rotate, scroll to zoom, the slider moves "
              "through time; click a legend entry to hide it. Frustums point where each camera "
              "looks; the tick marks the top of its image.</p>",
              pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id="view3d",
                          auto_play=False, config=cfg)]
    if res is not None and (efig := _error_plot(res, names, fps)) is not None:
        parts.append(pio.to_html(efig, full_html=False, include_plotlyjs=False,
                                 div_id="errors", config=cfg))
    if frames:
        parts += _frame_figures(frames, sk)
    if plots is None:
        plots = [out_dir / n for n in ("rig.png", "skeleton.png", "reprojection.png")
                 if (out_dir / n).is_file()]
    parts.extend(_figures(plots))
    page = ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>epigeo report: {_esc(report.get('input', ''))}</title><style>{_CSS}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
    return atomic_write_text(out_dir / name, page)


def video_frames(detect_dir, camera_names, x, X, K, R, t, *, dist=None, times: int = 2,
                 used=None) -> list:
    """A few frames of the videos that ``epigeo detect`` read into ``detect_dir`` (its
    ``detect.json``), as :func:`write_html_report`'s ``frames``: ``times`` moments (the best
    reconstructed ones, spread over the run) for every camera. ``x (C, T, J, 2)`` detections px
    (NaN missing) as detected (distorted), ``X (T, J, 3)`` world points, ``K``, ``R``, ``t``
    the cameras and ``dist (C, 4|5)`` their OpenCV distortion (None = none). Returns ``[]``
    when ``detect_dir`` has no ``detect.json``, its frames do not match ``T``, or a video is
    gone. Cameras with ``used`` False get no reprojection (None)."""
    import geometry as geo
    from pose.video import read_frames
    meta_path = Path(detect_dir) / "detect.json"
    if not meta_path.is_file():
        return []
    meta = json.loads(meta_path.read_text())
    X = np.asarray(X, np.float64)
    idx = meta.get("frames", [])
    if len(idx) != X.shape[0]:
        return []
    good = np.isfinite(X).all(-1).sum(-1)                       # joints per frame
    T = len(good)
    picks = []
    for seg in np.array_split(np.arange(T), max(1, times)):
        if seg.size and good[seg].max() > 0:
            picks.append(int(seg[np.argmax(good[seg])]))
    out = []
    for c, cam in enumerate(camera_names):
        if cam not in meta.get("cameras", []):
            return []
        video = Path(meta["video_dir"]) / meta["videos"][meta["cameras"].index(cam)]
        if not video.is_file():
            return []
        for k, img in read_frames(video, sorted({idx[p] for p in picks})):
            p = idx.index(k)
            rep = None
            if used is None or used[c]:
                rep = geo.project_points(X[p], np.asarray(K[c]), np.asarray(R[c]),
                                         np.asarray(t[c]),
                                         None if dist is None else np.asarray(dist[c]))
            out.append((cam, img, np.asarray(x[c, p]), rep))
    return out


def write_run_report(out, args, det, labels, skeleton, sizes, report, *, metric: bool,
                     used=None, dist=None) -> Path:
    """``epigeo reconstruct``'s call: :func:`write_html_report` into ``out`` for one run, with
    video frames when ``args.input`` is a detection folder written by ``epigeo detect`` (its
    ``detect.json`` names the videos). ``det``: the :class:`learn.inputs.Detections`,
    ``labels`` the :class:`learn.pseudo_labels.PseudoLabels`, ``used (C,)`` the cameras kept,
    ``dist (C, 4|5)`` the lens distortion the detections were undistorted with (or None)."""
    frames = video_frames(args.input, det.camera_names, det.x, labels.X, labels.K, labels.R,
                          labels.t, dist=dist, used=used)
    return write_html_report(out, report, labels.X, labels.R, labels.t, labels.K, sizes,
                             skeleton, metric, frames, residuals=labels.residuals,
                             camera_names=det.camera_names, camera_used=used,
                             fps=float(getattr(args, "fps", 0) or 0.0))


def _page(title: str, parts) -> str:
    from plotly.offline import get_plotlyjs
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>{_esc(title)}</title><style>{_CSS}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
