"""Tests of nclib.quant.uniform: affine quantization of tensors, against torch's fake-quant."""
import pytest
import torch

from nclib.quant.uniform import (calibrate, dequantize, fake_quantize, qrange, quantize,
                                 scale_from_range, storage_dtype)


def ties_and_outliers(scale, n=2000, seed=0):
    """Values exactly on .5 steps (ties), random values, and values far outside the range."""
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(-300, 300, (n,), generator=g).float()
    scale = torch.as_tensor(scale, dtype=torch.float32)
    return torch.cat([(k + 0.5) * scale, torch.randn(n, generator=g) * 200 * scale,
                      torch.tensor([0.0, 1e6, -1e6])])


def test_qrange_matches_the_bit_formulas():
    """qrange: unsigned [0, 2^b - 1] and signed [-2^(b-1), 2^(b-1) - 1], for every width."""
    assert qrange(8) == (0, 255) and qrange(8, signed=True) == (-128, 127)
    assert qrange(1) == (0, 1) and qrange(2, signed=True) == (-2, 1)
    for b in range(2, 17):
        assert qrange(b) == (0, 2 ** b - 1)
        assert qrange(b, signed=True) == (-(2 ** (b - 1)), 2 ** (b - 1) - 1)
    assert storage_dtype(4, True) == torch.int8 and storage_dtype(8) == torch.uint8
    assert storage_dtype(12, True) == torch.int16 and storage_dtype(16) == torch.int32


@pytest.mark.parametrize("num_bits", [0, 17, True, 8.0, "8"])
def test_bad_num_bits_is_refused(num_bits):
    """num_bits outside 1..16, a bool or a non-integer gives a ValueError naming num_bits."""
    with pytest.raises(ValueError, match="num_bits=.*expected an integer from 1 to 16"):
        qrange(num_bits)
    with pytest.raises(ValueError, match="num_bits"):
        quantize(torch.zeros(3), 0.1, 0, num_bits=num_bits)


def test_one_signed_bit_is_refused():
    """A signed 1-bit range has no positive level: a ValueError says to use 2 bits or unsigned."""
    with pytest.raises(ValueError, match="at least 2 bits"):
        qrange(1, signed=True)
    with pytest.raises(ValueError, match="num_bits=1"):
        calibrate(torch.randn(5), num_bits=1, symmetric=True)


@pytest.mark.parametrize("scale", [0.0, -0.1, float("inf"), float("nan")])
def test_bad_scale_is_refused(scale):
    """A zero, negative or non-finite scale gives a ValueError naming scale."""
    with pytest.raises(ValueError, match="scale=.*positive finite"):
        quantize(torch.randn(4), scale, 0)
    with pytest.raises(ValueError, match="scale=.*positive finite"):
        fake_quantize(torch.randn(4, 3), torch.tensor([0.1, scale, 0.1]), torch.zeros(3), axis=1)


def test_zero_point_outside_the_range_is_refused():
    """zero_point must be an integer level of the range: 256 for 8 unsigned bits, or 1.5, is refused."""
    with pytest.raises(ValueError, match=r"zero_point=.*\[0, 255\]"):
        quantize(torch.randn(4), 0.1, 256)
    with pytest.raises(ValueError, match=r"zero_point=.*\[-8, 7\]"):
        quantize(torch.randn(4), 0.1, -9, num_bits=4, signed=True)
    with pytest.raises(ValueError, match="zero_point=.*integers"):
        quantize(torch.randn(4), 0.1, 1.5)


def test_per_channel_shapes_are_checked():
    """Per channel needs one scale per slice along axis; per tensor needs one number."""
    x = torch.randn(3, 5)
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        quantize(x, torch.ones(3), torch.zeros(3), axis=1)
    with pytest.raises(ValueError, match="axis=None"):
        quantize(x, torch.ones(3), 0)
    with pytest.raises(ValueError, match="axis=2"):
        quantize(x, torch.ones(3), torch.zeros(3), axis=2)


def test_quantize_by_hand():
    """Hand-worked cases: round half to even, clamping at both ends, zero exact at the zero point."""
    x = torch.tensor([-0.3, 0.0, 0.25, 0.35, 30.0, -5.0])
    q = quantize(x, 0.1, 3)  # 2.5 -> 2 and 3.5 -> 4 (half to even); 303 -> 255; -47 -> 0
    assert q.dtype == torch.uint8 and q.tolist() == [0, 3, 5, 7, 255, 0]
    assert dequantize(q, 0.1, 3)[1] == 0.0
    q = quantize(torch.tensor([-1.0, 1.0, 0.5, -0.0625]), 0.125, 0, num_bits=3, signed=True)
    assert q.dtype == torch.int8 and q.tolist() == [-4, 3, 3, 0]  # -8 and 8 clamped; -0.5 -> 0


