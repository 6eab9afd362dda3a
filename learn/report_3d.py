"""The interactive 3D view of ``report.html`` (:mod:`learn.html_report`): a plotly figure with
the cameras as frustums (from ``K``, ``R``, ``t``; OpenCV convention x_cam = R X + t), the
skeleton over time (slider, play) and the path of the body centre, beside a close-up of the
body centred on itself. Axes say "(m)" only for a metric reconstruction.
"""
from __future__ import annotations

import warnings

import numpy as np

__all__ = ["frustum_corners", "view3d", "view3d_people", "bone_groups", "CAMERA_COLOURS"]

SIDE_COLOURS = {"left": "#1f77b4", "right": "#d62728", "mid": "#666666"}
CAMERA_COLOURS = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e",
                  "#7f7f7f"]


def frustum_corners(K, R, t, image_size, depth: float) -> np.ndarray:
    """World points of each camera's frustum: ``(C, 5, 3)`` = the centre, then the image
    corners (0,0), (W,0), (W,H), (0,H) px back-projected to camera depth ``depth`` (world
    units). ``K (C, 3, 3)``, ``R (C, 3, 3)``, ``t (C, 3)`` world→camera (x_cam = R X + t),
    ``image_size`` ``(W, H)`` or ``(C, 2)``."""
    K, R, t = (np.asarray(a, np.float64) for a in (K, R, t))
    C = len(K)
    if K.shape != (C, 3, 3) or R.shape != (C, 3, 3) or t.shape != (C, 3):
        raise ValueError(f"K, R, t: expected (C, 3, 3), (C, 3, 3), (C, 3); got {K.shape}, "
                         f"{R.shape}, {t.shape}")
    size = np.broadcast_to(np.asarray(image_size, np.float64), (C, 2))
    centres = -np.einsum("cji,cj->ci", R, t)
    out = np.empty((C, 5, 3))
    for c in range(C):
        W, H = size[c]
        uv1 = np.array([[0, 0, 1], [W, 0, 1], [W, H, 1], [0, H, 1]], np.float64)
        rays = np.linalg.solve(K[c], uv1.T).T                   # (4, 3), z = 1
        out[c, 0] = centres[c]
        out[c, 1:] = centres[c] + depth * rays @ R[c]           # R^T d
    return out


def _lines(segments) -> tuple:
    """x, y, z lists of 3D segments ``[(p, q), ...]`` separated by None (plotly gaps)."""
    xs, ys, zs = [], [], []
    for p, q in segments:
        if np.isfinite(p).all() and np.isfinite(q).all():
            for a, v in zip((xs, ys, zs), zip(p, q)):
                a += [float(v[0]), float(v[1]), None]
    return xs, ys, zs


def bone_groups(skeleton):
    left = {a for a, _ in skeleton.flip_pairs}
    right = {b for _, b in skeleton.flip_pairs}
    groups = {"left": [], "right": [], "mid": []}
    for a, b in skeleton.bones:
        groups["left" if b in left else "right" if b in right else "mid"].append((a, b))
    return groups


def _pose_traces(P, skeleton, scene: str, show_legend: bool):
    """Bones (left blue, right red, midline grey) and joints of pose ``P (J, 3)``."""
    import plotly.graph_objects as go
    traces = []
    for side, bones in bone_groups(skeleton).items():
        x, y, z = _lines([(P[a], P[b]) for a, b in bones])
        traces.append(go.Scatter3d(x=x, y=y, z=z, mode="lines", scene=scene,
                                   line=dict(color=SIDE_COLOURS[side], width=6),
                                   name=f"{side} bones", legendgroup=side, showlegend=show_legend))
    ok = np.isfinite(P).all(1)
    traces.append(go.Scatter3d(x=P[ok, 0], y=P[ok, 1], z=P[ok, 2], mode="markers", scene=scene,
                               marker=dict(size=3, color="#111"), name="joints",
                               text=[skeleton.names[j] for j in np.flatnonzero(ok)],
                               hoverinfo="text", legendgroup="joints", showlegend=show_legend))
    return traces


