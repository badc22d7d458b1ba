"""Checks of chapter 01: pass on the reference, fail with the right message on wrong answers."""
import pytest
import torch
from torch import nn

from nclib.course import check
from nclib.chapters.pruning import checks as pruning


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
