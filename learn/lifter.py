"""2D→3D lifting network (Martinez et al. 2017; the EpipolarPose refinement unit).

:class:`Lifter` maps per-joint 2D features ``(B, W, J, F)`` (``W`` frames of
:func:`learn.data.lifter_features`: root-centred, size-normalised ``u, v`` and a confidence) to
a root-relative 3D pose ``(B, J, 3)`` in the camera's axes (x right, y down, z forward), in the
units of its training labels (scale-normalised in this project). Architecture: linear →
``num_blocks`` residual blocks of two (linear, batch norm, ReLU, dropout) layers → linear, the
root fixed at the origin.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["ResidualBlock", "Lifter"]


class ResidualBlock(nn.Module):
    """``x + f(x)`` with ``f`` = 2 × (Linear, BatchNorm1d, ReLU, Dropout), width ``hidden``."""

    def __init__(self, hidden: int, dropout: float = 0.25):
        super().__init__()
        self.f = nn.Sequential(
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)


class Lifter(nn.Module):
    """Residual MLP lifter.

    Args:
        num_joints: ``J``. window: ``W`` input frames (1 = single frame). in_features: ``F``
            per joint and frame (3: ``u, v, confidence``). hidden: width (1024 in the paper).
        num_blocks: residual blocks (2 in the paper). dropout: per layer (0.25 here, 0.5 in
            the paper). root: joint pinned at the origin of the output.
    Input ``(B, W, J, F)`` (or ``(B, J, F)`` when ``W = 1``); output ``(B, J, 3)``.
    """

    def __init__(self, num_joints: int = 17, window: int = 1, in_features: int = 3,
                 hidden: int = 1024, num_blocks: int = 2, dropout: float = 0.25, root: int = 0):
        super().__init__()
        if num_joints < 1 or window < 1 or hidden < 1 or num_blocks < 0:
            raise ValueError(f"num_joints/window/hidden/num_blocks: expected positive sizes, got "
                             f"{num_joints}/{window}/{hidden}/{num_blocks}")
        self.num_joints, self.window, self.in_features, self.root = num_joints, window, \
            in_features, root
        self.inp = nn.Sequential(nn.Linear(window * num_joints * in_features, hidden),
                                 nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout))
        self.blocks = nn.Sequential(*[ResidualBlock(hidden, dropout) for _ in range(num_blocks)])
        self.out = nn.Linear(hidden, num_joints * 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        expect = (self.window, self.num_joints, self.in_features)
        if x.dim() == 3 and self.window == 1:
            x = x[:, None]
        if tuple(x.shape[1:]) != expect:
            raise ValueError(f"x: expected shape (B, {expect[0]}, {expect[1]}, {expect[2]}), "
                             f"got shape {tuple(x.shape)}")
        y = self.out(self.blocks(self.inp(x.reshape(B, -1)))).reshape(B, self.num_joints, 3)
        return y - y[:, self.root:self.root + 1]