def _up_vector(X, R, skeleton) -> np.ndarray:
    """The world's "up" for the 3D view: the mean of the cameras' -y axes (cameras stand
    roughly upright; 7.7° from the lab's vertical on the Pose2Sim demo rig, where the body's
    feet-to-head direction was 13.9° off), its sign checked against the body's feet-to-head
    direction of ``X (T, J, 3)`` where the skeleton names them (cameras mounted upside down);
    the body's direction when the cameras give none; else +z."""
    names = [n.lower() for n in skeleton.names]
    top = [j for j, n in enumerate(names) if any(k in n for k in ("head", "nose", "neck",
                                                                       "thorax", "shoulder"))]
    low = [j for j, n in enumerate(names) if any(k in n for k in ("ankle", "heel", "foot",
                                                                       "toe", "knee"))]
    body = np.zeros(3)
    if top and low:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)          # all-NaN frames
            d = np.nanmean(X[:, top], 1) - np.nanmean(X[:, low], 1)   # (T, 3)
        d = d[np.isfinite(d).all(1)]
        if len(d):
            body = np.median(d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12), 0)
    ok = np.isfinite(R).all(axis=(1, 2))
    up = -R[ok, 1, :].mean(0) if ok.any() else np.zeros(3)
    if np.linalg.norm(up) > 0.3:
        up = up / np.linalg.norm(up)
        return -up if up @ body < 0 else up
    if np.linalg.norm(body) > 1e-6:
        return body / np.linalg.norm(body)
    return np.array([0.0, 0.0, 1.0])


def _camera_traces(fig, K, R, t, image_size, names, used, ok, centres, depth, colour=None):
    """Add the frustums (solid: used, dashed: left out; in :data:`CAMERA_COLOURS`, or all in
    ``colour``) and the camera names to ``fig``."""
    import plotly.graph_objects as go
    for c in np.flatnonzero(ok):
        fr = frustum_corners(K[c:c + 1], R[c:c + 1], t[c:c + 1], image_size[c], depth)[0]
        o, corners = fr[0], fr[1:]
        top = 0.5 * (corners[0] + corners[1])
        up = top + 0.35 * (corners[0] - corners[3])             # a tick above the image top
        segs = [(o, q) for q in corners] + [(corners[i], corners[(i + 1) % 4]) for i in range(4)]
        segs += [(corners[0], up), (up, corners[1])]
        x, y, z = _lines(segs)
        col = colour or CAMERA_COLOURS[c % len(CAMERA_COLOURS)]
        fig.add_trace(go.Scatter3d(
            x=x, y=y, z=z, mode="lines", scene="scene", hoverinfo="name",
            line=dict(color=col, width=3, dash="solid" if used[c] else "dash"),
            name=f"camera {names[c]}" + ("" if used[c] else " (left out)")))
    fig.add_trace(go.Scatter3d(x=centres[ok, 0], y=centres[ok, 1], z=centres[ok, 2],
                               mode="text", text=[names[c] for c in np.flatnonzero(ok)],
                               textposition="top center", showlegend=False, hoverinfo="skip",
                               scene="scene"))


def _person_traces(P, skeleton, colour: str, name: str):
    """Bones and joints of one person's pose ``P (J, 3)`` in one colour."""
    import plotly.graph_objects as go
    x, y, z = _lines([(P[a], P[b]) for a, b in skeleton.bones])
    ok = np.isfinite(P).all(1)
    return [go.Scatter3d(x=x, y=y, z=z, mode="lines", scene="scene", legendgroup=name,
                         line=dict(color=colour, width=6), name=name),
            go.Scatter3d(x=P[ok, 0], y=P[ok, 1], z=P[ok, 2], mode="markers", scene="scene",
                         marker=dict(size=3, color=colour), legendgroup=name, showlegend=False,
                         text=[f"{name}: {skeleton.names[j]}" for j in np.flatnonzero(ok)],
                         hoverinfo="text", name=name)]


