"""pose.detect — 2D person keypoint detection from video frames, offline.

Read first: ``base.py`` (the interface: a detector turns a BGR frame into a
:class:`FramePoses` of every person's keypoints, confidences and boxes; :func:`make_detector`).
Backends: ``blazepose.py`` (default: BlazePose "full" through LiteRT, with ROI tracking),
``onnx_topdown.py`` (any top-down ONNX keypoint model with SimCC outputs, e.g. RTMPose).
The maths they share: ``anchors.py`` (SSD anchors, decoding, weighted NMS) and ``roi.py``
(rotated square ROIs, crops, projection back to image px). ``models.py`` finds model files
(``EPIGEO_MODELS``, a cache folder, or a download); ``run.py`` runs a detector over a folder
of camera videos (:mod:`pose.video`) and writes OpenPose JSON per camera, resumable.
"""
from .anchors import (AnchorOptions, BLAZEPOSE_ANCHORS, box_iou, decode_boxes, ssd_anchors,
                      weighted_nms)
from .base import BACKENDS, FramePoses, make_detector
from .models import MODELS, ModelFile, cache_dir, download_model, model_path
from .roi import (Roi, crop_matrix, crop_roi, image_to_roi, letterbox_roi, roi_from_keypoints,
                  roi_to_image)
from .run import detect_videos, draw_keypoints, frame_json_path

__all__ = ["AnchorOptions", "BLAZEPOSE_ANCHORS", "box_iou", "decode_boxes", "ssd_anchors",
           "weighted_nms", "BACKENDS", "FramePoses", "make_detector", "MODELS", "ModelFile",
           "cache_dir", "download_model", "model_path", "Roi", "crop_matrix", "crop_roi",
           "image_to_roi", "letterbox_roi", "roi_from_keypoints", "roi_to_image",
           "detect_videos", "draw_keypoints", "frame_json_path", "BlazePose", "OnnxTopDown"]


def __getattr__(name):  # the backends import their runtimes lazily
    if name == "BlazePose":
        from .blazepose import BlazePose
        return BlazePose
    if name == "OnnxTopDown":
        from .onnx_topdown import OnnxTopDown
        return OnnxTopDown
    raise AttributeError(name)
