"""nclib.pruning.magnitude: masks against torch's references, masks through training, counts."""
import copy
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from nclib import models, train
from nclib.pruning import magnitude as M


def _distinct(*shape, seed=0):
    """Random weights whose magnitudes are all different (no ties)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.77, 0.99])
def test_magnitude_mask_removes_the_topk_smallest(sparsity):
    """The removed weights are exactly torch.topk's k smallest |w|, k = round(sparsity * numel)."""
    w = _distinct(30, 20)
    k = round(sparsity * w.numel())
    mask = M.magnitude_mask(w, sparsity)
    assert mask.dtype == torch.bool and mask.shape == w.shape
    assert int((~mask).sum()) == k
    smallest = torch.topk(w.abs().flatten(), k, largest=False).indices
    assert set((~mask).flatten().nonzero().flatten().tolist()) == set(smallest.tolist())
    if 0 < k < w.numel():  # every removed |w| is at most the k-th smallest (kthvalue)
        assert w.abs()[~mask].max() == torch.kthvalue(w.abs().flatten(), k).values


@pytest.mark.parametrize("sparsity", [0.25, 0.6, 0.9])
def test_magnitude_mask_matches_torch_l1_unstructured(sparsity):
    """Same mask as torch.nn.utils.prune.l1_unstructured at the same sparsity."""
    layer = nn.Linear(17, 11)
    torch_prune.l1_unstructured(layer, "weight", amount=sparsity)
    assert torch.equal(M.magnitude_mask(layer.weight_orig, sparsity), layer.weight_mask.bool())


def test_magnitude_mask_breaks_ties_by_position():
    """Equal magnitudes: the earlier flattened position goes first; hand-worked cases."""
    assert M.magnitude_mask(torch.tensor([0.1, -0.1, 0.5]), 1 / 3).tolist() == [False, True, True]
    assert M.magnitude_mask(torch.tensor([0.3, -0.1, 0.2, 0.1]), 0.5).tolist() == [True, False, True, False]
    assert M.magnitude_mask(torch.ones(2, 3), 0.5).flatten().tolist() == [False] * 3 + [True] * 3


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_sparsity_is_a_value_error(bad):
    """Sparsity outside [0, 1): ValueError naming the argument, the value and the range."""
    with pytest.raises(ValueError, match=r"sparsity=.*\[0, 1\)"):
        M.magnitude_mask(torch.ones(4), bad)
    with pytest.raises(ValueError, match="sparsity"):
        M.prune_model(models.LeNet300100(), bad)


@pytest.mark.parametrize("bad", ["0.5", True, None])
def test_non_number_sparsity_is_a_type_error(bad):
    """A sparsity that is not a number: TypeError naming it."""
    with pytest.raises(TypeError, match="sparsity"):
        M.MagnitudePruner(bad)


def test_unprunable_layer_is_a_type_error():
    """BatchNorm (or any layer not Linear/Conv2d): TypeError naming the layer and what is allowed."""
    with pytest.raises(TypeError, match="BatchNorm2d.*Linear, Conv2d"):
        M.prune_by_magnitude(nn.BatchNorm2d(4), 0.5)
    vgg = models.SmallVGG()
    with pytest.raises(TypeError, match="'features.1' is a BatchNorm2d"):
        M.prune_model(vgg, 0.5, layers=["features.1"])
    with pytest.raises(ValueError, match="no layer named 'fc9'.*'fc1'"):
        M.prune_model(models.LeNet300100(), 0.5, layers=["fc9"])
    with pytest.raises(ValueError, match="scope='local'.*'layer', 'global'"):
        M.prune_model(vgg, 0.5, scope="local")


def test_std_threshold_uses_the_whole_tensor():
    """quality x population std of the whole tensor, zeros included (hand-worked: [1,-1,0,0])."""
    w = torch.tensor([1.0, -1.0, 0.0, 0.0])
    assert M.std_threshold(w, 2.0) == pytest.approx(2 * math.sqrt(0.5))
    layer = nn.Linear(50, 40)
    t = M.std_threshold(layer.weight, 0.7)
    M.prune_by_threshold(layer, 0.7)
    assert torch.equal(layer.weight_mask, layer.weight.abs() > t)
    with pytest.raises(ValueError, match="quality=-1"):
        M.ThresholdPruner(-1)


