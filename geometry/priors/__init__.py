"""Priors on people for the 3D step after calibration: skeleton- and time-aware robust
triangulation and per-(camera, joint) detector noise.

Read first: ``skeleton.py`` (:func:`refine_skeleton`: view-pair consensus → 2D left/right swap
repair → robust bone lengths → rounds of a skeleton/time-consistent fit with joint-wise view
rejection), then ``consensus.py`` (view-pair consensus triangulation, swap detection),
``terms.py`` (which bones and frames enter the fit), ``_solver.py`` (the robust least-squares
problem and its banded IRLS Gauss–Newton solver) and ``noise.py`` (:func:`observation_noise`:
per-(camera, joint) bias and noise from residuals, as weights for triangulation or bundle
adjustment), ``cameras.py`` (:func:`refine_rig_skeleton`: bundle adjustment on the repaired
inliers, then the skeleton again).

Joint names and bones live in :mod:`pose.skeletons`; this room takes bones and left/right pairs
as index arrays ``(B, 2)`` / ``(S, 2)`` (geometry never imports pose). It imports only from
``common``, ``camera``, ``triangulation`` and (``cameras.py``, :func:`refine_rig_skeleton`: the
calibration ↔ priors loop) ``rig``'s bundle adjustment.
"""
from .cameras import RigSkeletonRefinement, refine_rig_skeleton
from .noise import ObservationNoise, observation_noise
from .skeleton import SkeletonRefinement, refine_skeleton

__all__ = ["ObservationNoise", "observation_noise", "SkeletonRefinement", "refine_skeleton",
           "RigSkeletonRefinement", "refine_rig_skeleton"]