def view3d_people(points3d, R, t, K, image_size, skeleton, metric: bool, names, colours, *,
                  fps: float = 0.0, max_frames: int = 200, used=None):
    """The 3D view of several people: ``points3d (T, N, J, 3)`` world points (NaN = missing),
    person ``n`` in ``colours[n % len(colours)]`` with a legend entry "person n+1", each
    person's path (their joints' centre over time, dotted), the cameras as in :func:`view3d`
    but all dark grey (the colours are the people's) and a time slider (at most ``max_frames`` steps)."""
    import plotly.graph_objects as go
    X = np.asarray(points3d, np.float64)
    T, N = X.shape[:2]
    C = len(R)
    used = np.ones(C, bool) if used is None else np.asarray(used, bool)
    ok = np.array([np.isfinite(K[c]).all() and np.isfinite(R[c]).all() and np.isfinite(t[c]).all()
                   for c in range(C)])
    centres = np.full((C, 3), np.nan)
    centres[ok] = -np.einsum("cji,cj->ci", R[ok], t[ok])
    finite = X[np.isfinite(X).all(-1)]
    person = np.median(finite, 0) if len(finite) else np.zeros(3)
    dist = np.linalg.norm(centres[ok] - person, axis=1)
    depth = 0.2 * float(np.median(dist)) if dist.size and np.median(dist) > 0 else 1.0
    fig = go.Figure()
    _camera_traces(fig, K, R, t, np.broadcast_to(image_size, (C, 2)), names, used, ok, centres,
                   depth, colour="#444444")   # grey: every colour in this view is a person
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        root = np.nanmean(X, 2)                                   # (T, N, 3)
    for n in range(N):
        col = colours[n % len(colours)]
        x, y, z = _lines(list(zip(root[:-1, n], root[1:, n])))
        fig.add_trace(go.Scatter3d(x=x, y=y, z=z, mode="lines", scene="scene",
                                   line=dict(color=col, width=2, dash="dot"),
                                   name=f"path of person {n + 1}"))
    shown = np.unique(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int))
    valid = [k for k in shown if np.isfinite(X[k]).any()] or [int(shown[0])]

    def traces(k):
        return [tr for n in range(N) for tr in _person_traces(
            X[k, n], skeleton, colours[n % len(colours)], f"person {n + 1}")]
    n0 = len(fig.data)
    for tr in traces(valid[0]):
        fig.add_trace(tr)
    idx = list(range(n0, len(fig.data)))
    fig.frames = [go.Frame(name=str(k), traces=idx, data=traces(k)) for k in valid]
    label = (lambda k: f"{k / fps:.2f} s") if fps else (lambda k: f"frame {k}")
    anim = {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
            "transition": {"duration": 0}}
    play = {"mode": "immediate", "fromcurrent": True,
            "frame": {"duration": 80, "redraw": True}, "transition": {"duration": 0}}
    up = _up_vector(np.moveaxis(X, 1, 0).reshape(-1, *X.shape[2:]), R, skeleton)
    unit = " (m)" if metric else " (arbitrary units)"
    fig.update_layout(
        height=720, margin=dict(l=0, r=0, t=30, b=0), legend=dict(x=0, y=1),
        sliders=[{"active": 0, "currentvalue": {"prefix": "time: " if fps else ""},
                  "x": 0.12, "len": 0.88, "y": 0, "pad": {"t": 10},
                  "font": {"color": "rgba(0,0,0,0)"},
                  "steps": [{"label": label(k), "method": "animate",
                             "args": [[str(k)], anim]} for k in valid]}],
        updatemenus=[{"type": "buttons", "direction": "left", "x": 0, "y": 0, "xanchor": "left",
                      "yanchor": "top", "pad": {"t": 40},
                      "buttons": [{"label": "play", "method": "animate", "args": [None, play]},
                                  {"label": "pause", "method": "animate",
                                   "args": [[None], anim]}]}],
        scene=dict(aspectmode="data", camera=dict(up=dict(zip("xyz", up.tolist()))),
                   **{f"{a}axis": dict(title=dict(text=a + unit)) for a in "xyz"}))
    return fig


