"""nclib.arch.lowrank: truncated-SVD factorization of Linear layers."""
import pytest
import torch
from torch import nn

from nclib import measure
from nclib.arch.lowrank import LowRankLinear, choose_rank, factorize_linear, svd_factors
from nclib.models import LeNet300100


def _linear(n_out=30, n_in=50, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(n_in, n_out)


def test_full_rank_reproduces_layer():
    """At rank min(N, M) the two layers compute the same outputs as the original layer."""
    layer = _linear()
    x = torch.randn(8, 50, generator=torch.Generator().manual_seed(1))
    low = LowRankLinear.from_linear(layer, rank=30)
    assert torch.allclose(low(x), layer(x), atol=1e-5)
    assert torch.allclose(low.weight, layer.weight, atol=1e-5)


@pytest.mark.parametrize("rank", [1, 5, 17])
def test_rank_k_is_best_approximation(rank):
    """Eckart-Young: ||W - AB|| is the SVD's tail (Frobenius, spectral), below other rank-K."""
    W = torch.randn(30, 50, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    A, B = svd_factors(W, rank)
    assert A.shape == (30, rank) and B.shape == (rank, 50)
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    best = U[:, :rank] @ torch.diag(S[:rank]) @ Vh[:rank]  # torch's own truncated SVD
    assert torch.allclose(A @ B, best, atol=1e-10)
    assert torch.isclose(torch.linalg.matrix_norm(W - A @ B), S[rank:].pow(2).sum().sqrt())
    assert torch.isclose(torch.linalg.matrix_norm(W - A @ B, ord=2), S[rank])
    # any other rank-K matrix, e.g. a perturbed factorization, is further from W
    g = torch.Generator().manual_seed(3)
    other = (A + 0.01 * torch.randn(A.shape, generator=g, dtype=W.dtype)) @ B
    assert torch.linalg.matrix_norm(W - other) > torch.linalg.matrix_norm(W - A @ B)


def test_params_and_macs_match_formula():
    """A rank-K layer has K(N+M) weights + N biases; count_macs sees two Linear layers, K(N+M)."""
    N, M, K = 300, 784, 21
    low = LowRankLinear.from_linear(_linear(N, M), rank=K)
    assert measure.count_params(low) == K * (N + M) + N
    count = measure.count_macs(low, (M,))
    assert [l.kind for l in count.layers] == ["Linear", "Linear"]
    assert count.total == K * (N + M)
    no_bias = LowRankLinear.from_linear(nn.Linear(M, N, bias=False), rank=K)
    assert measure.count_params(no_bias) == K * (N + M)


def test_factorize_linear_in_place_on_lenet():
    """factorize_linear swaps fc1 inside the model; the model's MACs drop by N*M - K(N+M)."""
    torch.manual_seed(0)
    net = LeNet300100()
    before = measure.count_macs(net, (1, 28, 28)).total
    new = factorize_linear(net, "fc1", compression=10)
    assert net.fc1 is new and isinstance(new, LowRankLinear)
    assert new.rank == 784 * 300 // (10 * (784 + 300))  # 21
    after = measure.count_macs(net, (1, 28, 28)).total
    assert before - after == 784 * 300 - 21 * (784 + 300)
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_factorize_nested_name_keeps_mode():
    """A dotted name reaches a layer inside a Sequential; the new layer keeps train/eval mode."""
    model = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(16, 8), nn.ReLU())).eval()
    new = factorize_linear(model, "1.0", rank=4)
    assert model[1][0] is new and not new.training


def test_choose_rank_by_compression_and_energy():
    """compression gives the largest K that reaches it; energy the smallest K that keeps it."""
    W = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0]))  # energies 16, 9, 4, 1 of 30
    assert choose_rank(W, energy=16 / 30) == 1
    assert choose_rank(W, energy=0.54) == 2
    assert choose_rank(W, energy=29 / 30) == 3
    assert choose_rank(W, energy=1.0) == 4
    W = torch.zeros(300, 784)
    for K in (1, 5, 21, 100):
        assert choose_rank(W, compression=300 * 784 / (K * 1084)) == K
    assert choose_rank(W, compression=10.5) == 20
    assert choose_rank(W, rank=7) == 7


@pytest.mark.parametrize("kwargs, match", [
    ({"rank": 31}, r"rank=31: expected an integer in \[1, min\(N, M\)\] = \[1, 30\]"),
    ({"rank": 0}, r"rank=0: .*\[1, 30\]"),
    ({"rank": 2.0}, r"rank=2.0"),
    ({"compression": 0.5}, r"compression=0.5: expected a number in \[1, N\*M/\(N\+M\)\]"),
    ({"compression": 100}, r"compression=100: .*18.75"),
    ({"energy": 0}, r"energy=0: expected a fraction in \(0, 1\]"),
    ({"energy": 1.5}, r"energy=1.5"),
    ({}, r"exactly one of rank=, compression=, energy= \(got none\)"),
    ({"rank": 3, "energy": 0.9}, r"exactly one of .*rank=3, energy=0.9"),
])
def test_bad_rank_options_raise(kwargs, match):
    """Bad or conflicting rank options raise ValueError: option, value, what is allowed."""
    with pytest.raises(ValueError, match=match):
        LowRankLinear.from_linear(_linear(30, 50), **kwargs)


def test_non_linear_layer_raises():
    """Factorizing a non-Linear layer raises TypeError; an unknown name lists the Linear layers."""
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(TypeError, match=r"name='0' is a Conv2d: only nn.Linear"):
        factorize_linear(net, "0", rank=1)
    with pytest.raises(ValueError, match=r"name='fc9': no such layer; .* are 2"):
        factorize_linear(net, "fc9", rank=1)
    with pytest.raises(TypeError, match="expected an nn.Linear"):
        LowRankLinear.from_linear(nn.Conv2d(1, 2, 3), rank=1)
