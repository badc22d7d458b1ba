"""nclib.pruning.structured: L1 filters, ThiNet and network slimming against references and by hand."""
import itertools

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from nclib import models
from nclib.pruning import structured as S
from nclib.pruning import channels, surgery


def _tiny_vgg(seed=0):
    """conv(1->8) BN ReLU pool conv(8->8) BN ReLU pool, Linear: small, with filters of very
    different sizes in the first conv (so the L1 norm says something) and identity-like BNs."""
    torch.manual_seed(seed)
    model = models.SmallVGG(cfg=(8, "M", 8, "M")).eval()
    g = torch.Generator().manual_seed(seed)
    sizes = torch.tensor([0.05, 1.0, 0.1, 2.0, 0.3, 1.5, 0.02, 0.7])
    with torch.no_grad():
        model.features[0].weight.mul_(sizes[:, None, None, None])
    inputs = torch.rand(32, 1, 28, 28, generator=g)
    return model, inputs


def test_l1_scores_match_torch_ln_structured():
    """L1 filter scores are per-filter L1 norms, and the kept filters match torch's ln_structured(n=1)."""
    conv = nn.Conv2d(4, 10, 3)
    scores = S.l1_filter_scores(conv.weight)
    assert torch.allclose(scores, torch.linalg.vector_norm(conv.weight.flatten(1), ord=1, dim=1))
    model = models.SmallVGG()
    reference = nn.Conv2d(16, 32, 3)
    reference.weight = nn.Parameter(model.features[7].weight.detach().clone())
    torch_prune.ln_structured(reference, "weight", amount=0.25, n=1, dim=0)
    kept_by_torch = reference.weight_mask.flatten(1).any(1).nonzero().flatten()
    kept = S.L1FilterPruner().compute_keep(model, "features.7", S.num_kept(32, 0.25))
    assert torch.equal(kept, kept_by_torch)


def test_num_kept_by_hand():
    """C - round(sparsity * C), never below one channel; round_to gives the nearest multiple."""
    assert [S.num_kept(16, s) for s in (0.0, 0.3, 0.5, 0.99)] == [16, 11, 8, 1]
    assert [S.num_kept(c, 0.3, round_to=8) for c in (16, 32, 64, 4)] == [8, 24, 48, 4]
    assert S.num_kept(16, 0.99, round_to=8) == 8
    with pytest.raises(ValueError, match=r"sparsity=1.*\[0, 1\)"):
        S.num_kept(16, 1)
    with pytest.raises(ValueError, match="round_to=0"):
        S.num_kept(16, 0.5, round_to=0)


def _each_row_found(rows, table):
    """Every row of `rows` equals (to float precision) some row of `table`."""
    distance = (rows[:, None, :] - table[None, :, :]).abs().amax(-1)  # (N, M)
    return bool(torch.all(distance.min(1).values < 1e-5))


