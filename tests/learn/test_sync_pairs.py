"""learn.sync_pretext / learn.sync_diagnose, the data side of the synchronisation pretext: pair
sampler labels and motion filter, keypoint crops and motion, the keypoint-level sync classifier
on synthetic people, flips and pair gathering, ValueErrors."""
import numpy as np
import pytest
import torch

from learn.sync_diagnose import (KeypointSyncNet, accuracy_by, crop_keypoints,
                                 keypoint_sync_logits, offset_motion, train_keypoint_sync)
from learn.sync_pretext import flip_images, gather_pairs, sample_pairs

from .test_learn_sync import _images

torch.set_num_threads(1)


def _clip(lengths=(30, 20, 25)):
    return np.concatenate([np.full(n, i) for i, n in enumerate(lengths)])


# ---------------------------------------------------------------------------- pair sampler
def test_sample_pairs_labels_are_true():
    clip = _clip()
    p = sample_pairs(clip, 4000, num_cameras=4, min_offset=3, max_offset=7, seed=1)
    assert len(p) == 4000
    assert np.all(p.cam_a != p.cam_b)                        # always two different views
    assert np.all(p.frame_a[p.sync] == p.frame_b[p.sync])     # 'same instant' shares a frame
    d = np.abs(p.offset[~p.sync])
    assert d.min() >= 3 and d.max() <= 7
    assert np.all(clip[p.frame_a] == clip[p.frame_b])        # partners stay in their clip
    assert not np.any(p.flip_a & p.flip_b)                   # at most one view mirrored
    np.testing.assert_array_equal(p.flipped, p.flip_a | p.flip_b)
    assert 0.45 < p.sync.mean() < 0.55 and 0.45 < p.flipped.mean() < 0.55
    assert 0.4 < p.flip_a[p.flipped].mean() < 0.6            # either view can be the flipped one
    assert set(np.unique(p.cam_a)) == {0, 1, 2, 3}
    # both directions of the offset are drawn
    assert (p.offset[~p.sync] > 0).any() and (p.offset[~p.sync] < 0).any()


def test_sample_pairs_respects_frames_and_seed():
    clip = _clip()
    allowed = np.zeros(len(clip), bool)
    allowed[30:50] = True                                    # clip 1 only
    p = sample_pairs(clip, 500, num_cameras=2, frames=allowed, min_offset=2, max_offset=4,
                     seed=3)
    assert allowed[p.frame_a].all() and allowed[p.frame_b].all()
    q = sample_pairs(clip, 500, num_cameras=2, frames=np.arange(30, 50), min_offset=2,
                     max_offset=4, seed=3)
    for k in ("cam_a", "frame_a", "cam_b", "frame_b", "sync", "flip_a", "flip_b"):
        np.testing.assert_array_equal(getattr(p, k), getattr(q, k))
    r = sample_pairs(clip, 500, num_cameras=2, frames=allowed, min_offset=2, max_offset=4,
                     seed=4)
    assert not np.array_equal(p.frame_a, r.frame_a)


def test_sample_pairs_ratio_extremes():
    clip = _clip()
    p = sample_pairs(clip, 200, num_cameras=3, sync_ratio=0.0, flip_ratio=1.0, seed=0)
    assert not p.sync.any() and p.flipped.all()
    p = sample_pairs(clip, 200, num_cameras=3, sync_ratio=1.0, flip_ratio=0.0, seed=0)
    assert p.sync.all() and not p.flipped.any() and np.all(p.offset == 0)


@pytest.mark.parametrize("kwargs, word", [
    (dict(clip=np.zeros((3, 4)), num_pairs=5, num_cameras=2), "clip"),
    (dict(clip=_clip(), num_pairs=5, num_cameras=1), "num_cameras"),
    (dict(clip=_clip(), num_pairs=5, num_cameras=2, min_offset=5, max_offset=2), "min_offset"),
    (dict(clip=_clip(), num_pairs=0, num_cameras=2), "num_pairs"),
    (dict(clip=_clip(), num_pairs=5, num_cameras=2, sync_ratio=1.5), "sync_ratio"),
    (dict(clip=_clip(), num_pairs=5, num_cameras=2, frames=np.ones(7, bool)), "frames"),
    (dict(clip=np.arange(10), num_pairs=5, num_cameras=2), "no frame"),   # 1-frame clips
])
def test_sample_pairs_value_errors(kwargs, word):
    with pytest.raises(ValueError, match=word):
        sample_pairs(**kwargs)


def _moving_keypoints(C=3, lengths=(30, 20, 25), still=(10, 20)):
    """Crop-normalised keypoints (C, T, 2, 2) whose 2 joints move vertically by 0.01 per frame
    (the second joint fixed) except in frames ``still`` (a static stretch of clip 0)."""
    T = sum(lengths)
    y = 0.01 * np.arange(T, dtype=float)
    y[still[0]:still[1]] = y[still[0]]
    y[still[1]:] -= y[still[1]] - y[still[0]]
    kp = np.zeros((C, T, 2, 2))
    kp[:, :, 0, 1] = y
    return kp


