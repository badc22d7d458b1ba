"""nclib.pruning.surgery: smaller models with the masked original's outputs; clear errors."""
import pytest
import torch
from torch import nn

from nclib import measure, models, train
from nclib.pruning import magnitude, surgery


def _keep_every_other(model, names):
    return {n: torch.arange(0, model.get_submodule(n).out_channels, 2) for n in names}


def _randomize_bn(model, seed=0):
    """Non-trivial BN statistics and shifts, so a wrong slice would show in the outputs."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.5, generator=g)
                m.running_mean.normal_(0, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2, generator=g)
    return model


@pytest.mark.parametrize("make, names", [
    (models.SmallVGG, None),  # every conv, the last one feeding the classifier
    (models.SmallVGG, ["features.7", "features.10"]),  # two consecutive convs
    (models.SmallResNet, None),  # every block's inner channels
])
def test_removed_equals_zeroed_with_fewer_params_and_macs(make, names):
    """Surgery's outputs equal the zeroed-channel original on random inputs; params and MACs drop."""
    model = _randomize_bn(make()).eval()
    names = names or surgery.channel_prunable_layers(model)
    keep = _keep_every_other(model, names)
    small, masked = surgery.remove_channels(model, keep), surgery.zero_channels(model, keep)
    x = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(small(x), masked(x), rtol=1e-5, atol=1e-5)
    small.train(), masked.train()  # batch statistics: the kept channels are the same too
    torch.testing.assert_close(small(x), masked(x), rtol=1e-4, atol=1e-4)
    assert measure.count_params(small) < measure.count_params(model)
    assert measure.count_macs(small, (1, 28, 28)).total < measure.count_macs(model, (1, 28, 28)).total
    for name, idx in keep.items():
        assert small.get_submodule(name).out_channels == idx.numel()


def test_classifier_inputs_follow_the_flattened_channels():
    """Keeping channels 1 and 3 of the last conv (64 x 3x3) keeps classifier inputs 9..17 and 27..35."""
    model = models.SmallVGG()
    small = surgery.remove_channels(model, {"features.14": torch.tensor([3, 1])})
    columns = list(range(9, 18)) + list(range(27, 36))
    assert torch.equal(small.classifier.weight, model.classifier.weight[:, columns])
    assert torch.equal(small.classifier.bias, model.classifier.bias)
    assert torch.equal(small.features[15].running_var, model.features[15].running_var[[1, 3]])
    assert surgery.coupling(model, "features.14") == surgery.Coupling("features.14", "features.15",
                                                                      "classifier", 9)


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


def test_unknown_graphs_and_layers_are_clear_errors():
    """Unsupported models, layers and plans: errors naming the layer and what is supported."""
    with pytest.raises(ValueError, match="LeNet5.*'conv1'.*SmallVGG.*SmallResNet"):
        surgery.remove_channels(models.LeNet5(), {"conv1": torch.tensor([0])})
    with pytest.raises(ValueError, match="LeNet5.*supported"):
        surgery.channel_prunable_layers(models.LeNet5())
    with pytest.raises(ValueError, match="'blocks.0.conv2'.*shortcut.*blocks.<i>.conv1"):
        surgery.coupling(models.SmallResNet(), "blocks.0.conv2")
    with pytest.raises(ValueError, match="'stem.0'.*shortcut"):
        surgery.coupling(models.SmallResNet(), "stem.0")
    with pytest.raises(TypeError, match="'features.1' is a BatchNorm2d.*Conv2d"):
        surgery.coupling(models.SmallVGG(), "features.1")
    with pytest.raises(ValueError, match="no layer named 'features.99'"):
        surgery.coupling(models.SmallVGG(), "features.99")
    vgg = models.SmallVGG()
    vgg.features.insert(3, nn.Dropout())
    with pytest.raises(ValueError, match=r"features.3 \(Dropout\).*supported"):
        surgery.coupling(vgg, "features.0")
    with pytest.raises(ValueError, match=r"keep\['features.0'\].*\[0, 15\]"):
        surgery.remove_channels(models.SmallVGG(), {"features.0": torch.tensor([0, 16])})
    masked = models.SmallVGG()
    magnitude.prune_by_magnitude(masked.features[0], 0.5)
    with pytest.raises(ValueError, match="bake"):
        surgery.remove_channels(masked, {"features.0": torch.tensor([0])})


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
