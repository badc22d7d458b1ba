"""Chapter 03 checks, tasks 1-2: weight sharing by k-means and the gradient of a shared value
(Han et al., "Deep Compression", ICLR 2016, Section 3; the reference is nclib.quant.kmeans).

A clustering is judged by what it must be, not compared label by label: 2^b centroids,
labels shaped like the weight that each name their nearest centroid, and the same
within-cluster sum of squares (Eq. 2, the "inertia") as the reference within 0.1%.
"""
from __future__ import annotations

import torch

from nclib.course.checking import Mismatch, Text, call, close, describe, task
from nclib.quant.kmeans import kmeans_quantize

INERTIA_RTOL = 1e-3  # 0.1%: float32 sums and tie-breaks move it far less; a wrong start far more


def _weight(shape: tuple[int, ...], seed: int, std: float = 0.1) -> torch.Tensor:
    """Dense random weights (no exact zeros), bell-shaped like a trained layer's."""
    g = torch.Generator().manual_seed(seed)
    return std * torch.randn(shape, generator=g)


# ---------------------------------------------------------------- task 1: k-means
def ref_cluster_weights(weight: torch.Tensor, num_bits: int, num_iter: int = 20
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    return kmeans_quantize(weight, num_bits, init="linear", max_iter=num_iter, pruned=False)


def _cluster_cases() -> list[tuple[str, torch.Tensor, int, int]]:
    """(label, weight, num_bits, num_iter): a hand-worked case, rare large weights, layer and
    conv shapes from 1 to 5 bits, and more centroids than distinct values (empty clusters)."""
    few_large = _weight((200,), 1, std=0.05)
    few_large[:4] = torch.tensor([1.0, 0.9, -0.8, 1.2])  # Han et al.: the rare large weights
    cases = [("hand-worked", torch.tensor([-1.0, -0.75, 0.25, 0.375, 2.0]), 1, 20),  # -0.28125, 2
             ("200 small weights and 4 large ones", few_large, 2, 20),
             ("6 weights, 32 centroids", torch.tensor([0.3, -0.2, 0.5, 0.1, -0.7, 0.3]), 5, 20)]
    for i, (shape, num_bits, num_iter) in enumerate([
            ((64, 100), 3, 20), ((16, 8, 3, 3), 4, 20), ((10, 50), 5, 20), ((50,), 1, 5),
            ((8, 4, 5, 5), 2, 10), ((300, 20), 4, 30), ((1000,), 5, 30)]):
        cases.append((f"random {'conv ' if len(shape) == 4 else ''}weight", _weight(shape, 10 + i),
                      num_bits, num_iter))
    return cases


def _inertia(weight: torch.Tensor, centroids: torch.Tensor, labels: torch.Tensor) -> float:
    """Eq. 2: sum over the weights of |w - C[I]|^2, in float64."""
    return float((weight.double() - centroids.double()[labels.long()]).pow(2).sum())


def _nearest(weight: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """The index of each weight's nearest centroid (the lowest of equally near ones)."""
    return (weight.flatten()[:, None] - centroids[None]).abs().argmin(1).view(weight.shape)


def _check_pair(shown: str, weight: torch.Tensor, k: int, got) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's (centroids, labels), after checking their types, shapes and values."""
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise Mismatch(shown, Text("a pair (centroids, labels)"), got)
    centroids, labels = got
    if not (torch.is_tensor(centroids) and centroids.is_floating_point()
            and tuple(centroids.shape) == (k,)):
        what = (f"a {centroids.dtype} tensor of shape {tuple(centroids.shape)}"
                if torch.is_tensor(centroids) else type(centroids).__name__)
        raise Mismatch(shown, Text(f"centroids: a float tensor of shape ({k},)"), Text(what),
                       f"2**num_bits = {k} centroids, one per cluster, even when a cluster "
                       "is empty (it keeps its centroid).")
    if not torch.is_tensor(labels) or labels.is_floating_point() or labels.dtype == torch.bool:
        raise Mismatch(shown, Text("labels: an integer tensor"), Text(describe(labels)),
                       "argmin gives each weight's cluster index as an integer (long) tensor.")
    if labels.shape != weight.shape:
        raise Mismatch(shown, Text(f"labels of shape {tuple(weight.shape)}, like the weight"),
                       Text(f"labels of shape {tuple(labels.shape)}"),
                       "reshape the labels back to the weight's shape: labels.view(weight.shape).")
    if labels.numel() and not (0 <= int(labels.min()) and int(labels.max()) < k):
        raise Mismatch(shown, Text(f"labels in 0 .. {k - 1}"),
                       Text(f"labels from {int(labels.min())} to {int(labels.max())}"))
    centroids, labels = centroids.detach().cpu().double(), labels.detach().cpu().long()
    if not bool(torch.isfinite(centroids).all()):
        raise Mismatch(shown, Text("finite centroids"), centroids,
                       "an empty cluster keeps its centroid: the mean of no weights is nan "
                       "(update only the clusters that have weights).")
    return centroids, labels


@task("quantization", points=2, hint="Lecture 03, section 1 (Weight sharing (k-means)) gives "
      "Lloyd's two steps and Han et al.'s linear initialization (their Fig. 4): 2**num_bits "
      "centroids evenly spaced from weight.min() to weight.max(), then num_iter times: assign "
      "every weight to its nearest centroid, move every centroid to the mean of its weights.")
def cluster_weights(student):
    """cluster_weights(weight, num_bits, num_iter=20) -> (centroids (2^b,), labels like weight)."""
    for label, weight, num_bits, num_iter in _cluster_cases():
        shown = f"({label} {describe(weight, 40)}, num_bits={num_bits}, num_iter={num_iter})"
        k = 2 ** num_bits
        original = weight.clone()
        got = call(student, shown, weight, num_bits, num_iter)
        if not torch.equal(weight, original):
            raise Mismatch(shown, Text("the weight left unchanged"),
                           Text("the weight was modified in place"),
                           "cluster a copy (weight.flatten() is a view: clone it before "
                           "writing to it).")
        centroids, labels = _check_pair(shown, weight, k, got)
        w = weight.double()
        error, best = (w - centroids[labels]).abs(), (w - centroids[_nearest(w, centroids)]).abs()
        far = error - best > 1e-9 + 1e-6 * float(w.abs().max())
        if bool(far.any()):
            j = int(far.flatten().nonzero()[0])
            raise Mismatch(shown, Text(f"weight {float(w.flatten()[j]):.4g} labelled with its "
                                       f"nearest centroid, {best.flatten()[j]:.4g} away"),
                           Text(f"a centroid {error.flatten()[j]:.4g} away"),
                           "after the last move of the centroids, assign the weights once "
                           "more, so that every label names its nearest centroid.")
        ref_c, ref_i = ref_cluster_weights(weight, num_bits, num_iter)
        want, have = _inertia(weight, ref_c, ref_i), _inertia(weight, centroids, labels)
        if not abs(have - want) <= INERTIA_RTOL * want + 1e-12:
            raise Mismatch(shown, Text(f"inertia sum (w - C[I])^2 = {want:.6g}, "
                                       f"{_worst(w, ref_c.double(), ref_i)}"),
                           Text(f"{have:.6g}, {_worst(w, centroids, labels)}"),
                           _cluster_hint(student, weight, num_bits, num_iter, got, have, want))
    return "With 2^b shared values a layer stores b bits per weight plus a tiny codebook (Eq. 1)."


def _worst(w: torch.Tensor, centroids: torch.Tensor, labels: torch.Tensor) -> str:
    """Where the clustering is worst: a start that gives the rare large weights no centroid
    of their own shows here."""
    error = (w - centroids[labels]).abs().flatten()
    j = int(error.argmax())
    stored = float(centroids[labels.flatten()[j]])
    return f"the worst weight {float(w.flatten()[j]):.4g} stored as {stored:.4g}"


def _cluster_hint(student, weight, num_bits, num_iter, got, have: float, want: float) -> str:
    """The hint for a wrong clustering: the usual mistake it matches, else ''."""
    start = torch.linspace(float(weight.min()), float(weight.max()), 2 ** num_bits).double()
    if abs(have - _inertia(weight, start, _nearest(weight.double(), start))) <= 1e-9 + 1e-9 * have:
        return ("the centroids never moved from their linear start: after assigning the "
                "weights, move each centroid to the mean of its weights (the update step), "
                "num_iter times.")
    again = call(student, "(the same input, a second time)", weight.clone(), num_bits, num_iter)
    if not all(torch.is_tensor(a) and torch.is_tensor(b) and a.shape == b.shape and
               torch.equal(a.detach().cpu(), b.detach().cpu()) for a, b in zip(got, again)):
        return ("your result changes from call to call: a random start? Han et al. start "
                "linearly, torch.linspace(weight.min(), weight.max(), 2**num_bits), so that the "
                "few large weights keep centroids of their own.")
    if have < want:
        return ("a smaller squared error than Lloyd's from the linear start: a random or "
                "density (quantile) start? Han et al. start linearly, torch.linspace(weight.min(), "
                "weight.max(), 2**num_bits): the few large weights keep centroids of their own, "
                "at the price of a larger squared error.")
    return ""


# ---------------------------------------------------------------- task 2: Eq. 3
def ref_centroid_grad(weight_grad: torch.Tensor, labels: torch.Tensor,
                      num_centroids: int) -> torch.Tensor:
    # dL/dC_k = sum_ij dL/dW_ij 1(I_ij = k)
    grad = weight_grad.new_zeros(num_centroids)  # (k,)
    return grad.index_add_(0, labels.flatten(), weight_grad.flatten())


def _autograd_grad(weight_grad: torch.Tensor, labels: torch.Tensor,
                   num_centroids: int) -> torch.Tensor:
    """Eq. 3 as autograd computes it through W = C[I], for the loss sum_ij dL/dW_ij W_ij."""
    centroids = torch.zeros(num_centroids, dtype=weight_grad.dtype, requires_grad=True)
    (centroids[labels] * weight_grad).sum().backward()
    return centroids.grad


def _grad_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, int]]:
    """(label, weight_grad, labels, num_centroids): every cluster used, empty ones in the middle
    and at the top, a conv weight, one weight per cluster."""
    g = torch.Generator().manual_seed(20)
    cases = [("hand-worked", torch.tensor([[0.5, -1.0], [2.0, 0.25]]),
              torch.tensor([[0, 1], [1, 0]]), 2)]  # [0.75, 1.0]
    for label, shape, k, used in [("a Linear weight", (30, 20), 8, range(8)),
                                  ("a conv weight", (6, 3, 3, 3), 16, range(16)),
                                  ("clusters 4 and 5 empty", (10, 10), 8, [0, 1, 2, 3, 6, 7]),
                                  ("the top clusters empty", (12, 5), 32, range(20)),
                                  ("one weight", (1,), 4, [2])]:
        choose = torch.tensor(list(used))
        labels = choose[torch.randint(0, len(choose), shape, generator=g)]
        cases.append((label, torch.randn(shape, generator=g), labels, k))
    return cases


