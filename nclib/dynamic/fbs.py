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

__all__ = ["check_density", "kept_channels", "winner_take_all", "FBSConv2d", "FBSNet", "SkippingFBS"]


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


def _check_cfg(cfg: Sequence) -> None:
    for v in cfg:
        if v != "M" and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"cfg entry {v!r}: expected a positive channel count or 'M'")
    if not any(v != "M" for v in cfg):
        raise ValueError(f"cfg={tuple(cfg)!r}: expected at least one convolution")


class FBSNet(nn.Module):
    """A CNN for digits made of `FBSConv2d` layers ("M": 2 x 2 max pooling), then a linear
    classifier on the flattened last feature map: `nclib.models.SmallVGG` with FBS.

    Args:
        cfg: output channels per layer, "M" for pooling, e.g. (64, "M", 128, "M", 128).
        density: the fraction of channels each layer keeps per image, in (0, 1].
    """

    def __init__(self, cfg: Sequence = (64, "M", 128, "M", 128), density: float = 1.0,
                 num_classes: int = 10, in_channels: int = 1, input_size: int = 28):
        super().__init__()
        _check_cfg(cfg)
        layers, c, size = [], in_channels, input_size
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                size //= 2
            else:
                layers.append(FBSConv2d(c, v, 3, density=density))
                c = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c * size * size, num_classes)
        self.cfg = tuple(cfg)

    @classmethod
    def from_plain(cls, cnn: nn.Module, density: float = 1.0) -> "FBSNet":
        """An FBS network with the convolutions, BatchNorms and classifier of `cnn` (a
        `nclib.models.SmallVGG`), ready to fine-tune.

        The predictors' weights start at zero and their biases at 1 + 0.001 r / C, r the rank
        of the filter's L1 norm (Li et al. 2017): every image then keeps the same channels,
        the ones L1 filter pruning would keep, each scaled by a saliency within 0.1% of 1.
        FBS starts where static pruning starts, and fine-tuning makes the choice per image.
        """
        features = getattr(cnn, "features", None)
        plain = [m for m in features if isinstance(m, nn.Conv2d)] if features is not None else []
        if not plain or not isinstance(getattr(cnn, "classifier", None), nn.Linear):
            raise ValueError(f"cnn: expected a SmallVGG-like network (features of conv, BN, ReLU "
                             f"and pooling, a Linear classifier), got {type(cnn).__name__}")
        size = round((cnn.classifier.in_features / plain[-1].out_channels) ** 0.5)
        size *= 2 ** sum(isinstance(m, nn.MaxPool2d) for m in cnn.features)
        net = cls(cnn.cfg, density, cnn.classifier.out_features, plain[0].in_channels, size)
        norms = [m for m in cnn.features if isinstance(m, nn.BatchNorm2d)]
        for conv, bn, m in zip(plain, norms, (m for m in net.features if isinstance(m, FBSConv2d))):
            m.conv.load_state_dict(conv.state_dict())
            m.bn.load_state_dict(bn.state_dict())
            nn.init.zeros_(m.saliency.weight)
            rank = conv.weight.detach().abs().flatten(1).sum(1).argsort().argsort()  # 0: smallest
            m.saliency.bias.data = 1 + 1e-3 * rank.float() / len(rank)
        net.classifier.load_state_dict(cnn.classifier.state_dict())
        return net

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
        return self.classifier(x.flatten(1))  # (B, classes)

    def lasso(self) -> torch.Tensor:
        """sum over layers of the mean |saliency| of the last forward (the paper's L1 term)."""
        return sum(m.last_saliency.abs().mean() for m in self.modules() if isinstance(m, FBSConv2d))

    def skipping_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """Logits computed image by image with only the kept channels; (logits, MACs per image).
        Needs eval mode: see `SkippingFBS`, which this builds for one call."""
        return SkippingFBS(self).forward_with_macs(x)


