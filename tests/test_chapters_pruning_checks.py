"""Checks of chapter 01: pass on the reference, fail with the right message on wrong answers."""
import copy
import re

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from nclib import zoo
from nclib.course import check
from nclib.chapters.pruning import checks as pruning
from nclib.chapters.pruning.checks import budget
from nclib.measure import storage_bytes
from nclib.pruning.magnitude import bake, is_masked, prune_model
from nclib.train import evaluate


def _stub(*args, **kwargs):
    raise NotImplementedError


# ---------------------------------------------------------------- wrong versions
def mask_truncates(weight, sparsity):
    """int() instead of round(): 0.29 * 100 = 28.999... removes 28, not 29."""
    k = int(sparsity * weight.numel())
    order = weight.abs().flatten().argsort()
    mask = torch.ones(weight.numel(), dtype=torch.bool)
    mask[order[:k]] = False
    return mask.view(weight.shape)


def mask_signed(weight, sparsity):
    """Ranks the signed values, so large negative weights are removed."""
    k = round(sparsity * weight.numel())
    order = weight.flatten().argsort()
    mask = torch.ones(weight.numel(), dtype=torch.bool)
    mask[order[:k]] = False
    return mask.view(weight.shape)


def mask_inverted(weight, sparsity):
    """True where the weight is removed."""
    return ~pruning.ref_magnitude_mask(weight, sparsity)


def mask_float(weight, sparsity):
    """A 0/1 float tensor instead of a bool mask."""
    return pruning.ref_magnitude_mask(weight, sparsity).float()


def mask_in_place(weight, sparsity):
    """Right mask, but zeroes the weight it was given."""
    mask = pruning.ref_magnitude_mask(weight, sparsity)
    weight.mul_(mask)
    return mask


def std_unbiased(weight, quality):
    """torch.std's default divides by n - 1."""
    return quality * float(weight.std())


def std_nonzero(weight, quality):
    """The std of the surviving weights only."""
    return quality * float(weight[weight != 0].std(correction=0))


def std_no_quality(weight, quality):
    """Forgets to multiply by quality."""
    return float(weight.std(correction=0))


def masks_not_in_place(model, masks):
    """Replaces the Parameters: the optimizer would keep training the old ones."""
    for name, mask in masks.items():
        module_name, _, attr = name.rpartition(".")
        module = model.get_submodule(module_name)
        setattr(module, attr, nn.Parameter(getattr(module, attr).detach() * mask))


def masks_inverted(model, masks):
    """Zeroes the kept weights instead of the removed ones."""
    with torch.no_grad():
        for name, mask in masks.items():
            model.get_parameter(name).mul_(~mask)


def masks_without_no_grad(model, masks):
    """In-place edit of a leaf that requires grad, outside torch.no_grad(): torch refuses."""
    for name, mask in masks.items():
        model.get_parameter(name).mul_(mask)


def masks_everything(model, masks):
    """Zeroes the first mask's pattern... and also wipes the unmasked biases."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in masks:
                p.mul_(masks[name])
            else:
                p.zero_()


def l1_unsorted(weight, num_keep):
    """Right filters, in score order instead of increasing index order."""
    return torch.argsort(weight.abs().flatten(1).sum(1), descending=True)[:num_keep]


def l2_norm(weight, num_keep):
    """Ranks by the L2 norm."""
    return torch.argsort(weight.flatten(1).norm(dim=1), descending=True)[:num_keep].sort().values


def signed_sum(weight, num_keep):
    """Forgets the absolute value."""
    return torch.argsort(weight.flatten(1).sum(1), descending=True)[:num_keep].sort().values


def smallest_kept(weight, num_keep):
    """Keeps the filters of SMALLEST L1 norm."""
    return torch.argsort(weight.abs().flatten(1).sum(1))[:num_keep].sort().values


def surgery_next_untouched(conv, next_conv, keep):
    """Prunes the conv but forgets that the next conv reads its channels."""
    first, _ = pruning.ref_remove_conv_channels(conv, next_conv, keep)
    return first, next_conv


def surgery_lost_padding(conv, next_conv, keep):
    """Forgets the conv's padding and stride."""
    first, second = pruning.ref_remove_conv_channels(conv, next_conv, keep)
    plain = nn.Conv2d(first.in_channels, first.out_channels, first.kernel_size,
                      bias=first.bias is not None)
    plain.load_state_dict(first.state_dict())
    return plain, second


