"""nclib.quant.kmeans: 1-D k-means agrees with scikit-learn, pruned zeros stay zero, and
shared layers train their centroids by Eq. 3 of Deep Compression."""
import copy
import re

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from torch import fx, nn

from nclib import measure, models, train
from nclib.quant import kmeans


def _weights(n=3000, seed=0):
    """Weight-like data: a narrow bell with a few large values (float64)."""
    g = torch.Generator().manual_seed(seed)
    w = 0.05 * torch.randn(n, generator=g, dtype=torch.float64)
    w[:30] *= 8  # the rare large weights that linear initialisation keeps
    return w


def _dense(n=3000, seed=0):
    """A bell clipped at 2 sigma (float64): values everywhere in range, so that no cluster
    runs empty (scikit-learn moves an empty cluster elsewhere; we keep it)."""
    g = torch.Generator().manual_seed(seed)
    return 0.05 * torch.randn(n, generator=g, dtype=torch.float64).clamp(-2, 2)


def _pruned(*shape, sparsity=0.6, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(*shape, generator=g).clamp(-2, 2)
    return w * (torch.rand(*shape, generator=g) >= sparsity)


def _inertia(values, centroids, labels):
    return float(((values - centroids[labels]) ** 2).sum())


def _sklearn(values, start, max_iter):
    """scikit-learn's Lloyd from the same starting centroids: (inertia, labels)."""
    km = KMeans(n_clusters=start.numel(), init=start.double().numpy().reshape(-1, 1), n_init=1,
                algorithm="lloyd", max_iter=max_iter, tol=0).fit(values.double().numpy().reshape(-1, 1))
    return km.inertia_, km.labels_


# ---------------------------------------------------------------- arguments
def test_num_bits_is_an_integer_from_1_to_16():
    """check_num_bits accepts 1..16 (numpy integers too) and rejects 0, 17, bools, floats, strings."""
    assert [kmeans.check_num_bits(b) for b in (1, 8, 16, np.int64(4))] == [1, 8, 16, 4]
    for bad in (0, 17, -1, True, 2.0, "4", None):
        with pytest.raises(ValueError, match=r"num_bits=.*: expected an integer from 1 to 16"):
            kmeans.check_num_bits(bad)
    with pytest.raises(ValueError, match="num_bits=0"):
        kmeans.kmeans_quantize(torch.randn(10), num_bits=0)


def test_unknown_init_lists_the_allowed_ones():
    """An unknown init raises ValueError naming it and the three inits of Han et al."""
    message = re.escape("init='kmeans++': expected one of 'linear', 'density', 'random'")
    with pytest.raises(ValueError, match=message):
        kmeans.kmeans_quantize(torch.randn(10), 2, init="kmeans++")
    with pytest.raises(ValueError, match=message):
        kmeans.initial_centroids(torch.randn(10), 4, init="kmeans++")
    with pytest.raises(ValueError, match="pruned=1"):
        kmeans.kmeans_quantize(torch.randn(10), 2, pruned=1)


# ---------------------------------------------------------------- initialisation
def test_initial_centroids_by_hand_and_against_numpy():
    """linear spans [min, max]; density is numpy's quantiles at (i + 1/2) / k; all ascending."""
    values = torch.tensor([3.0, -1.0, 0.5, 0.0, 2.0])
    assert kmeans.initial_centroids(values, 3, "linear").tolist() == [-1.0, 1.0, 3.0]
    w = _weights()
    for k in (1, 4, 16):
        expected = np.quantile(w.numpy(), (np.arange(k) + 0.5) / k)
        assert np.allclose(kmeans.initial_centroids(w, k, "density").numpy(), expected, rtol=0, atol=1e-12)
        for init in kmeans.INITS:
            c = kmeans.initial_centroids(w, k, init)
            assert c.shape == (k,) and c.dtype == w.dtype and bool((c[1:] >= c[:-1]).all())
    assert kmeans.initial_centroids(torch.tensor([]), 4, "linear").tolist() == [0.0] * 4


def test_random_init_draws_distinct_weights_with_the_seed():
    """Forgy: k different values of the data, the same for one seed, others for another seed."""
    w = torch.tensor([1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    draws = {tuple(kmeans.initial_centroids(w, 4, "random", seed=s).tolist()) for s in range(20)}
    assert len(draws) > 1
    for c in draws:
        assert len(set(c)) == 4 and set(c) <= set(w.tolist())
    assert torch.equal(kmeans.initial_centroids(w, 4, "random", seed=3),
                       kmeans.initial_centroids(w, 4, "random", seed=3))
    few = kmeans.initial_centroids(torch.tensor([2.0, 1.0, 2.0]), 4, "random")
    assert few.tolist() == [1.0, 2.0, 2.0, 2.0]  # fewer distinct values than k: repeats


# ---------------------------------------------------------------- Lloyd's algorithm
@pytest.mark.parametrize("init", kmeans.INITS)
@pytest.mark.parametrize("k", [2, 3, 8, 32])
def test_lloyd_matches_scikit_learn(init, k):
    """From the same start, our inertia is within 0.1% of scikit-learn's (labels agree too)."""
    w = _dense(seed=k)
    start = kmeans.initial_centroids(w, k, init, seed=1)
    centroids, labels, num_iter = kmeans.lloyd(w, start, max_iter=300)
    inertia, sk_labels = _sklearn(w, start, 300)
    assert _inertia(w, centroids, labels) == pytest.approx(inertia, rel=1e-3)
    assert (labels.numpy() == sk_labels).mean() > 0.99
    assert 1 <= num_iter < 300  # converged: the labels stopped changing
    assert labels.unique().numel() == k  # no empty cluster, where scikit-learn would differ


@pytest.mark.parametrize("max_iter", [0, 1, 3])
def test_lloyd_stops_after_max_iter_like_scikit_learn(max_iter):
    """max_iter caps the moves; after 1 or 3 moves the clustering is scikit-learn's after as many."""
    w = _dense(seed=5)
    start = kmeans.initial_centroids(w, 8, "linear")
    centroids, labels, num_iter = kmeans.lloyd(w, start, max_iter=max_iter)
    assert num_iter == max_iter
    if max_iter == 0:
        assert torch.equal(centroids, start)
    else:
        assert _inertia(w, centroids, labels) == pytest.approx(_sklearn(w, start, max_iter)[0], rel=1e-9)


def test_empty_clusters_keep_their_centroid_and_ties_go_to_the_lower_index():
    """Centroids with no values stay put; a value halfway between two goes to the lower one."""
    values = torch.tensor([0.0, 0.2, 1.0, 1.2])
    centroids, labels, _ = kmeans.lloyd(values, torch.tensor([0.0, 1.0, 10.0, 20.0]))
    assert torch.allclose(centroids, torch.tensor([0.1, 1.1, 10.0, 20.0]))
    assert labels.tolist() == [0, 0, 1, 1]
    _, labels, _ = kmeans.lloyd(torch.tensor([0.5, 1.5]), torch.tensor([0.0, 1.0, 2.0]), max_iter=0)
    assert labels.tolist() == [0, 1]
    _, labels, _ = kmeans.lloyd(torch.tensor([0.0, 0.1, 0.4]), torch.tensor([0.0, 0.0, 1.0]), max_iter=0)
    assert labels.tolist() == [0, 0, 0]  # equal centroids: the first one
    _, labels, _ = kmeans.lloyd(torch.tensor([0.1, 0.9]), torch.tensor([1.0, 0.0]), max_iter=0)
    assert labels.tolist() == [1, 0]  # unsorted centroids: labels index them as given


# ---------------------------------------------------------------- kmeans_quantize
@pytest.mark.parametrize("init", kmeans.INITS)
@pytest.mark.parametrize("num_bits", [1, 2, 4])
def test_pruned_weight_keeps_its_zeros(init, num_bits):
    """Zeros get label 0 and centroid 0 is 0.0; the nonzeros are clustered as scikit-learn would."""
    w = _pruned(40, 30, seed=num_bits)
    centroids, labels = kmeans.kmeans_quantize(w, num_bits, init, seed=2, max_iter=300)
    assert centroids.shape == (2 ** num_bits,) and labels.shape == w.shape and labels.dtype == torch.long
    assert centroids[0] == 0.0 and bool((labels[w == 0] == 0).all()) and bool((labels[w != 0] >= 1).all())
    rebuilt = kmeans.shared_weight(centroids, labels)
    assert torch.equal(rebuilt == 0, w == 0)  # exactly the pruned weights are zero
    nonzero = w[w != 0].double()
    start = kmeans.initial_centroids(nonzero, 2 ** num_bits - 1, init, seed=2)
    inertia, _ = _sklearn(nonzero, start, 300)
    assert float(((rebuilt - w) ** 2).sum()) == pytest.approx(inertia, rel=1e-3)


def test_one_bit_on_a_pruned_weight_is_zero_and_the_mean():
    """num_bits=1 on a pruned weight: the pinned zero and one free centroid, the mean of the nonzeros."""
    w = torch.tensor([[0.0, 1.0], [2.0, 0.0], [6.0, 0.0]])
    centroids, labels = kmeans.kmeans_quantize(w, 1)
    assert centroids.tolist() == [0.0, 3.0]
    assert labels.tolist() == [[0, 1], [1, 0], [1, 0]]


def test_weight_without_zeros_uses_every_centroid_and_pruned_overrides_auto():
    """No zeros: 2^b centroids all clustered (centroid 0 is not 0); pruned=False/True override."""
    w = _weights(500, seed=3).float().view(20, 25)
    centroids, labels = kmeans.kmeans_quantize(w, 3)
    assert centroids[0] != 0 and labels.unique().numel() == 8
    assert centroids.dtype == torch.float32
    pinned, labels = kmeans.kmeans_quantize(w, 3, pruned=True)
    assert pinned[0] == 0.0 and bool((labels >= 1).all())
    z = _pruned(20, 25)
    centroids, labels = kmeans.kmeans_quantize(z, 3, pruned=False)
    assert centroids[0] != 0.0 and labels.unique().numel() == 8  # the zeros were clustered too


def test_linear_init_keeps_the_large_weights():
    """Han et al.'s reason for linear init: the largest weights are rebuilt better than with density or random."""
    w = _weights(seed=6)
    large = w.abs() > 0.3  # the 15 largest of 3000 weights: density and random put no centroid there
    error = {init: float((kmeans.shared_weight(*kmeans.kmeans_quantize(w, 3, init)) - w)[large].abs().mean())
             for init in kmeans.INITS}
    assert error["linear"] < error["density"] / 2 and error["linear"] < error["random"] / 2, error


def test_more_bits_approximate_better():
    """The reconstruction error of shared_weight falls as num_bits grows (Eq. 2 with more clusters)."""
    w = _weights(2000, seed=4).float()
    errors = [float(((kmeans.shared_weight(*kmeans.kmeans_quantize(w, b)) - w) ** 2).sum())
              for b in (1, 2, 4, 6)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0] / 100


# ---------------------------------------------------------------- trained centroids
def _pruned_mlp(seed=0):
    torch.manual_seed(seed)
    model = models.MLP(hidden=(32, 16))
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.mul_(layer.weight.abs() > layer.weight.abs().median())  # half pruned
    return model


def test_shared_layer_keeps_only_centroids_and_labels():
    """Only centroids are Parameters (no dense weight): the layer is still Linear/Conv2d, MACs and fx work."""
    model = models.LeNet5()
    x = torch.randn(2, 1, 28, 28)
    macs = measure.count_macs(model, (1, 28, 28)).total
    kmeans.share_weights(model, {"conv1": 2, "conv2": 3, "fc1": 4, "fc2": 5})
    state = model.state_dict()
    assert not [k for k in state if k.endswith(".weight")]
    assert state["fc1.parametrizations.weight.original"].shape == (16,)
    assert state["fc1.parametrizations.weight.0.labels"].dtype == torch.long
    dense = [n for n, p in model.named_parameters() if p.ndim > 1 or p.numel() > 500]
    assert not dense, dense
    assert isinstance(model.fc1, nn.Linear) and isinstance(model.conv1, nn.Conv2d)
    assert set(kmeans.shared_layers(model)) == {"conv1", "conv2", "fc1", "fc2"}
    assert measure.count_macs(model, (1, 28, 28)).total == macs
    assert torch.equal(fx.symbolic_trace(model)(x), model(x))
    assert torch.equal(copy.deepcopy(model)(x), model(x))
    for name, bits in {"conv1": 2, "conv2": 3, "fc1": 4, "fc2": 5}.items():
        layer = getattr(model, name)
        centroids, labels = kmeans.codebook(layer)
        assert centroids.shape == (2 ** bits,)
        assert torch.equal(layer.weight, centroids[labels])


@pytest.mark.parametrize("pruned", [False, True])
@pytest.mark.parametrize("layer", [nn.Linear(12, 7), nn.Conv2d(3, 5, 3)], ids=["linear", "conv"])
def test_centroid_gradient_is_eq3(layer, pruned):
    """Eq. 3: dL/dC_k is the sum over the weights labelled k of dL/dW (0 for a pinned zero)."""
    layer = copy.deepcopy(layer)
    if pruned:
        with torch.no_grad():
            layer.weight[0] = 0.0
    kmeans.share_weights(layer, 3)
    centroids, labels = kmeans.codebook(layer)
    plain = copy.deepcopy(layer)
    kmeans.unshare(plain)  # a plain layer holding the same weight
    assert torch.equal(plain.weight, centroids[labels])
    x = torch.randn(4, 12) if isinstance(layer, nn.Linear) else torch.randn(4, 3, 6, 6)
    g = torch.randn(plain(x).shape)
    (layer(x) * g).sum().backward()
    (plain(x) * g).sum().backward()
    expected = torch.zeros(8).index_add_(0, labels.flatten(), plain.weight.grad.flatten())
    got = layer.parametrizations.weight.original.grad
    if pruned:
        assert expected[0] != 0  # the pinned centroid would move if it were free
        expected[0] = 0.0
        assert got[0] == 0.0
    assert torch.allclose(got, expected, atol=1e-5)


def test_fit_trains_centroids_not_labels(tiny_loaders):
    """An epoch of fit moves the centroids, keeps labels and pruned zeros, and at most 2^b values a layer."""
    model = _pruned_mlp()
    zeros = {i: layer.weight.detach() == 0 for i, layer in enumerate(model.layers)}
    kmeans.share_weights(model, 3)
    before = {name: kmeans.codebook(layer) for name, layer in kmeans.shared_layers(model).items()}
    train.fit(model, tiny_loaders.train, epochs=1, lr=1e-2, progress=False)
    for i, layer in enumerate(model.layers):
        centroids, labels = kmeans.codebook(layer)
        old_centroids, old_labels = before[f"layers.{i}"]
        assert torch.equal(labels, old_labels)
        assert not torch.allclose(centroids, old_centroids)
        assert centroids[0] == 0.0 and torch.equal(layer.weight == 0, zeros[i])
        assert layer.weight.detach().unique().numel() <= 2 ** 3


def test_state_dict_round_trip_into_a_freshly_shared_model():
    """A shared model's state_dict loads into another shared model of the same shape: equal outputs."""
    model = _pruned_mlp(seed=0)
    kmeans.share_weights(model, {"layers.0": 4, "layers.1": 3, "layers.2": 2})
    with torch.no_grad():  # trained centroids: no longer what k-means gave
        for layer in model.layers:
            layer.parametrizations.weight.original[1:] += 0.01
    fresh = models.MLP(hidden=(32, 16))  # other weights, no zeros
    kmeans.share_weights(fresh, {"layers.0": 4, "layers.1": 3, "layers.2": 2})
    x = torch.randn(5, 784)
    assert not torch.equal(fresh(x), model(x))
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh(x), model(x))
    assert bool(fresh.layers[0].parametrizations.weight[0].pinned)  # the pin came along


def test_unshare_gives_plain_layers_with_the_shared_weight():
    """unshare: back to plain nn.Linear whose weight Parameter is centroids[labels]."""
    model = _pruned_mlp()
    kmeans.share_weights(model, 2, init="density", layers=["layers.1"])
    assert set(kmeans.shared_layers(model)) == {"layers.1"}
    centroids, labels = kmeans.codebook(model.layers[1])
    x = torch.randn(3, 784)
    out = model(x)
    kmeans.unshare(model)
    assert type(model.layers[1]) is nn.Linear and not kmeans.shared_layers(model)
    assert isinstance(model.layers[1].weight, nn.Parameter)
    assert torch.equal(model.layers[1].weight, centroids[labels])
    assert torch.equal(model(x), out)
    assert "layers.1.weight" in model.state_dict()
    shared = kmeans.share_weights(_pruned_mlp(), 2)
    copied = copy.deepcopy(shared)
    kmeans.unshare(copied)  # torch gives copies one class: unsharing one must not break the other
    assert torch.equal(shared(x), copied(x)) and kmeans.is_shared(shared.layers[0])


def test_attach_codebook_and_reshare():
    """attach_codebook installs a given codebook (pinned when centroid 0 is 0.0); sharing again re-clusters."""
    layer = nn.Linear(4, 3)
    labels = torch.tensor([[0, 1, 2, 3]] * 3)
    kmeans.attach_codebook(layer, torch.tensor([0.0, 1.0, 2.0, 3.0]), labels)
    assert layer.weight.tolist() == [[0.0, 1.0, 2.0, 3.0]] * 3
    assert bool(layer.parametrizations.weight[0].pinned)
    kmeans.share_weights(layer, 1)  # the zeros are pruned weights: 0 and one free centroid
    assert kmeans.codebook(layer)[0].tolist() == [0.0, 2.0]
    with pytest.raises(ValueError, match="labels for 'layer'"):
        kmeans.attach_codebook(nn.Linear(4, 3), torch.zeros(4), torch.full((3, 4), 4))
    with pytest.raises(ValueError, match="takes 2 centroids"):
        layer.weight = torch.zeros(3, 4)


def test_bad_models_and_layer_names():
    """No Linear/Conv2d, unknown layer names and a non-shared layer raise clear errors."""
    with pytest.raises(ValueError, match="model: a Sequential without nn.Linear or nn.Conv2d"):
        kmeans.share_weights(nn.Sequential(nn.ReLU(), nn.Flatten()), 4)
    with pytest.raises(ValueError, match=r"num_bits: no nn.Linear or nn.Conv2d named 'fc9'.*'layers.0'"):
        kmeans.share_weights(models.MLP(), {"fc9": 4})
    with pytest.raises(ValueError, match=r"layers: no nn.Linear or nn.Conv2d named 'fc9'"):
        kmeans.share_weights(models.MLP(), 4, layers=["fc9"])
    with pytest.raises(ValueError, match=r"num_bits: no width for layer 'layers.1'"):
        kmeans.share_weights(models.MLP(), {"layers.0": 4}, layers=["layers.1"])
    with pytest.raises(ValueError, match=r"num_bits\['layers.0'\]=32"):
        kmeans.share_weights(models.MLP(), {"layers.0": 32})
    with pytest.raises(ValueError, match="does not share its weights"):
        kmeans.codebook(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="weight sharing supports Linear, Conv2d"):
        kmeans.attach_codebook(nn.Conv1d(2, 2, 1), torch.zeros(2), torch.zeros(2, 2, 1, dtype=torch.long))
