"""Figures with matplotlib (Agg backend): 3D skeletons with cameras, 2D overlays, error histograms.

Every function returns the ``Figure`` and, given ``path``, also saves it there (PNG, PDF, ...).
Left joints are drawn in blue, right in red, the midline in grey.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .skeletons import H36M_17, get_skeleton

__all__ = ["plot_skeleton_3d", "plot_2d_overlay", "plot_joint_error_histogram",
           "plot_people_3d", "PERSON_COLOURS"]

#: one colour per person (person ``n`` → ``PERSON_COLOURS[n % len]``), shared by every plot and
#: the HTML report so that a person keeps their colour everywhere
PERSON_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                  "#17becf", "#bcbd22", "#7f7f7f")


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _bone_colours(sk):
    left = {a for a, _ in sk.flip_pairs}
    right = {b for _, b in sk.flip_pairs}
    return ["tab:blue" if c in left else "tab:red" if c in right else "0.4" for _, c in sk.bones]


def _save(fig, path):
    """Save ``fig`` to ``path`` atomically (a temporary name in the same folder, then renamed;
    the format from the suffix, default PNG)."""
    if path is not None:
        from .io_atomic import atomic_path
        fmt = Path(path).suffix.lstrip(".").lower() or "png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format=fmt)
    return fig


def plot_skeleton_3d(X, skeleton=H36M_17, *, rig=None, gt=None, camera_size: float = 0.3,
                     title: str = "", path=None, units: str = "m"):
    """3D skeleton(s) ``X (J, 3)`` or ``(P, J, 3)`` (z up), optional ground truth ``gt``
    (dashed) and the cameras of ``rig`` (``R``, ``t``: centres and viewing axes). ``units``
    labels the axes: ``"m"`` only for metric coordinates; e.g. ``"units: median camera
    distance"`` for a self-calibrated rig without a metric scale."""
    plt = _plt()
    sk = get_skeleton(skeleton)
    X = np.asarray(X, dtype=np.float64)
    poses = X[None] if X.ndim == 2 else X
    if poses.ndim != 3 or poses.shape[1:] != (sk.num_joints, 3):
        raise ValueError(f"X: expected shape ({sk.num_joints}, 3) or (P, {sk.num_joints}, 3), "
                         f"got shape {X.shape}")
    fig = plt.figure(figsize=(6, 6))
    ax = fig.add_subplot(projection="3d")
    cols = _bone_colours(sk)
    pts = [poses.reshape(-1, 3)]
    for style, group in (("-", poses), ("--", None if gt is None else
                                        np.asarray(gt, float).reshape(-1, sk.num_joints, 3))):
        if group is None:
            continue
        pts.append(group.reshape(-1, 3))
        for P in group:
            for (a, b), c in zip(sk.bones, cols):
                ax.plot(*P[[a, b]].T, style, color=c, lw=2 if style == "-" else 1)
    if rig is not None:
        R, t = np.asarray(rig.R), np.asarray(rig.t)
        centres = -np.einsum("cji,cj->ci", R, t)
        axes = R[:, 2, :]  # viewing direction (camera z) in the world
        for i, (c, z) in enumerate(zip(centres, axes)):
            ax.scatter(*c, color="k", marker="^")
            ax.plot(*np.stack([c, c + camera_size * 3 * z]).T, color="k", lw=1)
            ax.text(*c, f" {i}", fontsize=8)
        pts.append(centres)
    allp = np.concatenate(pts)
    allp = allp[np.isfinite(allp).all(1)]
    if len(allp):
        mid, half = allp.mean(0), max(np.ptp(allp, 0).max() / 2, 0.5)
        ax.set_xlim(mid[0] - half, mid[0] + half)
        ax.set_ylim(mid[1] - half, mid[1] + half)
        ax.set_zlim(mid[2] - half, mid[2] + half)
    ax.set_xlabel(f"x ({units})")
    ax.set_ylabel(f"y ({units})")
    ax.set_zlabel(f"z ({units})")
    ax.set_title(title or sk.name)
    return _save(fig, path)


