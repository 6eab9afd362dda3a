"""Probe networks: KPSyncNet (keypoint bottleneck: backbone -> K heatmaps -> soft-argmax (x, y)
+ confidence -> BN -> two-stream MLP, late fusion) and RowSyncNet (features averaged over image
x, per-row profile -> MLP).
"""
import torch
from torch import nn
from learn.heatmap_net import Backbone, image_tensor, soft_argmax_2d

class KPSyncNet(nn.Module):
    def __init__(self, width=32, blocks=2, keypoints=16, hidden=128, size=64, conf=True, temp=1.0):
        super().__init__()
        self.size = size
        self.backbone = Backbone(width, blocks)
        self.kp = nn.Conv2d(width, keypoints, 1)
        self.temp = temp
        self.use_conf = conf
        nin = keypoints * (3 if conf else 2)
        self.enc = nn.Sequential(nn.BatchNorm1d(nin), nn.Linear(nin, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        def head():
            return nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.sync_head, self.flip_head = head(), head()
    def points(self, x):
        x = image_tensor(x) if x.dtype == torch.uint8 else x
        f = self.backbone(x)
        xy, c = soft_argmax_2d(self.temp * self.kp(f), stride=x.shape[-1] / f.shape[-1])
        xy = xy / x.shape[-1] - 0.5
        return xy, c
    def embed(self, x):
        xy, c = self.points(x)
        v = torch.cat([xy.flatten(1), c], 1) if self.use_conf else xy.flatten(1)
        return self.enc(v)
    def forward(self, xa, xb):
        B = xa.shape[0]
        e = self.embed(torch.cat([xa, xb], 0))
        z = torch.cat([e[:B] + e[B:], (e[:B] - e[B:]).abs()], -1)
        return torch.cat([self.sync_head(z), self.flip_head(z)], -1)

class RowSyncNet(nn.Module):
    """backbone -> k channels -> pooled over image x -> per-row profile (B, k, H) -> fused."""
    def __init__(self, width=32, blocks=2, k=16, hidden=128, size=64, pool="mean"):
        super().__init__()
        self.size = size
        self.backbone = Backbone(width, blocks)
        self.proj = nn.Sequential(nn.Conv2d(width, k, 1), nn.BatchNorm2d(k), nn.ReLU())
        self.pool = pool
        n = k * (size // 4)
        self.enc = nn.Sequential(nn.Linear(n, hidden), nn.BatchNorm1d(hidden), nn.ReLU())
        def head():
            return nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.sync_head, self.flip_head = head(), head()
    def embed(self, x):
        x = image_tensor(x) if x.dtype == torch.uint8 else x
        g = self.proj(self.backbone(x))
        p = g.mean(3) if self.pool == "mean" else g.amax(3)
        return self.enc(p.flatten(1))
    def forward(self, xa, xb):
        B = xa.shape[0]
        e = self.embed(torch.cat([xa, xb], 0))
        z = torch.cat([e[:B] + e[B:], (e[:B] - e[B:]).abs()], -1)
        return torch.cat([self.sync_head(z), self.flip_head(z)], -1)