def view3d(X, R, t, K, image_size, skeleton, metric: bool, names, *, fps: float = 0.0,
           max_frames: int = 200, used=None):
    """The plotly ``Figure`` of the 3D view. ``X (T, J, 3)`` world points (NaN = missing),
    ``R (C, 3, 3)``, ``t (C, 3)``, ``K (C, 3, 3)``, ``image_size (C, 2)`` px, ``skeleton`` a
    :class:`pose.Skeleton`, ``names`` the cameras'; ``used (C,)`` False draws a camera dashed
    (left out of the reconstruction); cameras with non-finite ``K``/``R``/``t`` are not drawn.
    The slider holds at most ``max_frames`` evenly spaced time steps (labelled in seconds when
    ``fps`` > 0). The frustums reach 20 % of the median camera-to-person distance."""
    import plotly.graph_objects as go
    T, C = X.shape[0], len(R)
    used = np.ones(C, bool) if used is None else np.asarray(used, bool)
    ok = np.array([np.isfinite(K[c]).all() and np.isfinite(R[c]).all() and np.isfinite(t[c]).all()
                   for c in range(C)])
    centres = np.full((C, 3), np.nan)
    centres[ok] = -np.einsum("cji,cj->ci", R[ok], t[ok])
    finite = X[np.isfinite(X).all(-1)]
    person = np.median(finite, 0) if len(finite) else (np.nanmean(centres, 0) if ok.any()
                                                      else np.zeros(3))
    dist = np.linalg.norm(centres[ok] - person, axis=1)
    depth = 0.2 * float(np.median(dist)) if dist.size and np.median(dist) > 0 else 1.0
    fig = go.Figure()
    _camera_traces(fig, K, R, t, image_size, names, used, ok, centres, depth)
    root = np.array([np.nanmean(P, 0) if np.isfinite(P).any() else np.full(3, np.nan)
                     for P in X])
    x, y, z = _lines(list(zip(root[:-1], root[1:])))
    fig.add_trace(go.Scatter3d(x=x, y=y, z=z, mode="lines", line=dict(color="#aaa", width=2),
                               name="path of the body centre", scene="scene"))
    shown = np.unique(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int))
    valid = [k for k in shown if np.isfinite(X[k]).any()] or [int(shown[0])]
    first = X[valid[0]]
    n0 = len(fig.data)
    for tr in _pose_traces(first, skeleton, "scene", True):
        fig.add_trace(tr)
    centred = X - root[:, None]
    for tr in _pose_traces(centred[valid[0]], skeleton, "scene2", False):
        fig.add_trace(tr)
    idx = list(range(n0, len(fig.data)))
    label = (lambda k: f"{k / fps:.2f} s") if fps else (lambda k: f"frame {k}")
    frames = [go.Frame(name=str(k), traces=idx,
                       data=_pose_traces(X[k], skeleton, "scene", True)
                       + _pose_traces(centred[k], skeleton, "scene2", False)) for k in valid]
    fig.frames = frames
    anim = {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
            "transition": {"duration": 0}}
    play = {"mode": "immediate", "fromcurrent": True,
            "frame": {"duration": 80, "redraw": True}, "transition": {"duration": 0}}
    titles = [dict(text=txt, x=x, y=1.0, xref="paper", yref="paper", showarrow=False,
                   xanchor="center", yanchor="bottom", font=dict(size=15))
              for txt, x in (("cameras and skeleton", 0.41), ("skeleton close-up (centred)", 0.83))]
    fig.update_layout(
        height=720, margin=dict(l=0, r=0, t=40, b=0), legend=dict(x=0, y=1), annotations=titles,
        sliders=[{"active": 0, "currentvalue": {"prefix": "time: " if fps else "",
                                                 "font": {"color": "#222"}},
                  "x": 0.12, "len": 0.88, "y": 0, "pad": {"t": 10},
                  "font": {"color": "rgba(0,0,0,0)"},      # step labels: too many to read
                  "steps": [{"label": label(k), "method": "animate",
                             "args": [[str(k)], anim]} for k in valid]}],
        updatemenus=[{"type": "buttons", "direction": "left", "x": 0, "y": 0, "xanchor": "left",
                      "yanchor": "top", "pad": {"t": 40},
                      "buttons": [{"label": "play", "method": "animate", "args": [None, play]},
                                  {"label": "pause", "method": "animate",
                                   "args": [[None], anim]}]}])
    up = _up_vector(X, R, skeleton)
    away = (centres[np.flatnonzero(ok)[0]] if ok.any() else person + 1.0) - person
    away = away - up * (away @ up)   # look from beside the first camera, from above
    if np.linalg.norm(away) < 1e-9:
        away = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
    away = away / np.linalg.norm(away)
    away = np.cos(np.pi / 4) * away + np.sin(np.pi / 4) * np.cross(up, away)   # 45° aside
    eye = 1.9 * away + 1.2 * up
    unit = " (m)" if metric else " (arbitrary units)"
    half = float(np.nanmax(np.abs(centred))) * 1.1 if np.isfinite(centred).any() else 1.0
    cam = dict(up=dict(zip("xyz", up.tolist())), eye=dict(zip("xyz", eye.tolist())))
    axes = {f"{a}axis": dict(title=dict(text=a + unit)) for a in "xyz"}
    fig.update_layout(scene=dict(aspectmode="data", camera=cam, domain=dict(x=[0.14, 0.68]),
                                 **axes),
                      scene2=dict(aspectmode="cube", domain=dict(x=[0.68, 1.0]),
                                  camera=dict(up=cam["up"],
                                              eye=dict(zip("xyz", (1.3 * eye).tolist()))),
                                  **{f"{a}axis": dict(title=dict(text=a + unit),
                                                      range=[-half, half]) for a in "xyz"}))
    return fig
