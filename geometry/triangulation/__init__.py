"""Triangulation: DLT, optimal two-view (Hartley–Sturm), multi-view fusion and the medians.

Read first: ``two_view.py`` (:func:`triangulate_dlt` for any number of views,
:func:`triangulate_optimal` for pairs), then ``fusion.py`` (robust multi-view triangulation, the
vector and geometric medians). Kernels: ``_dlt_kernels.py`` (conditioned DLT, camera
preparation), ``_fusion_kernels.py`` (multi-view DLT with view rejection, medians) and
``hartley_sturm/`` — the Hartley–Sturm correction as one unit: ``poly.py`` (the degree-6
polynomial and the full root search), ``roots.py`` (real-root isolation), ``fast.py`` (the
certified Newton fast path and the fused triangulation kernel).

DESIGN: a new triangulation method (e.g. L∞, iterative refinement) is a kernel here plus a
``method=`` option of :func:`triangulate_multiview`.
"""
from .fusion import (MedianResult, MultiviewTriangulation, geometric_median, triangulate_multiview,
                     vector_median)
from .two_view import (OptimalTriangulation, Triangulation, fundamental_from_projections,
                       triangulate_dlt, triangulate_optimal)

__all__ = ["MedianResult", "MultiviewTriangulation", "geometric_median", "triangulate_multiview",
           "vector_median", "OptimalTriangulation", "Triangulation",
           "fundamental_from_projections", "triangulate_dlt", "triangulate_optimal"]
