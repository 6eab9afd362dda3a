"""Tensor argument checking, batching, chunking and a counter-based RNG (private).

Everything here is device-agnostic: no host synchronisation except in argument checks (which run
once per call, before any hot loop).
"""
from __future__ import annotations

import torch

__all__ = ["as_tensor", "as_points", "as_matrix", "as_mask", "as_weights", "broadcast_batch",
           "check_positive", "check_probability", "chunked", "linalg_chunked", "EIG_CHUNK",
           "hash32", "uniform_keys", "eps_for", "adjugate3", "det3", "skew", "work_dtype",
           "upcast", "flat", "scale_free"]


LOW_PRECISION = (torch.float16, torch.bfloat16)


def work_dtype(dtype):
    """The dtype to compute in: float32 for float16/bfloat16 (no half-precision eigh/svd on CPU,
    and pixel products overflow float16's 65504), else ``dtype`` itself."""
    return torch.float32 if dtype in LOW_PRECISION else dtype


def upcast(*ts):
    """Tensors converted to :func:`work_dtype` (a no-op for float32/float64; differentiable)."""
    out = tuple(t.to(work_dtype(t.dtype)) if t is not None and t.is_floating_point() else t
                for t in ts)
    return out if len(out) > 1 else out[0]


def flat(t: torch.Tensor, lead: int, tail: tuple) -> torch.Tensor:
    """``t`` reshaped to ``(prod(batch), *tail)`` where ``batch`` is its first ``lead`` dims.
    Unlike ``reshape(-1, *tail)`` this works when ``tail`` holds a 0 (no points)."""
    b = 1
    for s in t.shape[:lead]:
        b *= int(s)
    return t.reshape((b,) + tuple(tail))


def scale_free(M: torch.Tensor, dims: int = 2):
    """``M / max|M|`` over its last ``dims`` dims (for callers whose result is scale-invariant:
    no overflow in products of astronomically scaled input) and ``ok``: finite and non-zero."""
    m = M.abs().amax(tuple(range(-dims, 0)), keepdim=True)
    ok = torch.isfinite(m) & (m > 0)
    Ms = torch.where(ok, M / torch.where(ok, m, torch.ones_like(m)), torch.zeros_like(M))
    return Ms, ok.reshape(ok.shape[:ok.ndim - dims])


def _shape_str(shape) -> str:
    shape = tuple(shape)
    return "(" + ", ".join(str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


def as_tensor(name: str, a, *, tail: tuple = (), dtype=None, device=None,
              like: torch.Tensor | None = None, finite: bool = False) -> torch.Tensor:
    """A floating tensor whose trailing dims equal ``tail`` (``None`` = any size).

    Non-tensors are converted (float64 by default). ``like`` gives the dtype/device to convert to.
    Raises ``ValueError`` naming ``name`` with the expected and received shapes.
    """
    if like is not None:
        dtype = like.dtype if dtype is None else dtype
        device = like.device if device is None else device
    if not isinstance(a, torch.Tensor):
        try:
            a = torch.as_tensor(a, dtype=dtype or torch.float64, device=device)
        except Exception as exc:
            raise ValueError(f"{name}: could not convert to a tensor ({exc})") from None
    if a.is_complex() or a.dtype == torch.bool:
        raise ValueError(f"{name}: expected a real floating tensor, got dtype {a.dtype}")
    if not a.is_floating_point():
        a = a.to(torch.float64 if dtype is None else dtype)
    if dtype is not None and a.dtype != dtype:
        a = a.to(dtype)
    if device is not None and a.device != torch.device(device):
        a = a.to(device)
    if tail:
        want = "(..., " + ", ".join("*" if s is None else str(s) for s in tail) + ")"
        bad = a.ndim < len(tail) or any(w is not None and g != w for g, w in
                                        zip(a.shape[a.ndim - len(tail):], tail))
        if bad:
            raise ValueError(f"{name}: expected shape {want}, got shape {_shape_str(a.shape)}")
    if finite and not bool(torch.isfinite(a).all()):
        raise ValueError(f"{name}: must be finite, got NaN or inf (shape {_shape_str(a.shape)})")
    return a


def as_points(name: str, x, dim: int = 2, *, like=None, min_ndim: int = 2) -> torch.Tensor:
    """Points ``(..., N, dim)``; NaN allowed (it marks a missing point)."""
    x = as_tensor(name, x, tail=(None, dim), like=like)
    if x.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dims, got shape "
                         f"{_shape_str(x.shape)}")
    return x


def as_matrix(name: str, a, rows: int, cols: int, *, like=None) -> torch.Tensor:
    """A finite ``(..., rows, cols)`` tensor."""
    return as_tensor(name, a, tail=(rows, cols), like=like, finite=True)


def as_mask(name: str, mask, shape, device) -> torch.Tensor:
    """Bool mask broadcast to ``shape`` (``None`` = all True)."""
    shape = tuple(shape)
    if mask is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    m = torch.as_tensor(mask, device=device)
    if m.dtype != torch.bool:
        if m.is_floating_point() or m.is_complex():
            raise ValueError(f"{name}: expected a bool tensor of shape {_shape_str(shape)}, "
                             f"got dtype {m.dtype}")
        m = m != 0
    try:
        return torch.broadcast_to(m, shape)
    except RuntimeError:
        raise ValueError(f"{name}: expected shape {_shape_str(shape)}, got shape "
                         f"{_shape_str(m.shape)}") from None


