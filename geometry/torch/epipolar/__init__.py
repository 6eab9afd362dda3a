"""Two-view epipolar geometry on torch tensors (mirrors :mod:`geometry.epipolar`).

Read first: ``relative_pose.py``, then ``fundamental_ransac.py`` (F-RANSAC over many problems in
one call: own code, Kornia has no batched-over-problems RANSAC; its refits and degeneracy test
in ``local_opt.py``), ``fundamental.py`` and
``essential.py`` (Kornia's ``kornia.geometry.epipolar`` where it has the op; each function says
which, and why where our own code is kept).
"""
from .essential import PoseResult, decompose_essential, essential_from_fundamental, recover_pose
from .fundamental import (fundamental_7point, fundamental_8point, hartley_normalize,
                          sampson_distance, symmetric_epipolar_distance)
from .fundamental_ransac import FundamentalResult, estimate_fundamental
from .relative_pose import RelativePoseResult, estimate_relative_pose

__all__ = ["PoseResult", "decompose_essential", "essential_from_fundamental", "recover_pose",
           "fundamental_7point", "fundamental_8point", "hartley_normalize", "sampson_distance",
           "symmetric_epipolar_distance", "FundamentalResult", "estimate_fundamental",
           "RelativePoseResult", "estimate_relative_pose"]
