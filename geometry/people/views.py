"""Cross-camera evidence: epipolar costs between detections and per-frame clustering.

The cost between detection ``p`` of camera ``a`` and detection ``q`` of camera ``b`` in one frame
is the median Sampson distance (px) of their joints under ``F_ab`` (over the joints both show;
``inf`` with fewer than ``min_common``). :func:`cluster_frames` groups each frame's detections
into people greedily, cheapest pair first, keeping at most one detection per camera in a group and
merging two groups only when every pair across them is consistent (complete linkage).
:func:`bootstrap_fundamentals` finds ``F_ab`` without cameras from whole per-camera tracks.
"""
from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np

from ..camera import fundamental_from_pose
from ..epipolar import estimate_fundamental
from .tracking import nanmedian_last

__all__ = ["moving_frames", "relative_motion", "sampson_px", "pair_costs", "cluster_frames",
           "bootstrap_fundamentals", "fundamentals_from_cameras"]


def sampson_px(F, x1, x2):
    """Sampson distance (px) ``(...)`` for ``F (..., 3, 3)`` and ``x1, x2 (..., 2)`` (broadcast);
    NaN where a point is missing."""
    h1 = np.concatenate([x1, np.ones(x1.shape[:-1] + (1,))], -1)
    h2 = np.concatenate([x2, np.ones(x2.shape[:-1] + (1,))], -1)
    Fx1 = np.einsum("...ij,...j->...i", F, h1)
    Ftx2 = np.einsum("...ji,...j->...i", F, h2)
    e = np.einsum("...i,...i->...", h2, Fx1)
    den = Fx1[..., 0] ** 2 + Fx1[..., 1] ** 2 + Ftx2[..., 0] ** 2 + Ftx2[..., 1] ** 2
    with np.errstate(all="ignore"):
        return np.abs(e) / np.sqrt(den)


def pair_costs(x, F, F_valid, *, min_common: int = 4) -> np.ndarray:
    """``D (T, C·P, C·P)``: median Sampson distance between every two detections of a frame in
    different cameras (index ``c·P + p``); ``inf`` for the same camera, an invalid ``F`` or too few
    common joints. ``x (C,T,P,J,2)``, ``F (C,C,3,3)`` with ``x_bᵀ F[a,b] x_a = 0``."""
    C, T, P, J, _ = x.shape
    D = np.full((T, C * P, C * P), np.inf)
    for a, b in combinations(range(C), 2):
        if not F_valid[a, b]:
            continue
        d = sampson_px(F[a, b], x[a][:, :, None], x[b][:, None])        # (T, P, P, J)
        med = nanmedian_last(d, min_common)
        D[:, a * P:(a + 1) * P, b * P:(b + 1) * P] = med
        D[:, b * P:(b + 1) * P, a * P:(a + 1) * P] = med.transpose(0, 2, 1)
    return D


