"""learn.sync_pretext / learn.sync_tuples, the model side of the synchronisation pretext: SyncNet
shapes/symmetry, training (loss decreases, curriculum, determinism), backbone transfer and
fine-tuning, tuple batches on fresh renders (a toy 'pose' learned, not memorised), ValueErrors.
The data side (pair sampler, keypoint crops and classifier, flips) is in test_sync_pairs.py."""
import numpy as np
import pytest
import torch

from learn.heatmap_net import HeatmapNet
from learn.sync_pretext import (PairSet, SyncNet, choose_labelled, evaluate_pose, finetune_pose,
                                pretext_accuracy, pretext_loss, sample_pairs, train_pretext,
                                transfer_backbone)

torch.set_num_threads(1)
SIZE = 32


def _images(C=3, T=12, seed=0):
    """Random uint8 images (C, T, 3, S, S): every view distinct, none left-right symmetric."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (C, T, 3, SIZE, SIZE), dtype=np.uint8)
    return img




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
    with pytest.raises(ValueError, match="contrastive_weight"):
        train_sync_tuples(net, _bar_render(), [(off, 3)], contrastive_weight=-1.0,
                          progress=False)
    with pytest.raises(ValueError, match="temperature"):
        train_sync_tuples(net, _bar_render(), [(off, 3)], temperature=0.0, progress=False)


def test_multiview_contrastive_loss_minimum_ordering_and_errors():
    from learn.sync_tuples import multiview_contrastive_loss
    V, G = 4, 6
    # each instant's views coincide, instants orthogonal: the loss reaches log(V - 1)
    base = torch.eye(G, 8, dtype=torch.float64)
    perfect = base[None].expand(V, G, 8).clone()
    lo = float(multiview_contrastive_loss(perfect, temperature=0.01))
    assert lo == pytest.approx(np.log(V - 1), abs=1e-9)
    # views swapped between two instants score worse than the right grouping; random worse still
    wrong = perfect.clone()
    wrong[0, 0], wrong[0, 1] = perfect[0, 1], perfect[0, 0]
    assert float(multiview_contrastive_loss(wrong, 0.01)) > lo + 1.0
    rnd = torch.randn(V, G, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert float(multiview_contrastive_loss(rnd, 0.2)) > float(
        multiview_contrastive_loss(perfect, 0.2))
    # gradients flow and are finite
    e = rnd.clone().requires_grad_(True)
    multiview_contrastive_loss(e).backward()
    assert torch.isfinite(e.grad).all() and e.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="e: expected"):
        multiview_contrastive_loss(torch.zeros(1, G, 8))
    with pytest.raises(ValueError, match="temperature"):
        multiview_contrastive_loss(perfect, temperature=-1.0)


def test_train_sync_tuples_flip_head_learns_mirroring_on_fresh_renders():
    """Flip-only tuples: a bar near the left edge is the asymmetry; the flip head learns
    whether exactly one view of a pair is mirrored, on renders it never saw."""
    from learn.sync_tuples import train_sync_tuples
    clip = np.zeros(16, int)
    anchors = sample_pairs(clip, 500, num_cameras=3, min_offset=3, max_offset=8,
                           sync_ratio=0.0, flip_ratio=0.0, seed=0)
    bar = _bar_render()

    def render(frames, seed):
        img = bar(frames, seed)
        img[..., 2] = 255                                   # column 2: left, not mirrored
        return img
    torch.manual_seed(0)
    net = SyncNet(width=8, embed=16, size=16)
    h = train_sync_tuples(net, render, [(anchors, 40)], anchors_per_step=4, lr=3e-3,
                          sync_weight=0.0, flip_weight=1.0, contrastive_weight=0.0, seed=0,
                          progress=False)
    assert len(h["step_flip_accuracy"]) == 40 and h["step_accuracy"] == h["step_flip_accuracy"]
    test = sample_pairs(clip, 400, num_cameras=3, min_offset=3, max_offset=8, flip_ratio=0.5,
                        seed=5)
    acc = pretext_accuracy(net, render(np.arange(16), 999), test)
    assert acc["flip"] > 0.9
    with pytest.raises(ValueError, match="sync_weight/flip_weight"):
        train_sync_tuples(net, render, [(anchors, 2)], sync_weight=0.0, progress=False)
    with pytest.raises(ValueError, match="flip_ratio"):
        train_sync_tuples(net, render, [(anchors, 2)], flip_weight=1.0, flip_ratio=1.0,
                          progress=False)


def test_multiview_contrastive_loss_mask_leaves_views_out():
    from learn.sync_tuples import multiview_contrastive_loss
    V, G = 3, 4
    rnd = torch.randn(V, G, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    full = multiview_contrastive_loss(rnd)
    torch.testing.assert_close(multiview_contrastive_loss(rnd, mask=torch.ones(V, G, dtype=bool)),
                               full)
    # leaving camera 2 out equals the loss on cameras 0 and 1 alone
    m = torch.ones(V, G, dtype=bool)
    m[2] = False
    torch.testing.assert_close(multiview_contrastive_loss(rnd, mask=m),
                               multiview_contrastive_loss(rnd[:2]))
    # garbage in the left-out views changes nothing
    junk = rnd.clone()
    junk[2] = 1e3
    torch.testing.assert_close(multiview_contrastive_loss(junk, mask=m),
                               multiview_contrastive_loss(rnd[:2]))
    assert float(multiview_contrastive_loss(rnd, mask=torch.zeros(V, G, dtype=bool))) == 0.0
    with pytest.raises(ValueError, match="mask"):
        multiview_contrastive_loss(rnd, mask=torch.ones(V, G + 1, dtype=bool))
