"""nclib.measure: our MAC counter agrees with PyTorch's FLOP counter; sizes, latency, tables."""
import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nclib import measure, models


def _torch_macs(model, shape):
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *shape))
    return counter.get_total_flops() // 2


CASES = [(lambda: models.LeNet300100(), (1, 28, 28)), (lambda: models.LeNet5(), (1, 28, 28)),
         (lambda: models.SmallVGG(), (1, 28, 28)), (lambda: models.SmallResNet(), (1, 28, 28)),
         (lambda: models.MobileNetV1(), (3, 224, 224)),
         (lambda: models.MobileNetV1(width_mult=0.5, separable=False), (3, 160, 160)),
         (lambda: torchvision.models.vgg16(), (3, 224, 224)),
         (lambda: torchvision.models.resnet18(), (3, 224, 224)),
         (lambda: torchvision.models.mobilenet_v2(), (3, 224, 224))]


@pytest.mark.parametrize("make, shape", CASES)
def test_count_macs_equals_flop_counter(make, shape):
    """count_macs equals FlopCounterMode's FLOPs / 2 exactly (grouped and depthwise too)."""
    model = make()
    assert measure.count_macs(model, shape).total == _torch_macs(model, shape)


def test_vgg16_matches_lecture_table():
    """torchvision's VGG-16: 138M parameters and 15.3G MACs within 2% (MobileNet paper Table 8)."""
    m = torchvision.models.vgg16()
    assert abs(measure.count_params(m) / 138e6 - 1) < 0.02
    assert abs(measure.count_macs(m, (3, 224, 224)).total / 15.3e9 - 1) < 0.02


def test_count_macs_by_hand():
    """Linear: in*out; Conv2d: K*K*(C_in/groups)*C_out*H*W; per-layer list sums to the total."""
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1, groups=4),
                        nn.Flatten(), nn.Linear(4 * 5 * 5, 7))
    count = measure.count_macs(net, (2, 5, 5))
    assert [l.macs for l in count.layers] == [3 * 3 * 2 * 4 * 25, 3 * 3 * 1 * 4 * 25, 100 * 7]
    assert count.total == sum(l.macs for l in count.layers) and count.flops == 2 * count.total
    assert "total" in count.table()


def test_count_params_and_nonzero():
    """Parameters count every stored value; nonzeros skip exact zeros."""
    layer = nn.Linear(10, 5)
    with torch.no_grad():
        layer.weight[:, :4] = 0
    assert measure.count_params(layer) == 55
    assert measure.count_nonzero(layer) == 55 - 20


def test_storage_bytes_formats():
    """dense_fp32 is 4 bytes a value (BN statistics included, masks and counters not)."""
    bn = nn.BatchNorm2d(8)
    bn.register_buffer("weight_mask", torch.ones(8))
    assert measure.storage_bytes(bn, "dense_fp32") == 4 * 8 * 4
    assert measure.storage_bytes(bn, "dense_fp16") == 2 * 8 * 4
    assert measure.saved_bytes(nn.Linear(100, 100)) > 4 * 10_100
    with pytest.raises(ValueError, match="fmt='int3'"):
        measure.storage_bytes(bn, "int3")


def test_measure_latency_reports_conditions():
    """Latency is positive, p10 <= median <= p90, and says batch, threads and device."""
    lat = measure.measure_latency(models.LeNet300100(), (1, 28, 28), batch_size=8, repeats=5,
                                  threads=1)
    assert 0 < lat.p10_ms <= lat.median_ms <= lat.p90_ms
    assert (lat.batch_size, lat.threads, lat.device) == (8, 1, "cpu")
    assert "batch 8" in str(lat)


def test_measure_latency_keeps_model_state():
    """Measuring leaves the model in training mode if it was, and restores threads."""
    m = models.LeNet300100().train()
    before = torch.get_num_threads()
    measure.measure_latency(m, (1, 28, 28), repeats=2, threads=2)
    assert m.training and torch.get_num_threads() == before


def test_report_and_compare():
    """report() fills a row; compare() shows ratios to the baseline as text and HTML."""
    dense = models.LeNet300100()
    sparse = models.LeNet300100()
    with torch.no_grad():
        sparse.fc1.weight.mul_(torch.rand_like(sparse.fc1.weight) > 0.9)
    rows = [measure.report(dense, "dense", input_shape=(1, 28, 28), accuracy=0.95, repeats=3),
            measure.report(sparse, "masked", input_shape=(1, 28, 28), accuracy=0.94, repeats=3,
                           extra={"sparsity": 0.9})]
    assert rows[0].params == rows[1].params == 266_610
    assert rows[1].nonzeros < 0.25 * rows[0].nonzeros  # fc1 (88% of weights) keeps ~10%
    assert rows[0].macs == 266_200 and rows[0].latency is not None
    text = str(measure.compare(rows))
    assert "dense" in text and "x less" in text and "95.00%" in text and "sparsity" in text
    html = measure.compare(rows)._repr_html_()
    assert html.startswith("<table>") and "masked" in html


@pytest.mark.parametrize("call, match", [
    (lambda: measure.count_macs(models.LeNet5(), (1, 0, 28)), "input_shape"),
    (lambda: measure.count_macs(models.LeNet5(), (3, 32, 32)), "cannot run"),
    (lambda: measure.measure_latency(models.LeNet5(), (1, 28, 28), batch_size=-2), "batch_size=-2"),
    (lambda: measure.report(models.LeNet5(), accuracy=95.0), "accuracy=95.0"),
    (lambda: measure.compare([]), "at least one row"),
])
def test_bad_input(call, match):
    """Bad shapes, sizes and accuracies raise ValueError naming the argument."""
    with pytest.raises(ValueError, match=match):
        call()


def test_human():
    """human() shortens counts and byte sizes."""
    assert measure.human(1_230_000) == "1.23M"
    assert measure.human(2048, "B") == "2.05 kB"
    assert measure.human(552e6, "B") == "552 MB"
    assert measure.human(None) == "-"


def test_best_latencies_takes_each_models_fastest_round():
    """best_latencies returns one Latency per model, each no slower than a single round."""
    ms = [models.LeNet300100(), models.LeNet5()]
    x = torch.zeros(2, 1, 28, 28)
    lats = measure.best_latencies(ms, x, rounds=3, repeats=3)
    assert len(lats) == 2 and all(l.batch_size == 2 and l.median_ms > 0 for l in lats)
    with pytest.raises(ValueError, match="rounds=0"):
        measure.best_latencies(ms, x, rounds=0)
