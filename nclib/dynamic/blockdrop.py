"""BlockDrop (Wu et al., "BlockDrop: Dynamic Inference Paths in Residual Networks", CVPR 2018):
a policy network looks at the image and decides which residual blocks the ResNet runs.

A residual block computes y = ReLU(shortcut(x) + F(x)); dropping it leaves y = shortcut(x)
(the identity, or the 1 x 1 projection where the shape changes), so a ResNet still works
with blocks removed. The policy network maps the image to one keep-probability per block,
bounded to [1 - alpha, alpha] so that exploration never stops (Section 3.2):

    s = sigmoid(f_policy(x)),   p = alpha s + (1 - alpha)(1 - s)        (B, K)

Its reward for a policy u in {0, 1}^K (Eq. 2): 1 - (|u|_1 / K)^2 when the ResNet is right
with those blocks, -gamma when it is wrong. It is trained by REINFORCE with a
*self-critical* baseline (Eq. 4): the reward of the thresholded policy (p > 0.5),

    loss = -1/B sum_b (R(u_b) - R(u_b^greedy)) sum_k log P(u_bk)

`masked_forward` computes every block and selects (the reference, and what training
uses); `skipping_forward` runs only the kept blocks, grouping the images of a batch that
share a policy so that each group is one batched pass; `policy_macs` counts the MACs each
policy ran, exactly, from `nclib.measure`.
"""
from __future__ import annotations

import torch
from torch import nn

from nclib import measure

__all__ = ["residual_blocks", "PolicyNet", "bound_probabilities", "blockdrop_reward",
           "self_critical_loss", "masked_forward", "skipping_forward", "distinct_policies",
           "StochasticDepth", "BlockDropNet", "block_macs", "policy_macs"]


def residual_blocks(model: nn.Module) -> list[nn.Module]:
    """The droppable blocks of `model`: its ``blocks`` sequence of modules with ``residual``
    and ``shortcut`` (as `nclib.models.SmallResNet`); a ValueError for any other network."""
    blocks = list(getattr(model, "blocks", None) or [])
    if not blocks or not all(hasattr(b, "residual") and hasattr(b, "shortcut") for b in blocks):
        raise ValueError(f"{type(model).__name__}: BlockDrop needs a network with residual "
                         "blocks, a `blocks` sequence of modules with `residual` and "
                         "`shortcut` (such as nclib.models.SmallResNet)")
    return blocks


def _check_policy(model: nn.Module, policy: torch.Tensor, batch: int) -> torch.Tensor:
    K = len(residual_blocks(model))
    if policy.dim() != 2 or policy.shape != (batch, K):
        raise ValueError(f"policy of shape {tuple(policy.shape)}: expected ({batch}, {K}), one "
                         f"0/1 decision per image and per residual block ({K} blocks)")
    return policy.bool()


class PolicyNet(nn.Module):
    """A small CNN from the image to one logit per block (the paper uses a ResNet-8): two
    strided convolutions, then a linear layer on the 4 x 4 pooled map, which still says
    where the strokes are (a global average would keep only how much of each feature)."""

    def __init__(self, num_blocks: int, in_channels: int = 1, width: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.ReLU(),  # (B, w, 14, 14)
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),  # (B, 2w, 7, 7)
            nn.AdaptiveAvgPool2d(4), nn.Flatten())  # (B, 2w x 16)
        self.head = nn.Linear(2 * width * 16, num_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, K) logits


def bound_probabilities(logits: torch.Tensor, alpha: float = 0.8) -> torch.Tensor:
    """p = alpha s + (1 - alpha)(1 - s), s = sigmoid(logits): keep-probabilities in [1 - alpha, alpha]."""
    if not 0.5 <= alpha <= 1:
        raise ValueError(f"alpha={alpha!r}: expected a bound in [0.5, 1]")
    s = torch.sigmoid(logits)
    return alpha * s + (1 - alpha) * (1 - s)


def blockdrop_reward(policy: torch.Tensor, correct: torch.Tensor, gamma: float) -> torch.Tensor:
    """Eq. 2: 1 - (blocks used / K)^2 where the prediction is right, -gamma where it is wrong.

    Shape: policy (B, K) of 0/1, correct (B,) bool -> (B,).
    """
    used = policy.float().mean(1)  # (B,): |u|_1 / K
    return torch.where(correct.bool(), 1 - used ** 2, torch.full_like(used, -float(gamma)))


def self_critical_loss(probs: torch.Tensor, sampled: torch.Tensor, reward: torch.Tensor,
                       greedy_reward: torch.Tensor) -> torch.Tensor:
    """Eq. 4 as a loss: -mean_b (R(u_b) - R(greedy_b)) log P(u_b), P a product of Bernoullis.

    Shape: probs and sampled (B, K), reward and greedy_reward (B,).
    """
    u = sampled.float()
    log_p = (u * probs.clamp_min(1e-8).log() + (1 - u) * (1 - probs).clamp_min(1e-8).log()).sum(1)
    advantage = (reward - greedy_reward).detach()  # (B,): better or worse than thresholding
    return -(advantage * log_p).mean()


