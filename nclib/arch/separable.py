"""Depthwise separable convolution and the cost formulas behind it.

Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications" (arXiv 1704.04861, 2017), section 3.1; the factorization itself is from
Sifre, "Rigid-Motion Scattering for Image Classification" (PhD thesis, 2014).

A standard K x K convolution from C_in to C_out channels is split into a depthwise K x K
convolution (one filter per input channel, ``groups=C_in``) and a pointwise 1 x 1
convolution that mixes the channels. In the lecture's notation, on an output of H x W:

    layer      filter                 params           MACs
    standard   K x K x C_in x C_out   K^2 C_in C_out   K^2 C_in C_out H W              (eq. 2)
    depthwise  K x K x 1 x C_in       K^2 C_in         K^2 C_in H W                    (eq. 4)
    pointwise  1 x 1 x C_in x C_out   C_in C_out       C_in C_out H W
    separable  depthwise + pointwise                   K^2 C_in H W + C_in C_out H W   (eq. 5)
    (depthwise + pointwise) / standard = eq. 5 / eq. 2 = 1 / C_out + 1 / K^2

The paper writes D_K for K, M for C_in, N for C_out and D_F x D_F for the feature map.
Worked example of the lecture: 3 x 3 x 2 x 4 = 72 parameters become 3*3*2 + 2*4 = 18 + 8 = 26.
Biases are left out (bias=False), as in the paper: a BatchNorm follows every convolution.

Shapes use B (batch), C (channels), H, W (height, width of the output), K (kernel size).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["conv_params", "depthwise_params", "pointwise_params", "conv_macs", "depthwise_macs",
           "pointwise_macs", "separable_ratio", "merge_separable_weights",
           "DepthwiseSeparableConv"]


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name}={value!r}: expected a positive integer")
        if value < 1:
            raise ValueError(f"{name}={value!r}: expected a positive integer (>= 1)")


# ---------------------------------------------------------------- parameters (bias=False)
def conv_params(kernel_size: int, c_in: int, c_out: int) -> int:
    """Weights of a standard convolution, K x K x C_in x C_out.

    Example:
        >>> conv_params(3, 2, 4)  # the lecture's example
        72
    """
    _check_sizes(kernel_size=kernel_size, c_in=c_in, c_out=c_out)
    return kernel_size * kernel_size * c_in * c_out  # K^2 C_in C_out


def depthwise_params(kernel_size: int, c_in: int) -> int:
    """Weights of a depthwise convolution, K x K x 1 x C_in (one K x K filter per channel).

    Example:
        >>> depthwise_params(3, 2)
        18
    """
    _check_sizes(kernel_size=kernel_size, c_in=c_in)
    return kernel_size * kernel_size * c_in  # K^2 C_in


def pointwise_params(c_in: int, c_out: int) -> int:
    """Weights of a pointwise (1 x 1) convolution, 1 x 1 x C_in x C_out.

    Example:
        >>> pointwise_params(2, 4)
        8
    """
    _check_sizes(c_in=c_in, c_out=c_out)
    return c_in * c_out  # C_in C_out


# ---------------------------------------------------------------- MACs of one sample
def conv_macs(kernel_size: int, c_in: int, c_out: int, out_h: int, out_w: int) -> int:
    """MACs of a standard convolution: every one of the C_out x H x W outputs sums K^2 C_in
    products (paper eq. 2). `out_h` and `out_w` are the OUTPUT size, so any stride and
    padding are covered."""
    _check_sizes(out_h=out_h, out_w=out_w)
    return conv_params(kernel_size, c_in, c_out) * out_h * out_w  # K^2 C_in C_out H W


def depthwise_macs(kernel_size: int, c_in: int, out_h: int, out_w: int) -> int:
    """MACs of a depthwise convolution: each of the C_in x H x W outputs sums K^2 products
    of its own channel only (paper eq. 4)."""
    _check_sizes(out_h=out_h, out_w=out_w)
    return depthwise_params(kernel_size, c_in) * out_h * out_w  # K^2 C_in H W


def pointwise_macs(c_in: int, c_out: int, out_h: int, out_w: int) -> int:
    """MACs of a pointwise convolution: each of the C_out x H x W outputs sums C_in products
    (the second term of paper eq. 5)."""
    _check_sizes(out_h=out_h, out_w=out_w)
    return pointwise_params(c_in, c_out) * out_h * out_w  # C_in C_out H W


def separable_ratio(kernel_size: int, c_out: int) -> float:
    """Cost of depthwise + pointwise over a standard convolution: 1/C_out + 1/K^2.

    It is the same for parameters and for MACs. For MACs it holds when the depthwise layer
    has the standard layer's stride and padding, so both produce the same H x W output
    (the pointwise layer keeps that size): then H W cancels,
    (K^2 C_in H W + C_in C_out H W) / (K^2 C_in C_out H W) = 1/C_out + 1/K^2
    (paper eq. 5 over eq. 2).
    C_in cancels too, so it does not appear.

    Example:
        >>> round(separable_ratio(3, 4), 4)  # 26 / 72
        0.3611
    """
    _check_sizes(kernel_size=kernel_size, c_out=c_out)
    return 1 / c_out + 1 / kernel_size ** 2


def merge_separable_weights(depthwise_weight: torch.Tensor,
                            pointwise_weight: torch.Tensor) -> torch.Tensor:
    """The standard convolution kernel that equals depthwise then pointwise (no BN/ReLU between).

    W[o, i] = P[o, i] * D[i]: a separable layer is a standard layer whose C_out x C_in
    kernels are constrained to share one K x K filter per input channel.

    Shape:
        depthwise_weight: (C_in, 1, K, K); pointwise_weight: (C_out, C_in, 1, 1);
        returns (C_out, C_in, K, K).
    """
    c_in = depthwise_weight.shape[0]
    if depthwise_weight.ndim != 4 or depthwise_weight.shape[1] != 1 \
            or pointwise_weight.shape[1:] != (c_in, 1, 1):
        raise ValueError(f"depthwise_weight {tuple(depthwise_weight.shape)}, pointwise_weight "
                         f"{tuple(pointwise_weight.shape)}: expected (C_in, 1, K, K) and "
                         "(C_out, C_in, 1, 1) with the same C_in")
    D = depthwise_weight[:, 0]  # (C_in, K, K)
    P = pointwise_weight[:, :, 0, 0]  # (C_out, C_in)
    return P[:, :, None, None] * D[None]  # (C_out, C_in, K, K)


class DepthwiseSeparableConv(nn.Module):
    """Depthwise K x K convolution (groups=C_in), then pointwise 1 x 1, each optionally
    followed by BatchNorm and ReLU as in MobileNet (Howard et al. 2017, Figure 3).

    Args:
        c_in, c_out: input and output channels.
        kernel_size, stride, padding: of the depthwise layer; padding None means
            kernel_size // 2, which keeps H x W at stride 1 for odd K (like a standard
            3 x 3 convolution with padding 1).
        bias: give both convolutions a bias (off by default: BatchNorm has one).
        batch_norm, relu: add BatchNorm2d and ReLU after each of the two convolutions.
        device: where the parameters live.

    Example:
        >>> block = DepthwiseSeparableConv(2, 4, 3, batch_norm=False, relu=False)
        >>> sum(p.numel() for p in block.parameters())  # 18 + 8 instead of 72
        26
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, *, bias: bool = False, batch_norm: bool = True,
                 relu: bool = True, device: str | torch.device | None = None):
        super().__init__()
        _check_sizes(c_in=c_in, c_out=c_out, kernel_size=kernel_size, stride=stride)
        if padding is None:
            padding = kernel_size // 2
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding={padding!r}: expected a non-negative integer or None")
        self.depthwise = nn.Conv2d(c_in, c_in, kernel_size, stride, padding, groups=c_in,
                                   bias=bias, device=device)  # K x K x 1 x C_in
        self.bn1 = nn.BatchNorm2d(c_in, device=device) if batch_norm else nn.Identity()
        # 1 x 1 x C_in x C_out
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=bias, device=device)
        self.bn2 = nn.BatchNorm2d(c_out, device=device) if batch_norm else nn.Identity()
        self.act = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.depthwise(x)))  # (B, C_in, H, W): each channel filtered alone
        return self.act(self.bn2(self.pointwise(x)))  # (B, C_out, H, W): channels mixed