def surgery_bias_sliced(conv, next_conv, keep):
    """Drops the first conv's bias."""
    first, second = pruning.ref_remove_conv_channels(conv, next_conv, keep)
    nobias = nn.Conv2d(first.in_channels, first.out_channels, first.kernel_size, first.stride,
                       first.padding, bias=False)
    with torch.no_grad():
        nobias.weight.copy_(first.weight)
    return nobias, second


def rates_unweighted(num_weights, kept_fractions, index_bits=5, value_bits=32):
    """Averages the kept fractions without weighting layers by size."""
    kept = sum(kept_fractions) / len(kept_fractions)
    return 1 / kept, 32 / (kept * (value_bits + index_bits))


def rates_no_index(num_weights, kept_fractions, index_bits=5, value_bits=32):
    """Forgets the index bits in the storage rate."""
    total = sum(num_weights)
    kept = sum(n * k for n, k in zip(num_weights, kept_fractions))
    return total / kept, 32 * total / (kept * value_bits)


def rates_inverted(num_weights, kept_fractions, index_bits=5, value_bits=32):
    """Kept over total: a fraction, not a rate."""
    total = sum(num_weights)
    kept = sum(n * k for n, k in zip(num_weights, kept_fractions))
    return kept / total, kept * (value_bits + index_bits) / (32 * total)


def _prune_weight(weight, sparsity):
    """Zero the round(sparsity * numel) smallest |w| in place (sparsity 1 zeroes them all)."""
    order = weight.detach().abs().flatten().argsort()
    with torch.no_grad():
        weight.view(-1)[order[:round(sparsity * weight.numel())]] = 0


def _scan_layers(model, names, sparsities, loader):
    """Accuracy of a fresh copy of model with the layers `names` pruned, for each sparsity."""
    accuracies = []
    for s in sparsities:
        pruned = copy.deepcopy(model)
        for name in names:
            _prune_weight(pruned.get_submodule(name).weight, s)
        accuracies.append(evaluate(pruned, loader))
    return accuracies


def scan_in_place(model, layer_name, sparsities, loader):
    """Prunes the model it was given, no copy."""
    accuracies = []
    for s in sparsities:
        _prune_weight(model.get_submodule(layer_name).weight, s)
        accuracies.append(evaluate(model, loader))
    return accuracies


def scan_one_copy(model, layer_name, sparsities, loader):
    """One copy for the whole scan: each sparsity prunes what the last one left."""
    return scan_in_place(copy.deepcopy(model), layer_name, sparsities, loader)


def scan_every_layer(model, layer_name, sparsities, loader):
    """Prunes every Linear and Conv2d layer, not only layer_name."""
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    return _scan_layers(model, names, sparsities, loader)


def scan_kept_fraction(model, layer_name, sparsities, loader):
    """Reads sparsity as the fraction kept."""
    return _scan_layers(model, [layer_name], [1 - s for s in sparsities], loader)


def scan_percent(model, layer_name, sparsities, loader):
    """Accuracies in percent."""
    return [100 * a for a in _scan_layers(model, [layer_name], sparsities, loader)]