def cluster_frames(D, det, threshold: float):
    """Group each frame's detections into people.

    ``D (T, C·P, C·P)`` from :func:`pair_costs`, ``det (C, T, P)`` bool. Returns ``gid (C, T, P)``
    int64 (a global group index, ``-1`` for empty slots; every detection is in some group, a
    lone detection in its own), ``group_frame (G,)`` and ``group_views (G,)`` (cameras in it)."""
    C, T, P = det.shape
    gid = np.full((C, T, P), -1, np.int64)
    frames, views = [], []
    cam = np.repeat(np.arange(C), P)
    g0 = 0
    for t in range(T):
        nodes = np.flatnonzero(det[:, t].reshape(-1))
        if nodes.size == 0:
            continue
        Dt = D[t][np.ix_(nodes, nodes)]
        n = nodes.size
        label = list(range(n))
        iu, ju = np.nonzero(np.triu(Dt < threshold, 1))
        if iu.size:
            order = np.argsort(Dt[iu, ju], kind="stable").tolist()
            iu, ju = iu.tolist(), ju.tolist()
            bits = [1 << int(k) for k in cam[nodes]]          # cameras in each group
            members = [[i] for i in range(n)]
            mbits = [1 << i for i in range(n)]                # members of each group
            bad = (Dt >= threshold) & np.isfinite(Dt)         # inconsistent pairs (inf is not)
            conflict = [sum(1 << j for j in np.flatnonzero(row).tolist()) for row in bad]
            for e in order:
                la, lb = label[iu[e]], label[ju[e]]
                if la == lb or bits[la] & bits[lb] or conflict[la] & mbits[lb]:
                    continue
                for i in members[lb]:
                    label[i] = la
                members[la] += members[lb]
                members[lb] = []
                bits[la] |= bits[lb]
                mbits[la] |= mbits[lb]
                conflict[la] |= conflict[lb]
        uniq, inv = np.unique(label, return_inverse=True)
        flat = gid[:, t].reshape(-1)
        flat[nodes] = g0 + inv
        gid[:, t] = flat.reshape(C, P)
        frames.append(np.full(uniq.size, t))
        views.append(np.bincount(inv, minlength=uniq.size))
        g0 += uniq.size
    group_frame = np.concatenate(frames) if frames else np.zeros(0, np.int64)
    group_views = np.concatenate(views) if views else np.zeros(0, np.int64)
    return gid, group_frame, group_views


def fundamentals_from_cameras(K, R, t, camera_valid):
    """``F (C, C, 3, 3)`` with ``x_bᵀ F[a,b] x_a = 0`` and its validity ``(C, C)``."""
    C = len(K)
    F = np.zeros((C, C, 3, 3))
    ok = np.zeros((C, C), bool)
    for a, b in combinations(range(C), 2):
        if camera_valid[a] and camera_valid[b]:
            Rr = R[b] @ R[a].T
            tr = t[b] - Rr @ t[a]
            F[a, b] = fundamental_from_pose(K[a], K[b], Rr, tr)
            F[b, a] = F[a, b].T
            ok[a, b] = ok[b, a] = np.isfinite(F[a, b]).all() and np.linalg.norm(tr) > 0
    return F, ok


def moving_frames(poses, min_px: float) -> np.ndarray:
    """Indices of the frames of ``poses (n, J, 2)`` (one person, in frame order) spaced at least
    ``min_px`` apart along the person's path (the sum of per-frame median joint displacements);
    the first frame is kept; a frame whose displacement is unknown counts as a move."""
    n = len(poses)
    if n == 0:
        return np.zeros(0, np.int64)
    d = nanmedian_last(np.linalg.norm(poses[1:] - poses[:-1], axis=-1), 3)
    d = np.where(np.isfinite(d), d, min_px)
    bins = np.floor(np.concatenate([[0.0], np.cumsum(d)]) / max(min_px, 1e-12))
    return np.flatnonzero(np.concatenate([[True], bins[1:] > bins[:-1]]))


