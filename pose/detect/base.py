"""The detector interface: one frame in, every person's 2D keypoints out.

A detector is a callable object ``det(frame) -> FramePoses`` with ``frame (H, W, 3)`` uint8
**BGR** (OpenCV's order, as :mod:`pose.video` decodes), plus ``reset()`` (forget the tracking
state before a new video), ``skeleton`` (the :data:`pose.SKELETONS` name of its joints) and
``name`` (the backend). :func:`make_detector` builds one by backend name.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FramePoses", "make_detector", "BACKENDS"]

BACKENDS = ("blazepose", "onnx")


@dataclass(frozen=True)
class FramePoses:
    """People found in one frame, best first. ``keypoints (P, J, 2)`` float64 image px (OpenCV
    convention: pixel centres at integers); ``confidence (P, J)`` in ``[0, 1]`` (BlazePose: the
    landmark's visibility); ``boxes (P, 4)`` ``[x0, y0, x1, y1]`` px around the keypoints;
    ``scores (P,)`` the person's presence score."""

    keypoints: np.ndarray
    confidence: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    @staticmethod
    def empty(num_joints: int) -> "FramePoses":
        return FramePoses(np.zeros((0, num_joints, 2)), np.zeros((0, num_joints)),
                          np.zeros((0, 4)), np.zeros(0))

    @property
    def num_people(self) -> int:
        return int(self.keypoints.shape[0])

    def openpose(self) -> np.ndarray:
        """``(P, J, 3)`` ``[u, v, confidence]`` as OpenPose writes it (a joint with confidence 0
        is ``0, 0, 0``)."""
        out = np.concatenate([self.keypoints, self.confidence[..., None]], -1)
        out[self.confidence <= 0] = 0.0
        return out


def make_detector(backend: str = "blazepose", *, max_people: int = 1, model: str | None = None,
                  threads: int = 1, **options):
    """A detector by name: ``"blazepose"`` (:class:`pose.detect.BlazePose`; ``model`` unused)
    or ``"onnx"`` (:class:`pose.detect.OnnxTopDown`; ``model`` = path of a top-down ONNX
    keypoint model with SimCC outputs, required). ``threads``: CPU threads of the runtime."""
    if backend == "blazepose":
        from .blazepose import BlazePose
        return BlazePose(max_people=max_people, threads=threads, **options)
    if backend == "onnx":
        from .onnx_topdown import OnnxTopDown
        if not model:
            raise ValueError("model: the onnx backend needs the path of an ONNX keypoint model "
                             "(--model FILE)")
        return OnnxTopDown(model, max_people=max_people, threads=threads, **options)
    raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
