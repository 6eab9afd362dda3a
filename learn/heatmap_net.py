"""Small image → pose network (EpipolarPose, CPU-sized): a 2D heatmap branch and a volumetric
3D branch, both read out with soft-argmax (integral regression, Sun et al. 2018).

- Backbone: two stride-2 convolutions (``S → S/4``), residual blocks, an ``S/8`` bottleneck for
  context, upsampled and added back: features ``(B, C, S/4, S/4)``.
- 2D branch: ``J`` heatmaps at ``S/4``; :func:`soft_argmax_2d` gives crop pixels and a
  confidence (the peak mass of the softmax around its mean).
- 3D branch: ``J × D`` channels = a ``D × H × W`` volume per joint; :func:`soft_argmax_3d`
  gives ``(x, y, z)`` in ``[-1, 1]``, scaled by ``extent`` into label units (root-relative,
  camera axes). ``x, y`` follow the image axes, so the volume is image-aligned.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as Fn

__all__ = ["soft_argmax_2d", "soft_argmax_3d", "ConvBlock", "Backbone", "HeatmapNet",
           "image_tensor"]


def image_tensor(images_uint8: torch.Tensor) -> torch.Tensor:
    """``(B, 3, S, S)`` uint8 → float in ``[-1, 1]``."""
    return images_uint8.float() / 127.5 - 1.0


def soft_argmax_2d(logits: torch.Tensor, stride: float = 1.0):
    """``logits (B, J, H, W)`` → expected positions ``(B, J, 2)`` ``(x, y)`` in input pixels
    (``stride`` input pixels per heatmap cell, cell centres at ``stride·(i + 0.5) − 0.5``) and
    a confidence ``(B, J)``: the softmax mass within 1.5 cells of the expected position."""
    if logits.dim() != 4:
        raise ValueError(f"logits: expected shape (B, J, H, W), got shape {tuple(logits.shape)}")
    B, J, H, W = logits.shape
    p = torch.softmax(logits.reshape(B, J, -1), -1).reshape(B, J, H, W)
    xs = (torch.arange(W, dtype=p.dtype, device=p.device) + 0.5) * stride - 0.5
    ys = (torch.arange(H, dtype=p.dtype, device=p.device) + 0.5) * stride - 0.5
    ex = (p.sum(2) * xs).sum(-1)
    ey = (p.sum(3) * ys).sum(-1)
    near = ((xs[None, None, None, :] - ex[..., None, None]).abs() <= 1.5 * stride) & \
        ((ys[None, None, :, None] - ey[..., None, None]).abs() <= 1.5 * stride)
    conf = (p * near).sum((2, 3))
    return torch.stack([ex, ey], -1), conf


def soft_argmax_3d(logits: torch.Tensor, depth: int) -> torch.Tensor:
    """``logits (B, J·D, H, W)`` → expected ``(x, y, z)`` ``(B, J, 3)`` in ``[-1, 1]`` (cell
    centres), ``x`` along ``W``, ``y`` along ``H``, ``z`` along ``D``."""
    if logits.dim() != 4 or depth < 1 or logits.shape[1] % depth:
        raise ValueError(f"logits: expected shape (B, J*{depth}, H, W), got shape "
                         f"{tuple(logits.shape)}")
    B, JD, H, W = logits.shape
    J = JD // depth
    p = torch.softmax(logits.reshape(B, J, -1), -1).reshape(B, J, depth, H, W)

    def axis(n):
        return (torch.arange(n, dtype=p.dtype, device=p.device) + 0.5) * (2.0 / n) - 1.0
    ex = (p.sum((2, 3)) * axis(W)).sum(-1)
    ey = (p.sum((2, 4)) * axis(H)).sum(-1)
    ez = (p.sum((3, 4)) * axis(depth)).sum(-1)
    return torch.stack([ex, ey, ez], -1)


class ConvBlock(nn.Module):
    """Residual block: 2 × (3×3 conv, batch norm), ReLU."""

    def __init__(self, ch: int):
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(ch)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(ch)

    def forward(self, x):
        return Fn.relu(x + self.b2(self.c2(Fn.relu(self.b1(self.c1(x))))))


def _down(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class Backbone(nn.Module):
    """Image ``(B, 3, S, S)`` float → features ``(B, width, S/4, S/4)``; also usable as an
    encoder (``pooled=True``: global-average-pooled ``(B, width)``)."""

    def __init__(self, width: int = 32, blocks: int = 2):
        super().__init__()
        self.stem = nn.Sequential(_down(3, width // 2), _down(width // 2, width))
        self.blocks = nn.Sequential(*[ConvBlock(width) for _ in range(blocks)])
        self.down = nn.Sequential(_down(width, 2 * width), ConvBlock(2 * width))
        self.up = nn.Conv2d(2 * width, width, 1)
        self.post = ConvBlock(width)
        self.width = width

    def forward(self, x: torch.Tensor, pooled: bool = False) -> torch.Tensor:
        f = self.blocks(self.stem(x))
        g = self.down(f)
        f = self.post(f + Fn.interpolate(self.up(g), size=f.shape[-2:], mode="bilinear",
                                         align_corners=False))
        return f.mean((2, 3)) if pooled else f


class HeatmapNet(nn.Module):
    """2D heatmaps + volumetric 3D on a shared :class:`Backbone`.

    Args:
        num_joints: ``J``. width: backbone channels. depth: ``D`` depth bins of the 3D volume.
        extent: half-size of the volume in label units (``x, y, z ∈ [-extent, extent]``).
    ``forward_2d(img) → (xy (B,J,2) crop px, confidence (B,J))``;
    ``forward_3d(img) → (B, J, 3)`` root-relative in label units (joint 0 at the origin).
    Images are uint8 ``(B, 3, S, S)`` or floats from :func:`image_tensor`.
    """

    def __init__(self, num_joints: int = 17, width: int = 32, depth: int = 16,
                 extent: float = 2.5, blocks: int = 2):
        super().__init__()
        self.num_joints, self.depth, self.extent = num_joints, depth, extent
        self.backbone = Backbone(width, blocks)
        self.head2d = nn.Conv2d(width, num_joints, 1)
        self.head3d = nn.Sequential(ConvBlock(width), nn.Conv2d(width, num_joints * depth, 1))

    @staticmethod
    def _img(x):
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3] or x.shape[-1] % 4:
            raise ValueError(f"x: expected images of shape (B, 3, S, S) with S divisible by 4, "
                             f"got shape {tuple(x.shape)}")
        return image_tensor(x) if x.dtype == torch.uint8 else x

    def forward_2d(self, x: torch.Tensor):
        """Images ``(B, 3, S, S)`` → ``(xy (B, J, 2)`` crop pixels, ``confidence (B, J))``."""
        x = self._img(x)
        f = self.backbone(x)
        return soft_argmax_2d(self.head2d(f), stride=x.shape[-1] / f.shape[-1])

    def forward_3d_features(self, f: torch.Tensor) -> torch.Tensor:
        """Backbone features ``(B, width, S/4, S/4)`` → root-relative 3D ``(B, J, 3)``."""
        p = soft_argmax_3d(self.head3d(f), self.depth) * self.extent
        return p - p[:, :1]

    def forward_3d(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, S, S)`` → root-relative 3D ``(B, J, 3)`` in label units."""
        return self.forward_3d_features(self.backbone(self._img(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_3d(x)