@task("quantization", points=1, hint="Lecture 03, section 2 (Trained centroids) gives Deep "
      "Compression's Eq. 3: the gradient of a shared value is the SUM of the gradients of the "
      "weights that share it, for every one of the num_centroids values (an empty cluster's is 0).")
def centroid_grad(student):
    """centroid_grad(weight_grad, labels, num_centroids) -> (num_centroids,): Eq. 3."""
    for label, weight_grad, labels, k in _grad_cases():
        shown = f"({label}: weight_grad {describe(weight_grad, 40)}, labels, num_centroids={k})"
        expected = _autograd_grad(weight_grad, labels, k)
        got = call(student, shown, weight_grad.clone(), labels.clone(), k)
        if not torch.is_tensor(got) or tuple(got.shape) != (k,):
            shorter = torch.is_tensor(got) and tuple(got.shape) == (int(labels.max()) + 1,)
            raise Mismatch(shown, Text(f"a tensor of shape ({k},)"), got,
                           "a cluster that no weight uses still has a centroid: its gradient "
                           "is 0 (bincount needs minlength=num_centroids)." if shorter else
                           "one gradient per centroid, num_centroids of them.")
        got = got.detach().cpu()
        if not close(got.double(), expected.double(), rtol=1e-4, atol=1e-5):
            sizes = torch.bincount(labels.flatten(), minlength=k).clamp(min=1)
            mean = close(got.double(), (expected / sizes).double(), rtol=1e-4, atol=1e-5)
            raise Mismatch(shown, expected, got,
                           "that is the MEAN gradient of each cluster; Eq. 3 SUMS them: a "
                           "centroid moves every weight that shares it." if mean else "")
    return "Autograd computes exactly this through W = C[I] (nclib.quant.kmeans.share_weights)."
