"""The ``onnx`` backend: any top-down ONNX keypoint model with SimCC outputs (RTMPose-style).

The model takes ``(1, 3, h, w)`` float32 RGB normalised with ImageNet's mean/std in 0–255 units
(``mean = 123.675, 116.28, 103.53``, ``std = 58.395, 57.12, 57.375``; RTMPose's exports) and
returns two tensors ``simcc_x (1, K, w · k)`` and ``simcc_y (1, K, h · k)`` (``k``: the SimCC
split ratio, read from the output lengths). A joint is at ``(argmax_x / k, argmax_y / k)`` input
px, with confidence ``min(max_x, max_y)`` clipped to ``[0, 1]``. Person boxes come from the
caller (``boxes=``) or, by default, from the BlazePose person detector; each box is enlarged by
``padding`` (1.25) and fitted to the model's aspect ratio before cropping.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .base import FramePoses

__all__ = ["OnnxTopDown", "box_to_crop", "decode_simcc"]

MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


def box_to_crop(box, in_w: int, in_h: int, padding: float = 1.25):
    """``(2, 3)`` affine from image px to model-input px for a person ``box`` ``[x0, y0, x1,
    y1]``: centred, enlarged by ``padding``, widened or heightened to the input's aspect."""
    x0, y0, x1, y1 = np.asarray(box, np.float64)
    c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    w, h = (x1 - x0) * padding, (y1 - y0) * padding
    if w * in_h > h * in_w:
        h = w * in_h / in_w
    else:
        w = h * in_w / in_h
    s = in_w / max(w, 1e-9)
    # input px of image point p: (p - c) * s + (in/2 - 0.5), pixel centres at integers
    return np.array([[s, 0, in_w / 2 - 0.5 - c[0] * s], [0, s, in_h / 2 - 0.5 - c[1] * s]])


def decode_simcc(simcc_x, simcc_y, split_ratio: float):
    """``simcc_x (K, Wx)``, ``simcc_y (K, Hy)`` → ``xy (K, 2)`` input px, ``confidence (K,)``."""
    ix, iy = simcc_x.argmax(-1), simcc_y.argmax(-1)
    conf = np.minimum(simcc_x.max(-1), simcc_y.max(-1)).astype(np.float64)
    xy = np.stack([ix, iy], -1).astype(np.float64) / split_ratio
    return xy, np.clip(conf, 0.0, 1.0)


class OnnxTopDown:
    """A top-down ONNX keypoint model (see the module docstring). ``model``: path of the .onnx
    file; ``skeleton``: its joints' :data:`pose.SKELETONS` name (default ``coco_17`` when it
    has 17 joints, else ``""``); ``person_detector``: a callable ``rgb -> boxes (M, 4)`` (default:
    BlazePose's detector stage, which needs that model file); ``max_people``: top-k boxes."""

    name = "onnx"

    def __init__(self, model, *, max_people: int = 1, threads: int = 1, skeleton: str | None = None,
                 person_detector=None, padding: float = 1.25):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ValueError("backend 'onnx' needs onnxruntime: pip install onnxruntime (or the "
                             "project's extra: pip install -e .[detect])") from None
        path = Path(model)
        if not path.is_file():
            raise ValueError(f"model: {path} is not a file")
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        try:
            self._sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ValueError(f"model: {path} is not a loadable ONNX model ({exc})") from None
        inp = self._sess.get_inputs()[0]
        shape = inp.shape
        if len(shape) != 4 or not all(isinstance(v, int) for v in shape[2:]) or shape[1] != 3:
            raise ValueError(f"model: {path}: expected an input (1, 3, h, w) with fixed h, w, got "
                             f"{shape}")
        self._in_name, self.in_h, self.in_w = inp.name, int(shape[2]), int(shape[3])
        outs = self._sess.get_outputs()
        if len(outs) < 2:
            raise ValueError(f"model: {path}: expected SimCC outputs simcc_x, simcc_y")
        self._out_names = [outs[0].name, outs[1].name]
        self.max_people = int(max_people)
        self.padding = float(padding)
        self._skeleton = skeleton
        self._person_detector = person_detector
        self.path = path

    @property
    def skeleton(self) -> str:
        return self._skeleton or ""

    def reset(self) -> None:
        """No tracking state (each frame is independent)."""

    def _boxes(self, rgb):
        if self._person_detector is None:
            from .blazepose import BlazePose
            bp = BlazePose(max_people=self.max_people)
            self._person_detector = lambda im: bp.detect_people(im)[0]
        return np.asarray(self._person_detector(rgb), np.float64).reshape(-1, 4)

    def __call__(self, frame, boxes=None) -> FramePoses:
        """People in one BGR frame ``(H, W, 3)`` uint8; ``boxes (M, 4)`` px skips the person
        detector."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame: expected (H, W, 3) uint8 BGR, got {frame.shape} "
                             f"{frame.dtype}")
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        boxes = self._boxes(rgb) if boxes is None else np.asarray(boxes, np.float64).reshape(-1, 4)
        boxes = boxes[:self.max_people]
        kps, confs = [], []
        for box in boxes:
            M = box_to_crop(box, self.in_w, self.in_h, self.padding)
            crop = cv2.warpAffine(rgb, M, (self.in_w, self.in_h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            x = ((crop.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]
            sx, sy = self._sess.run(self._out_names, {self._in_name: np.ascontiguousarray(x)})
            sx, sy = np.asarray(sx)[0], np.asarray(sy)[0]
            if sx.ndim != 2 or sy.ndim != 2 or sx.shape[0] != sy.shape[0]:
                raise ValueError(f"model: {self.path}: expected SimCC outputs (1, K, w·k) and "
                                 f"(1, K, h·k), got {sx.shape}, {sy.shape}")
            xy, conf = decode_simcc(sx, sy, sx.shape[1] / self.in_w)
            Minv = cv2.invertAffineTransform(M)
            kps.append(xy @ Minv[:, :2].T + Minv[:, 2])
            confs.append(conf)
        if self._skeleton is None and kps:
            self._skeleton = "coco_17" if kps[0].shape[0] == 17 else ""
        if not kps:
            return FramePoses.empty(0)
        kp = np.stack(kps)
        return FramePoses(keypoints=kp, confidence=np.stack(confs),
                          boxes=np.concatenate([kp.min(1), kp.max(1)], 1),
                          scores=np.stack(confs).mean(1))
