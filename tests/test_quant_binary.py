"""Tests of nclib.quant.binary: BinaryConnect, BNN's straight-through sign, XNOR-Net's scales,
ternary weights, and the conversion of trained layers to packed inference."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nclib.quant import binary


def test_sign_maps_zero_to_plus_one_and_keeps_the_dtype():
    """sign(0) = +1, the values are exactly -1.0 / +1.0, in the input's dtype."""
    x = torch.tensor([-3.0, -0.0, 0.0, 1e-9, 2.0], dtype=torch.float64)
    assert binary.sign(x).tolist() == [-1.0, 1.0, 1.0, 1.0, 1.0] and binary.sign(x).dtype == torch.float64


def test_sign_ste_passes_the_gradient_only_where_abs_x_is_at_most_one():
    """The backward of sign_ste is the upstream gradient times 1(|x| <= 1): hard tanh's gradient."""
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    up = torch.arange(1.0, 8.0)
    (binary.sign_ste(x) * up).sum().backward()
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]
    (torch.sign(x.detach().requires_grad_()) * up).sum()  # torch's own: zero gradient everywhere
    y = x.detach().requires_grad_()
    (g,) = torch.autograd.grad((torch.sign(y) * up).sum(), y)
    assert not g.any()


def test_binarize_stochastic_needs_a_generator_and_follows_the_hard_sigmoid():
    """Without a generator: a clear error; with one: P(+1) = clip((w + 1) / 2, 0, 1), reproducibly."""
    w = torch.tensor([-1.5, -0.5, 0.0, 0.5, 1.5]).repeat(20000, 1)
    with pytest.raises(ValueError, match="generator"):
        binary.binarize(w, "stochastic")
    with pytest.raises(ValueError, match="mode='sideways'"):
        binary.binarize(w, "sideways")
    a = binary.binarize(w, "stochastic", torch.Generator().manual_seed(3))
    b = binary.binarize(w, "stochastic", torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and set(a.unique().tolist()) == {-1.0, 1.0}
    p_plus = (a == 1).float().mean(0)
    assert torch.allclose(p_plus, binary.hard_sigmoid(w[0]), atol=0.015)


@pytest.mark.parametrize("bad", [torch.arange(4), torch.tensor([True, False]), [1.0, -1.0]])
def test_non_floating_inputs_are_refused_by_name(bad):
    """sign_ste and binarize of integers, booleans or a list: TypeError naming x and what it got."""
    with pytest.raises(TypeError, match=r"sign_ste\(x\)"):
        binary.sign_ste(bad)
    with pytest.raises(TypeError, match=r"binarize\(x\)"):
        binary.binarize(bad)


def test_alpha_is_the_mean_absolute_weight_per_output_and_minimises_the_error():
    """alpha = mean |W| over all but dim 0; no other scale of sign(W) is closer to W."""
    torch.manual_seed(0)
    w = torch.randn(6, 3, 3, 3)
    a = binary.alpha(w)
    assert a.shape == (6, 1, 1, 1) and torch.allclose(a.flatten(), w.abs().flatten(1).mean(1))
    err = lambda s: ((w - s * binary.sign(w)) ** 2).flatten(1).sum(1)  # noqa: E731
    for f in (0.9, 1.1):
        assert (err(a) < err(a * f)).all()


def test_ternarize_keeps_the_large_weights_at_their_mean_and_passes_the_gradient():
    """|w| <= 0.7 mean|w| -> 0, the rest -> +-alpha with alpha their mean |w|; gradient identity."""
    w = torch.tensor([[0.1, -0.2, 1.0, -3.0], [0.5, 0.5, -0.5, 0.0]], requires_grad=True)
    t = binary.ternarize(w)
    # row 0: mean |w| = 1.075, threshold 0.7525 -> keep 1.0 and -3.0, alpha = 2.0
    # row 1: mean |w| = 0.375, threshold 0.2625 -> keep the three 0.5s, alpha = 0.5
    assert t.tolist() == [[0.0, 0.0, 2.0, -2.0], [0.5, 0.5, -0.5, 0.0]]
    t.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))


def test_binarized_linear_computes_the_xnor_formula():
    """Binary weights times alpha, binary inputs times beta = mean |x| per row, plus bias."""
    torch.manual_seed(1)
    layer = binary.BinarizedLinear(20, 7, scale=True, activations=True, input_scale=True).eval()
    x = torch.randn(5, 20)
    w = binary.sign(layer.weight) * layer.weight.abs().mean(1, keepdim=True)
    want = F.linear(binary.sign(x), w) * x.abs().mean(1, keepdim=True) + layer.bias
    assert torch.allclose(layer(x), want, atol=1e-6)
    plain = binary.BinarizedLinear(20, 7).eval()
    assert torch.allclose(plain(x), F.linear(x, binary.sign(plain.weight), plain.bias), atol=1e-6)


