"""Low-rank factorization of fully connected layers by truncated SVD.

A Linear layer y = W x + b with W of shape (N, M) (N outputs, M inputs) is replaced by two
Linear layers of rank K, y = A (B x) + b, with A = U_K S_K^(1/2) (N, K) and
B = S_K^(1/2) V_K^T (K, M) taken from the singular value decomposition W = U S V^T.

* Parameters and MACs: N * M  ->  K * (N + M), so the layer shrinks when K < N M / (N + M).
* Eckart-Young (Eckart and Young, "The approximation of one matrix by another of lower
  rank", Psychometrika 1936): U_K S_K V_K^T is the best rank-K approximation of W in the
  Frobenius and spectral norms, with errors ||W - W_K||_F = sqrt(sum_{i>K} s_i^2) and
  ||W - W_K||_2 = s_{K+1}.
* Applied to network layers by Denton et al., "Exploiting Linear Structure Within
  Convolutional Networks for Efficient Evaluation" (NIPS 2014), and to fully connected
  layers with fine-tuning by Xue, Li and Gong, "Restructuring of Deep Neural Network
  Acoustic Models with Singular Value Decomposition" (Interspeech 2013).

The rank K is chosen once, in `choose_rank`, by exactly one of: `rank` (K itself),
`compression` (the layer's weights shrink by this factor) or `energy` (the fraction of
spectral energy sum_i s_i^2 that is kept).

Shapes use N (out_features), M (in_features), K (rank), B (batch).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["LowRankLinear", "svd_factors", "choose_rank", "factorize_linear"]


def _check_rank(rank, out_features: int, in_features: int) -> int:
    largest = min(out_features, in_features)
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= largest:
        raise ValueError(f"rank={rank!r}: expected an integer in [1, min(N, M)] = [1, {largest}] "
                         f"for a weight of N={out_features} outputs and M={in_features} inputs")
    return rank


def svd_factors(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The best rank-K factors (A, B) of `weight`, with A @ B = U_K S_K V_K^T.

    The singular values are split evenly, sqrt(s) into each factor, so both factors have
    the same scale and neither dominates the gradients when the model is fine-tuned.

    Shape:
        weight: (N, M); returns A: (N, K) and B: (K, M).

    Example:
        >>> A, B = svd_factors(torch.eye(3), rank=3)
        >>> torch.allclose(A @ B, torch.eye(3))
        True
    """
    if not torch.is_tensor(weight) or weight.ndim != 2:
        got = tuple(weight.shape) if torch.is_tensor(weight) else type(weight).__name__
        raise ValueError(f"weight: expected a 2-d tensor of shape (N, M), got {got}")
    N, M = weight.shape
    K = _check_rank(rank, N, M)
    # SVD in float64: the full-rank product then reproduces W to float32 precision.
    U, S, Vh = torch.linalg.svd(weight.detach().double(), full_matrices=False)  # (N,r) (r,) (r,M)
    root = S[:K].sqrt()  # S_K^(1/2)
    A = U[:, :K] * root  # U_K S_K^(1/2), (N, K)
    B = root[:, None] * Vh[:K]  # S_K^(1/2) V_K^T, (K, M)
    return A.to(weight.dtype), B.to(weight.dtype)


def choose_rank(weight: torch.Tensor, *, rank: int | None = None,
                compression: float | None = None, energy: float | None = None) -> int:
    """The rank K for `weight` (N, M), from exactly one of `rank`, `compression`, `energy`.

    Args:
        rank: K itself, an integer in [1, min(N, M)].
        compression: how many times fewer weights the layer keeps, N M / (K (N + M)); the
            largest K that reaches it is used. Allowed: [1, N M / (N + M)] (the upper end
            is K = 1).
        energy: the fraction of spectral energy sum_{i<=K} s_i^2 / sum_i s_i^2 to keep, in
            (0, 1]; the smallest K that keeps at least this much is used.
    """
    given = {k: v for k, v in (("rank", rank), ("compression", compression), ("energy", energy))
             if v is not None}
    if len(given) != 1:
        raise ValueError(f"choose the rank by exactly one of rank=, compression=, energy= "
                         f"(got {', '.join(f'{k}={v!r}' for k, v in given.items()) or 'none'})")
    N, M = weight.shape
    if rank is not None:
        return _check_rank(rank, N, M)
    if compression is not None:
        most = N * M / (N + M)  # compression at K = 1
        if isinstance(compression, bool) or not isinstance(compression, (int, float)) \
                or not 1 <= compression <= most:
            raise ValueError(f"compression={compression!r}: expected a number in "
                             f"[1, N*M/(N+M)] = [1, {most:.4g}] for N={N}, M={M}")
        # N M / (K (N + M)) >= compression  <=>  K <= N M / (compression (N + M));
        # + 1e-9: when `compression` was computed from some K, float rounding must not give K-1.
        return max(1, int(N * M / (compression * (N + M)) + 1e-9))
    if isinstance(energy, bool) or not isinstance(energy, (int, float)) or not 0 < energy <= 1:
        raise ValueError(f"energy={energy!r}: expected a fraction in (0, 1]")
    S = torch.linalg.svdvals(weight.detach().double())
    kept = (S ** 2).cumsum(0) / (S ** 2).sum()  # energy kept by the first K values, K = 1, 2, ...
    K = int(torch.searchsorted(kept, kept.new_tensor(float(energy)))) + 1
    return min(K, len(S))  # rounding can leave kept[-1] a hair below 1