def plot_people_3d(points3d, skeleton=H36M_17, *, rig=None, frame=None, title: str = "",
                   path=None, units: str = "m"):
    """Several people: ``points3d (T, N, J, 3)`` (NaN = not reconstructed). Draws every person's
    skeleton at ``frame`` (default: the frame where most joints of most people exist) and the
    path of their joints' centre over all frames, person ``n`` in ``PERSON_COLOURS[n]``
    (legend "person n+1"), and the cameras of ``rig`` (centres, viewing axes). ``units`` labels
    the axes ("m" only for metric coordinates)."""
    plt = _plt()
    sk = get_skeleton(skeleton)
    X = np.asarray(points3d, dtype=np.float64)
    if X.ndim != 4 or X.shape[2:] != (sk.num_joints, 3) or X.shape[0] == 0:
        raise ValueError(f"points3d: expected shape (T, N, {sk.num_joints}, 3) with T >= 1, "
                         f"got shape {X.shape}")
    T, N = X.shape[:2]
    ok = np.isfinite(X).all(-1)                                   # (T, N, J)
    if frame is None:
        frame = int(np.argmax((ok.sum(-1) > 0).sum(-1) * 1000 + ok.sum((1, 2))))
    fig = plt.figure(figsize=(7, 6))
    ax = fig.add_subplot(projection="3d")
    pts = []
    for n in range(N):
        col = PERSON_COLOURS[n % len(PERSON_COLOURS)]
        P = X[frame, n]
        first = True
        for a, b in sk.bones:
            if np.isfinite(P[[a, b]]).all():
                ax.plot(*P[[a, b]].T, "-", color=col, lw=2,
                        label=f"person {n + 1}" if first else None)
                first = False
        with np.errstate(invalid="ignore"):
            cnt = ok[:, n].sum(-1)
            centre = np.where(cnt[:, None] > 0, np.nansum(np.where(ok[:, n, :, None], X[:, n], 0),
                                                          1) / np.maximum(cnt, 1)[:, None], np.nan)
        ax.plot(*centre.T, ":", color=col, lw=1, label=None if not first else f"person {n + 1}")
        pts += [P[np.isfinite(P).all(1)], centre[np.isfinite(centre).all(1)]]
    if rig is not None:
        R, t = np.asarray(rig.R), np.asarray(rig.t)
        centres = -np.einsum("cji,cj->ci", R, t)
        span = np.concatenate(pts) if pts else centres
        size = 0.15 * (np.ptp(span, 0).max() if len(span) else 1.0) or 0.3
        for i, (c, z) in enumerate(zip(centres, R[:, 2, :])):
            ax.scatter(*c, color="k", marker="^")
            ax.plot(*np.stack([c, c + size * z]).T, color="k", lw=1)
            ax.text(*c, f" {i}", fontsize=8)
        pts.append(centres)
    allp = np.concatenate(pts) if pts else np.zeros((0, 3))
    allp = allp[np.isfinite(allp).all(1)]
    if len(allp):
        mid, half = allp.mean(0), max(np.ptp(allp, 0).max() / 2, 1e-3)
        ax.set_xlim(mid[0] - half, mid[0] + half)
        ax.set_ylim(mid[1] - half, mid[1] + half)
        ax.set_zlim(mid[2] - half, mid[2] + half)
    ax.set_xlabel(f"x ({units})")
    ax.set_ylabel(f"y ({units})")
    ax.set_zlabel(f"z ({units})")
    if N:
        ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or f"{N} people, frame {frame} (dotted: path over time)")
    return _save(fig, path)


def plot_2d_overlay(x, skeleton=H36M_17, *, image=None, image_size=None, confidence=None,
                    reference=None, title: str = "", path=None):
    """2D keypoints ``x (J, 2|3)`` pixels (a third column is confidence; 0 = missing) over an
    ``image`` (H, W[, 3]) or an empty frame of ``image_size`` (width, height); ``reference``
    (J, 2) (e.g. reprojected 3D) is drawn as crosses."""
    plt = _plt()
    sk = get_skeleton(skeleton)
    x = np.asarray(x, dtype=np.float64)
    if x.shape not in ((sk.num_joints, 2), (sk.num_joints, 3)):
        raise ValueError(f"x: expected shape ({sk.num_joints}, 2|3), got shape {x.shape}")
    conf = x[:, 2] if x.shape[1] == 3 else (np.ones(sk.num_joints) if confidence is None
                                             else np.asarray(confidence, float))
    ok = (conf > 0) & np.isfinite(x[:, :2]).all(1)
    fig, ax = plt.subplots(figsize=(6, 6))
    if image is not None:
        ax.imshow(np.asarray(image))
    else:
        w, h = image_size if image_size is not None else (np.nanmax(x[ok, 0]) * 1.1 + 1,
                                                           np.nanmax(x[ok, 1]) * 1.1 + 1)
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_facecolor("0.95")
    for (a, b), c in zip(sk.bones, _bone_colours(sk)):
        if ok[a] and ok[b]:
            ax.plot(x[[a, b], 0], x[[a, b], 1], color=c, lw=2)
    ax.scatter(x[ok, 0], x[ok, 1], c=conf[ok], cmap="viridis", vmin=0, vmax=1, s=18, zorder=3)
    if reference is not None:
        r = np.asarray(reference, float)
        ax.scatter(r[:, 0], r[:, 1], marker="x", color="k", s=25, zorder=4)
    ax.set_aspect("equal")
    ax.set_title(title or sk.name)
    return _save(fig, path)


def plot_joint_error_histogram(errors, skeleton=H36M_17, *, bins: int = 30, unit: str = "mm",
                               scale: float = 1000.0, title: str = "", path=None):
    """Per-joint error distributions: ``errors (..., J)`` (metres; ``scale`` converts to
    ``unit``), one small histogram per joint plus the overall one; NaN ignored."""
    plt = _plt()
    sk = get_skeleton(skeleton)
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim < 1 or e.shape[-1] != sk.num_joints:
        raise ValueError(f"errors: expected shape (..., {sk.num_joints}), got shape {e.shape}")
    e = e.reshape(-1, sk.num_joints) * scale
    n = sk.num_joints + 1
    cols = 6
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 1.8 * rows), squeeze=False)
    finite = e[np.isfinite(e)]
    hi = np.percentile(finite, 99) if finite.size else 1.0
    edges = np.linspace(0, max(hi, 1e-9), bins + 1)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        v = finite if k == 0 else e[:, k - 1][np.isfinite(e[:, k - 1])]
        ax.hist(np.clip(v, 0, edges[-1]), bins=edges, color="0.3" if k == 0 else "tab:blue")
        name = "all joints" if k == 0 else sk.names[k - 1]
        ax.set_title(f"{name}: {np.mean(v) if v.size else np.nan:.0f} {unit}", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle(title or f"per-joint error ({unit})")
    fig.tight_layout()
    return _save(fig, path)