def test_stochastic_layers_draw_in_training_and_use_sign_in_eval():
    """Training forwards draw new binary weights from the layer's seeded generator; eval is sign(w)."""
    torch.manual_seed(2)
    layer = binary.BinarizedLinear(50, 40, weights="stochastic", seed=5)
    nn.init.uniform_(layer.weight, -1, 1)
    x = torch.randn(3, 50)
    first, second = layer(x), layer(x)
    assert not torch.allclose(first, second)
    again = binary.BinarizedLinear(50, 40, weights="stochastic", seed=5)
    again.load_state_dict(layer.state_dict())
    assert torch.allclose(again(x), first)  # the same seed, the same first draw
    layer.eval()
    assert torch.allclose(layer(x), F.linear(x, binary.sign(layer.weight), layer.bias))


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1)])
def test_binarized_conv_pads_with_zeros_then_takes_the_sign(stride, padding):
    """Binary inputs: sign(pad(x)) (padded positions +1) conv sign(w) * alpha, times the mean |x|
    of each receptive field."""
    torch.manual_seed(3)
    conv = binary.BinarizedConv2d(3, 4, 3, stride, padding, scale=True, activations=True,
                                  input_scale=True).eval()
    x = torch.randn(2, 3, 7, 7)
    xp = F.pad(x, [padding] * 4)
    w = binary.sign(conv.weight) * binary.alpha(conv.weight)
    beta = F.avg_pool2d(xp.abs().mean(1, keepdim=True), 3, stride)
    want = F.conv2d(binary.sign(xp), w, None, stride) * beta + conv.bias[:, None, None]
    assert torch.allclose(conv(x), want, atol=1e-5)


def test_layer_options_are_checked():
    """An unknown weights mode, input_scale without binary inputs, or string padding: ValueError."""
    with pytest.raises(ValueError, match="weights='binary'"):
        binary.BinarizedLinear(3, 2, weights="binary")
    with pytest.raises(ValueError, match="input_scale=True"):
        binary.BinarizedLinear(3, 2, input_scale=True)
    with pytest.raises(ValueError, match="padding='same'"):
        binary.BinarizedConv2d(3, 2, 3, padding="same")


def test_binarize_layers_copies_clips_and_names_the_unknown():
    """The named layers become binarized with the same (clipped) weights; the original is untouched."""
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight[0, 0] = 5.0
    new = binary.binarize_layers(model, ["0"], scale=True)
    assert isinstance(new[0], binary.BinarizedLinear) and type(new[2]) is nn.Linear
    assert new[0].weight[0, 0].item() == 1.0 and model[0].weight[0, 0].item() == 5.0
    assert torch.equal(new[0].weight.detach()[1:], model[0].weight.detach()[1:])
    with pytest.raises(ValueError, match=r"\['1'\].*expected some of \['0', '2'\]"):
        binary.binarize_layers(model, ["1"])


def test_clip_hook_keeps_latent_weights_in_the_unit_interval_during_fit():
    """fit with step_hook=clip_hook leaves every binarized weight in [-1, 1]."""
    from nclib import train

    torch.manual_seed(5)
    model = nn.Sequential(nn.Flatten(), binary.BinarizedLinear(4, 2))
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    train.fit(model, [(x, y)], epochs=30, lr=0.5, step_hook=binary.clip_hook, progress=False)
    assert model[1].weight.abs().max() <= 1.0


def test_binary_bytes_counts_packed_words_scales_and_float_parameters():
    """A binarized 784 -> 512 Linear: 13 words a row, alpha and bias fp32; BatchNorm fp32."""
    model = nn.Sequential(binary.BinarizedLinear(784, 512, scale=True), nn.BatchNorm1d(512),
                          binary.BinarizedLinear(512, 10, weights="ternary"))
    want = (512 * 13 * 8 + 512 * 4 + 512 * 4) + 4 * 512 * 4 + (10 * 16 * 8 + 10 * 4 + 10 * 4)
    assert binary.binary_bytes(model) == want
    fp32 = nn.Sequential(nn.Linear(784, 512))
    assert binary.binary_bytes(fp32) == 4 * (784 * 512 + 512)


def test_to_packed_computes_the_same_outputs_with_xnor_and_popcount():
    """A trained-looking BNN / XNOR stack gives the same outputs after to_packed (float tolerance)."""
    torch.manual_seed(6)
    model = nn.Sequential(nn.Flatten(), binary.BinarizedLinear(30, 70), nn.BatchNorm1d(70),
                          binary.BinarizedLinear(70, 65, activations=True), nn.BatchNorm1d(65),
                          binary.BinarizedLinear(65, 10, scale=True, activations=True, input_scale=True)).eval()
    packed = binary.to_packed(model)
    x = torch.randn(9, 30)
    assert not isinstance(packed[3], binary.BinarizedLinear) and isinstance(packed[1], binary.BinarizedLinear)
    assert torch.allclose(packed(x), model(x), rtol=1e-5, atol=1e-5)
    assert binary.binary_bytes(packed) == binary.binary_bytes(model)  # the same bytes, packed or not
