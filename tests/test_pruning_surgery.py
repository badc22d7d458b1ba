"""nclib.pruning.surgery: smaller models with the masked original's outputs; clear errors."""
import pytest
import torch
from torch import nn

from nclib import measure, models, train
from nclib.pruning import channels, magnitude, surgery


def _keep_every_other(model, names):
    return {n: torch.arange(0, model.get_submodule(n).out_channels, 2) for n in names}


def _randomize_bn(model, seed=0):
    """Non-trivial BN scales, shifts and statistics, so a wrong slice would show in the outputs.

    The statistics are those of random inputs, then perturbed: without the calibration a
    deep net's signal shrinks layer by layer and the outputs would not depend on the input.
    """
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    x = torch.randn(32, *_input_shape(model), generator=g)
    with torch.no_grad():
        for m in bns:
            m.weight.uniform_(0.5, 1.5, generator=g)
            m.bias.normal_(0, 0.5, generator=g)
            m.momentum = 1.0  # the next forward's batch statistics become the running ones
        model.train()(x)
        for m in bns:
            m.momentum = 0.1
            noise = torch.randn(m.num_features, generator=g)
            m.running_mean.add_(0.5 * noise * m.running_var.sqrt())
            m.running_var.mul_(torch.empty(m.num_features).uniform_(0.5, 2, generator=g))
    return model.eval()


def _mobilenet():
    return models.MobileNetV1(width_mult=0.25, resolution=32, num_classes=10)


def _sequential_cnn():
    """A plain nn.Sequential CNN: BN, ReLU/ReLU6, pooling, Dropout, Flatten, Linear."""
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.MaxPool2d(2),  # (B, 6, 14, 14)
                         nn.Conv2d(6, 10, 3), nn.BatchNorm2d(10), nn.ReLU6(),
                         nn.AvgPool2d(3),  # (B, 10, 4, 4)
                         nn.Dropout(0.2), nn.Flatten(), nn.Linear(10 * 4 * 4, 5))


def _input_shape(model):
    return getattr(model, "input_shape", (1, 28, 28))