def relative_motion(poses) -> float:
    """How much one person moves in one camera: median over frames of the median joint distance
    from their median pose, over the size of that pose's image box; ``poses (n, J, 2)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)                # all-NaN joints
        med = np.nanmedian(poses, axis=0)
        size = float(np.linalg.norm(np.nanmax(med, 0) - np.nanmin(med, 0)))
    disp = nanmedian_last(np.linalg.norm(poses - med, axis=-1), 1)
    disp = disp[np.isfinite(disp)]
    return float(np.median(disp)) / size if disp.size and size > 0 else 0.0


def bootstrap_fundamentals(x, tracks, *, min_overlap: int = 10, max_frames: int = 25,
                           threshold: float = 4.0, still: float = 0.03, seed: int = 0):
    """``F (C, C, 3, 3)``, ``valid (C, C)`` and per-pair inlier counts from whole tracks.

    For every camera pair, every pair of tracks that overlap in ``>= min_overlap`` frames gives
    correspondences (their joints in up to ``max_frames`` shared frames, evenly spread; pairs
    of tracks that both move less than ``still`` (:func:`relative_motion`) are left out: a person
    standing still fits many F); one
    batched F-RANSAC over all track pairs; the best-supported track pair's ``F`` selects the track
    pairs consistent with it (median Sampson distance under ``2 · threshold`` in most shared
    frames), whose pooled correspondences give the final ``F`` by RANSAC."""
    C, T, P, J, _ = x.shape
    probs, keys = [], []
    frames_of, slot_of = {}, {}
    for c in range(C):
        ids, counts = np.unique(tracks[c][tracks[c] >= 0], return_counts=True)
        for k in ids[counts >= min_overlap]:
            hit = tracks[c] == k                                      # (T, P)
            frames_of[(c, int(k))] = np.flatnonzero(hit.any(-1))
            slot_of[(c, int(k))] = hit.argmax(-1)
    motion = {key: relative_motion(x[key[0], f, slot_of[key][f]])
              for key, f in frames_of.items()}
    for a, b in combinations(range(C), 2):
        ka = [k for (c, k) in frames_of if c == a]
        kb = [k for (c, k) in frames_of if c == b]
        for i in ka:
            for j in kb:
                fr = np.intersect1d(frames_of[(a, i)], frames_of[(b, j)])
                if fr.size < min_overlap:
                    continue
                pa = x[a, fr, slot_of[(a, i)][fr]]
                pb = x[b, fr, slot_of[(b, j)][fr]]
                if max(motion[(a, i)], motion[(b, j)]) < still:
                    continue              # a person standing still: degenerate for F
                keep = np.linspace(0, fr.size - 1, min(fr.size, max_frames)).astype(int)
                fr, pa, pb = fr[keep], pa[keep], pb[keep]
                probs.append((pa.reshape(-1, 2), pb.reshape(-1, 2), fr))
                keys.append((a, b, i, j))
    F = np.zeros((C, C, 3, 3))
    ok = np.zeros((C, C), bool)
    support = np.zeros((C, C), np.int64)
    if not probs:
        return F, ok, support
    n = max(p[0].shape[0] for p in probs)
    x1 = np.full((len(probs), n, 2), np.nan)
    x2 = np.full((len(probs), n, 2), np.nan)
    for i, (pa, pb, _) in enumerate(probs):
        x1[i, :len(pa)], x2[i, :len(pb)] = pa, pb
    res = estimate_fundamental(x1, x2, threshold=threshold, max_iterations=300, seed=seed)
    score = np.where(res.valid, res.inliers.sum(-1), 0)
    keys_a = np.array([k[:2] for k in keys])
    for a, b in combinations(range(C), 2):
        mine = np.flatnonzero((keys_a[:, 0] == a) & (keys_a[:, 1] == b))
        if mine.size == 0 or score[mine].max() < 16:
            continue
        best = mine[np.argmax(score[mine])]
        Fb = res.F[best]
        pool1, pool2 = [], []
        for i in mine:
            pa, pb, fr = probs[i]
            d = sampson_px(Fb, pa, pb).reshape(len(fr), J)
            per_frame = nanmedian_last(d, 1)
            if np.mean(per_frame < 2 * threshold) >= 0.6:
                pool1.append(pa)
                pool2.append(pb)
        if not pool1:                     # no track pair agrees with the best one in most
            pool1, pool2 = [probs[best][0]], [probs[best][1]]     # frames: the best alone
        p1, p2 = np.concatenate(pool1), np.concatenate(pool2)
        if len(p1) > 5000:
            sel = np.random.default_rng(seed).choice(len(p1), 5000, replace=False)
            p1, p2 = p1[sel], p2[sel]
        r2 = estimate_fundamental(p1, p2, threshold=threshold, seed=seed)
        F[a, b] = r2.F if r2.valid else Fb
        F[b, a] = F[a, b].T
        ok[a, b] = ok[b, a] = True
        support[a, b] = support[b, a] = int(r2.inliers.sum()) if r2.valid else int(score[best])
    return F, ok, support
