"""Triangulation on torch tensors (mirrors :mod:`geometry.triangulation`).

Read first: ``two_view.py`` (weighted DLT for any number of views, optimal two-view
triangulation), then ``hartley_sturm.py`` (the Hartley–Sturm correction: own code, Kornia has
none) and ``fusion.py`` (the vector median: own code, Kornia has none).
"""
from .fusion import MedianResult, vector_median
from .two_view import (OptimalTriangulation, Triangulation, fundamental_from_projections,
                       triangulate_dlt, triangulate_optimal)

__all__ = ["MedianResult", "vector_median", "OptimalTriangulation", "Triangulation",
           "fundamental_from_projections", "triangulate_dlt", "triangulate_optimal"]