@pytest.mark.parametrize("make, names", [
    (models.SmallVGG, None),  # every conv, the last one feeding the classifier
    (models.SmallVGG, ["features.7", "features.10"]),  # two consecutive convs
    (models.SmallResNet, None),  # every block's inner channels
    (models.LeNet5, None),  # functional max_pool2d and x.flatten(1), no BatchNorm
    (_mobilenet, None),  # the stem and every pointwise conv, through depthwise convs
    (_sequential_cnn, None),
])
def test_removed_equals_zeroed_with_fewer_params_and_macs(make, names):
    """Surgery's outputs equal the zeroed-channel original on random inputs; params and MACs drop."""
    model = _randomize_bn(make()).eval()
    names = names or surgery.channel_prunable_layers(model)
    keep = _keep_every_other(model, names)
    small, masked = surgery.remove_channels(model, keep), surgery.zero_channels(model, keep)
    shape = _input_shape(model)
    x = torch.randn(6, *shape, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(small(x), masked(x), rtol=1e-5, atol=1e-5)
    assert masked(x).std(0).max() > 1e-3  # the outputs depend on the input: a real comparison
    for m in (*small.modules(), *masked.modules()):  # batch statistics: the kept channels
        m.train(not isinstance(m, nn.Dropout))  # are the same too (Dropout off: same masks)
    torch.testing.assert_close(small(x), masked(x), rtol=1e-4, atol=1e-4)
    assert measure.count_params(small) < measure.count_params(model)
    assert measure.count_macs(small, shape).total < measure.count_macs(model, shape).total
    for name, idx in keep.items():
        assert small.get_submodule(name).out_channels == idx.numel()


# (model, layer, channels removed k, params those k channels held, MACs they cost), each
# written out by hand from the architecture: filters (+ bias) + BN (gamma, beta) + the
# readers' inputs, and the MACs of those filters and inputs at their feature-map sizes.
K = 3
DROPS = [
    (models.LeNet5, "conv1",  # 5x5 filters at 24x24, conv2 reads them at 8x8
     K * (1 * 25 + 1) + K * 25 * 50, K * 25 * 24 * 24 + K * 50 * 25 * 8 * 8),
    (models.LeNet5, "conv2",  # 20x5x5 filters at 8x8; fc1 reads 4x4 = 16 inputs a channel
     K * (20 * 25 + 1) + K * 16 * 500, K * 20 * 25 * 8 * 8 + K * 16 * 500),
    (models.SmallVGG, "features.0",  # 3x3, no bias, BN; features.3 (16 filters) at 28x28
     K * 9 + 2 * K + K * 16 * 9, K * 9 * 28 * 28 + K * 16 * 9 * 28 * 28),
    (models.SmallVGG, "features.14",  # 32x3x3 filters at 7x7; classifier reads 3x3 a channel
     K * 32 * 9 + 2 * K + K * 9 * 10, K * 32 * 9 * 7 * 7 + K * 9 * 10),
    (models.SmallResNet, "blocks.0.conv1",  # 8x3x3 at 28x28, bn1, conv2 (8 filters)
     K * 8 * 9 + 2 * K + K * 8 * 9, K * 8 * 9 * 28 * 28 + K * 8 * 9 * 28 * 28),
    (_mobilenet, "features.0.0",  # stem 3x3x3 at 16x16, BN, dw 3x3 + BN, pointwise 16 outputs
     K * 27 + 2 * K + K * 9 + 2 * K + K * 16,
     K * 27 * 16 * 16 + K * 9 * 16 * 16 + K * 16 * 16 * 16),
    (_mobilenet, "features.1.1.0",  # pw 8 inputs at 16x16, BN, dw stride 2 (8x8) + BN, pw 32
     K * 8 + 2 * K + K * 9 + 2 * K + K * 32, K * 8 * 16 * 16 + K * 9 * 8 * 8 + K * 32 * 8 * 8),
    (_mobilenet, "features.13.1.0",  # pw 256 inputs at 1x1, BN, then pool and the classifier
     K * 256 + 2 * K + K * 10, K * 256 + K * 10),
    (_sequential_cnn, "0",  # 3x3 + bias at 28x28, BN, conv 4 (10 filters) at 12x12
     K * 10 + 2 * K + K * 10 * 9, K * 9 * 28 * 28 + K * 10 * 9 * 12 * 12),
    (_sequential_cnn, "4",  # 6x3x3 + bias at 12x12, BN, the Linear reads 4x4 a channel
     K * 55 + 2 * K + K * 16 * 5, K * 54 * 12 * 12 + K * 16 * 5),
]


@pytest.mark.parametrize("make, name, param_drop, mac_drop", DROPS,
                         ids=[f"{m.__name__}-{n}" for m, n, *_ in DROPS])
def test_params_and_macs_drop_by_what_the_channels_held(make, name, param_drop, mac_drop):
    """Removing K channels removes exactly their filters, BN entries, depthwise filters and
    readers' inputs (counted by hand), and the outputs equal the zeroed model's."""
    model = _randomize_bn(make()).eval()
    C = model.get_submodule(name).out_channels
    keep = {name: torch.randperm(C, generator=torch.Generator().manual_seed(2))[:C - K]}
    small, masked = surgery.remove_channels(model, keep), surgery.zero_channels(model, keep)
    shape = _input_shape(model)
    assert measure.count_params(model) - measure.count_params(small) == param_drop
    macs = [measure.count_macs(m, shape).total for m in (model, small)]
    assert macs[0] - macs[1] == mac_drop
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(3))
    assert (small(x) - masked(x)).abs().max() < 1e-5
    assert masked(x).std(0).max() > 1e-3


def test_prunable_layers_of_the_course_models():
    """LeNet-5: both convs; SmallResNet: only the blocks' conv1; MobileNet: stem and pointwise."""
    assert surgery.channel_prunable_layers(models.LeNet5()) == ["conv1", "conv2"]
    assert surgery.channel_prunable_layers(models.SmallResNet()) == \
        [f"blocks.{i}.conv1" for i in range(6)]
    assert surgery.channel_prunable_layers(models.SmallVGG()) == \
        ["features.0", "features.3", "features.7", "features.10", "features.14"]
    assert surgery.channel_prunable_layers(_mobilenet()) == \
        ["features.0.0"] + [f"features.{i}.1.0" for i in range(1, 14)]
    assert surgery.channel_prunable_layers(_sequential_cnn()) == ["0", "4"]


