"""Static rigs from people: cameras and 3D joints from 2D detections, no calibration board.

Read first: ``reconstruct.py`` (:func:`reconstruct_rig`: pairwise poses → registration →
bundle adjustment → triangulation → metric frame), then ``initialise.py`` (pairwise relative poses
pooled over frames, camera registration), ``bundle.py`` (sparse bundle adjustment on scipy's
least squares; its Jacobian in ``_bundle_problem.py``), ``selfcalib.py`` (focal lengths from F),
``sync.py`` (time offsets between cameras), ``windowed.py`` (moving rigs, window by window),
``frames.py`` (informative frame selection) and ``session.py`` (one rig, many trials:
calibrate once, label every frame).

DESIGN: a new rig step (frame selection, several people, priors) is a module here called from
``reconstruct.py``; it takes and returns arrays in the conventions of :mod:`geometry`.
"""
from .bundle import BundleResult, bundle_adjust
from .frames import select_frames
from .reconstruct import RigReconstruction, check_rig_inputs, check_views, reconstruct_rig
from .session import (SessionCalibration, TrialLabels, calibrate_session, reconstruct_session,
                      triangulate_session)
from .selfcalib import FocalResult, focal_from_fundamental, intrinsics_from_image_size
from .sync import TimeOffsets, apply_time_offsets, estimate_time_offsets
from .windowed import WindowedRigReconstruction, reconstruct_rig_windowed

__all__ = ["BundleResult", "bundle_adjust", "RigReconstruction", "check_rig_inputs", "check_views",
           "reconstruct_rig", "FocalResult", "focal_from_fundamental",
           "intrinsics_from_image_size", "TimeOffsets", "apply_time_offsets",
           "estimate_time_offsets", "WindowedRigReconstruction", "reconstruct_rig_windowed",
           "SessionCalibration", "TrialLabels", "calibrate_session", "reconstruct_session",
           "triangulate_session", "select_frames"]
