"""learn.sync_pretext / learn.sync_diagnose / learn.sync_tuples: pair sampler labels and motion
filter, keypoint crops and motion, the keypoint-level sync classifier on synthetic people, flips,
SyncNet shapes/symmetry, training (loss decreases, curriculum, determinism), backbone transfer and
fine-tuning, tuple batches on fresh renders (a toy 'pose' learned, not memorised), ValueErrors."""
import numpy as np
import pytest
import torch

from learn.heatmap_net import HeatmapNet
from learn.sync_diagnose import (KeypointSyncNet, accuracy_by, crop_keypoints,
                                 keypoint_sync_logits, offset_motion, train_keypoint_sync)
from learn.sync_pretext import (PairSet, SyncNet, choose_labelled, evaluate_pose, finetune_pose,
                                flip_images, gather_pairs, pretext_accuracy, pretext_loss,
                                sample_pairs, train_pretext, transfer_backbone)

torch.set_num_threads(1)
SIZE = 32


def _clip(lengths=(30, 20, 25)):
    return np.concatenate([np.full(n, i) for i, n in enumerate(lengths)])


def _images(C=3, T=12, seed=0):
    """Random uint8 images (C, T, 3, S, S): every view distinct, none left-right symmetric."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (C, T, 3, SIZE, SIZE), dtype=np.uint8)
    return img


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


# ---------------------------------------------------------------------------- model
def test_syncnet_shapes_symmetry_and_errors():
    torch.manual_seed(0)
    net = SyncNet(width=8, embed=16, size=SIZE).eval()
    xa = torch.randint(0, 256, (5, 3, SIZE, SIZE), dtype=torch.uint8)
    xb = torch.randint(0, 256, (5, 3, SIZE, SIZE), dtype=torch.uint8)
    out = net(xa, xb)
    assert out.shape == (5, 2) and torch.isfinite(out).all()
    torch.testing.assert_close(net(xb, xa), out)              # order of the views is irrelevant
    assert net.features(xa).shape == (5, 8, SIZE // 4, SIZE // 4)
    with pytest.raises(ValueError, match="xb"):
        net(xa, xb[:4])
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 3, 32, 32\)"):
        net(xa[..., :16], xb[..., :16])
    with pytest.raises(ValueError, match="size"):
        SyncNet(size=40)


def test_pretext_loss_values_and_errors():
    logits = torch.zeros(4, 2)
    y = torch.tensor([1.0, 0, 1, 0])
    torch.testing.assert_close(pretext_loss(logits, y, y), torch.tensor(2 * np.log(2.0),
                                                                        dtype=torch.float32))
    good = torch.tensor([[9.0, -9], [-9, 9]])
    assert float(pretext_loss(good, torch.tensor([1.0, 0]), torch.tensor([0.0, 1]))) < 1e-3
    with pytest.raises(ValueError, match="logits"):
        pretext_loss(torch.zeros(4, 3), y, y)
    with pytest.raises(ValueError, match="flipped"):
        pretext_loss(logits, y, y[:3])
    # a weight of 0 switches a task off: only the other head's error counts
    bad_flip = torch.tensor([[9.0, 9], [-9, -9]])
    sy, fl = torch.tensor([1.0, 0]), torch.tensor([0.0, 1])
    assert float(pretext_loss(bad_flip, sy, fl, flip_weight=0.0)) < 1e-3
    assert float(pretext_loss(bad_flip, sy, fl, sync_weight=0.0)) > 8
    with pytest.raises(ValueError, match="sync_weight"):
        pretext_loss(logits, y, y, flip_weight=0.0, sync_weight=0.0)


def _toy():
    img = _images(C=2, T=10, seed=4)
    clip = np.zeros(10, int)
    pairs = sample_pairs(clip, 48, num_cameras=2, min_offset=2, max_offset=4, seed=0)
    big = PairSet(*[np.tile(getattr(pairs, k), 15) for k in
                    ("cam_a", "frame_a", "cam_b", "frame_b", "sync", "flip_a", "flip_b")])
    return img, pairs, big


def _train_toy(seed):
    img, pairs, big = _toy()
    torch.manual_seed(seed)
    net = SyncNet(width=8, embed=16, size=SIZE)
    h = train_pretext(net, img, big, batch_size=16, lr=3e-3, seed=seed, progress=False)
    return net, h, img, pairs


def test_train_pretext_fits_toy_pairs_and_is_deterministic():
    net, h, img, pairs = _train_toy(0)
    assert len(h["step_loss"]) == 45
    assert np.mean(h["step_loss"][-3:]) < 0.7 * np.mean(h["step_loss"][:3])
    acc = pretext_accuracy(net, img, pairs)
    assert acc["num_pairs"] == len(pairs) and acc["sync"] > 0.6 and acc["flip"] > 0.6
    net2, h2, _, _ = _train_toy(0)
    assert h2["step_loss"] == h["step_loss"]
    for a, b in zip(net.state_dict().values(), net2.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    _, h3, _, _ = _train_toy(1)
    assert h3["step_loss"] != h["step_loss"]


def test_train_pretext_curriculum_stages():
    img, pairs, big = _toy()
    torch.manual_seed(0)
    net = SyncNet(width=8, embed=16, size=SIZE)
    h = train_pretext(net, img, [big, pairs], batch_size=16, seed=0, progress=False)
    assert h["stage_steps"] == [45, 3] and len(h["step_loss"]) == 48 and len(h["loss"]) == 2
    with pytest.raises(ValueError, match="pairs"):
        train_pretext(net, img, [], progress=False)
    with pytest.raises(ValueError, match="pairs"):
        train_pretext(net, img, pairs, batch_size=64, progress=False)


def test_train_pretext_rejects_wrong_image_size():
    img, _, big = _toy()
    with pytest.raises(ValueError, match="images"):
        train_pretext(SyncNet(width=8, embed=16, size=48), img, big, progress=False)
    with pytest.raises(ValueError, match="images"):
        pretext_accuracy(SyncNet(width=8, embed=16, size=SIZE), img[0], big)


# ---------------------------------------------------------------------------- fine-tuning
def test_transfer_backbone_copies_only_the_backbone():
    torch.manual_seed(0)
    sync = SyncNet(width=8, embed=16, size=SIZE)
    pose = HeatmapNet(width=8, depth=4)
    out = transfer_backbone(sync, pose)
    for k, v in sync.backbone.state_dict().items():
        torch.testing.assert_close(out.backbone.state_dict()[k], v)
    for k, v in pose.head3d.state_dict().items():
        torch.testing.assert_close(out.head3d.state_dict()[k], v)
    assert not torch.equal(pose.backbone.stem[0][0].weight, sync.backbone.stem[0][0].weight)
    with pytest.raises(ValueError, match="pretext"):
        transfer_backbone(SyncNet(width=16, embed=16, size=SIZE), pose)


def test_finetune_pose_loss_decreases_and_is_deterministic():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (12, 3, SIZE, SIZE), dtype=np.uint8)
    y = rng.normal(0, 0.5, (12, 17, 3))
    y -= y[:, :1]

    def run():
        torch.manual_seed(0)
        net = HeatmapNet(width=8, depth=4)
        h = finetune_pose(net, img, y, steps=25, batch_size=6, lr=3e-3, seed=0, progress=False)
        return net, h
    net, h = run()
    assert len(h["step_loss"]) == 25
    assert np.mean(h["step_loss"][-3:]) < np.mean(h["step_loss"][:3])
    _, h2 = run()
    assert h2["step_loss"] == h["step_loss"]
    ev = evaluate_pose(net, img, y + 1.0)                     # any root position: root-relative
    assert set(ev) == {"n_mpjpe_mm", "pa_mpjpe_mm"} and np.isfinite(list(ev.values())).all()
    with pytest.raises(ValueError, match="targets"):
        finetune_pose(net, img, y[:5], steps=1, progress=False)
    with pytest.raises(ValueError, match="truth"):
        evaluate_pose(net, img, y[:, :5])


def test_finetune_freeze_backbone_keeps_it():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (8, 3, SIZE, SIZE), dtype=np.uint8)
    y = rng.normal(0, 0.5, (8, 17, 3))
    torch.manual_seed(0)
    net = HeatmapNet(width=8, depth=4)
    before = {k: v.clone() for k, v in net.backbone.state_dict().items() if "weight" in k}
    head = net.head3d[1].weight.clone()
    finetune_pose(net, img, y, steps=3, batch_size=4, freeze_backbone=True, progress=False)
    for k, v in before.items():
        torch.testing.assert_close(net.backbone.state_dict()[k], v)
    assert not torch.equal(net.head3d[1].weight, head)


def test_choose_labelled():
    a = choose_labelled(np.arange(100, 200), 10, seed=1)
    assert len(np.unique(a)) == 10 and a.min() >= 100 and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, choose_labelled(np.arange(100, 200), 10, seed=1))
    with pytest.raises(ValueError, match="budget"):
        choose_labelled(np.arange(5), 6)
    with pytest.raises(ValueError, match="candidates"):
        choose_labelled(np.zeros((2, 3)), 1)


# ---------------------------------------------------------------------------- tuple batches
def test_tuple_pairs_labels():
    from learn.sync_tuples import tuple_pairs
    va, vb, sync = tuple_pairs(4)
    C = 4
    assert len(va) == 24 and sync.sum() == 12
    assert np.all(va % C != vb % C)                          # always two different cameras
    assert np.all(va[sync] // C == vb[sync] // C)            # synchronised: same instant
    assert np.all(va[~sync] // C == 0) and np.all(vb[~sync] // C == 1)
    assert len(set(zip(va.tolist(), vb.tolist()))) == 24     # no pair twice
    with pytest.raises(ValueError, match="num_cameras"):
        tuple_pairs(1)


def _bar_render(C=3, S=16):
    """Fresh toy views: a bright bar at row ``frame % S`` (the 'pose', seen by every camera)
    on new noise (the 'appearance') at every call."""
    def render(frames, seed):
        rng = np.random.default_rng(seed)
        img = rng.integers(0, 120, (C, len(frames), 3, S, S), dtype=np.uint8)
        img[:, np.arange(len(frames)), :, np.asarray(frames) % S, :] = 255
        return img
    return render


def test_train_sync_tuples_learns_on_fresh_renders_and_is_deterministic():
    from learn.sync_tuples import train_sync_tuples
    clip = np.zeros(16, int)
    anchors = sample_pairs(clip, 500, num_cameras=3, min_offset=3, max_offset=8,
                           sync_ratio=0.0, flip_ratio=0.0, seed=0)
    render = _bar_render()

    def run(seed):
        torch.manual_seed(seed)
        net = SyncNet(width=8, embed=16, size=16)
        h = train_sync_tuples(net, render, [(anchors, 60)], anchors_per_step=4, lr=3e-3,
                              seed=seed, progress=False)
        return net, h
    net, h = run(0)
    assert len(h["step_loss"]) == 60 and h["stage_steps"] == [60]
    assert np.mean(h["step_accuracy"][-10:]) > 0.8
    # held out: new renders of new pairs (never seen images)
    test = sample_pairs(clip, 400, num_cameras=3, min_offset=3, max_offset=8, flip_ratio=0.0,
                        seed=5)
    acc = pretext_accuracy(net, render(np.arange(16), 999), test)       # (C, T, 3, S, S)
    assert acc["sync"] > 0.75
    _, h2 = run(0)
    assert h2["step_loss"] == h["step_loss"]


def test_train_sync_tuples_value_errors():
    from learn.sync_tuples import train_sync_tuples
    clip = np.zeros(16, int)
    net = SyncNet(width=8, embed=16, size=16)
    same = sample_pairs(clip, 50, num_cameras=3, sync_ratio=1.0, flip_ratio=0.0, seed=0)
    off = sample_pairs(clip, 50, num_cameras=3, min_offset=2, max_offset=4, sync_ratio=0.0,
                       seed=0)
    with pytest.raises(ValueError, match="stages"):
        train_sync_tuples(net, _bar_render(), [], progress=False)
    with pytest.raises(ValueError, match="stages"):
        train_sync_tuples(net, _bar_render(), [(same, 3)], progress=False)
    with pytest.raises(ValueError, match="anchors_per_step"):
        train_sync_tuples(net, _bar_render(), [(off, 3)], anchors_per_step=0, progress=False)
    with pytest.raises(ValueError, match="render"):
        train_sync_tuples(net, lambda f, s: np.zeros((3, len(f) + 1, 3, 16, 16), np.uint8),
                          [(off, 3)], progress=False)