def test_depthwise_conv_after_a_pointwise_conv_shrinks_with_it():
    """MobileNet: the next depthwise conv keeps groups == channels and its kept filters."""
    model = _mobilenet()
    keep = torch.tensor([0, 3, 4, 9])
    small = surgery.remove_channels(model, {"features.1.1.0": keep})
    dw = small.features[2][0][0]
    assert (dw.in_channels, dw.out_channels, dw.groups) == (4, 4, 4)
    assert torch.equal(dw.weight, model.features[2][0][0].weight[keep])
    bn, bn_before = small.features[2][0][1], model.features[2][0][1]
    assert torch.equal(bn.running_mean, bn_before.running_mean[keep])
    assert torch.equal(small.features[2][1][0].weight, model.features[2][1][0].weight[:, keep])


def test_classifier_inputs_follow_the_flattened_channels():
    """Keeping channels 1 and 3 of the last conv (64 x 3x3) keeps classifier inputs 9..17 and 27..35."""
    model = models.SmallVGG()
    small = surgery.remove_channels(model, {"features.14": torch.tensor([3, 1])})
    columns = list(range(9, 18)) + list(range(27, 36))
    assert torch.equal(small.classifier.weight, model.classifier.weight[:, columns])
    assert torch.equal(small.classifier.bias, model.classifier.bias)
    assert torch.equal(small.features[15].running_var, model.features[15].running_var[[1, 3]])
    assert channels.coupling(model, "features.14") == channels.Coupling(
        "features.14", "features.15", ("features.15",), (channels.Reader("classifier", 9),))


def test_pruned_vgg_is_the_architecture_its_cfg_names():
    """After surgery, SmallVGG(cfg=small.cfg) has the same state_dict shapes; the original is unchanged."""
    model = models.SmallVGG()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    keep = _keep_every_other(model, surgery.channel_prunable_layers(model))
    small = surgery.remove_channels(model, keep)
    assert small.cfg == (8, 8, "M", 16, 16, "M", 32, "M")
    rebuilt = models.SmallVGG(cfg=small.cfg)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == \
        {k: v.shape for k, v in small.state_dict().items()}
    assert all(torch.equal(original[k], v) for k, v in model.state_dict().items())


def test_input_scales_multiply_the_next_layer():
    """input_scales (ThiNet's rescaling) scale the next layer's kept inputs, same in both forms."""
    model = _randomize_bn(models.SmallVGG()).eval()
    keep = {"features.3": torch.tensor([0, 5, 9]), "features.14": torch.tensor([2, 7])}
    scales = {"features.3": torch.tensor([2.0, 0.5, -1.0]), "features.14": torch.tensor([3.0, 0.1])}
    small = surgery.remove_channels(model, keep, scales)
    assert torch.allclose(small.features[7].weight[:, 1], 0.5 * model.features[7].weight[:, 5])
    assert torch.allclose(small.classifier.weight[:, 9:18], 0.1 * model.classifier.weight[:, 63:72])
    x = torch.randn(4, 1, 28, 28)
    masked = surgery.zero_channels(model, keep, scales)
    torch.testing.assert_close(small(x), masked(x), rtol=1e-5, atol=1e-5)


def test_pruned_model_trains(tiny_loaders):
    """A model after surgery trains with fit (its layers are ordinary, trainable layers)."""
    small = surgery.remove_channels(models.SmallResNet(), {"blocks.0.conv1": torch.tensor([1, 2])})
    before = small.blocks[0].conv1.weight.detach().clone()
    train.fit(small, tiny_loaders.train, epochs=1, progress=False)
    assert not torch.equal(before, small.blocks[0].conv1.weight)


class _Shift(nn.Module):
    """A custom module that moves every channel one place: surgery cannot follow that."""

    def forward(self, x):
        return x.roll(1, dims=1)


