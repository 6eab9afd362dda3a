"""People over time: per-frame groups triangulated and linked into 3D tracks, tracks merged into
people, and detections the 3D tracks miss given their person through their 2D track.

:func:`link_groups` links each frame's triangulated groups (≥ 2 cameras) to the 3D tracks alive
(Hungarian on the median 3D joint distance, gated at a fraction of the people's size);
:func:`merge_tracks` joins tracks that do not overlap in time when they continue each other (or,
when the number of people is given, by the most similar body proportions);
:func:`repair_from_tracks` labels detections by their per-camera 2D track's majority person.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment

from .tracking import nanmedian_last

__all__ = ["join_split_groups", "link_groups", "join_by_2d_tracks", "join_duplicate_tracks",
           "merge_tracks", "repair_from_tracks", "body_signature"]


def _median_joint_distance(A, B):
    """``(nA, nB)`` median over joints valid in both of ``|A - B|``; inf with < 3 common."""
    return nanmedian_last(np.linalg.norm(A[:, None] - B[None], axis=-1), 3)


def join_split_groups(Xg, group_frame, views, tol: float):
    """Groups of one frame that are one person seen twice (disjoint cameras, 3D poses within
    ``tol``): ``Xg (G, J, 3)``, ``group_frame (G,)``, ``views (G, C)`` bool. Returns ``into (G,)``
    — the group each one is joined into (itself when kept) — and how many were joined."""
    G = len(Xg)
    into = np.arange(G)
    order = np.argsort(group_frame, kind="stable")
    bounds = np.flatnonzero(np.diff(group_frame[order])) + 1
    joined = 0
    for gs in np.split(order, bounds):
        if gs.size < 2:
            continue
        d = _median_joint_distance(Xg[gs], Xg[gs])
        cams = views[gs].copy()
        for i in range(gs.size):
            if into[gs[i]] != gs[i]:
                continue
            for j in range(i + 1, gs.size):
                if into[gs[j]] == gs[j] and d[i, j] < tol and not (cams[i] & cams[j]).any():
                    into[gs[j]] = gs[i]
                    cams[i] |= cams[j]
                    joined += 1
    return into, joined


def link_groups(Xg, group_frame, T, *, gate: float, max_gap: int = 25,
                max_joint_age: int = 10):
    """3D tracks from per-frame groups.

    ``Xg (G, J, 3)`` triangulated groups (NaN joints where invalid; a group with < 3 valid
    joints is not linked), ``group_frame (G,)``. Returns ``track (G,)`` int64 (``-1``: unlinked).
    A group that no track takes but that lies within ``gate`` of a live track starts no track
    (it is that person seen a second time, through an inaccurate or split group).
    A track continues across up to ``max_gap`` missing frames; its gate grows by 5 % per frame;
    it is compared on the joints it showed in the last ``max_joint_age`` frames."""
    G = len(Xg)
    track = np.full(G, -1, np.int64)
    ok = np.isfinite(Xg).all(-1).sum(-1) >= 3
    order = np.argsort(group_frame, kind="stable")
    starts = np.searchsorted(group_frame[order], np.arange(T + 1))
    last = []           # last pose of each track
    jseen = []          # frame each of its joints was last seen
    seen = []
    for t in range(T):
        gs = order[starts[t]:starts[t + 1]]
        gs = gs[ok[gs]]
        if gs.size == 0:
            continue
        alive = [k for k in range(len(last)) if t - seen[k] <= max_gap + 1]
        match = np.full(gs.size, -1)
        if alive:
            # a joint unseen for over max_joint_age frames says little about where it is now
            L = np.stack([np.where((t - jseen[k] <= max_joint_age)[:, None], last[k], np.nan)
                          for k in alive])
            cost = _median_joint_distance(L, Xg[gs])
            g = gate * (1 + 0.05 * (t - np.array([seen[k] for k in alive]) - 1))
            feasible = np.isfinite(cost) & (cost <= g[:, None])
            r, c = linear_sum_assignment(np.where(feasible, cost, 1e12))
            good = feasible[r, c]
            match[c[good]] = np.array(alive)[r[good]]
        if alive and (match < 0).any():
            # an unmatched group next to a track is that person seen twice (a split or
            # inaccurate group), not a new person: leave it unlinked
            near = np.min(cost, axis=0) <= gate
            match[(match < 0) & near] = -2
        for i, gi in enumerate(gs):
            if match[i] == -2:
                continue
            if match[i] < 0:
                match[i] = len(last)
                last.append(Xg[gi].copy())
                jseen.append(np.where(np.isfinite(Xg[gi]).all(-1), t, -10 ** 9))
                seen.append(t)
            else:
                k = match[i]
                fin = np.isfinite(Xg[gi]).all(-1)
                last[k] = np.where(fin[:, None], Xg[gi], last[k])
                jseen[k] = np.where(fin, t, jseen[k])
                seen[k] = t
            track[gi] = match[i]
    return track


def join_by_2d_tracks(label, tracks2d, frames_of, *, min_cameras: int = 1,
                      max_overlap: int = 2) -> np.ndarray:
    """Join 3D tracks that per-camera 2D tracks pass from one to the other.

    ``label (C, T, P)``: the 3D track of every detection (``-1``: none); ``tracks2d (C, T, P)``;
    ``frames_of``: list of each 3D track's frames. When the 2D tracks of at least
    ``min_cameras`` cameras go from track ``A`` straight to track ``B`` and the two share at most
    ``max_overlap`` frames, ``B`` continues ``A`` (a person lost for a while in 3D, not in 2D).
    Returns ``root (n,)``: the track each one is joined into."""
    n = len(frames_of)
    root = np.arange(n)
    if n < 2:
        return root
    C = label.shape[0]
    seen = {}
    for c in range(C):
        tr, lab = tracks2d[c], label[c]
        m = (tr >= 0) & (lab >= 0)
        t, p = np.nonzero(m)                                          # frame-major order
        k, v = tr[t, p], lab[t, p]
        order = np.lexsort((t, k))
        k, v = k[order], v[order]
        step = (k[1:] == k[:-1]) & (v[1:] != v[:-1])
        for a, b in zip(v[:-1][step].tolist(), v[1:][step].tolist()):
            seen.setdefault((min(a, b), max(a, b)), set()).add(c)
    frames = [set(f.tolist()) for f in frames_of]

    def find(i):
        while root[i] != i:
            i = root[i]
        return i

    for (a, b), cams in sorted(seen.items(), key=lambda kv: -len(kv[1])):
        if len(cams) < min_cameras:
            continue
        ra, rb = find(a), find(b)
        if ra == rb or len(frames[ra] & frames[rb]) > max_overlap:
            continue
        root[rb] = ra
        frames[ra] |= frames[rb]
    return np.array([find(i) for i in range(n)])


def join_duplicate_tracks(track, Xg, group_frame, *, gate: float, max_share: float = 0.1):
    """Join 3D tracks that are one person followed twice for a few frames (a split or
    inaccurate group started a second track that then took over): tracks sharing at most
    ``max_share`` of the shorter one's frames whose poses in the shared frames lie within
    ``gate`` (median). ``track (G,)`` → the joined ``track (G,)`` (ids kept compact) and the
    number of joins."""
    n = int(track.max()) + 1 if track.size and track.max() >= 0 else 0
    if n < 2:
        return track, 0
    fr = [group_frame[track == k] for k in range(n)]
    gi = [np.flatnonzero(track == k) for k in range(n)]
    root = np.arange(n)
    joins = 0
    for a in range(n):
        for b in range(a + 1, n):
            shared, ia, ib = np.intersect1d(fr[a], fr[b], return_indices=True)
            if shared.size == 0 or shared.size > max_share * min(fr[a].size, fr[b].size):
                continue
            d = nanmedian_last(np.linalg.norm(Xg[gi[a][ia]] - Xg[gi[b][ib]], axis=-1), 3)
            d = d[np.isfinite(d)]
            if d.size and np.median(d) <= gate:
                ra, rb = root[a], root[b]
                if ra != rb:
                    root[root == rb] = ra
                    joins += 1
    out = np.where(track >= 0, root[np.maximum(track, 0)], -1)
    linked = out >= 0
    out[linked] = np.unique(out[linked], return_inverse=True)[1]
    return out, joins


def body_signature(X):
    """Body proportions of one track: median over frames of every joint-pair distance
    ``(J·(J−1)/2,)`` from its 3D poses ``X (n, J, 3)`` (NaN where never seen)."""
    J = X.shape[1]
    iu, ju = np.triu_indices(J, 1)
    d = np.linalg.norm(X[:, iu] - X[:, ju], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)               # joints never seen
        return np.nanmedian(d, axis=0) if len(X) else np.full(iu.size, np.nan)


def _signature_cost(sa, sb):
    m = np.isfinite(sa) & np.isfinite(sb) & (sa + sb > 0)
    if m.sum() < 3:
        return np.inf
    return float(np.median(np.abs(sa[m] - sb[m]) / (0.5 * (sa[m] + sb[m]))))


def merge_tracks(track, Xg, group_frame, *, gate: float, num_people: int | None,
                 min_length: int, max_gap: int = 100, views=None, min_cameras: int = 2):
    """People from 3D tracks → ``person (G,)`` int64 (``-1``: no person) and ``num_people``.

    A track that starts within ``max_gap`` frames after another ends, near its last pose
    (``gate`` grown by 5 % per frame), continues it. With ``num_people`` given, while more than
    ``num_people`` long tracks remain, the two that never share a frame and have the most similar
    body proportions (:func:`body_signature`) are joined. Tracks with fewer than ``min_length``
    frames are no one; of the rest the ``num_people`` seen in most frames (then with most
    detections, ``views (G,)`` per group) are kept; without ``num_people`` a track is a person
    only where its median number of cameras per frame (``views``) is at least ``min_cameras``
    (someone at the edge of the capture volume, seen by two of four cameras all along, is not
    one of the people filmed). People are numbered by their first frame (then the longer
    first). Returns ``person (G,)``, ``num_people`` and the tracks left out for too few
    cameras as ``[(frames, median cameras)]``."""
    n = int(track.max()) + 1 if track.size and track.max() >= 0 else 0
    gs = [np.flatnonzero(track == k) for k in range(n)]
    first = np.array([group_frame[g].min() for g in gs], np.int64)
    last = np.array([group_frame[g].max() for g in gs], np.int64)
    pose_first = [Xg[g[np.argmin(group_frame[g])]] for g in gs]
    pose_last = [Xg[g[np.argmax(group_frame[g])]] for g in gs]
    root = np.arange(n)
    end = last.copy()                 # per root: last frame and pose of the joined chain
    end_pose = list(pose_last)
    for b in np.argsort(first, kind="stable"):
        best, best_cost = -1, np.inf
        for a in np.flatnonzero((root == np.arange(n)) & (end < first[b]) &
                                (first[b] - end <= max_gap)):
            if a == b:
                continue
            c = _median_joint_distance(end_pose[a][None], pose_first[b][None])[0, 0]
            if c <= gate * (1 + 0.05 * (first[b] - end[a] - 1)) and c < best_cost:
                best, best_cost = a, c
        if best >= 0:
            root[root == b] = best
            end[best] = end[b]
            end_pose[best] = end_pose[b]
    frames = {r: np.unique(np.concatenate([group_frame[gs[k]] for k in np.flatnonzero(root == r)]))
              for r in np.unique(root)}
    if num_people is not None:
        def sig(r):
            return body_signature(Xg[np.concatenate([gs[k] for k in np.flatnonzero(root == r)])])
        while True:
            long = [r for r in frames if frames[r].size >= min_length]
            if len(long) <= num_people:
                break
            sigs = {r: sig(r) for r in long}
            best, pair = np.inf, None
            for i, a in enumerate(long):
                for b in long[i + 1:]:
                    if np.intersect1d(frames[a], frames[b]).size == 0:
                        c = _signature_cost(sigs[a], sigs[b])
                        if c < best:
                            best, pair = c, (a, b)
            if pair is None:
                break
            a, b = pair
            root[root == b] = a
            frames[a] = np.union1d(frames[a], frames.pop(b))
    keep = [r for r in frames if frames[r].size >= min_length]
    partial = []
    if num_people is None and views is not None:
        v = np.asarray(views)
        cams = {r: float(np.median(v[np.isin(track, np.flatnonzero(root == r))])) for r in keep}
        partial = [(int(frames[r].size), cams[r]) for r in keep if cams[r] < min_cameras]
        keep = [r for r in keep if cams[r] >= min_cameras]
    if num_people is not None and len(keep) > num_people:
        # the most observed: frames, then detections (cameras × frames)
        w = np.ones(track.shape) if views is None else np.asarray(views, np.float64)
        support = {r: w[np.isin(track, np.flatnonzero(root == r))].sum() for r in keep}
        keep = sorted(keep, key=lambda r: (-frames[r].size, -support[r]))[:num_people]
    keep = sorted(keep, key=lambda r: (frames[r].min(), -frames[r].size, r))
    pid = np.full(n, -1, np.int64)
    for i, r in enumerate(keep):
        pid[root == r] = i
    person = np.where(track >= 0, pid[np.maximum(track, 0)], -1) if n else \
        np.full(track.shape, -1, np.int64)
    return person, len(keep), partial


def repair_from_tracks(identity, tracks2d, *, window: int = 15, min_share: float = 0.8):
    """Give unlabelled detections (``identity == -1``, ``(C, T, P)``) the person that their 2D
    track (``tracks2d (C, T, P)``) carries in the ``window`` frames around them (≥ ``min_share``
    of the labelled ones, at least 3), unless that person already has a detection in that
    camera-frame. Returns the new identity and how many detections were labelled."""
    C, T, P = identity.shape
    out = identity.copy()
    added = 0
    for c in range(C):
        for t, p in zip(*np.nonzero((identity[c] < 0) & (tracks2d[c] >= 0))):
            k = tracks2d[c, t, p]
            lo, hi = max(0, t - window), min(T, t + window + 1)
            lab = identity[c, lo:hi][tracks2d[c, lo:hi] == k]
            lab = lab[lab >= 0]
            if lab.size < 3:
                continue
            vals, cnt = np.unique(lab, return_counts=True)
            i = int(np.argmax(cnt))
            if cnt[i] >= min_share * lab.size and not (out[c, t] == vals[i]).any():
                out[c, t, p] = vals[i]
                added += 1
    return out, added