def test_offset_motion_and_min_motion_filter():
    clip = _clip()
    kp = _moving_keypoints()
    m = offset_motion(kp, clip, [-2, 3], vertical=True)
    # median of |dy| over the two joints = half the moving joint's |dy|
    np.testing.assert_allclose(m[0], [np.nan, 0.015])
    np.testing.assert_allclose(m[12, 1], 0.0)                      # inside the static stretch
    assert np.isnan(m[29, 1]) and np.isnan(m[30, 0])               # partners outside the clip
    kp_x = kp[..., ::-1].copy()                                    # the same motion, sideways
    np.testing.assert_allclose(offset_motion(kp_x, clip, [3])[0], [0.015])
    np.testing.assert_allclose(offset_motion(kp_x, clip, [3], vertical=True)[0], [0.0])
    p = sample_pairs(clip, 3000, num_cameras=3, min_offset=2, max_offset=4, keypoints=kp,
                     min_motion=0.014, seed=0)
    mot = offset_motion(kp, clip, np.arange(-4, 5), vertical=True)
    off = p.offset[~p.sync]
    assert np.all(mot[p.frame_a[~p.sync], off + 4] >= 0.014)
    assert not np.any((p.frame_a >= 12) & (p.frame_a <= 17))       # static anchors never drawn
    # 3-4 frame offsets only where 2 frames would not move enough: the filter is per offset
    assert set(np.abs(off)) == {3, 4}
    assert 0.45 < p.sync.mean() < 0.55
    with pytest.raises(ValueError, match="keypoints"):
        sample_pairs(clip, 5, num_cameras=2, keypoints=kp)
    with pytest.raises(ValueError, match="min_motion"):
        sample_pairs(clip, 5, num_cameras=3, keypoints=kp, min_motion=1.0)


def test_crop_keypoints_matches_the_crop_box():
    rng = np.random.default_rng(0)
    x = rng.uniform(100, 400, (5, 17, 2))
    x[1, 3] = np.nan
    k = crop_keypoints(x, margin=0.2)
    side = np.nanmax(np.nanmax(x, 1) - np.nanmin(x, 1), -1) * 1.4
    np.testing.assert_allclose(np.nanmax(np.abs(k), (1, 2)), 0.5 / 1.4)
    np.testing.assert_allclose(k[0] * side[0] + 0.5 * (x[0].min(0) + x[0].max(0)), x[0])
    assert np.isnan(k[1, 3]).all() and np.isfinite(k[1, 4]).all()
    with pytest.raises(ValueError, match="x"):
        crop_keypoints(x[..., :1])
    with pytest.raises(ValueError, match="margin"):
        crop_keypoints(x, margin=-1)


def test_keypoint_sync_classifier_separates_synthetic_people():
    """Synthetic people, two random-pose subjects: a classifier trained on one subject's
    keypoint pairs tells synchronised from moving unsynchronised pairs of the other."""
    from pose.synthetic import make_people
    people = make_people(3, motions=("random", "walk"), frames_per_clip=60, seed=1)
    kp = crop_keypoints(people.x_clean)
    tr, te = np.flatnonzero(people.subject < 2), np.flatnonzero(people.subject == 2)
    kw = dict(num_cameras=4, min_offset=8, max_offset=30, min_motion=0.02, flip_ratio=0.5)
    ptr = sample_pairs(people.clip[tr], 4000, keypoints=kp[:, tr], seed=0, **kw)
    pte = sample_pairs(people.clip[te], 1000, keypoints=kp[:, te], seed=1, **kw)
    net = train_keypoint_sync(kp[:, tr], ptr, steps=300, seed=0)
    ok = (keypoint_sync_logits(net, kp[:, te], pte) > 0) == pte.sync
    assert ok.mean() > 0.65, ok.mean()                           # chance 0.5
    acc = accuracy_by(ok, pte.sync)
    assert set(acc) == {False, True} and sum(n for _, n in acc.values()) == 1000
    net2 = train_keypoint_sync(kp[:, tr], ptr, steps=300, seed=0)
    np.testing.assert_array_equal(keypoint_sync_logits(net2, kp[:, te], pte),
                                  keypoint_sync_logits(net, kp[:, te], pte))
    with pytest.raises(ValueError, match="ka"):
        KeypointSyncNet()(torch.zeros(2, 16, 2), torch.zeros(2, 17, 2))
    with pytest.raises(ValueError, match="groups"):
        accuracy_by(ok, pte.sync[:5])


# ---------------------------------------------------------------------------- flips, gather
def test_flip_images_mirrors_only_flagged():
    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).reshape(2, 1, 2, 3)
    y = flip_images(x, torch.tensor([True, False]))
    torch.testing.assert_close(y[0, 0], torch.tensor([[2.0, 1, 0], [5, 4, 3]]))
    torch.testing.assert_close(y[1], x[1])
    with pytest.raises(ValueError, match="mask"):
        flip_images(x, torch.tensor([True]))
    with pytest.raises(ValueError, match="images"):
        flip_images(x[0], torch.tensor([True]))


def test_gather_pairs_returns_the_right_views_mirrored():
    img = _images()
    clip = np.zeros(12, int)
    p = sample_pairs(clip, 64, num_cameras=3, min_offset=1, max_offset=3, seed=2)
    xa, xb = gather_pairs(torch.as_tensor(img), p.tensors())
    for i in range(len(p)):
        a = img[p.cam_a[i], p.frame_a[i]]
        b = img[p.cam_b[i], p.frame_b[i]]
        np.testing.assert_array_equal(xa[i].numpy(), a[..., ::-1] if p.flip_a[i] else a)
        np.testing.assert_array_equal(xb[i].numpy(), b[..., ::-1] if p.flip_b[i] else b)
