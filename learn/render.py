"""A tiny synthetic renderer of people (NumPy): shaded limb capsules on varied backgrounds.

:func:`render_people` draws each pose of ``X_cam (N, J, 3)`` (Human3.6M-17 joints in a camera
frame, metres) as seen by a pinhole camera ``K`` into a square crop of ``size`` pixels around
the person: one capsule per bone (radii from :data:`BONE_RADII`, perspective-scaled), a head
sphere, Lambert shading with a random light, a z-buffer, anti-aliased edges. Appearance varies
per image: shirt, trousers and skin colours, a random two-colour gradient background with
low-frequency blobs, pixel noise. The left side of the body is rendered a little lighter and
the right a little darker, and the nose is a small bright dot, so left/right and front/back are
decidable from the pixels (as faces and asymmetries make them in real images).

Crops: ``crop = (full − offset) / scale``, i.e. ``full = offset + scale · crop`` with
``offset (N, 2)``, ``scale (N,)`` in :class:`Rendered`; crop pixel centres at integers
(OpenCV convention).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

__all__ = ["BONE_RADII", "Rendered", "crop_boxes", "render_people"]

# (parent, child, radius at parent (m), radius at child (m), part) for Human3.6M-17.
# part: 0 shirt, 1 trousers, 2 skin.
_BONES = [
    (0, 7, 0.13, 0.13, 0), (7, 8, 0.13, 0.12, 0), (0, 1, 0.09, 0.08, 1), (0, 4, 0.09, 0.08, 1),
    (1, 2, 0.075, 0.055, 1), (2, 3, 0.05, 0.04, 1), (4, 5, 0.075, 0.055, 1), (5, 6, 0.05, 0.04, 1),
    (8, 11, 0.06, 0.055, 0), (8, 14, 0.06, 0.055, 0), (11, 12, 0.05, 0.04, 0),
    (12, 13, 0.04, 0.035, 2), (14, 15, 0.05, 0.04, 0), (15, 16, 0.04, 0.035, 2),
    (8, 9, 0.05, 0.05, 2), (9, 10, 0.095, 0.095, 2),
]
BONE_RADII = np.array([[a, b, ra, rb] for a, b, ra, rb, _ in _BONES])
"""``(B, 4)``: parent, child, radius at parent, radius at child (metres)."""
_PART = np.array([p for *_, p in _BONES])
_LEFT_BONES = np.array([3, 6, 7, 8, 10, 11])     # pelvis-LHip, LHip-LKnee, ..., arms (H36M left)
_RIGHT_BONES = np.array([2, 4, 5, 9, 12, 13])


@dataclass(frozen=True)
class Rendered:
    """``images (N, 3, S, S)`` uint8 RGB; ``joints (N, J, 2)`` float64 crop pixels (every
    joint is labelled, occluded or not); ``offset (N, 2)`` float64 full-image pixels and
    ``scale (N,)`` full pixels per crop pixel, with ``full = offset + scale · crop``."""

    images: np.ndarray
    joints: np.ndarray
    offset: np.ndarray
    scale: np.ndarray

    def to_full(self, crop_xy) -> np.ndarray:
        """Crop pixels ``(N, ..., 2)`` → full-image pixels."""
        c = np.asarray(crop_xy, dtype=np.float64)
        extra = (1,) * (c.ndim - 2)
        return self.offset.reshape((-1,) + extra + (2,)) + \
            self.scale.reshape((-1,) + extra + (1,)) * c


@njit(cache=True, parallel=True)
def _raster(j2, z, f_px, bones, colours, light, col, cov):
    """Z-buffered, shaded capsules: per image (parallel), per bone, over its pixel box."""
    n, S = col.shape[0], col.shape[1]
    for i in prange(n):
        zbuf = np.full((S, S), np.inf)
        for b in range(bones.shape[0]):
            ia, ib = int(bones[b, 0]), int(bones[b, 1])
            ax, ay, bx, by = j2[i, ia, 0], j2[i, ia, 1], j2[i, ib, 0], j2[i, ib, 1]
            za, zb = z[i, ia], z[i, ib]
            if za <= 1e-3 or zb <= 1e-3:
                continue
            rma, rmb = bones[b, 2], bones[b, 3]
            ra, rb = rma * f_px[i] / za, rmb * f_px[i] / zb
            rmax = max(ra, rb) + 1.0
            x0 = max(int(np.floor(min(ax, bx) - rmax)), 0)
            x1 = min(int(np.ceil(max(ax, bx) + rmax)), S - 1)
            y0 = max(int(np.floor(min(ay, by) - rmax)), 0)
            y1 = min(int(np.ceil(max(ay, by) + rmax)), S - 1)
            dx, dy = bx - ax, by - ay
            L2 = max(dx * dx + dy * dy, 1e-9)
            for y in range(y0, y1 + 1):
                for x in range(x0, x1 + 1):
                    px, py = x - ax, y - ay
                    u = min(max((px * dx + py * dy) / L2, 0.0), 1.0)
                    ex, ey = px - u * dx, py - u * dy
                    d = np.sqrt(ex * ex + ey * ey)
                    r = ra + u * (rb - ra)
                    c = min(max(r - d + 0.5, 0.0), 1.0)
                    if c <= 0.0:
                        continue
                    q = min(d / max(r, 1e-6), 1.0)
                    nz = np.sqrt(1.0 - q * q)
                    depth = za + u * (zb - za) - (rma + u * (rmb - rma)) * nz
                    if depth < zbuf[y, x]:
                        zbuf[y, x] = depth
                        nx, ny = ex / max(r, 1e-6), ey / max(r, 1e-6)
                        lam = nx * light[i, 0] + ny * light[i, 1] - nz * light[i, 2]
                        sh = 0.35 + 0.65 * min(max(lam, 0.0), 1.0)
                        for k in range(3):
                            col[i, y, x, k] = colours[i, b, k] * sh
                        cov[i, y, x] = max(cov[i, y, x], c) if cov[i, y, x] > 0 else c


def _project(X_cam, K):
    z = np.maximum(X_cam[..., 2], 1e-6)
    u = K[:, None, 0, 0] * X_cam[..., 0] / z + K[:, None, 0, 2]
    v = K[:, None, 1, 1] * X_cam[..., 1] / z + K[:, None, 1, 2]
    return np.stack([u, v], -1), z


def crop_boxes(x_full, size: int, margin: float = 0.2, jitter=None):
    """Square crops around 2D poses ``x_full (N, J, 2)``: side = ``(1 + 2·margin)`` × the larger
    bounding-box side; ``jitter (N, 3)`` optionally shifts the centre (fractions of the side)
    and scales the side (log factor). Returns ``offset (N, 2)``, ``scale (N,)`` (full pixels per
    crop pixel)."""
    lo, hi = x_full.min(1), x_full.max(1)
    centre = 0.5 * (lo + hi)
    side = (hi - lo).max(-1) * (1 + 2 * margin)
    if jitter is not None:
        centre = centre + jitter[:, :2] * side[:, None]
        side = side * np.exp(jitter[:, 2])
    side = np.maximum(side, 1.0)
    scale = side / size
    offset = centre - (0.5 * (size - 1) * scale)[:, None]
    return offset, scale


def _background(rng, n, S):
    yy, xx = np.mgrid[0:S, 0:S] / (S - 1)
    ang = rng.uniform(0, 2 * np.pi, n)
    ramp = (np.cos(ang)[:, None, None] * (xx - 0.5) + np.sin(ang)[:, None, None] * (yy - 0.5)) + 0.5
    c0, c1 = rng.uniform(0, 1, (n, 3)), rng.uniform(0, 1, (n, 3))
    img = c0[:, :, None, None] + (c1 - c0)[:, :, None, None] * ramp[:, None]
    g = 6
    blobs = rng.normal(0, 0.15, (n, 3, g, g))
    idx = np.minimum((np.arange(S) * g) // S, g - 1)
    # bilinear-ish smooth upsampling: nearest then a 2-pass box blur
    up = blobs[:, :, idx][:, :, :, idx]
    k = max(S // g, 1)
    for ax in (2, 3):
        c = np.cumsum(np.pad(up, [(0, 0)] * ax + [(k, k)] + [(0, 0)] * (3 - ax), mode="edge"),
                      axis=ax)
        sl_hi = [slice(None)] * 4
        sl_lo = [slice(None)] * 4
        sl_hi[ax] = slice(2 * k, 2 * k + S)
        sl_lo[ax] = slice(0, S)
        up = (c[tuple(sl_hi)] - c[tuple(sl_lo)]) / (2 * k)
    return img + up


def render_people(X_cam, K, *, size: int = 64, margin: float = 0.2, jitter: float = 0.0,
                  seed: int = 0, appearance=None, chunk: int = 128) -> Rendered:
    """Render people ``X_cam (N, J=17, 3)`` (camera frame, metres, Human3.6M-17 order) seen by
    ``K (3, 3)`` or ``(N, 3, 3)`` into ``size × size`` crops.

    ``margin``: crop border around the 2D bounding box (fraction of its side); ``jitter``:
    random crop shift/scale amplitude (fraction; 0 = centred crops). Appearance (colours,
    background, light) is drawn from ``seed`` per image; the same seed gives the same images.
    ``appearance``: optional ``(N,)`` non-negative integer ids; images with the same id share
    their clothes and skin colours (drawn from ``(seed, id)``), as one person filmed by several
    cameras does; background, light and noise stay per image.
    Returns :class:`Rendered`.
    """
    X = np.asarray(X_cam, dtype=np.float64)
    if X.ndim != 3 or X.shape[1:] != (17, 3):
        raise ValueError(f"X_cam: expected shape (N, 17, 3), got shape {X.shape}")
    N = X.shape[0]
    K = np.asarray(K, dtype=np.float64)
    K = np.broadcast_to(K, (N, 3, 3)) if K.shape == (3, 3) else K
    if K.shape != (N, 3, 3):
        raise ValueError(f"K: expected shape (3, 3) or ({N}, 3, 3), got shape {K.shape}")
    if size < 8:
        raise ValueError(f"size: expected >= 8, got {size}")
    if appearance is not None:
        appearance = np.asarray(appearance)
        if appearance.shape != (N,) or appearance.dtype.kind not in "iu" or \
                (N and appearance.min() < 0):
            raise ValueError(f"appearance: expected ({N},) non-negative integer ids, got "
                             f"{appearance.dtype} of shape {appearance.shape}")
    rng = np.random.default_rng(seed)
    x_full, z = _project(X, K)
    jit = None
    if jitter > 0:
        jit = rng.uniform(-1, 1, (N, 3)) * np.array([0.5, 0.5, 1.0]) * jitter
    offset, scale = crop_boxes(x_full, size, margin, jit)
    joints = (x_full - offset[:, None]) / scale[:, None, None]
    # nose marker: a small sphere in front of the face, so front/back is visible
    fwd = np.cross(X[:, 11] - X[:, 14], X[:, 10] - X[:, 8])
    fwd /= np.maximum(np.linalg.norm(fwd, axis=-1, keepdims=True), 1e-9)
    Xm = np.concatenate([X, (X[:, 9] + 0.5 * (X[:, 10] - X[:, 9]) + 0.085 * fwd)[:, None]], 1)
    xm, zm = _project(Xm, K)
    jm = (xm - offset[:, None]) / scale[:, None, None]
    f_px = K[:, 0, 0] / scale
    nb = len(_BONES) + 1
    colours = np.empty((N, nb, 3))
    shirt, trousers = rng.uniform(0.05, 0.95, (N, 3)), rng.uniform(0.05, 0.95, (N, 3))
    skin = np.array([0.85, 0.65, 0.5]) * rng.uniform(0.4, 1.1, (N, 1))
    if appearance is not None:
        for a in np.unique(appearance):
            r = np.random.default_rng([int(seed), int(a)])
            m = appearance == a
            shirt[m], trousers[m] = r.uniform(0.05, 0.95, 3), r.uniform(0.05, 0.95, 3)
            skin[m] = np.array([0.85, 0.65, 0.5]) * r.uniform(0.4, 1.1)
    part = _PART[None, :, None]
    colours[:, :-1] = np.where(part == 0, shirt[:, None],
                               np.where(part == 1, trousers[:, None], skin[:, None]))
    colours[:, _LEFT_BONES] = 0.7 * colours[:, _LEFT_BONES] + 0.3
    colours[:, _RIGHT_BONES] = 0.7 * colours[:, _RIGHT_BONES]
    colours[:, -1] = (0.95, 0.1, 0.1)
    light = rng.normal(size=(N, 3)) * np.array([0.6, 0.6, 0.3]) + np.array([0, -0.5, -1.0])
    light /= np.linalg.norm(light, axis=1, keepdims=True)
    bones = np.concatenate([BONE_RADII, [[17, 17, 0.03, 0.03]]])
    images = np.empty((N, 3, size, size), dtype=np.uint8)
    for s in range(0, N, chunk):
        e = min(N, s + chunk)
        n = e - s
        col = np.zeros((n, size, size, 3))
        cov = np.zeros((n, size, size))
        _raster(jm[s:e], zm[s:e], f_px[s:e], bones, colours[s:e], light[s:e], col, cov)
        bg = _background(rng, n, size).transpose(0, 2, 3, 1)
        img = bg * (1 - cov[..., None]) + col * cov[..., None]
        img = img + rng.normal(0, 0.02, img.shape)
        images[s:e] = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8).transpose(0, 3, 1, 2)
    return Rendered(images=images, joints=joints, offset=offset, scale=scale)
