"""The ``blazepose`` backend: BlazePose "full" (person detector + 33-landmark model) via LiteRT.

Per frame, for every tracked person: crop the rotated ROI predicted from the previous frame's
auxiliary landmarks (hip centre and body-circle point), run the landmark model, keep the person
when its presence score ≥ ``min_presence``. When fewer than ``max_people`` are tracked, run the
person detector (letterboxed 224 × 224 input, SSD anchors, weighted NMS), turn each new detection
into a ROI from its hip-centre and body-circle keypoints, and run the landmark model there.
Landmarks are refined with the model's heatmaps (7 × 7 window) and projected back to image px.
The numbers are MediaPipe's pose pipeline's (detector threshold 0.5, NMS IoU 0.3, ROI scale
1.25, presence 0.5); see :mod:`pose.detect.anchors` and :mod:`pose.detect.roi` for the maths.
"""
from __future__ import annotations

import numpy as np

from .anchors import BLAZEPOSE_ANCHORS, box_iou, decode_boxes, ssd_anchors, weighted_nms
from .base import FramePoses
from .models import model_path
from .roi import Roi, crop_roi, letterbox_roi, roi_from_keypoints, roi_to_image

__all__ = ["BlazePose", "refine_from_heatmap", "detection_tiles"]

NUM_LANDMARKS = 33


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float64), -100.0, 100.0)))


def _interpreter(path, threads):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ValueError("backend 'blazepose' needs the LiteRT runtime: pip install ai-edge-litert"
                         " (or the project's extra: pip install -e .[detect])") from None
    try:
        it = Interpreter(model_path=str(path), num_threads=int(threads))
        it.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"{path}: not a loadable TFLite model ({exc})") from None
    return it


def detection_tiles(width: int, height: int) -> list:
    """Unrotated square ROIs covering a ``width × height`` image at a larger scale than its
    letterbox: side = the short side, centres spread along the long side with overlap
    (``ceil(long / short) + 1`` tiles); a near-square image gets a 2 × 2 grid of 0.6 × its
    side. Used by :meth:`BlazePose.detect_people` to find people small in the frame."""
    short, long_ = min(width, height), max(width, height)
    if long_ < 1.2 * short:
        side = 0.6 * long_
        cs = [(a, b) for b in (0.3 * height, 0.7 * height) for a in (0.3 * width, 0.7 * width)]
        return [Roi(np.array([a - 0.5, b - 0.5]), side) for a, b in cs]
    n = int(np.ceil(long_ / short)) + 1
    along = np.linspace(short / 2, long_ - short / 2, n) - 0.5
    across = short / 2 - 0.5
    return [Roi(np.array([across, c] if height > width else [c, across]), float(short))
            for c in along]


def refine_from_heatmap(norm_xy, heatmap, kernel: int = 7, min_confidence: float = 0.5):
    """Refine normalised landmarks ``norm_xy (L, 2)`` with logit heatmaps ``(h, w, L)``: inside
    the ``kernel × kernel`` window at each landmark's heatmap cell, the sigmoid-weighted mean of
    the cell indices divided by the heatmap size, when the window's best sigmoid ≥
    ``min_confidence`` (MediaPipe's rule); other landmarks are kept. Returns ``(L, 2)``."""
    h, w, L = heatmap.shape
    out = np.array(norm_xy, np.float64, copy=True)
    r = (kernel - 1) // 2
    for k in range(L):
        col, row = int(out[k, 0] * w), int(out[k, 1] * h)
        if not (0 <= col < w and 0 <= row < h):
            continue
        r0, r1, c0, c1 = max(0, row - r), min(h, row + r + 1), max(0, col - r), min(w, col + r + 1)
        conf = _sigmoid(heatmap[r0:r1, c0:c1, k].astype(np.float64))
        s = conf.sum()
        if conf.max() >= min_confidence and s > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            out[k] = [(cols * conf).sum() / s / w, (rows * conf).sum() / s / h]
    return out


