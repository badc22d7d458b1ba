"""Tests of nclib.quant.quantized: BN folding, post-training quantization, QAT, int8 storage."""
import copy
import io

import pytest
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from nclib import models
from nclib.quant.layers import QuantConv2d, QuantLinear
from nclib.quant.quantized import (fold_batchnorm, int8_state_dict, load_int8_state_dict,
                                   prepare_qat, quantize_model)
from nclib.train import evaluate, fit


def with_random_bn_statistics(model, seed=0):
    """`model` in eval mode with BatchNorm statistics and affine parameters far from 0 and 1."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g))
            m.running_var.copy_(torch.rand(c, generator=g) * 2 + 0.2)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=g))
    return model.eval()


def saved(state):
    """Bytes of torch.save(state)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.tell()


@pytest.fixture
def trained_lenet(tiny_loaders):
    """LeNet-300-100 trained 3 epochs on the tiny loaders (well above chance)."""
    model = models.LeNet300100()
    fit(model, tiny_loaders.train, epochs=3, progress=False)
    return model.eval()


def test_fold_batchnorm_keeps_smallvgg_outputs_and_structure():
    """Folding SmallVGG: same class and indices, BNs become Identity, eval outputs within 1e-5."""
    model = with_random_bn_statistics(models.SmallVGG())
    before = copy.deepcopy(model.state_dict())
    folded = fold_batchnorm(model)
    assert type(folded) is models.SmallVGG and len(folded.features) == len(model.features)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert isinstance(folded.features[1], nn.Identity) and folded.features[0].bias is not None
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        ref, out = model(x), folded(x)
    assert (out - ref).abs().max() <= 1e-5 * ref.abs().max()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    assert isinstance(model.features[1], nn.BatchNorm2d)


def test_fold_batchnorm_equals_torch_fusion():
    """The folded conv's weight and bias equal torch.nn.utils.fusion.fuse_conv_bn_eval's."""
    for bias in (False, True):
        model = with_random_bn_statistics(nn.Sequential(nn.Conv2d(3, 8, 3, bias=bias),
                                                        nn.BatchNorm2d(8), nn.ReLU()))
        ref = fuse_conv_bn_eval(copy.deepcopy(model[0]), copy.deepcopy(model[1]))
        folded = fold_batchnorm(model)
        assert torch.allclose(folded[0].weight, ref.weight, rtol=1e-6, atol=1e-7)
        assert torch.allclose(folded[0].bias, ref.bias, rtol=1e-6, atol=1e-6)


class SharedConv(nn.Module):
    """A conv whose output feeds both a BN and a shortcut: folding would change the shortcut."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


def test_fold_batchnorm_leaves_what_it_cannot_fold():
    """A BN whose conv output is also used elsewhere stays; a model without BN is copied unchanged."""
    model = with_random_bn_statistics(SharedConv())
    folded = fold_batchnorm(model)
    assert isinstance(folded.bn, nn.BatchNorm2d)
    x = torch.randn(1, 2, 4, 4)
    assert torch.equal(folded(x), model(x))
    lenet = models.LeNet5().eval()
    copied = fold_batchnorm(lenet)
    assert copied is not lenet and type(copied) is models.LeNet5
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(copied(x), lenet(x))


def test_ptq_8_bits_keeps_predictions(trained_lenet, tiny_loaders):
    """8-bit PTQ of a trained LeNet-300-100 agrees with it on >= 97% of test digits, accuracy within 2 points."""
    qmodel = quantize_model(trained_lenet, tiny_loaders.train, num_batches=4)
    assert not qmodel.training and isinstance(qmodel.fc1, QuantLinear)
    assert type(trained_lenet.fc1) is nn.Linear  # the argument is not modified
    x = torch.cat([batch[0] for batch in tiny_loaders.test])
    with torch.no_grad():
        agree = (qmodel(x).argmax(1) == trained_lenet(x).argmax(1)).float().mean()
    assert agree >= 0.97
    acc, qacc = evaluate(trained_lenet, tiny_loaders.test), evaluate(qmodel, tiny_loaders.test)
    assert acc > 0.6 and qacc >= acc - 0.02


def test_ptq_at_2_bits_does_change_predictions(trained_lenet, tiny_loaders):
    """The PTQ agreement test can fail: at 2 bits (ternary weights) the predictions change."""
    qmodel = quantize_model(trained_lenet, tiny_loaders.train, num_bits=2)
    x = torch.cat([batch[0] for batch in tiny_loaders.test])
    with torch.no_grad():
        agree = (qmodel(x).argmax(1) == trained_lenet(x).argmax(1)).float().mean()
    assert agree < 0.97


def test_ptq_calibrates_on_num_batches_then_freezes():
    """Calibration reads exactly num_batches batches; afterwards new inputs do not move the ranges."""
    read = []

    def loader():
        for i in range(10):
            read.append(i)
            yield torch.randn(4, 1, 28, 28) * (i + 1), torch.zeros(4, dtype=torch.long)

    qmodel = quantize_model(models.LeNet5(), loader(), num_batches=3)
    assert read == [0, 1, 2]
    before = qmodel.conv1.input_quantizer.max_val.clone()
    qmodel(torch.randn(2, 1, 28, 28) * 100)
    assert torch.equal(qmodel.conv1.input_quantizer.max_val, before)


def test_ptq_options_per_channel_dict_and_no_activations():
    """per_channel gives one weight scale per output channel; a dict quantizes only the layers it names."""
    calib = [(torch.randn(8, 1, 28, 28), torch.zeros(8, dtype=torch.long))]
    qmodel = quantize_model(models.SmallVGG(), calib, per_channel=True, activations=False)
    assert isinstance(qmodel.features[0], QuantConv2d) and qmodel.features[0].input_quantizer is None
    assert qmodel.features[0].weight_qparams()[0].shape == (16,)
    mixed = quantize_model(models.LeNet300100(), calib, num_bits={"fc1": 4})
    assert mixed.fc1.num_bits == 4 and type(mixed.fc2) is nn.Linear


def test_quantization_errors_name_the_problem():
    """No quantizable layer, bad num_bits, an unknown layer name, bad num_batches, an empty loader: clear errors."""
    calib = [(torch.randn(2, 1, 28, 28), torch.zeros(2, dtype=torch.long))]
    with pytest.raises(ValueError, match=r"model .*no quantizable layer \(Conv2d, Linear\)"):
        quantize_model(nn.Sequential(nn.ReLU(), nn.MaxPool2d(2)), calib)
    for bits in (0, 17, True):
        with pytest.raises(ValueError, match="num_bits"):
            quantize_model(models.LeNet300100(), calib, num_bits=bits)
    with pytest.raises(ValueError, match="no Conv2d or Linear named 'fc9'.*'fc1'"):
        prepare_qat(models.LeNet300100(), num_bits={"fc9": 4})
    with pytest.raises(ValueError, match="num_batches=0"):
        quantize_model(models.LeNet300100(), calib, num_batches=0)
    with pytest.raises(ValueError, match="calib_loader yielded no batches"):
        quantize_model(models.LeNet300100(), [])
    with pytest.raises(ValueError, match="no QuantLinear or QuantConv2d"):
        int8_state_dict(models.LeNet300100())


def test_qat_reduces_the_loss_with_fit(tiny_loaders):
    """prepare_qat + nclib.train.fit unchanged: 4-bit LeNet-300-100's training loss falls; ranges tracked."""
    qmodel = prepare_qat(models.LeNet300100(), num_bits=4)
    assert qmodel.training and qmodel.fc1.input_quantizer.observer == "ema"
    history = fit(qmodel, tiny_loaders.train, epochs=3, progress=False)
    assert history.train_loss[-1] < 0.7 * history.train_loss[0]
    assert qmodel.fc2.input_quantizer.observed() and qmodel.fc2.input_quantizer.min_val >= 0
    assert evaluate(qmodel, tiny_loaders.test) > 0.6


