"""SSD anchors, box/keypoint decoding and weighted non-maximum suppression (BlazePose detector).

Conventions: every coordinate here is *normalised* to the detector's square input tensor
(``[0, 1]`` across its width/height; MediaPipe's convention). The BlazePose person detector
(``pose_detection.tflite``, 224 × 224 input) predicts, per anchor, 12 numbers: box centre
``(x, y)``, box ``(w, h)`` and 4 keypoints ``(x, y)`` (0: mid-hip centre, 1: a point on the
circle around the whole body, 2: mid-shoulder centre, 3: a point on the circle around the upper
body), in input pixels relative to the anchor centre, plus one logit score.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AnchorOptions", "BLAZEPOSE_ANCHORS", "ssd_anchors", "decode_boxes", "box_iou",
           "weighted_nms"]


@dataclass(frozen=True)
class AnchorOptions:
    """The SSD anchor layout (MediaPipe's ``SsdAnchorsCalculatorOptions`` fields that matter
    with ``fixed_anchor_size``: every anchor has width = height = 1, so only the centres and the
    number of anchors per feature-map cell count)."""

    input_size: tuple = (224, 224)          # (height, width) of the input tensor
    strides: tuple = (8, 16, 32, 32, 32)
    num_aspect_ratios: int = 1              # aspect_ratios = [1.0]
    interpolated_scale: bool = True         # one extra anchor per cell per layer
    offset: tuple = (0.5, 0.5)              # anchor_offset_x, anchor_offset_y


BLAZEPOSE_ANCHORS = AnchorOptions()
"""The layout of ``pose_detection.tflite``: 28² · 2 + 14² · 2 + 7² · 6 = 2254 anchors."""


def ssd_anchors(opts: AnchorOptions = BLAZEPOSE_ANCHORS) -> np.ndarray:
    """Anchor centres ``(N, 2)`` float64 ``[x, y]`` normalised to the input tensor.

    Consecutive layers with the same stride share one feature map: each of its cells gets
    ``(num_aspect_ratios + interpolated_scale)`` anchors per layer, in cell-major order
    (rows, then columns, then anchors of that cell)."""
    H, W = opts.input_size
    per_layer = opts.num_aspect_ratios + int(opts.interpolated_scale)
    out, i = [], 0
    strides = list(opts.strides)
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        n = per_layer * (j - i)
        fh, fw = int(np.ceil(H / strides[i])), int(np.ceil(W / strides[i]))
        ys = (np.arange(fh) + opts.offset[1]) / fh
        xs = (np.arange(fw) + opts.offset[0]) / fw
        cx = np.repeat(np.tile(xs, fh), n)
        cy = np.repeat(np.repeat(ys, fw), n)
        out.append(np.stack([cx, cy], -1))
        i = j
    return np.concatenate(out)


def decode_boxes(raw, anchors, input_size: int = 224, num_keypoints: int = 4):
    """Decode the detector's regressors ``raw (N, 4 + 2K)`` against ``anchors (N, 2)``.

    Returns ``boxes (N, 4)`` ``[xmin, ymin, xmax, ymax]`` and ``keypoints (N, K, 2)``, both
    normalised to the input tensor: ``x = raw_x / input_size + anchor_x`` (anchor size 1);
    ``w = raw_w / input_size``."""
    raw = np.asarray(raw, np.float64)
    anchors = np.asarray(anchors, np.float64)
    if raw.ndim != 2 or raw.shape[1] < 4 + 2 * num_keypoints or raw.shape[0] != len(anchors):
        raise ValueError(f"raw: expected shape ({len(anchors)}, {4 + 2 * num_keypoints}), got "
                         f"shape {raw.shape}")
    s = float(input_size)
    c = raw[:, :2] / s + anchors
    wh = raw[:, 2:4] / s
    boxes = np.concatenate([c - wh / 2, c + wh / 2], 1)
    kp = raw[:, 4:4 + 2 * num_keypoints].reshape(-1, num_keypoints, 2) / s + anchors[:, None]
    return boxes, kp


def box_iou(a, b) -> np.ndarray:
    """Intersection over union of boxes ``a (4,)`` and ``b (M, 4)`` ``[x0, y0, x1, y1]`` →
    ``(M,)`` (0 where the union is empty)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(boxes, keypoints, scores, *, iou_threshold: float = 0.3,
                 score_threshold: float = 0.5, max_detections: int = -1):
    """Weighted non-maximum suppression (MediaPipe's ``WEIGHTED`` algorithm).

    ``boxes (N, 4)``, ``keypoints (N, K, 2)``, ``scores (N,)`` (probabilities). Candidates with
    ``score >= score_threshold`` are taken in decreasing score; each absorbs every remaining
    candidate whose IoU with it exceeds ``iou_threshold`` (itself included), and its box and
    keypoints become the score-weighted mean of that cluster; its score stays the cluster's
    best. Returns ``(boxes (M, 4), keypoints (M, K, 2), scores (M,))``, best first."""
    boxes = np.asarray(boxes, np.float64)
    keypoints = np.asarray(keypoints, np.float64)
    scores = np.asarray(scores, np.float64)
    keep = np.flatnonzero(scores >= score_threshold)
    order = keep[np.argsort(-scores[keep], kind="stable")]
    ob, ok, os_ = [], [], []
    while order.size and (max_detections < 0 or len(ob) < max_detections):
        top = order[0]
        iou = box_iou(boxes[top], boxes[order])
        cluster = order[iou > iou_threshold]
        if cluster.size == 0:          # a degenerate (zero-area) box still stands for itself
            cluster = order[:1]
        w = scores[cluster]
        ob.append((w[:, None] * boxes[cluster]).sum(0) / w.sum())
        ok.append((w[:, None, None] * keypoints[cluster]).sum(0) / w.sum())
        os_.append(scores[top])
        order = order[~np.isin(order, cluster)]
    K = keypoints.shape[1] if keypoints.ndim == 3 else 0
    if not ob:
        return np.zeros((0, 4)), np.zeros((0, K, 2)), np.zeros(0)
    return np.array(ob), np.array(ok), np.array(os_)
