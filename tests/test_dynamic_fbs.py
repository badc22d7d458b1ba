"""nclib.dynamic.fbs: winner-take-all, the masked network, and skipping that equals masking."""
import math

import pytest
import torch
from torch import nn

from nclib import measure
from nclib.dynamic import FBSConv2d, FBSNet, SkippingFBS, kept_channels, winner_take_all


def _trained_like(net: FBSNet, seed: int = 0) -> FBSNet:
    """Random BatchNorm statistics and affine terms, saliency weights that differ per image."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.weight.copy_(1 + 0.2 * torch.randn(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
            if isinstance(m, FBSConv2d):
                m.saliency.weight.copy_(torch.randn(m.saliency.weight.shape, generator=g))
                m.saliency.bias.copy_(0.5 * torch.randn(m.saliency.bias.shape, generator=g))
    return net.eval()


def test_kept_channels_is_the_ceiling_of_density_times_channels():
    """k = ceil(d C), at least 1; d = 1 keeps all."""
    assert kept_channels(128, 0.7) == math.ceil(0.7 * 128) == 90
    assert kept_channels(10, 0.25) == 3 and kept_channels(10, 1.0) == 10 and kept_channels(3, 0.01) == 1
    assert kept_channels(10, 0.3) == 3  # 0.3 x 10 is 3.0000000000000004 in floats


def test_winner_take_all_keeps_the_largest_of_each_row():
    """Hand-worked rows; the mask has k ones per row, at the top-k saliencies."""
    s = torch.tensor([[0.1, 0.9, 0.5, 0.3], [4.0, 1.0, 2.0, 3.0]])
    assert winner_take_all(s, 0.5).tolist() == [[0, 1, 1, 0], [1, 0, 0, 1]]
    r = torch.rand(6, 37, generator=torch.Generator().manual_seed(0))
    mask = winner_take_all(r, 0.3)
    assert (mask.sum(1) == 12).all()
    assert (r[mask.bool()].view(6, 12).min(1).values >= r[~mask.bool()].view(6, 25).max(1).values).all()


@pytest.mark.parametrize("density", [0, -0.5, 1.5, True, "half"])
def test_a_density_outside_0_1_is_a_clear_error(density):
    """Density must lie in (0, 1], for the layer, the net and set_density."""
    with pytest.raises(ValueError, match="density="):
        FBSNet(density=density)
    with pytest.raises(ValueError, match="density="):
        FBSNet().set_density(density)


@pytest.mark.parametrize("density", [1.0, 0.7, 0.5, 0.25, 0.05])
def test_skipping_equals_masking_on_random_inputs(density):
    """Only the kept channels, gathered image by image, give the masked logits (max |diff| < 1e-5)."""
    torch.manual_seed(0)
    net = _trained_like(FBSNet((16, "M", 24, "M", 32), density=density))
    x = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        masked = net(x)
    skipped, macs = net.skipping_forward(x)
    assert (masked - skipped).abs().max() < 1e-5
    assert len(macs) == 6


def test_masking_zeroes_the_suppressed_channels():
    """Each FBS layer's output has at most k nonzero channels per image."""
    torch.manual_seed(0)
    layer = _trained_like(FBSNet((20,), density=0.25)).features[0]
    y = layer(torch.randn(4, 1, 12, 12))
    nonzero = (y.abs().sum((2, 3)) > 0).sum(1)
    assert (nonzero <= kept_channels(20, 0.25)).all()


def test_macs_are_the_kept_ones_and_dense_at_density_one():
    """At d = 1 the skipping MACs equal nclib.measure's count of the masked net; at d = 0.5 the
    kept channels' count by hand (k_out x k_in x 9 x H x W per conv, predictors, the classifier on k x 7 x 7)."""
    torch.manual_seed(0)
    net = _trained_like(FBSNet((16, "M", 32, "M", 32), density=1.0))
    x = torch.randn(3, 1, 28, 28)
    dense = measure.count_macs(net, (1, 28, 28)).total  # convs, predictors and the classifier
    assert net.skipping_forward(x)[1] == [dense] * 3
    convs = 8 * 1 * 9 * 28 * 28 + 16 * 8 * 9 * 14 * 14 + 16 * 16 * 9 * 7 * 7
    predictors = 1 * 16 + 8 * 32 + 16 * 32  # on the kept inputs only
    assert net.set_density(0.5).skipping_forward(x)[1] == [convs + predictors + 16 * 49 * 10] * 3


def test_skipping_needs_eval_mode_and_lasso_follows_the_last_forward():
    """skipping_forward refuses training mode; lasso is the summed mean |saliency| of the last pass."""
    net = FBSNet((8, "M", 8), density=0.5)
    with pytest.raises(RuntimeError, match="eval"):
        net.skipping_forward(torch.zeros(1, 1, 28, 28))
    net(torch.randn(2, 1, 28, 28))
    layers = [m for m in net.modules() if isinstance(m, FBSConv2d)]
    assert net.lasso().item() == pytest.approx(sum(m.last_saliency.abs().mean().item() for m in layers))
    net.lasso().backward()
    assert layers[0].saliency.weight.grad is not None


def test_a_net_needs_a_convolution():
    """A cfg of pooling alone is a clear error."""
    with pytest.raises(ValueError, match="at least one convolution"):
        FBSNet(("M",))


def test_from_plain_starts_where_l1_filter_pruning_starts():
    """From a SmallVGG: at density 1 nearly its outputs; at 0.5 every image keeps the largest-L1 filters."""
    from nclib.models import SmallVGG
    from nclib.pruning.structured import l1_filter_scores

    torch.manual_seed(0)
    vgg = SmallVGG((8, "M", 16)).eval()
    net = FBSNet.from_plain(vgg).eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(net(x), vgg(x), rtol=2e-3, atol=1e-3)
        net.set_density(0.5)(x)
    first = net.features[0]
    kept = first.last_saliency > 0  # (B, 8)
    top = l1_filter_scores(vgg.features[0].weight).topk(4).indices
    assert (kept.sum(1) == 4).all() and kept[:, top].all()
    with pytest.raises(ValueError, match="SmallVGG-like"):
        FBSNet.from_plain(nn.Sequential(nn.Conv2d(1, 4, 3)))


def test_skipping_module_refuses_training_mode_and_keeps_the_net_as_it_was():
    """SkippingFBS needs eval mode; measuring its latency leaves the wrapped net in eval mode."""
    net = FBSNet((8, "M", 8), density=0.5)
    with pytest.raises(RuntimeError, match="eval"):
        SkippingFBS(net)
    net.eval()
    measure.measure_latency(SkippingFBS(net), (1, 28, 28), repeats=2, warmup=0)
    assert not net.training