class LowRankLinear(nn.Module):
    """A Linear layer of rank K: y = second(first(x)), with first: M -> K and second: K -> N.

    It is two real nn.Linear layers, so `nclib.measure.count_macs` counts
    K * M + N * K MACs. The bias stays whole, once, on `second`: W x + b ~ A (B x) + b,
    so a factorized layer has K * (N + M) + N parameters.

    Example:
        >>> layer = LowRankLinear.from_linear(nn.Linear(784, 300), rank=20)
        >>> sum(p.numel() for p in layer.parameters())  # 20 * (300 + 784) + 300
        21980
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True,
                 device: str | torch.device | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.rank = _check_rank(rank, out_features, in_features)
        self.first = nn.Linear(in_features, rank, bias=False, device=device, dtype=dtype)  # B
        self.second = nn.Linear(rank, out_features, bias=bias, device=device, dtype=dtype)  # A

    @classmethod
    def from_linear(cls, linear: nn.Linear, *, rank: int | None = None,
                    compression: float | None = None,
                    energy: float | None = None) -> "LowRankLinear":
        """The truncated-SVD factorization of `linear` (rank chosen as in `choose_rank`)."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear: expected an nn.Linear, got {type(linear).__name__}")
        W = linear.weight  # (N, M)
        K = choose_rank(W, rank=rank, compression=compression, energy=energy)
        new = cls(linear.in_features, linear.out_features, K, bias=linear.bias is not None,
                  device=W.device, dtype=W.dtype)
        A, B = svd_factors(W, K)  # (N, K), (K, M)
        with torch.no_grad():
            new.first.weight.copy_(B)
            new.second.weight.copy_(A)
            if linear.bias is not None:
                new.second.bias.copy_(linear.bias)
        return new

    @property
    def weight(self) -> torch.Tensor:
        """The product A B, the (N, M) matrix this layer applies."""
        return self.second.weight @ self.first.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))  # (B, M) -> (B, K) -> (B, N)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"rank={self.rank}")


def factorize_linear(model: nn.Module, name: str, *, rank: int | None = None,
                     compression: float | None = None,
                     energy: float | None = None) -> LowRankLinear:
    """Replace the Linear layer `name` of `model` by its `LowRankLinear`, in place.

    Args:
        model: a (trained) model; it is changed in place.
        name: the layer's dotted name, as in ``model.named_modules()`` (like "fc1").
        rank, compression, energy: how to choose K, exactly one (see `choose_rank`).

    Returns:
        The new layer, already in the model, on the old layer's device and dtype.

    Example:
        >>> from nclib.models import LeNet300100
        >>> net = LeNet300100()
        >>> factorize_linear(net, "fc1", compression=10).rank  # 784*300 / (10*1084)
        21
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r}: expected a layer's dotted name, like 'fc1'")
    try:
        old = model.get_submodule(name)
    except AttributeError:
        names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        raise ValueError(f"name={name!r}: no such layer; the model's Linear layers are "
                         f"{', '.join(names) or 'none'}") from None
    if not isinstance(old, nn.Linear):
        raise TypeError(f"name={name!r} is a {type(old).__name__}: only nn.Linear layers can "
                        "be factorized")
    new = LowRankLinear.from_linear(old, rank=rank, compression=compression, energy=energy)
    new.train(old.training)
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, new)
    return new