class BlazePose:
    """BlazePose detector + landmark models with ROI tracking (see the module docstring).

    ``max_people``: how many people to track (top-k by detector score); ``threads``: LiteRT CPU
    threads; ``redetect_interval``: with fewer than ``max_people`` tracked but at least one,
    the person detector runs every that many frames (every frame when nobody is tracked).
    Model files come from :func:`pose.detect.models.model_path` unless ``detector_model`` /
    ``landmark_model`` give paths. Call on BGR frames ``(H, W, 3)`` uint8; ``reset()`` between
    videos."""

    name = "blazepose"
    skeleton = "blazepose_33"

    def __init__(self, *, max_people: int = 1, threads: int = 1, detector_model=None,
                 landmark_model=None, min_detection_score: float = 0.5,
                 min_presence: float = 0.5, nms_iou: float = 0.3, roi_scale: float = 1.25,
                 redetect_interval: int = 10, refine: bool = True):
        if int(max_people) < 1:
            raise ValueError(f"max_people: expected >= 1, got {max_people}")
        self.max_people = int(max_people)
        self.min_detection_score = float(min_detection_score)
        self.min_presence = float(min_presence)
        self.nms_iou = float(nms_iou)
        self.roi_scale = float(roi_scale)
        self.redetect_interval = max(1, int(redetect_interval))
        self.refine = bool(refine)
        self._det = _interpreter(detector_model or model_path("blazepose_detector"), threads)
        self._lm = _interpreter(landmark_model or model_path("blazepose_landmarks_full"), threads)
        self._det_in = self._det.get_input_details()[0]["index"]
        self._det_size = int(self._det.get_input_details()[0]["shape"][1])
        outs = {tuple(d["shape"][1:]): d["index"] for d in self._det.get_output_details()}
        self._anchors = ssd_anchors(BLAZEPOSE_ANCHORS)
        n = len(self._anchors)
        if (n, 12) not in outs or (n, 1) not in outs:
            raise ValueError(f"detector_model: expected outputs ({n}, 12) and ({n}, 1), got "
                             f"{sorted(outs)}")
        self._det_reg, self._det_score = outs[(n, 12)], outs[(n, 1)]
        self._lm_in = self._lm.get_input_details()[0]["index"]
        self._lm_size = int(self._lm.get_input_details()[0]["shape"][1])
        lo = {}
        for d in self._lm.get_output_details():
            shape = tuple(int(v) for v in d["shape"])
            if len(shape) == 2 and shape[1] % 5 == 0 and shape[1] >= 5 * 35 and "lm" not in lo:
                lo["lm"] = d["index"]
            elif shape == (1, 1):
                lo["flag"] = d["index"]
            elif len(shape) == 4 and shape[1] < self._lm_size:
                lo["heatmap"] = d["index"]
        if "lm" not in lo or "flag" not in lo:
            raise ValueError("landmark_model: outputs are not BlazePose's (landmarks, pose flag)")
        self._lm_out = lo
        self.reset()

    def reset(self) -> None:
        """Forget the tracked people (call before a new video)."""
        self._tracks: list[Roi] = []
        self._since_detect = 0

    # --- the two models -------------------------------------------------------------------
    def _detect_in(self, image, roi: Roi, bgr: bool):
        """The detector on one unrotated square ``roi``: decoded, NMS'd, in image px."""
        x = crop_roi(image, roi, self._det_size, border="zero")
        x = (x[..., ::-1] if bgr else x).astype(np.float32) / 127.5 - 1.0
        self._det.set_tensor(self._det_in, x[None])
        self._det.invoke()
        raw = self._det.get_tensor(self._det_reg)[0]
        score = _sigmoid(self._det.get_tensor(self._det_score)[0, :, 0])
        keep = score >= self.min_detection_score
        if not keep.any():
            return np.zeros((0, 4)), np.zeros((0, 4, 2)), np.zeros(0)
        boxes, kp = decode_boxes(raw[keep], self._anchors[keep], self._det_size)
        boxes, kp, sc = weighted_nms(boxes, kp, score[keep], iou_threshold=self.nms_iou,
                                     score_threshold=self.min_detection_score)
        return roi_to_image(boxes.reshape(-1, 2, 2), roi).reshape(-1, 4), roi_to_image(kp, roi), sc

    def detect_people(self, rgb, *, bgr: bool = False, tiles: bool = False) -> tuple:
        """Run the person detector on an RGB frame (``bgr``: the frame is BGR): ``(boxes (M, 4)
        px, keypoints (M, 4, 2) px, scores (M,))`` after weighted NMS, best first (keypoints:
        mid-hip, body-circle point, mid-shoulder, upper-body-circle point).

        The whole frame is letterboxed into the detector's input; with ``tiles`` it also runs on
        :func:`detection_tiles` (squares of the short side along the long one), where people
        are twice as large as in a tall or wide letterboxed frame, and all detections are merged
        by weighted NMS in image px."""
        H, W = rgb.shape[:2]
        found = [self._detect_in(rgb, letterbox_roi(W, H), bgr)]
        if tiles:
            found += [self._detect_in(rgb, roi, bgr) for roi in detection_tiles(W, H)]
        b, k, s = (np.concatenate(a) for a in zip(*found))
        if len(found) > 1 and len(s) > 1:
            b, k, s = weighted_nms(b, k, s, iou_threshold=self.nms_iou, score_threshold=0.0)
        return b, k, s

    def landmarks(self, rgb, roi: Roi, *, bgr: bool = False) -> tuple:
        """Run the landmark model on ``roi`` of an RGB frame (``bgr``: the frame is BGR):
        ``(keypoints (33, 2) px, visibility (33,), presence score, auxiliary (2, 2) px)``
        (auxiliary: hip centre and body-circle point, for the next frame's ROI)."""
        x = crop_roi(rgb, roi, self._lm_size)
        x = (x[..., ::-1] if bgr else x).astype(np.float32) / 255.0
        self._lm.set_tensor(self._lm_in, x[None])
        self._lm.invoke()
        flag = float(self._lm.get_tensor(self._lm_out["flag"]).reshape(-1)[0])
        raw = self._lm.get_tensor(self._lm_out["lm"]).reshape(-1, 5).astype(np.float64)
        norm = raw[:, :2] / self._lm_size
        if self.refine and "heatmap" in self._lm_out:
            hm = self._lm.get_tensor(self._lm_out["heatmap"])[0]
            if hm.shape[-1] == raw.shape[0]:
                norm = refine_from_heatmap(norm, hm)
        px = roi_to_image(norm, roi)
        vis = _sigmoid(raw[:NUM_LANDMARKS, 3])
        return px[:NUM_LANDMARKS], vis, flag, px[NUM_LANDMARKS:NUM_LANDMARKS + 2]

    # --- tracking -------------------------------------------------------------------------
    def __call__(self, frame) -> FramePoses:
        """People in one BGR frame ``(H, W, 3)`` uint8 (see :class:`pose.detect.FramePoses`)."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame: expected (H, W, 3) uint8 BGR, got {frame.shape} "
                             f"{frame.dtype}")
        people = []   # (keypoints, visibility, presence, aux, box)

        def add(roi):
            kp, vis, pres, aux = self.landmarks(frame, roi, bgr=True)   # crops made RGB
            if pres < self.min_presence:
                return
            box = np.concatenate([kp.min(0), kp.max(0)])
            if people and box_iou(box, np.array([p[4] for p in people])).max() > 0.5:
                return    # two tracks converged on one person: keep the first (better) one
            people.append((kp, vis, pres, aux, box))

        for roi in self._tracks:
            add(roi)
        self._since_detect += 1
        if len(people) < self.max_people and (not people or
                                              self._since_detect >= self.redetect_interval):
            self._since_detect = 0
            # the whole frame first; tiles (people small in the frame) when that is not enough
            boxes, kps, _ = self.detect_people(frame, bgr=True)
            if len(boxes) < self.max_people:
                boxes, kps, _ = self.detect_people(frame, bgr=True, tiles=True)
            for box, kp in zip(boxes, kps):
                if len(people) >= self.max_people:
                    break
                if people and box_iou(box, np.array([p[4] for p in people])).max() > 0.3:
                    continue   # already tracked
                add(roi_from_keypoints(kp[0], kp[1], scale=self.roi_scale))
        people = people[:self.max_people]
        self._tracks = [roi_from_keypoints(p[3][0], p[3][1], scale=self.roi_scale)
                        for p in people]
        if not people:
            return FramePoses.empty(NUM_LANDMARKS)
        return FramePoses(keypoints=np.stack([p[0] for p in people]),
                          confidence=np.stack([p[1] for p in people]),
                          boxes=np.stack([p[4] for p in people]),
                          scores=np.array([p[2] for p in people]))
