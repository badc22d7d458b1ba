"""nclib.nas.space: the decisions, tokens and networks of the search space."""
import pytest
import torch

from nclib import measure
from nclib.nas import SearchSpace


def test_size_is_the_product_of_choices_and_every_index_is_one_architecture():
    """864 = (3 x 2 x 2)^2 x (3 x 2) architectures, numbered 0..863 without repeats."""
    space = SearchSpace()
    assert space.size == 864 == len(set(space))
    for i in (0, 1, 431, 863):
        assert space.index(space.tokens_at(i)) == i


def test_decode_and_encode_are_inverse():
    """Tokens -> readable settings -> the same tokens; the last layer has no downsample."""
    space = SearchSpace()
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        tokens = space.sample(g)
        layers = space.decode(tokens)
        assert space.encode(layers) == tokens
        assert "downsample" not in layers[-1] and all("downsample" in s for s in layers[:-1])
    assert space.decode(space.tokens_at(0)) == [
        {"filters": 8, "kernel": 3, "downsample": "stride"},
        {"filters": 8, "kernel": 3, "downsample": "stride"}, {"filters": 8, "kernel": 3}]
    assert space.describe(space.tokens_at(863)) == "32 5x5 pool | 32 5x5 pool | 32 5x5"


@pytest.mark.parametrize("tokens, match", [
    ((0, 2, 0, 0, 0, 0, 0, 0), "token 2 for layer 1 kernel"),
    ((3, 0, 0, 0, 0, 0, 0, 0), "token 3 for layer 1 filters"),
    ((0, 0, -1, 0, 0, 0, 0, 0), "token -1 for layer 1 downsample"),
    ((0, 0, 0, 0, 0, 0, 0, 0.5), "token 0.5"),
    ((True, 0, 0, 0, 0, 0, 0, 0), "token True"),
    ((0, 0, 0), "expected 8 tokens"),
])
def test_an_unknown_token_is_a_clear_error(tokens, match):
    """A token outside its decision's choices names the decision and what is allowed."""
    with pytest.raises(ValueError, match=match):
        SearchSpace().build(tokens)


def test_encode_rejects_a_setting_not_in_the_space():
    """encode names the layer, the setting and the allowed values."""
    layers = SearchSpace().decode(SearchSpace().tokens_at(0))
    layers[1]["filters"] = 12
    with pytest.raises(ValueError, match=r"layer 2 filters=12: expected one of \(8, 16, 32\)"):
        SearchSpace().encode(layers)


def test_every_architecture_builds_and_classifies_a_digit_batch():
    """All 864 networks map (B, 1, 28, 28) to (B, 10)."""
    space = SearchSpace()
    x = torch.zeros(2, 1, 28, 28)
    for tokens in space:
        assert space.build(tokens).eval()(x).shape == (2, 10)


def test_costs_counted_without_training_match_the_built_model_and_a_hand_count():
    """Params and MACs from the meta device equal nclib.measure on the real model."""
    space = SearchSpace()
    for i in (0, 100, 517, 863):
        model = space.build(space.tokens_at(i))
        assert space.costs(space.tokens_at(i)) == (
            measure.count_params(model), measure.count_macs(model, (1, 28, 28)).total)
    # 8 3x3 stride | 8 3x3 stride | 8 3x3: 14*14*8*9 + 7*7*8*8*9 * 2 + 392*10 MACs
    assert space.costs(space.tokens_at(0))[1] == 14 * 14 * 8 * 9 + 2 * 7 * 7 * 8 * 8 * 9 + 392 * 10


def test_sample_is_seeded_and_covers_every_choice():
    """The same generator seed gives the same tokens; every choice of every decision appears."""
    space = SearchSpace()
    a = [space.sample(torch.Generator().manual_seed(3)) for _ in range(2)]
    assert a[0] == a[1]
    g = torch.Generator().manual_seed(0)
    seen = [set() for _ in space.decisions]
    for _ in range(200):
        for s, t in zip(seen, space.sample(g)):
            s.add(t)
    assert [len(s) for s in seen] == [len(d.choices) for d in space.decisions]
    with pytest.raises(TypeError, match="generator"):
        space.sample(0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(depth=0), "depth=0"), (dict(kernels=(3, 4)), "odd"), (dict(filters=()), "filters"),
    (dict(downsample=("avg",)), "downsample"),
])
def test_bad_space_settings_are_clear_errors(kwargs, match):
    """Depth, kernels, filters and downsampling choices are checked when the space is made."""
    with pytest.raises(ValueError, match=match):
        SearchSpace(**kwargs)


def test_other_depths_and_input_sizes_build():
    """A 2-layer space on 15 x 15 inputs counts and builds networks of the right shape."""
    space = SearchSpace(depth=2, input_shape=(1, 15, 15))
    assert space.size == 3 * 2 * 2 * 3 * 2
    for tokens in space:
        assert space.build(tokens)(torch.zeros(1, 1, 15, 15)).shape == (1, 10)
