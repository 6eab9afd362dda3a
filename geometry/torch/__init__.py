"""epigeo.geometry.torch — the geometry core for torch tensors (any device, float32/float64).

The same names, arguments and result fields as :mod:`geometry` (the numpy + Numba API), batched
over leading dimensions with no per-problem Python loop (float16/bfloat16 input is computed in
float32 and returned in its dtype): F-RANSAC over problems, E from F,
decomposition and cheirality, DLT and Hartley–Sturm triangulation, the vector median.
Conventions (OpenCV's): pixels ``(..., N, 2)``; ``x_cam = R X + t``; relative pose
``X2 = R X1 + t`` with ``|t| = 1``; ``x2ᵀ F x1 = 0``; ``E = K2ᵀ F K1``. Results are frozen
dataclasses of tensors with a ``valid`` field; an unsolvable problem is ``valid=False`` with
NaN-free placeholders, bad arguments raise ``ValueError`` naming the argument.

Differentiable (checked with ``torch.autograd.gradcheck``): :func:`triangulate_dlt` (in ``P``,
``x`` and ``weights``), :func:`sampson_distance`, :func:`symmetric_epipolar_distance`,
:func:`fundamental_from_projections`, :func:`hartley_normalize` and the value selected by
:func:`vector_median`.

Rooms (mirroring :mod:`geometry`): ``epipolar/`` (F, E, pose, F-RANSAC), ``triangulation/``
(DLT, Hartley–Sturm, the vector median), ``common.py`` (tensor argument checks, batching,
chunked linear algebra, the counter-based RNG). Kornia (``kornia.geometry.epipolar``) is used
where it has the operation with the batching and precision we need (E from F, the Sampson and
symmetric distances, the E decomposition); where our own code is kept, a line beside it says why,
with the measurement.

Argument checks run once per call (they may synchronise with the device); inside the batched
computation there is no ``.item()``, no data-dependent shape and no host↔device copy — except
F-RANSAC's adaptive stop: one read of a count per block of 16 hypotheses (none when
``max_iterations ≤ 16``), after which only the problems still sampling continue. Batched
``eigh``/``svd`` calls take at most 16384 matrices each (cuSOLVER's batched symmetric
eigensolver fails near 32k). PyTorch's own ``linalg.eigh``/``linalg.svd`` still check their
LAPACK/cuSOLVER status codes on the host once per call (a per-chunk, not per-problem, wait).
"""
from .epipolar import (FundamentalResult, PoseResult, RelativePoseResult, decompose_essential,
                       essential_from_fundamental, estimate_fundamental, estimate_relative_pose,
                       fundamental_7point, fundamental_8point, hartley_normalize, recover_pose,
                       sampson_distance, symmetric_epipolar_distance)
from .triangulation import (MedianResult, OptimalTriangulation, Triangulation,
                            fundamental_from_projections, triangulate_dlt, triangulate_optimal,
                            vector_median)

__all__ = [
    "PoseResult", "decompose_essential", "essential_from_fundamental", "recover_pose",
    "fundamental_7point", "fundamental_8point", "hartley_normalize", "sampson_distance",
    "symmetric_epipolar_distance", "MedianResult", "vector_median", "FundamentalResult",
    "estimate_fundamental", "RelativePoseResult", "estimate_relative_pose",
    "OptimalTriangulation", "Triangulation", "fundamental_from_projections", "triangulate_dlt",
    "triangulate_optimal",
]
