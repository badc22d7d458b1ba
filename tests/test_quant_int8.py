"""Tests of nclib.quant.int8: the real int8 CPU kernel, its timing, and its absence."""
import pytest
import torch
from torch import nn

from nclib.quant import int8
from nclib.quant.uniform import calibrate, quantize


@pytest.fixture
def kernel():
    """The kernel description; tests that run the kernel skip where it does not work."""
    info = int8.int8_kernel()
    if not info["available"]:
        pytest.skip(f"no int8 kernel here: {info['reason']}")
    return info


def test_int8_kernel_describes_itself_and_catches_the_warning_every_time(kernel):
    """int8_kernel names the kernel, torch and the engine, and returns the same warning on every call."""
    assert kernel["name"] == "quantized::linear_dynamic" and kernel["torch"] == torch.__version__
    assert kernel["engine"] == torch.backends.quantized.engine and kernel["reason"] is None
    was = torch.is_warn_always_enabled()
    again = int8.int8_kernel()
    assert again["warning"] == kernel["warning"]  # torch warns once per process; we catch it each time
    assert torch.is_warn_always_enabled() == was
    if torch.__version__.startswith("2.14"):
        assert "deprecated" in kernel["warning"]


@pytest.mark.filterwarnings("ignore:.*quantized tensor creation functions:UserWarning")
def test_int8_linear_uses_our_integers_and_matches_fp32(kernel):
    """Int8Linear's packed weight is quantize(w) of our symmetric calibration; outputs within 3% of fp32."""
    linear = nn.Linear(64, 32)
    layer = int8.Int8Linear(linear)
    qweight, bias = torch.ops.quantized.linear_unpack(layer.packed)
    scale, zero_point = calibrate(linear.weight, signed=True, symmetric=True)
    assert torch.equal(qweight.int_repr(), quantize(linear.weight, scale, zero_point, signed=True))
    assert torch.equal(bias, linear.bias.detach())
    x = torch.randn(16, 64)
    with torch.no_grad():
        y, y8 = linear(x), layer(x)
    assert y8.shape == (16, 32) and y8.dtype == torch.float32
    assert 0 < (y8 - y).norm() / y.norm() < 0.03


def test_linear_speed_reports_both_times_and_restores_threads(kernel):
    """linear_speed gives fp32 and int8 medians, their ratio and the int8 error; torch's threads are restored."""
    threads = torch.get_num_threads()
    row = int8.linear_speed(64, 48, batch=4, repeats=3, rounds=1, threads=1)
    assert torch.get_num_threads() == threads
    assert row["fp32_ms"] > 0 and row["int8_ms"] > 0 and row["threads"] == 1
    assert row["speedup"] == pytest.approx(row["fp32_ms"] / row["int8_ms"])
    assert 0 < row["rel_error"] < 0.05


def test_speed_sweep_covers_every_size_and_batch(kernel):
    """speed_sweep has one row per (size, batch), sizes outer, batches inner."""
    rows = int8.speed_sweep(sizes=(16, 32), batches=(1, 2), repeats=2, rounds=1)
    assert [(r["in_features"], r["out_features"], r["batch"]) for r in rows] == \
        [(16, 16, 1), (16, 16, 2), (32, 32, 1), (32, 32, 2)]


def test_missing_kernel_is_reported_not_raised(monkeypatch):
    """Without torch.ops.quantized (a later torch), int8_kernel says why and linear_speed gives None."""
    monkeypatch.setattr(torch.ops, "quantized", object())
    info = int8.int8_kernel()
    assert info["available"] is False and "AttributeError" in info["reason"]
    row = int8.linear_speed(32, 32, batch=2, repeats=2, rounds=1)
    assert row["fp32_ms"] > 0
    assert row["int8_ms"] is None and row["speedup"] is None and row["rel_error"] is None


def test_bad_sizes_are_refused():
    """Sizes, batch, repeats and threads must be positive integers."""
    with pytest.raises(ValueError, match="batch=0"):
        int8.linear_speed(8, 8, batch=0)
    with pytest.raises(ValueError, match="threads=True"):
        int8.linear_speed(8, 8, batch=1, threads=True)