def test_channel_contributions_sum_to_the_next_layers_outputs():
    """Each sampled row holds the per-channel shares of one real output (conv and Linear readers)."""
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 5, 5, generator=g)
    contributions, targets = S.channel_contributions(conv, x, num_samples=50)
    with torch.no_grad():  # every channel alone, bias removed: (B, O, H, W, C)
        only = [x * (torch.arange(3) == c).view(1, 3, 1, 1) for c in range(3)]
        alone = torch.stack([conv(xc) - conv.bias.view(1, 4, 1, 1) for xc in only], -1)
        alone = alone.reshape(-1, 3)
    assert _each_row_found(contributions, alone)
    assert torch.allclose(targets, contributions.sum(1))
    linear = nn.Linear(3 * 4, 5)
    x = torch.randn(6, 12, generator=g)
    contributions, _ = S.channel_contributions(linear, x, num_samples=40, inputs_per_channel=4)
    with torch.no_grad():
        alone = torch.stack([(x * (torch.arange(12) // 4 == c)) @ linear.weight.T
                             for c in range(3)], -1)
    assert _each_row_found(contributions, alone.reshape(-1, 3))


def test_thinet_select_by_hand():
    """Greedy removal: first the channel of least error, then the one that best cancels it."""
    # channel 0 = [1, 1], channel 1 = [-0.9, -0.9], channel 2 = [0.5, -0.5] (two samples)
    contributions = torch.tensor([[1.0, -0.9, 0.5], [1.0, -0.9, -0.5]])
    # removing alone: errors 2, 1.62, 0.5 -> remove 2; then with [0.5, -0.5]:
    # channel 0 -> 1.5^2 + 0.5^2 = 2.5, channel 1 -> 0.4^2 + 1.4^2 = 2.12 -> remove 1
    assert S.thinet_select(contributions, 2).tolist() == [0, 1]
    assert S.thinet_select(contributions, 1).tolist() == [0]
    # greedy is not optimal: channels 0 and 1 cancel (removing both costs 0), but greedy
    # first removes the small channel 3 (0.14), then channel 1 (5.94 < 6.34 for channel 0)
    cancel = torch.tensor([[1.0, -1.0, 3.0, 0.2], [2.0, -2.0, 3.0, 0.1], [-1.0, 1.0, 3.0, 0.3]])
    assert S.thinet_select(cancel, 2).tolist() == [0, 2]


def test_thinet_select_is_near_the_best_subset():
    """On tiny random cases the greedy set is often the best subset (brute force), within 10% on average."""
    g = torch.Generator().manual_seed(0)
    ratios = []
    for _ in range(10):
        contributions = torch.randn(20, 6, generator=g)
        keep = S.thinet_select(contributions, 3)
        def error(kept):
            return float(((contributions.sum(1) - contributions[:, list(kept)].sum(1)) ** 2).sum())
        best = min(error(k) for k in itertools.combinations(range(6), 3))
        ratios.append(error(keep.tolist()) / best)
    assert min(ratios) == pytest.approx(1.0) and np.mean(ratios) < 1.1


def test_thinet_scales_match_numpy_lstsq():
    """ThiNet's rescaling is the least-squares solution (numpy.linalg.lstsq; normal equations hold)."""
    g = torch.Generator().manual_seed(0)
    contributions = torch.randn(200, 6, generator=g)
    keep = torch.tensor([0, 2, 3, 5])
    scales = S.thinet_scales(contributions, keep)
    X, y = contributions[:, keep].double().numpy(), contributions.sum(1).double().numpy()
    reference = np.linalg.lstsq(X, y, rcond=None)[0]
    assert np.allclose(scales.numpy(), reference, atol=1e-5)
    residual = y - X @ scales.double().numpy()
    assert np.allclose(X.T @ residual, 0, atol=1e-3)


def test_thinet_beats_l1_beats_random_on_a_tiny_example():
    """Next-layer reconstruction error: ThiNet (rescaled) <= ThiNet <= L1 <= random, at 50% of a conv."""
    model, inputs = _tiny_vgg()
    errors = {}
    for label, pruner in [("thinet", S.ThiNetPruner(inputs, num_samples=2000)),
                          ("thinet_plain", S.ThiNetPruner(inputs, num_samples=2000, rescale=False)),
                          ("l1", S.L1FilterPruner()), ("random", S.RandomFilterPruner(seed=0))]:
        keep = pruner.compute_keep(model, "features.0", 4).sort().values
        errors[label] = S.reconstruction_error(model, "features.0", keep, inputs,
                                               pruner.compute_scales(model, "features.0", keep))
    assert errors["thinet"] <= errors["thinet_plain"] <= errors["l1"] <= errors["random"]
    assert errors["random"] > 0


def test_prune_returns_smaller_copies():
    """prune_* give copies with num_kept channels per layer; the original is unchanged; outputs run."""
    model, inputs = _tiny_vgg()
    before = model.features[0].weight.detach().clone()
    for pruned in [S.prune_l1_filters(model, 0.5), S.prune_random_filters(model, 0.5, seed=1),
                   S.prune_thinet(model, 0.5, inputs, num_samples=500)]:
        assert pruned.cfg == (4, "M", 4, "M")
        assert pruned(inputs).shape == (32, 10)
    assert torch.equal(before, model.features[0].weight)
    only = S.prune_l1_filters(model, 0.25, layers=["features.4"])
    assert only.cfg == (8, "M", 6, "M")
    assert S.prune_l1_filters(model, 0.4, round_to=4).cfg == (4, "M", 4, "M")  # 5 -> 4


def test_thinet_prune_equals_masked_rescaled_original():
    """prune_thinet's model equals zero_channels with the same kept channels and scales."""
    model, inputs = _tiny_vgg()
    pruner = S.ThiNetPruner(inputs, num_samples=1000)
    keep = pruner.compute_keep(model, "features.0", 4)
    scales = pruner.compute_scales(model, "features.0", keep)
    masked = surgery.zero_channels(model, {"features.0": keep}, {"features.0": scales})
    small = pruner.prune(model, 0.5, layers=["features.0"])
    torch.testing.assert_close(small(inputs), masked(inputs), rtol=1e-5, atol=1e-5)


def test_bn_l1_penalty_and_slimming_loss_gradient():
    """Penalty = sum |gamma| of prunable BNs; the loss adds strength * sign(gamma) to gamma's gradient."""
    model = models.SmallResNet()
    with torch.no_grad():
        for block in model.blocks:
            block.bn1.weight.uniform_(-1, 1)
    expected = sum(b.bn1.weight.abs().sum() for b in model.blocks)
    assert torch.allclose(S.bn_l1_penalty(model), expected)
    loss_fn = S.SlimmingLoss(model, strength=0.5)
    logits, y = torch.zeros(2, 10), torch.tensor([1, 2])
    loss_fn(logits, y).backward()
    assert torch.allclose(model.blocks[0].bn1.weight.grad, 0.5 * model.blocks[0].bn1.weight.sign())
    assert model.blocks[0].bn2.weight.grad is None  # a BN before the residual sum is left alone
    with pytest.raises(ValueError, match="BatchNorm2d.*LeNet5, layer 'conv1' has none"):
        S.SlimmingLoss(models.LeNet5())


def test_slimming_plan_global_threshold_with_min_channels():
    """One global |gamma| threshold over all layers; a layer never drops below min_channels."""
    model = models.SmallVGG()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g))
        model.features[4].weight.mul_(1e-3)  # this layer would lose every channel
    plan = S.slimming_plan(model, 0.4, min_channels=3)
    largest = torch.topk(model.features[4].weight.abs(), 3).indices.sort().values
    assert plan["features.3"].tolist() == largest.tolist()
    kept, removed = [], []
    for name, idx in plan.items():
        if name == "features.3":
            continue
        gamma = model.get_submodule(channels.coupling(model, name).bn).weight.abs()
        mask = torch.zeros_like(gamma, dtype=torch.bool)
        mask[idx] = True
        kept.append(gamma[mask]), removed.append(gamma[~mask])
    assert torch.cat(removed).max() <= torch.cat(kept).min()
    total = sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    kept_total = sum(idx.numel() for idx in plan.values())
    assert kept_total == total - round(0.4 * total) + 3  # the guard adds back 3 channels
    small = S.prune_slimming(model, 0.4, min_channels=3)
    assert small.features[3].out_channels == 3
    with pytest.raises(ValueError, match="min_channels=0"):
        S.slimming_plan(model, 0.4, min_channels=0)