def test_dequantize_inverts_quantize_within_half_a_step():
    """|dequantize(quantize(x)) - x| <= scale / 2 inside the range, per tensor and per channel."""
    x = torch.rand(6, 50) * 4 - 1  # in [-1, 3)
    scale, zp = calibrate(x)
    err = (dequantize(quantize(x, scale, zp), scale, zp) - x).abs()
    assert err.max() <= scale / 2 + 1e-7
    scale, zp = calibrate(x, axis=0)
    err = (dequantize(quantize(x, scale, zp, axis=0), scale, zp, axis=0) - x).abs()
    assert torch.all(err <= scale[:, None] / 2 + 1e-7)


@pytest.mark.parametrize("scale, zero_point, num_bits, signed", [
    (0.1, 3, 8, False), (0.037, 128, 8, False), (0.0033, 0, 8, True), (0.0173, -3, 4, True),
    (1 / 3, 7, 3, False)])
def test_fake_quantize_per_tensor_equals_torch(scale, zero_point, num_bits, signed):
    """fake_quantize per tensor equals torch.fake_quantize_per_tensor_affine: values and gradients."""
    scale = float(torch.tensor(scale, dtype=torch.float32))
    qmin, qmax = qrange(num_bits, signed)
    x = ties_and_outliers(scale).requires_grad_()
    ours = fake_quantize(x, scale, zero_point, num_bits, signed)
    (ours * torch.arange(x.numel())).sum().backward()
    x_ref = x.detach().clone().requires_grad_()
    ref = torch.fake_quantize_per_tensor_affine(x_ref, scale, zero_point, qmin, qmax)
    (ref * torch.arange(x.numel())).sum().backward()
    assert torch.equal(ours, ref)
    assert torch.equal(x.grad, x_ref.grad)
    assert 0 < int((x.grad == 0).sum()) < x.numel()  # some values were clamped, most not


def test_fake_quantize_per_channel_equals_torch():
    """fake_quantize per channel equals torch.fake_quantize_per_channel_affine, on ties and outliers."""
    g = torch.Generator().manual_seed(1)
    scale = torch.rand(16, generator=g) * 0.1 + 0.01  # (C,)
    zero_point = torch.randint(0, 256, (16,), generator=g, dtype=torch.int32)
    k = torch.randint(-300, 300, (4, 16, 50), generator=g).float()
    x = ((k + 0.5) * scale[None, :, None]).requires_grad_()  # (B, C, N): every value a tie
    ours = fake_quantize(x, scale, zero_point, axis=1)
    ours.sum().backward()
    x_ref = x.detach().clone().requires_grad_()
    ref = torch.fake_quantize_per_channel_affine(x_ref, scale, zero_point, 1, 0, 255)
    ref.sum().backward()
    assert torch.equal(ours, ref) and torch.equal(x.grad, x_ref.grad)


def test_division_by_scale_would_not_match_torch():
    """Why x * (1/scale): dividing by the scale rounds some ties the other way (so the test can fail)."""
    scale = torch.tensor(0.037)
    x = ties_and_outliers(scale)
    by_division = (torch.clamp(torch.round(x / scale) + 3, 0, 255) - 3) * scale
    ref = torch.fake_quantize_per_tensor_affine(x, float(scale), 3, 0, 255)
    assert not torch.equal(by_division, ref)
    assert torch.equal(fake_quantize(x, scale, 3), ref)


def test_asymmetric_calibration_matches_torch_observer():
    """calibrate (minmax, asymmetric) gives MinMaxObserver's scale and zero point, per tensor and channel."""
    from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

    x = torch.randn(8, 40) * torch.linspace(0.1, 3, 8)[:, None] + 0.5
    observer = MinMaxObserver(dtype=torch.quint8)
    observer(x)
    ref_scale, ref_zp = observer.calculate_qparams()
    scale, zp = calibrate(x)
    assert torch.allclose(scale, ref_scale[0], rtol=1e-6) and int(zp) == int(ref_zp[0])
    observer = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.quint8)
    observer(x)
    ref_scale, ref_zp = observer.calculate_qparams()
    scale, zp = calibrate(x, axis=0)
    assert torch.allclose(scale, ref_scale, rtol=1e-6) and torch.equal(zp, ref_zp.long())


