"""Feature Boosting and Suppression (Gao et al., "Dynamic Channel Pruning: Feature Boosting and
Suppression", ICLR 2019): each image runs only the channels that matter for it.

Every convolution l gets a small *saliency predictor*: the global average of its input,
one linear layer and a ReLU give one saliency per output channel (Section 3.2),

    s_l(x) = ReLU(W_s mean_hw(x) + b_s)          (B, C_out)

*Winner-take-all* keeps the k = ceil(d C_out) most salient channels of each image (d the
density) and zeroes the rest; the kept channels are scaled by their saliency (boosted):

    y_l = ReLU(wta_d(s_l(x)) * BN(conv_l(x)))     (B, C_out, H, W)

A lasso on the saliencies, lambda sum_l mean |s_l|, trains the predictors to be sparse.

Public code computes every channel and multiplies by the mask, which saves nothing. Here
`FBSNet.forward` is that masked computation (for training, and as the reference), and
`FBSNet.skipping_forward` computes, image by image, only the kept output channels (the
kept filters, gathered) from only the kept input channels (the matching slices of each
filter): the same numbers, with the MACs of the kept channels only (`FBSNet.macs`).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["check_density", "kept_channels", "winner_take_all", "FBSConv2d", "FBSNet"]


def check_density(density: float) -> float:
    """`density` as a float, or a ValueError: it must lie in (0, 1]."""
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0 < density <= 1:
        raise ValueError(f"density={density!r}: expected a fraction of channels to keep in (0, 1]")
    return float(density)


def kept_channels(channels: int, density: float) -> int:
    """k = ceil(density x channels): how many channels winner-take-all keeps (at least 1)."""
    return max(1, math.ceil(check_density(density) * channels - 1e-9))


def winner_take_all(saliency: torch.Tensor, density: float) -> torch.Tensor:
    """A 0/1 mask of the k = ceil(d C) largest saliencies of each row (ties: the lower index).

    Shape: saliency (B, C) -> mask (B, C), of saliency's dtype.
    """
    if saliency.dim() != 2:
        raise ValueError(f"saliency: expected shape (B, C), got {tuple(saliency.shape)}")
    k = kept_channels(saliency.shape[1], density)
    top = saliency.topk(k, dim=1, sorted=False).indices  # (B, k)
    return torch.zeros_like(saliency).scatter_(1, top, 1.0)


class FBSConv2d(nn.Module):
    """conv -> BatchNorm -> (winner-take-all x saliency) -> ReLU, with a saliency predictor.

    `saliency` is ``nn.Linear(c_in, c_out)`` on the input's channel means; its bias starts
    at 1 so that, untrained, every channel is salient.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, stride: int = 1,
                 density: float = 1.0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride, kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.saliency = nn.Linear(c_in, c_out)
        nn.init.ones_(self.saliency.bias)
        self.density = check_density(density)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """wta_d(s(x)) * s(x): the kept channels' saliencies, 0 elsewhere. (B, C_in, H, W) -> (B, C_out)."""
        s = torch.relu(self.saliency(x.mean((2, 3))))  # (B, C_out)
        return winner_take_all(s.detach(), self.density) * s  # gradient reaches the kept ones

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gate(x)  # (B, C_out)
        self.last_saliency = g
        return torch.relu(g[:, :, None, None] * self.bn(self.conv(x)))  # (B, C_out, H', W')


class FBSNet(nn.Module):
    """A CNN for digits made of `FBSConv2d` layers ("M": 2 x 2 max pooling), then a global
    average pool and a linear classifier.

    Args:
        cfg: output channels per layer, "M" for pooling, e.g. (64, "M", 128, "M", 128).
        density: the fraction of channels each layer keeps per image, in (0, 1].
    """

    def __init__(self, cfg: Sequence = (64, "M", 128, "M", 128), density: float = 1.0,
                 num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        layers, c = [], in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            elif isinstance(v, int) and not isinstance(v, bool) and v > 0:
                layers.append(FBSConv2d(c, v, 3, density=density))
                c = v
            else:
                raise ValueError(f"cfg entry {v!r}: expected a positive channel count or 'M'")
        if not any(isinstance(m, FBSConv2d) for m in layers):
            raise ValueError(f"cfg={tuple(cfg)!r}: expected at least one convolution")
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)
        self.cfg = tuple(cfg)

    @property
    def density(self) -> float:
        return next(m.density for m in self.modules() if isinstance(m, FBSConv2d))

    def set_density(self, density: float) -> "FBSNet":
        """Keep `density` of every layer's channels from now on (no retraining); returns self."""
        density = check_density(density)
        for m in self.modules():
            if isinstance(m, FBSConv2d):
                m.density = density
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The masked computation: every channel computed, the suppressed ones zeroed."""
        x = self.features(x)  # (B, C, H', W')
        return self.classifier(x.mean((2, 3)))  # (B, classes)

    def lasso(self) -> torch.Tensor:
        """sum over layers of the mean |saliency| of the last forward (the paper's L1 term)."""
        return sum(m.last_saliency.abs().mean() for m in self.modules() if isinstance(m, FBSConv2d))

    @torch.no_grad()
    def skipping_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """Logits computed image by image with only the kept channels; (logits, MACs per image).

        Needs eval mode (BatchNorm's running statistics): a skipped channel has no batch to
        take statistics from.
        """
        if self.training:
            raise RuntimeError("skipping_forward: call model.eval() first (BatchNorm must use "
                               "its running statistics)")
        out, macs = [], []
        for image in x:  # (C, H, W)
            logits, n = self._one(image[None])
            out.append(logits)
            macs.append(n)
        return torch.cat(out), macs

    def _one(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """One image: x holds only the channels `idx` of the layer's full input."""
        idx = torch.arange(x.shape[1])
        macs = 0
        for m in self.features:
            if isinstance(m, nn.MaxPool2d):
                x = m(x)
                continue
            W_s = m.saliency.weight[:, idx]  # (C_out, k_in): a skipped channel's mean is 0
            s = torch.relu(x.mean((2, 3)) @ W_s.T + m.saliency.bias)  # (1, C_out)
            keep = winner_take_all(s, m.density)[0].nonzero().flatten()  # (k_out,)
            macs += len(idx) * s.shape[1]  # the predictor, on the kept inputs
            W = m.conv.weight[keep][:, idx]  # (k_out, k_in, K, K): only these filters, slices
            y = F.conv2d(x, W, None, m.conv.stride, m.conv.padding)  # (1, k_out, H', W')
            macs += W.numel() * y.shape[2] * y.shape[3]
            bn = m.bn
            scale = bn.weight[keep] / torch.sqrt(bn.running_var[keep] + bn.eps)
            y = (y - bn.running_mean[keep, None, None]) * scale[:, None, None] + bn.bias[keep, None, None]
            x = torch.relu(s[0, keep, None, None] * y)
            idx = keep
        macs += len(idx) * self.classifier.out_features
        logits = x.mean((2, 3)) @ self.classifier.weight[:, idx].T + self.classifier.bias
        return logits, macs