def test_qat_on_a_batchnorm_model_trains_folded(tiny_loaders):
    """prepare_qat on SmallVGG folds BN (training then runs without it) and one epoch of fit runs."""
    qmodel = prepare_qat(with_random_bn_statistics(models.SmallVGG(cfg=(8, "M", 16, "M"))))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in qmodel.modules())
    history = fit(qmodel, tiny_loaders.train, epochs=1, progress=False)
    assert history.train_loss[0] > 0 and qmodel.features[0].bias.grad is not None


def test_int8_state_dict_is_a_quarter_of_fp32(trained_lenet, tiny_loaders):
    """LeNet-300-100's int8 state dict saves to 0.24-0.30 of the fp32 one: int8 weights, fp32 biases."""
    qmodel = quantize_model(trained_lenet, tiny_loaders.train, num_batches=2)
    state = int8_state_dict(qmodel)
    assert state["fc1.weight"].dtype == torch.int8 and state["fc1.bias"].dtype == torch.float32
    assert state["fc1.weight_scale"].shape == () and state["fc1.input_quantizer.zero_point"].dtype == torch.int32
    ratio = saved(state) / saved(trained_lenet.state_dict())
    assert 0.24 <= ratio <= 0.30, ratio  # 266,200 weight bytes + 1,640 bias bytes + file overhead


def test_int8_state_dict_round_trips(tiny_loaders):
    """load_int8_state_dict into a fresh quantized model gives the same outputs; 4 bits stay in [-8, 7]."""
    calib = [next(iter(tiny_loaders.train))]
    qmodel = quantize_model(models.LeNet5(), calib, num_bits=4, per_channel=True)
    state = int8_state_dict(qmodel)
    assert state["conv1.weight"].dtype == torch.int8 and state["conv1.weight_scale"].shape == (20,)
    assert -8 <= int(state["conv1.weight"].min()) and int(state["conv1.weight"].max()) <= 7
    fresh = quantize_model(models.LeNet5(), [(torch.randn(2, 1, 28, 28), None)], num_bits=4,
                           per_channel=True)
    x = calib[0][0]
    assert not torch.equal(fresh(x), qmodel(x))
    load_int8_state_dict(fresh, state)
    assert torch.allclose(fresh(x), qmodel(x), rtol=1e-5, atol=1e-6)
    assert torch.equal(int8_state_dict(fresh)["fc1.weight"], state["fc1.weight"])


class Branchy(nn.Module):
    """A model whose forward branches on data: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)

    def forward(self, x):
        return self.bn(self.conv(x)) if x.sum() > 0 else self.conv(x)


def test_untraceable_model_gets_a_clear_folding_error():
    """BN folding of a model fx cannot trace says so and points to fold_bn=False, which works."""
    calib = [(torch.ones(2, 1, 8, 8), None)]
    with pytest.raises(TypeError, match="cannot trace Branchy.*fold_bn=False"):
        quantize_model(Branchy(), calib)
    assert isinstance(quantize_model(Branchy(), calib, fold_bn=False).conv, QuantConv2d)