class SkippingFBS(nn.Module):
    """An FBS network's inference that computes only the kept channels, as a module.

    It snapshots the network in eval mode: each BatchNorm is folded into its filters
    (w' = w gamma / sigma, b' = beta - gamma mu / sigma), since a skipped channel has no
    batch to take statistics from; build a new one after changing weights or density.
    Per image and layer it predicts the saliencies from the kept input channels, keeps the
    top k, gathers those filters' slices of the kept inputs and convolves: the numbers of
    the masked `FBSNet.forward`, with the MACs of the kept channels only.
    """

    def __init__(self, net: FBSNet, cache_size: int = 16):
        super().__init__()
        self.cache_size = cache_size  # gathered filters kept per layer (see `_gathered`)
        if net.training:
            raise RuntimeError("SkippingFBS: call model.eval() first (BatchNorm must use its "
                               "running statistics)")
        self.layers = []
        with torch.no_grad():
            for m in net.features:
                if not isinstance(m, FBSConv2d):
                    self.layers.append(m)  # pooling
                    continue
                bn = m.bn
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
                self.layers.append(dict(
                    weight=m.conv.weight * scale[:, None, None, None],  # (C_out, C_in, K, K)
                    bias=bn.bias - bn.running_mean * scale,  # (C_out,)
                    saliency_t=m.saliency.weight.t().contiguous(),  # (C_in, C_out): rows gather fast
                    saliency_bias=m.saliency.bias.clone(),
                    k=kept_channels(m.conv.out_channels, m.density),
                    stride=m.conv.stride, padding=m.conv.padding))
            C = [m for m in net.features if isinstance(m, FBSConv2d)][-1].conv.out_channels
            w = net.classifier.weight  # (classes, C x H' x W'): channel c's H'W' inputs in a row
            self.classifier_t = w.view(w.shape[0], C, -1).permute(1, 2, 0).contiguous()  # (C, H'W', classes)
            self.classifier_bias = net.classifier.bias.clone()
        self._cache: list[dict] = [{} for _ in self.layers]
        self.hits = self.misses = 0

    def _gathered(self, i: int, key: tuple, build):
        """Layer i's gathered tensors for the channel sets `key`, built once: images that keep
        the same channels (often, here) reuse them. At most `cache_size` per layer, oldest
        dropped first; the numbers are the same either way."""
        cache = self._cache[i]
        hit = cache.get(key)
        if hit is None:
            self.misses += 1
            hit = build()
            if len(cache) >= self.cache_size:
                cache.pop(next(iter(cache)))
            if self.cache_size:
                cache[key] = hit
        else:
            self.hits += 1
        return hit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_macs(x)[0]

    @torch.no_grad()
    def forward_with_macs(self, x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """(logits (B, classes), the MACs each image ran)."""
        out, macs = [], []
        for image in x:  # (C, H, W)
            logits, n = self._one(image[None])
            out.append(logits)
            macs.append(n)
        return torch.cat(out), macs

    def _one(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """One image: x holds only the channels `idx` of the layer's full input."""
        idx = torch.arange(x.shape[1])
        idx_key: tuple = ("all", x.shape[1])
        macs = 0
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, dict):  # oneDNN's pooling is ~6x faster channels-last
                x = layer(x.contiguous(memory_format=torch.channels_last))
                continue
            W_s = self._gathered(i, (idx_key,), lambda: layer["saliency_t"].index_select(0, idx))  # (k_in, C_out)
            s = torch.relu(torch.addmv(layer["saliency_bias"], W_s.t(), x.mean((0, 2, 3))))  # (C_out,)
            keep = s.topk(layer["k"], sorted=False).indices.sort().values  # (k_out,) winner-take-all
            keep_key = tuple(keep.tolist())
            macs += W_s.numel()  # the predictor, on the kept inputs
            W, b = self._gathered(i, (idx_key, keep_key), lambda: (  # (k_out, k_in, K, K), (k_out,)
                layer["weight"].index_select(0, keep).index_select(1, idx), layer["bias"].index_select(0, keep)))
            y = F.conv2d(x, W, b, layer["stride"], layer["padding"])
            macs += W.numel() * y.shape[2] * y.shape[3]  # (1, k_out, H', W') computed
            x = y.mul_(s.index_select(0, keep)[:, None, None]).relu_()  # boosted by saliency
            idx, idx_key = keep, keep_key
        W_c = self._gathered(len(self.layers) - 1, ("classifier", idx_key),
                             lambda: self.classifier_t.index_select(0, idx).flatten(0, 1))  # (k H'W', classes)
        macs += W_c.numel()
        return torch.addmv(self.classifier_bias, W_c.t(), x[0].flatten())[None], macs