def as_weights(name: str, w, shape, like: torch.Tensor) -> torch.Tensor:
    """Non-negative finite weights broadcast to ``shape`` (``None`` = ones)."""
    shape = tuple(shape)
    if w is None:
        return torch.ones(shape, dtype=like.dtype, device=like.device)
    w = as_tensor(name, w, like=like)
    try:
        w = torch.broadcast_to(w, shape)
    except RuntimeError:
        raise ValueError(f"{name}: expected shape {_shape_str(shape)}, got shape "
                         f"{_shape_str(w.shape)}") from None
    if not bool((torch.isfinite(w) & (w >= 0)).all()):
        raise ValueError(f"{name}: weights must be finite and non-negative")
    return w


def broadcast_batch(names: str, *shapes) -> tuple:
    """``torch.broadcast_shapes`` with a ``ValueError`` naming the arguments."""
    try:
        return tuple(torch.broadcast_shapes(*shapes))
    except RuntimeError:
        raise ValueError(f"{names}: batch shapes {[tuple(s) for s in shapes]} do not "
                         "broadcast") from None


def check_positive(name: str, value, *, allow_zero: bool = False) -> float:
    """A finite positive (or non-negative) Python number."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not v == v or v in (float("inf"), -float("inf")) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name}: expected a finite {'non-negative' if allow_zero else 'positive'}"
                         f" number, got {value!r}")
    return v


def check_probability(name: str, value) -> float:
    v = check_positive(name, value)
    if not v < 1.0:
        raise ValueError(f"{name}: expected a number in (0, 1), got {value!r}")
    return v


def chunked(fn, size: int, *tensors):
    """Apply ``fn`` to slices of ``tensors`` (split on dim 0) of at most ``size``; concatenate.

    ``fn`` returns a tensor or a tuple of tensors. Used to keep batched eigensolvers below
    cuSOLVER's batch limits and to bound memory; the split is a Python loop over chunks only.
    """
    n = tensors[0].shape[0]
    if n <= size:
        return fn(*tensors)
    outs = [fn(*(t[i:i + size] for t in tensors)) for i in range(0, n, size)]
    if isinstance(outs[0], tuple):
        return tuple(torch.cat([o[k] for o in outs]) for k in range(len(outs[0])))
    return torch.cat(outs)


EIG_CHUNK = 16384  # most matrices per batched eigh/svd call: cuSOLVER's batched syevj fails near 32k


def linalg_chunked(fn, size: int, *tensors):
    """:func:`chunked` for batched ``eigh``/``svd``/``det`` calls: at most
    ``min(size, EIG_CHUNK)`` matrices per call whatever chunk size the caller chose."""
    return chunked(fn, max(1, min(int(size), EIG_CHUNK)), *tensors)


_M32 = 0xFFFFFFFF


def hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mix (lowbias32-like, constants < 2³¹ so int64 products never overflow).

    ``x`` is an int64 tensor (or a Python int) holding values in ``[0, 2³²)``; returns the same.
    Identical on every device.
    """
    x = x & _M32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x5BD1E995) & _M32
    x = x ^ (x >> 16)
    x = (x * 0x2C1B3C6D) & _M32
    return x ^ (x >> 13)


def uniform_keys(seed: int, problem: torch.Tensor, stream: torch.Tensor) -> torch.Tensor:
    """Counter-based uniforms in ``[0, 1)``: one per (global problem index, stream index).

    ``problem (B, 1...)`` and ``stream (...)`` int64 broadcast together. The value depends only on
    ``seed``, the problem's global index and the stream index — not on the device, the dtype or
    how the batch was split.
    """
    s = int(hash32(int(seed) & _M32))  # a Python int: no host→device copy in the hot loop
    h = hash32(hash32(problem ^ s) + 0x3C6EF372)
    h = hash32(h ^ (stream & _M32))
    return (h >> 8).to(torch.float32) * (1.0 / 16777216.0)


def eps_for(dtype) -> float:
    return torch.finfo(dtype).eps


def det3(M: torch.Tensor) -> torch.Tensor:
    """Determinant of ``(..., 3, 3)`` by cofactors (elementwise; no cuSOLVER call)."""
    a, b, c = M[..., 0, 0], M[..., 0, 1], M[..., 0, 2]
    d, e, f = M[..., 1, 0], M[..., 1, 1], M[..., 1, 2]
    g, h, i = M[..., 2, 0], M[..., 2, 1], M[..., 2, 2]
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def adjugate3(M: torch.Tensor) -> torch.Tensor:
    """Adjugate of ``(..., 3, 3)`` (``M @ adj(M) = det(M) I``), elementwise."""
    r0, r1, r2 = M[..., 0, :], M[..., 1, :], M[..., 2, :]
    cols = torch.stack([torch.linalg.cross(r1, r2), torch.linalg.cross(r2, r0),
                        torch.linalg.cross(r0, r1)], dim=-1)
    return cols


def skew(v: torch.Tensor) -> torch.Tensor:
    """``[v]_x`` for ``v (..., 3)`` → ``(..., 3, 3)``."""
    z = torch.zeros_like(v[..., 0])
    return torch.stack([torch.stack([z, -v[..., 2], v[..., 1]], -1),
                        torch.stack([v[..., 2], z, -v[..., 0]], -1),
                        torch.stack([-v[..., 1], v[..., 0], z], -1)], -2)