def test_calibration_makes_zero_exact():
    """Asymmetric calibration puts 0.0 exactly on a level, even for all-positive or all-negative data."""
    for x in (torch.rand(100) + 2, -torch.rand(100) - 2, torch.randn(100)):
        scale, zp = calibrate(x)
        assert 0 <= int(zp) <= 255
        assert fake_quantize(torch.zeros(1), scale, zp).item() == 0.0
        assert fake_quantize(x, scale, zp).min() <= x.min() + scale  # the range covers x


def test_symmetric_calibration_formula():
    """Symmetric: scale = max|x| / (2^(b-1) - 1), zero point 0 signed, 2^(b-1) unsigned; ±max exact."""
    x = torch.tensor([-2.54, 0.3, 1.0])
    scale, zp = calibrate(x, signed=True, symmetric=True)
    assert torch.allclose(scale, torch.tensor(2.54 / 127)) and int(zp) == 0
    assert quantize(x, scale, zp, signed=True).tolist()[0] == -127
    scale, zp = calibrate(x, num_bits=4, symmetric=True)
    assert torch.allclose(scale, torch.tensor(2.54 / 7)) and int(zp) == 8


def test_zero_tensor_gets_a_tiny_positive_scale():
    """A tensor of zeros calibrates to scale eps (not 0), and quantizes back to zeros."""
    scale, zp = calibrate(torch.zeros(10))
    assert scale.item() == torch.finfo(torch.float32).eps
    assert torch.equal(fake_quantize(torch.zeros(10), scale, zp), torch.zeros(10))
    scale, _ = calibrate(torch.zeros(3, 4), signed=True, symmetric=True, axis=0)
    assert torch.all(scale > 0)


def test_percentile_clips_outliers():
    """Percentile calibration ignores one huge outlier, which min-max stretches the whole range for."""
    x = torch.cat([torch.randn(10_000), torch.tensor([1000.0])])
    minmax, _ = calibrate(x, signed=True, symmetric=True)
    clipped, _ = calibrate(x, signed=True, symmetric=True, method="percentile", percentile=99.9)
    assert clipped < minmax / 100
    lo_hi, zp = calibrate(x, method="percentile", percentile=99.9)
    assert lo_hi < minmax / 50 and 0 < int(zp) < 255
    assert torch.allclose(calibrate(x, method="percentile", percentile=100)[0], calibrate(x)[0])


def test_unknown_method_and_bad_percentile_are_refused():
    """An unknown method lists the allowed ones; a percentile outside (50, 100] is refused."""
    with pytest.raises(ValueError, match="method='mse'.*'minmax', 'percentile'"):
        calibrate(torch.randn(5), method="mse")
    with pytest.raises(ValueError, match="percentile=101"):
        calibrate(torch.randn(5), method="percentile", percentile=101)


def test_per_channel_beats_per_tensor_on_uneven_channels():
    """At 4 bits, per-channel weights reconstruct channels of very different ranges far better."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 64, generator=g) * torch.logspace(-2, 0, 8)[:, None]  # ranges 0.01..1
    errors = {}
    for axis in (None, 0):
        scale, zp = calibrate(w, num_bits=4, signed=True, symmetric=True, axis=axis)
        w_hat = fake_quantize(w, scale, zp, num_bits=4, signed=True, axis=axis)
        errors[axis] = ((w_hat - w).norm(dim=1) / w.norm(dim=1))  # (C,) relative error
    assert errors[0].max() < 0.15
    assert errors[None][0] > 0.9  # the smallest channel all rounds to zero per tensor
    assert errors[0].mean() < errors[None].mean() / 3


def test_scale_from_range_widens_to_hold_zero():
    """scale_from_range: an all-positive range [2, 4] is quantized as [0, 4], zero point 0."""
    scale, zp = scale_from_range(2.0, 4.0)
    assert torch.allclose(scale, torch.tensor(4 / 255)) and int(zp) == 0
    scale, zp = scale_from_range(torch.tensor([-1.0, -4.0]), torch.tensor([3.0, -2.0]))
    assert torch.allclose(scale, torch.tensor([4 / 255, 4 / 255])) and zp.tolist() == [64, 255]