def test_std_threshold_on_survivors_only_collapses():
    """Repeated pruning settles with the whole-tensor std, but removes nearly all with survivors-only std."""
    w = _distinct(10000)
    whole, survivors = w.clone(), w.clone()
    for _ in range(30):
        whole = whole * (whole.abs() > M.std_threshold(whole, 1.0))
        alive = survivors[survivors != 0]
        survivors = survivors * (survivors.abs() > 1.0 * alive.std(correction=0))
    kept_whole = int(torch.count_nonzero(whole))
    assert 1000 < kept_whole and kept_whole == int(torch.count_nonzero(
        whole * (whole.abs() > M.std_threshold(whole, 1.0))))  # a fixed point
    assert int(torch.count_nonzero(survivors)) < 20


def test_state_dict_keeps_weight_and_bake_removes_masks():
    """Pruned: keys `weight` + buffer `weight_mask`; baked: the original keys, zeros kept, loadable."""
    model = models.LeNet300100()
    keys = set(model.state_dict())
    M.prune_model(model, 0.8)
    pruned_keys = set(model.state_dict())
    assert keys <= pruned_keys
    assert pruned_keys - keys == {"fc1.weight_mask", "fc2.weight_mask", "fc3.weight_mask"}
    assert "fc1.weight_orig" not in pruned_keys
    x = torch.randn(5, 1, 28, 28)
    before = model(x)
    M.bake(model)
    assert set(model.state_dict()) == keys
    assert not M.is_masked(model.fc1) and len(model.fc1._forward_pre_hooks) == 0
    assert torch.equal(model(x), before)
    assert M.global_sparsity(model) == pytest.approx(0.8, abs=1e-4)
    fresh = models.LeNet300100()
    fresh.load_state_dict(model.state_dict())
    model.fc1.weight.grad = None
    model(x).sum().backward()  # baked: no more gradient mask
    assert torch.count_nonzero(model.fc1.weight.grad) > 0.5 * model.fc1.weight.numel()


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_masked_weights_stay_zero_with_zero_gradient_through_fit(tiny_loaders, optimizer):
    """Through fit retraining, removed weights get zero gradient at every step and stay exactly zero."""
    model = models.LeNet300100()
    M.prune_model(model, 0.9)
    masks = {n: m.weight_mask.clone() for n, m in M.prunable_layers(model).items()}
    seen = []

    def check(m, step):
        for name, layer in M.prunable_layers(m).items():
            seen.append(bool(torch.all(layer.weight.grad[~masks[name]] == 0)))
            seen.append(bool(torch.all(layer.weight[~masks[name]] == 0)))

    before = model.fc1.weight.detach().clone()
    train.fit(model, tiny_loaders.train, epochs=1, optimizer=optimizer, weight_decay=1e-3,
              step_hook=check, progress=False)
    assert seen and all(seen)
    assert not torch.equal(model.fc1.weight[masks["fc1"]], before[masks["fc1"]])  # the rest trained


def test_deepcopy_keeps_masks_working():
    """A deep copy (which drops tensor hooks) still masks gradients and keeps zeros."""
    layer = nn.Linear(8, 6)
    M.prune_by_magnitude(layer, 0.5)
    twin = copy.deepcopy(layer)
    twin(torch.randn(3, 8)).sum().backward()
    assert torch.all(twin.weight.grad[~twin.weight_mask] == 0)
    with torch.no_grad():
        twin.weight.add_(1.0)  # a stray edit, e.g. an old optimizer's momentum
    twin(torch.randn(3, 8))
    assert torch.all(twin.weight[~twin.weight_mask] == 0)


def test_enforce_mask_rezeroes_now():
    """enforce_mask(layer) zeroes removed weights at once, without a forward pass; kept ones stay."""
    layer = nn.Linear(8, 6)
    M.prune_by_magnitude(layer, 0.5)
    with torch.no_grad():
        layer.weight.add_(1.0)
    edited = layer.weight.detach().clone()
    M.enforce_mask(layer)
    assert torch.equal(layer.weight.detach(), edited * layer.weight_mask)