CASES = {
    "magnitude_mask": (pruning.ref_magnitude_mask, 1, [
        (mask_truncates, "expected a mask removing 29 weights, got a mask removing 28"),
        (mask_signed, "a removed weight with |w|"),
        (mask_inverted, "True means kept"),
        (mask_float, "expected a bool tensor, got dtype torch.float32"),
        (mask_in_place, "the weight was modified in place"),
    ]),
    "std_threshold": (pruning.ref_std_threshold, 1, [
        (std_unbiased, "expected 1.0, got 1.1547"),
        (std_nonzero, "expected"),
        (std_no_quality, "expected 1.0606601238250732, got 2.1213202476501465"),
    ]),
    "apply_masks": (pruning.ref_apply_masks, 1, [
        (masks_not_in_place, "got a new Parameter"),
        (masks_inverted, "zero where the mask is False"),
        (masks_everything, "0.bias unchanged (it has no mask)"),
    ]),
    "select_l1_filters": (pruning.ref_select_l1_filters, 1, [
        (l1_unsorted, "increasing order"),
        (l2_norm, "expected tensor([0, 2]), got tensor([1, 2])"),
        (signed_sum, "expected tensor([0, 2]), got tensor([0, 1])"),
        (smallest_kept, "expected tensor([0, 2]), got tensor([1, 3])"),
    ]),
    "remove_conv_channels": (pruning.ref_remove_conv_channels, 2, [
        (surgery_lost_padding, "new conv.padding = (1, 1)"),
        (surgery_bias_sliced, "new conv.bias"),
        (surgery_next_untouched, "expected new next conv.in_channels = 3, got 8"),
    ]),
    "compression_rates": (pruning.ref_compression_rates, 1, [
        (rates_unweighted, "expected (12.22"),
        (rates_no_index, "got (12.22"),
        (rates_inverted, "got (0.08"),
    ]),
    "sensitivity_scan": (pruning.ref_sensitivity_scan, 1, [
        (scan_in_place, "expected the model handed in left unchanged"),
        (scan_one_copy, "expected [0.915, 0.985, 1.0], got [0.915, 0.915, 0.915]. Hint: the "
                        "prunings added up"),
        (scan_every_layer, "got [1.0, 0.975, 0.955, 0.835]. Hint: that is every layer pruned"),
        (scan_kept_fraction, "Hint: sparsity is the fraction of weights REMOVED"),
        (scan_percent, "got [100.0, 98.0, 97.0, 92.5]. Hint: return fractions in [0, 1]"),
    ]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_reference_passes(name, capsys):
    """The reference solution gets full points and a PASS verdict."""
    reference, points, _ = CASES[name]
    r = getattr(check.pruning, name)(reference)
    assert (r.status, r.points, r.max_points) == ("passed", points, points), r.reason
    assert "[PASS]" in capsys.readouterr().out


@pytest.mark.parametrize("name, wrong, message",
                         [(n, w, m) for n, (_, _, bad) in CASES.items() for w, m in bad],
                         ids=lambda v: getattr(v, "__name__", None) if callable(v) else None)
def test_wrong_versions_fail_with_input_expected_got_and_hint(name, wrong, message):
    """A wrong answer fails, naming the input, the expected and received value, and a hint."""
    r = getattr(check.pruning, name).grade(wrong)
    assert r.status == "failed" and r.points == 0, r.reason
    assert message in r.reason, r.reason
    assert "for input" in r.reason and "Hint:" in r.reason


def test_in_place_edit_of_a_leaf_is_an_error_with_torchs_message():
    """Editing a weight in place outside torch.no_grad() is reported as torch's error."""
    r = check.pruning.apply_masks.grade(masks_without_no_grad)
    assert r.status == "error" and "RuntimeError" in r.reason and "in-place" in r.reason
    assert "Linear-ReLU-Linear" in r.reason


@pytest.mark.parametrize("name", list(CASES))
def test_stub_and_missing_answer_are_not_attempted(name):
    """The released stub (NotImplementedError), None and ... are 'not attempted', not failures."""
    task = getattr(check.pruning, name)
    for student in (_stub, None, ...):
        r = task.grade(student)
        assert r.status == "not_attempted" and r.points == 0


def test_mask_check_accepts_any_tie_break():
    """Equal magnitudes may be broken either way: a mask removing the LAST of tied weights passes."""
    def last_of_ties(weight, sparsity):
        k = round(sparsity * weight.numel())
        flat = weight.abs().flatten()
        order = torch.argsort(flat.flip(0), stable=True)  # ties: the later index goes first
        mask = torch.ones(flat.numel(), dtype=torch.bool)
        mask[flat.numel() - 1 - order[:k]] = False
        return mask.view(weight.shape)

    assert check.pruning.magnitude_mask.grade(last_of_ties).status == "passed"


def test_han_numbers_in_the_rate_reference():
    """LeNet-300-100 at Han et al.'s 8% / 9% / 26%: 12.2x fewer weights, 10.6x fewer bytes."""
    rate, storage = pruning.ref_compression_rates([235200, 30000, 1000], [0.08, 0.09, 0.26])
    assert rate == pytest.approx(266200 / 21776) and storage == pytest.approx(rate * 32 / 37)


# ---------------------------------------------------------------- meet the budget
@pytest.fixture(scope="module")
def lenet300():
    return zoo.trained("lenet300")


@pytest.fixture(scope="module")
def within_budget(lenet300):
    """The reference answer: per-layer sparsities and 2 epochs of fine-tuning, masks attached."""
    return pruning.ref_meet_budget(lenet300)


def _uniform(model, sparsity):
    """A copy with every layer magnitude-pruned to `sparsity` (masks attached), not fine-tuned."""
    pruned = copy.deepcopy(model)
    prune_model(pruned, sparsity)
    return pruned


def test_meet_budget_passes_the_reference_masked_baked_or_torch_pruned(within_budget):
    """The reference passes, for 2 points, with nclib's masks, baked, or with torch's prune."""
    baked = bake(copy.deepcopy(within_budget))
    torch_pruned = copy.deepcopy(baked)
    for name in ("fc1", "fc2", "fc3"):  # weight_orig stays dense; weight_mask holds the zeros
        layer = torch_pruned.get_submodule(name)
        kept = layer.weight != 0
        torch_prune.custom_from_mask(layer, "weight", kept)
        with torch.no_grad():
            layer.weight_orig[~kept] = 1.0  # what a removed weight holds does not count
    for model in (within_budget, baked, torch_pruned):
        r = check.pruning.meet_budget.grade(model)
        assert (r.status, r.points, r.max_points) == ("passed", 2, 2), r.reason
        assert re.search(r"10\d\.\d kB in sparse_relative storage \(budget 110 kB\)", r.reason), r.reason
        assert "test accuracy (bar 92%)" in r.reason


def test_meet_budget_leaves_the_model_alone(within_budget):
    """The check measures a copy: the masks stay attached and the weights unchanged."""
    before = copy.deepcopy(within_budget.state_dict())
    check.pruning.meet_budget.grade(within_budget)
    assert is_masked(within_budget.fc1)
    assert all(torch.equal(v, within_budget.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("make, message", [
    # sizes and accuracies as patterns: the zoo's weights, and so the figures, differ by machine
    (lambda m: _uniform(m, 0.9), r"your model takes 13\d\.\d kB in sparse_relative storage \(budget "
                                 r"110 kB\) and \d\d\.\d% test accuracy \(bar 92%\): over the byte budget"),
    (lambda m: _uniform(m, 0.99), r"4\d\.\d kB in sparse_relative storage \(budget 110 kB\) and \d+\.\d% "
                                  r"test accuracy \(bar 92%\): below the accuracy bar"),
    (lambda m: nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10)),
     re.escape("that is not a LeNet-300-100: expected the parameters fc1.weight (300, 784)")),
    (lambda m: zoo.trained("lenet5"), re.escape("got a LeNet5 with conv1.weight (20, 1, 5, 5)")),
    (lambda m: _uniform(m, 0.95).state_dict(), "hand in the pruned model itself, an nn.Module; "
                                               "got OrderedDict"),  # no pattern characters
], ids=["over_budget", "over_pruned", "small_mlp", "lenet5", "state_dict"])
def test_meet_budget_wrong_models_fail_with_both_numbers_or_the_architecture(lenet300, make, message):
    """Too big, too inaccurate or not a LeNet-300-100 fails, saying which and by how much."""
    r = check.pruning.meet_budget.grade(make(lenet300))
    assert r.status == "failed" and r.points == 0, r.reason
    assert re.search(message, r.reason), r.reason
    assert "Hint:" in r.reason, r.reason


def test_uniform_pruning_to_the_budget_fails_the_bar(lenet300):
    """One sparsity for every layer, the least that fits the budget, is too inaccurate unretrained."""
    uniform = _uniform(lenet300, 0.923)
    assert storage_bytes(bake(copy.deepcopy(uniform)), "sparse_relative") <= budget.BUDGET_BYTES
    assert storage_bytes(bake(_uniform(lenet300, 0.92)), "sparse_relative") > budget.BUDGET_BYTES
    r = check.pruning.meet_budget.grade(uniform)
    assert r.status == "failed" and "below the accuracy bar" in r.reason, r.reason


def test_meet_budget_not_attempted():
    """None and ... (the released answer) are 'not attempted'."""
    for student in (None, ...):
        assert check.pruning.meet_budget.grade(student).status == "not_attempted"