def masked_forward(model: nn.Module, x: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
    """Logits with every block computed and each image taking F(x) only where its policy says 1."""
    keep = _check_policy(model, policy, x.shape[0])
    x = model.stem(x)  # (B, C, H, W)
    for k, block in enumerate(residual_blocks(model)):
        short = block.shortcut(x)
        ran = torch.relu(short + block.residual(x))
        x = torch.where(keep[:, k, None, None, None], ran, short)
    return model.fc(model.pool(x).flatten(1))  # (B, classes)


def _run(model: nn.Module, x: torch.Tensor, keep: list[bool]) -> torch.Tensor:
    x = model.stem(x)
    for k, block in enumerate(residual_blocks(model)):
        short = block.shortcut(x)
        x = torch.relu(short + block.residual(x)) if keep[k] else short  # dropped: F never runs
    return model.fc(model.pool(x).flatten(1))


def skipping_forward(model: nn.Module, x: torch.Tensor, policy: torch.Tensor,
                     group: bool = True) -> torch.Tensor:
    """Logits running only the kept blocks. With `group`, images that share a policy run as
    one batch (one pass per distinct policy); without, image by image."""
    keep = _check_policy(model, policy, x.shape[0])
    rows = keep.tolist()  # python bools: deciding a block costs no tensor op
    if group:
        parts: dict[tuple, list[int]] = {}
        for b, row in enumerate(rows):
            parts.setdefault(tuple(row), []).append(b)
        if len(parts) == 1:  # one policy (always so at batch 1): no gathering at all
            return _run(model, x, rows[0])
        groups = [(list(p), torch.tensor(idx)) for p, idx in parts.items()]
    else:
        groups = [(row, torch.tensor([b])) for b, row in enumerate(rows)]
    out = None
    for p, idx in groups:
        logits = _run(model, x.index_select(0, idx), p)
        if out is None:
            out = logits.new_empty(x.shape[0], logits.shape[1])
        out.index_copy_(0, idx, logits)
    return out


def distinct_policies(policy: torch.Tensor) -> int:
    """How many different rows (block choices) `policy` holds: the passes a grouped batch needs."""
    return len(torch.unique(policy.bool(), dim=0))


class StochasticDepth(nn.Module):
    """Training with blocks dropped at random (Huang et al., "Deep Networks with Stochastic
    Depth", ECCV 2016): in training mode each image runs each residual block with
    probability `survival`; in eval mode the whole network runs.

    Deep ResNets tolerate a dropped block because they behave like ensembles of shorter
    paths (Veit et al., NeurIPS 2016); a 9-block ResNet trained plainly relies on most of
    its blocks, so BlockDrop here starts from one trained this way. One survival rate for
    every block (the paper lowers it linearly with depth), since BlockDrop may drop any.
    """

    def __init__(self, model: nn.Module, survival: float = 0.7):
        super().__init__()
        residual_blocks(model)
        if not 0 < survival <= 1:
            raise ValueError(f"survival={survival!r}: expected a probability in (0, 1]")
        self.model, self.survival = model, survival

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.model(x)
        K = len(residual_blocks(self.model))
        keep = torch.rand(x.shape[0], K, device=x.device) < self.survival  # (B, K)
        return masked_forward(self.model, x, keep)


class BlockDropNet(nn.Module):
    """A ResNet with its policy network: the inference BlockDrop deploys.

    `forward` decides each image's blocks greedily (keep-probability > 0.5, i.e. logit > 0)
    and runs only those (`skipping_forward`, grouped by policy).
    """

    def __init__(self, model: nn.Module, policy_net: nn.Module, alpha: float = 0.8):
        super().__init__()
        residual_blocks(model)  # a clear error now for a network without residual blocks
        self.model, self.policy_net, self.alpha = model, policy_net, alpha

    def policy(self, x: torch.Tensor) -> torch.Tensor:
        """Each image's greedy choice of blocks: (B, K) bool."""
        return bound_probabilities(self.policy_net(x), self.alpha) > 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1:  # batch 1: one policy, read as python bools, nothing to group
            return _run(self.model, x, self.policy(x)[0].tolist())
        return skipping_forward(self.model, x, self.policy(x))


def block_macs(model: nn.Module, input_shape=(1, 28, 28)) -> dict[str, object]:
    """MACs of one input: the always-run part ("fixed": stem, every shortcut, fc) and each
    block's residual branch ("residual": a list, one per block)."""
    blocks = residual_blocks(model)
    layers = measure.count_macs(model, input_shape).layers
    residual = [0] * len(blocks)
    fixed = 0
    for layer in layers:
        parts = layer.name.split(".")
        if parts[0] == "blocks" and len(parts) > 2 and parts[2] != "shortcut":
            residual[int(parts[1])] += layer.macs
        else:
            fixed += layer.macs
    return {"fixed": fixed, "residual": residual}


def policy_macs(model: nn.Module, policy: torch.Tensor, policy_net: nn.Module | None = None,
                input_shape=(1, 28, 28)) -> torch.Tensor:
    """The exact MACs each image's policy ran, the policy network's included. (B, K) -> (B,)."""
    keep = _check_policy(model, policy, policy.shape[0])
    costs = block_macs(model, input_shape)
    extra = measure.count_macs(policy_net, input_shape).total if policy_net is not None else 0
    residual = torch.tensor(costs["residual"], dtype=torch.long)  # (K,)
    return costs["fixed"] + extra + (keep.long() * residual).sum(1)