def test_count_prunable_weights():
    """Weights of the Linear and Conv2d layers: LeNet-300-100 by hand; no biases or BN; masks count."""
    lenet = models.LeNet300100()
    assert M.count_prunable_weights(lenet) == 784 * 300 + 300 * 100 + 100 * 10 == 266_200
    assert M.count_prunable_weights(lenet, ["fc1", "fc3"]) == 784 * 300 + 100 * 10
    vgg = models.SmallVGG()
    conv_and_linear = [m for m in vgg.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert M.count_prunable_weights(vgg) == sum(m.weight.numel() for m in conv_and_linear)
    assert M.count_prunable_weights(vgg) < sum(p.numel() for p in vgg.parameters())  # biases, BN
    M.prune_model(vgg, 0.8)
    assert M.count_prunable_weights(vgg) == sum(m.weight.numel() for m in conv_and_linear)
    with pytest.raises(ValueError, match="no layer named 'fc9'"):
        M.count_prunable_weights(lenet, ["fc9"])


def test_layer_scope_prunes_each_layer_exactly():
    """scope='layer': every layer loses exactly round(sparsity * numel) weights; dicts per layer."""
    model = models.LeNet5()
    result = M.prune_model(model, 0.7)
    for name, layer in M.prunable_layers(model).items():
        assert int((~layer.weight_mask).sum()) == round(0.7 * layer.weight.numel())
        assert result[name] == pytest.approx(0.7, abs=1e-3)
    other = models.LeNet300100()
    result = M.prune_model(other, {"fc1": 0.92, "fc3": 0.5})
    assert result["fc1"] == pytest.approx(0.92, abs=1e-4) and result["fc2"] == 0
    assert not M.is_masked(other.fc2)


def test_global_scope_matches_torch_global_unstructured():
    """scope='global' gives torch.nn.utils.prune.global_unstructured's masks: one threshold, uneven layers."""
    model = models.LeNet300100()
    reference = copy.deepcopy(model)
    M.prune_model(model, 0.9, scope="global")
    references = (reference.fc1, reference.fc2, reference.fc3)
    torch_prune.global_unstructured([(m, "weight") for m in references],
                                    pruning_method=torch_prune.L1Unstructured, amount=0.9)
    for name, ref in zip(("fc1", "fc2", "fc3"), references):
        assert torch.equal(getattr(model, name).weight_mask, ref.weight_mask.bool())
    kept = torch.cat([l.weight[l.weight_mask].abs() for l in M.prunable_layers(model).values()])
    removed = torch.cat([l.weight_orig[l.weight_mask == 0].abs() for l in references])
    assert removed.max() <= kept.min()
    assert M.global_sparsity(model) == pytest.approx(0.9, abs=1e-5)
    per_layer = M.layer_sparsity(model)
    assert max(per_layer.values()) - min(per_layer.values()) > 0.05  # layers lose different shares


def test_pruning_again_only_removes_more():
    """A second, higher target keeps earlier removals removed and lands exactly on the target."""
    layer = nn.Linear(40, 30)
    M.prune_by_magnitude(layer, 0.5)
    first = layer.weight_mask.clone()
    with torch.no_grad():  # the survivors change during retraining
        g = torch.Generator().manual_seed(1)
        layer.weight.mul_(torch.rand(layer.weight.shape, generator=g))
    M.prune_by_magnitude(layer, 0.8)
    assert not torch.any(layer.weight_mask & ~first)
    assert int((~layer.weight_mask).sum()) == round(0.8 * 1200)


def test_random_pruner_is_seeded_and_exact():
    """RandomPruner: exact count, same seed same mask, already removed weights stay removed."""
    a, b = nn.Linear(20, 10), nn.Linear(20, 10)
    M.prune_randomly(a, 0.3, seed=3)
    M.prune_randomly(b, 0.3, seed=3)
    assert torch.equal(a.weight_mask, b.weight_mask) and int((~a.weight_mask).sum()) == 60
    first = a.weight_mask.clone()
    M.prune_randomly(a, 0.6, seed=4)
    assert not torch.any(a.weight_mask & ~first) and int((~a.weight_mask).sum()) == 120


def test_removal_order_is_magnitude_masks_order():
    """removal_order lists |w| ascending, ties by position; magnitude_mask removes exactly its first k."""
    w = torch.tensor([0.5, -0.1, 0.1, 0.3, -0.5, 0.0])
    assert M.removal_order(w).tolist() == [5, 1, 2, 3, 0, 4]
    g = torch.Generator().manual_seed(0)
    w = torch.randint(-3, 4, (7, 9), generator=g).float()  # many ties
    order = M.removal_order(w)
    for sparsity in (0.0, 0.3, 0.5, 0.9):
        k = round(sparsity * w.numel())
        expected = torch.ones(w.numel(), dtype=torch.bool)
        expected[order[:k]] = False
        assert torch.equal(M.magnitude_mask(w, sparsity).flatten(), expected)