def test_unknown_graphs_and_layers_are_clear_errors():
    """Unsupported graphs, layers and plans: one error naming the layer and the reason."""
    with pytest.raises(ValueError, match="'blocks.0.conv2' in SmallResNet: they feed the sum "
                                         "'add' in blocks.0.*same channels"):
        surgery.remove_channels(models.SmallResNet(), {"blocks.0.conv2": torch.tensor([0])})
    with pytest.raises(ValueError, match="'stem.0'.*sum 'add' in blocks.0"):
        channels.coupling(models.SmallResNet(), "stem.0")
    with pytest.raises(ValueError, match="'blocks.2.shortcut.0'.*sum 'add_2' in blocks.2"):
        surgery.zero_channels(models.SmallResNet(), {"blocks.2.shortcut.0": torch.tensor([0])})
    with pytest.raises(ValueError, match="'features.1.0.0'.*depthwise"):
        surgery.remove_channels(_mobilenet(), {"features.1.0.0": torch.tensor([0])})
    with pytest.raises(TypeError, match="'features.1' is a BatchNorm2d.*Conv2d"):
        channels.coupling(models.SmallVGG(), "features.1")
    with pytest.raises(ValueError, match="no layer named 'features.99'"):
        surgery.remove_channels(models.SmallVGG(), {"features.99": torch.tensor([0])})
    vgg = models.SmallVGG()
    vgg.features.insert(3, _Shift())  # a custom module between features.0's BN-ReLU and its reader
    with pytest.raises(ValueError, match=r"'features.0'.*node 'roll' \(.roll\(\) in features.3\)"):
        surgery.remove_channels(vgg, {"features.0": torch.tensor([0])})
    assert "features.0" not in surgery.channel_prunable_layers(vgg)
    assert "features.4" in surgery.channel_prunable_layers(vgg)  # the layers after it still are
    with pytest.raises(ValueError, match=r"keep\['features.0'\].*\[0, 15\]"):
        surgery.remove_channels(models.SmallVGG(), {"features.0": torch.tensor([0, 16])})
    masked = models.SmallVGG()
    magnitude.prune_by_magnitude(masked.features[0], 0.5)
    with pytest.raises(ValueError, match="'features.0' carries a magnitude-pruning mask.*bake"):
        surgery.remove_channels(masked, {"features.0": torch.tensor([0])})
    magnitude.prune_by_magnitude(masked.features[3], 0.5)  # the reader of features.0 too
    magnitude.bake(masked.features[0])
    with pytest.raises(ValueError, match="'features.3' carries a magnitude-pruning mask.*bake"):
        surgery.zero_channels(masked, {"features.0": torch.tensor([0])})


def test_reinitialize_is_seeded_and_keeps_architecture_and_masks():
    """reinitialize: same shapes, new weights, same seed same weights, global RNG untouched, masks kept."""
    small = surgery.remove_channels(models.SmallVGG(), {"features.0": torch.tensor([0, 1, 2])})
    magnitude.prune_by_magnitude(small.classifier, 0.5)
    state = torch.random.get_rng_state()
    a, b = surgery.reinitialize(small, seed=1), surgery.reinitialize(small, seed=1)
    assert torch.equal(state, torch.random.get_rng_state())
    assert a.features[0].weight.shape == (3, 1, 3, 3)
    assert torch.equal(a.features[0].weight, b.features[0].weight)
    assert not torch.equal(a.features[0].weight, small.features[0].weight)
    assert torch.equal(a.classifier.weight_mask, small.classifier.weight_mask)
    assert torch.all(a.classifier.weight[~a.classifier.weight_mask] == 0)


def test_scratch_epochs():
    """Scratch-E: same epochs; Scratch-B: epochs x MAC ratio, capped at 3x; bad input rejected."""
    assert surgery.scratch_epochs(10, 1000, 500, budget="E") == 10
    assert surgery.scratch_epochs(10, 1000, 500) == 20
    assert surgery.scratch_epochs(10, 1000, 100) == 30
    assert surgery.scratch_epochs(10, 1000, 100, max_factor=2.0) == 20
    with pytest.raises(ValueError, match="budget='C'"):
        surgery.scratch_epochs(10, 1000, 500, budget="C")
    with pytest.raises(ValueError, match="pruned_macs=2000"):
        surgery.scratch_epochs(10, 1000, 2000)


def test_fold_for_inference_keeps_outputs():
    """Folding BatchNorm into the convs (and channels_last) leaves eval outputs unchanged."""
    torch.manual_seed(0)
    model = models.SmallVGG()
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    folded = surgery.fold_for_inference(model)
    x = torch.randn(4, 1, 28, 28)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert torch.allclose(model(x), folded(x), atol=1e-5)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # original kept
