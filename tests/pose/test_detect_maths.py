"""pose.detect maths against hand-computed cases: SSD anchors, decoding, weighted NMS, ROIs,
crops, heatmap refinement, SimCC decoding."""
from __future__ import annotations

import numpy as np
import pytest

from pose.detect import (AnchorOptions, Roi, box_iou, crop_matrix, crop_roi, decode_boxes,
                         image_to_roi, letterbox_roi, roi_from_keypoints, roi_to_image,
                         ssd_anchors, weighted_nms)
from pose.detect.blazepose import refine_from_heatmap
from pose.detect.onnx_topdown import box_to_crop, decode_simcc


def test_blazepose_anchor_layout():
    a = ssd_anchors()
    assert a.shape == (2254, 2)                       # 28²·2 + 14²·2 + 7²·6
    # stride 8: 28 × 28 cells, 2 anchors per cell, row-major
    np.testing.assert_allclose(a[0], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[1], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[2], [1.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[2 * 28], [0.5 / 28, 1.5 / 28])
    np.testing.assert_allclose(a[1567], [27.5 / 28, 27.5 / 28])
    # stride 16 starts at 1568; the three stride-32 layers share one 7 × 7 map, 6 per cell
    np.testing.assert_allclose(a[1568], [0.5 / 14, 0.5 / 14])
    np.testing.assert_allclose(a[1960:1966], np.full((6, 2), 0.5 / 7))
    np.testing.assert_allclose(a[1966], [1.5 / 7, 0.5 / 7])
    np.testing.assert_allclose(a[-1], [6.5 / 7, 6.5 / 7])
    small = ssd_anchors(AnchorOptions(input_size=(16, 32), strides=(16,), interpolated_scale=False))
    np.testing.assert_allclose(small, [[0.25, 0.5], [0.75, 0.5]])


def test_decode_boxes_by_hand():
    anchors = np.array([[0.5, 0.25]])
    raw = np.array([[22.4, -11.2, 44.8, 89.6, 0, 0, 11.2, 22.4, -224, 0, 0, 0]])
    boxes, kp = decode_boxes(raw, anchors, input_size=224)
    # centre (0.5 + 0.1, 0.25 - 0.05), size (0.2, 0.4)
    np.testing.assert_allclose(boxes, [[0.5, 0.0, 0.7, 0.4]], atol=1e-12)
    np.testing.assert_allclose(kp[0], [[0.5, 0.25], [0.55, 0.35], [-0.5, 0.25], [0.5, 0.25]],
                               atol=1e-12)
    with pytest.raises(ValueError, match="raw"):
        decode_boxes(raw[:, :8], anchors)


def test_box_iou_and_weighted_nms_by_hand():
    np.testing.assert_allclose(box_iou([0, 0, 2, 2], [[1, 0, 3, 2], [5, 5, 6, 6], [0, 0, 2, 2]]),
                               [1 / 3, 0, 1])
    boxes = np.array([[0, 0, 2, 2], [0.2, 0, 2.2, 2], [5, 5, 6, 6], [0, 0, 2, 2.1]], float)
    kp = np.array([[[1, 1]], [[2, 1]], [[5, 5]], [[9, 9]]], float)
    scores = np.array([0.9, 0.6, 0.7, 0.3])           # the last one is under the threshold
    b, k, s = weighted_nms(boxes, kp, scores, iou_threshold=0.3, score_threshold=0.5)
    assert s.tolist() == [0.9, 0.7]
    # cluster {0, 1}: score-weighted mean (0.9 · a + 0.6 · b) / 1.5
    np.testing.assert_allclose(b[0], [0.08, 0, 2.08, 2])
    np.testing.assert_allclose(k[0], [[1.4, 1.0]])
    np.testing.assert_allclose(b[1], [5, 5, 6, 6])
    b, k, s = weighted_nms(boxes, kp, scores, max_detections=1)
    assert len(s) == 1
    b, k, s = weighted_nms(boxes, kp, scores * 0.1)
    assert b.shape == (0, 4) and k.shape == (0, 1, 2)


def test_roi_from_keypoints_by_hand():
    up = roi_from_keypoints([100, 200], [100, 100])   # upright: body-circle point above the hips
    np.testing.assert_allclose(up.center, [100, 200])
    assert up.size == pytest.approx(250.0) and up.rotation == pytest.approx(0.0)
    np.testing.assert_allclose(roi_to_image([0.5, 0.0], up), [100, 75])   # ROI top = up
    lying = roi_from_keypoints([100, 200], [200, 200])  # head to the right
    assert lying.rotation == pytest.approx(np.pi / 2)
    np.testing.assert_allclose(roi_to_image([0.5, 0.0], lying), [225, 200])   # ROI top → right
    np.testing.assert_allclose(roi_to_image([0.0, 0.0], lying), [225, 75])
    down = roi_from_keypoints([0, 0], [0, 10], scale=1.0)  # upside down
    assert abs(down.rotation) == pytest.approx(np.pi) and down.size == pytest.approx(20.0)
    np.testing.assert_allclose(roi_to_image([0.5, 0.0], down), [0, 10], atol=1e-12)
    pts = np.random.default_rng(0).uniform(-1, 2, (10, 2))
    np.testing.assert_allclose(image_to_roi(roi_to_image(pts, lying), lying), pts, atol=1e-12)
    lb = letterbox_roi(1080, 1920)
    np.testing.assert_allclose(lb.center, [539.5, 959.5])
    # the square's corner edge is the image's corner edge (index -0.5) shifted by the padding
    np.testing.assert_allclose(roi_to_image([0, 0], lb), [-420.5, -0.5])
    np.testing.assert_allclose(roi_to_image([1, 1], lb), [1499.5, 1919.5])


@pytest.mark.parametrize("rotation", [0.0, 0.7, -2.0])
def test_crop_puts_image_points_where_the_roi_maths_says(rotation):
    img = np.zeros((300, 400, 3), np.uint8)
    p = np.array([230.0, 140.0])
    img[140, 230] = 255                                  # one bright pixel at p
    roi = Roi(center=np.array([200.0, 150.0]), size=64.0, rotation=rotation)
    crop = crop_roi(img, roi, 64).astype(float)[..., 0]  # 1 image px per crop px
    j = np.array(np.unravel_index(np.argmax(crop), crop.shape))[::-1].astype(float)
    expect = image_to_roi(p, roi) * 64 - 0.5             # tensor pixel index of p
    assert np.abs(j - expect).max() <= 0.75
    M = crop_matrix(roi, 64)
    np.testing.assert_allclose(M[:, :2] @ expect + M[:, 2], p, atol=1e-9)


def test_letterbox_crop_downscales_around_the_image():
    img = np.zeros((1920, 1080, 3), np.uint8)
    img[300:420, 100:220] = 200                          # a 120-px square centred (159.5, 359.5)
    lb = letterbox_roi(1080, 1920)
    crop = crop_roi(img, lb, 224, border="zero")[..., 0].astype(float)
    yy, xx = np.mgrid[:224, :224]
    xs_c, ys_c = (crop * xx).sum() / crop.sum(), (crop * yy).sum() / crop.sum()   # centroid
    ys, xs = np.nonzero(crop > 100)
    # by hand: scale 224/1920, horizontal padding (1920 - 1080)/2 = 420 px
    s = 224 / 1920
    expect = np.array([(159.5 + 0.5 + 420) * s - 0.5, (359.5 + 0.5) * s - 0.5])
    np.testing.assert_allclose(image_to_roi([159.5, 359.5], lb) * 224 - 0.5, expect)
    assert abs(xs_c - expect[0]) < 0.1 and abs(ys_c - expect[1]) < 0.1
    assert len(xs) == pytest.approx((120 * s) ** 2, rel=0.35)
    assert crop[:, :5].max() == 0 and crop[:, -5:].max() == 0   # the letterbox bands


def test_refine_from_heatmap_by_hand():
    hm = np.full((8, 8, 2), -20.0)
    hm[3, 4, 0] = hm[3, 5, 0] = 20.0                     # joint 0: two confident cells
    hm[6, 6, 1] = -1.0                                   # joint 1: nothing confident
    out = refine_from_heatmap(np.array([[0.55, 0.40], [0.80, 0.80]]), hm, kernel=3)
    np.testing.assert_allclose(out[0], [4.5 / 8, 3 / 8], atol=1e-6)
    np.testing.assert_allclose(out[1], [0.80, 0.80])


def test_simcc_decoding_and_box_crop_by_hand():
    sx, sy = np.zeros((2, 20)), np.zeros((2, 40))
    sx[0, 7], sy[0, 31] = 0.9, 0.6
    sx[1, 0], sy[1, 1] = 2.0, 3.0
    xy, conf = decode_simcc(sx, sy, 2.0)
    np.testing.assert_allclose(xy, [[3.5, 15.5], [0, 0.5]])
    np.testing.assert_allclose(conf, [0.6, 1.0])
    M = box_to_crop([100, 100, 140, 200], 48, 64, padding=1.0)   # 40 × 100 → height-bound
    np.testing.assert_allclose(M @ [120, 150, 1], [23.5, 31.5])   # box centre → input centre
    assert M[0, 0] == pytest.approx(0.64)


def test_detection_tiles_by_hand():
    from pose.detect.blazepose import detection_tiles
    tall = detection_tiles(1088, 1920)                   # ceil(1920/1088) + 1 = 3 squares
    assert [t.size for t in tall] == [1088.0] * 3
    np.testing.assert_allclose([t.center for t in tall],
                               [[543.5, 543.5], [543.5, 959.5], [543.5, 1375.5]])
    wide = detection_tiles(1920, 1080)
    np.testing.assert_allclose([t.center for t in wide],
                               [[539.5, 539.5], [959.5, 539.5], [1379.5, 539.5]])
    sq = detection_tiles(1000, 1000)                     # 2 × 2 grid of 600-px squares
    np.testing.assert_allclose([t.center for t in sq],
                               [[299.5, 299.5], [699.5, 299.5], [299.5, 699.5], [699.5, 699.5]])
    assert all(t.size == 600.0 and t.rotation == 0.0 for t in sq)