def _forked():
    """A conv whose channels two convs read (ThiNet cannot judge them by one reader)."""
    class Forked(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Sequential(nn.Conv2d(1, 4, 3)))
            self.a, self.b = nn.Conv2d(4, 2, 1), nn.Conv2d(4, 2, 1)

        def forward(self, x):
            x = self.features(x)
            return (self.a(x) + self.b(x)).mean((1, 2, 3))
    return Forked()


def test_any_plain_cnn_is_pruned_by_every_criterion():
    """LeNet-5 and MobileNet (through its depthwise convs): L1, random, ThiNet and slimming."""
    inputs = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    lenet = models.LeNet5().eval()
    for pruned in [S.prune_l1_filters(lenet, 0.5), S.prune_random_filters(lenet, 0.5),
                   S.prune_thinet(lenet, 0.5, inputs, num_samples=300)]:
        assert (pruned.conv1.out_channels, pruned.conv2.out_channels) == (10, 25)
        assert pruned.fc1.in_features == 25 * 16 and pruned(inputs).shape == (16, 10)
    mobilenet = models.MobileNetV1(width_mult=0.25, resolution=32, num_classes=10).eval()
    images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    pruner = S.ThiNetPruner(images, num_samples=500)
    keep = pruner.compute_keep(mobilenet, "features.2.1.0", 16)
    scales = pruner.compute_scales(mobilenet, "features.2.1.0", keep)
    masked = surgery.zero_channels(mobilenet, {"features.2.1.0": keep}, {"features.2.1.0": scales})
    small = pruner.prune(mobilenet, 0.5, layers=["features.2.1.0"])
    assert small.features[3][0][0].groups == 16  # the depthwise conv after it shrank too
    torch.testing.assert_close(small(images), masked(images), rtol=1e-5, atol=1e-5)
    slim = S.prune_slimming(mobilenet, 0.3)
    assert slim(images).shape == (8, 10)
    assert S.bn_l1_penalty(mobilenet) > 0


def test_bad_inputs_are_clear_errors():
    """Bad sparsity and unsupported models: errors naming the argument or layer."""
    with pytest.raises(ValueError, match=r"sparsity=1.5.*\[0, 1\)"):
        S.prune_l1_filters(models.SmallVGG(), 1.5)
    with pytest.raises(ValueError, match="'blocks.0.conv2' in SmallResNet.*sum 'add'"):
        S.prune_l1_filters(models.SmallResNet(), 0.5, layers=["blocks.0.conv2"])
    with pytest.raises(ValueError, match="'features.0.0' is read by 2 layers"):
        S.ThiNetPruner(torch.rand(2, 1, 8, 8)).compute_keep(_forked(), "features.0.0", 2)
    with pytest.raises(TypeError, match="'features.1' is a BatchNorm2d"):
        S.prune_l1_filters(models.SmallVGG(), 0.5, layers=["features.1"])
    with pytest.raises(TypeError, match="reader is a ReLU"):
        S.channel_contributions(nn.ReLU(), torch.ones(2, 3), num_samples=4)
