"""Training BlockDrop's policy network (Wu et al., CVPR 2018, Sections 3.2-3.3).

The ResNet is trained first, as usual. Then, with the ResNet fixed, the policy network
learns by REINFORCE with the self-critical baseline (`blockdrop.self_critical_loss`):
for each batch it samples a policy u ~ Bernoulli(p), thresholds p > 0.5 for the baseline,
runs the ResNet under both, and rewards each by Eq. 2 (`blockdrop.blockdrop_reward`).

*Curriculum* (Section 3.3): at first the policy decides only the last block and the others
always run; step by step it decides the last 2, 3, ... K blocks. Deciding every block from
the start is a search over 2^K policies with a random policy network, which mostly drops
blocks that the ResNet needs. *Joint fine-tuning*: afterwards the ResNet trains too (cross
entropy under the sampled policies), so it adapts to running with blocks dropped.

Both phases compute every block and mask (`masked_forward`): backpropagation needs a
batch that runs the same layers. Only inference skips (`BlockDropNet`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nclib.dynamic.blockdrop import (BlockDropNet, blockdrop_reward, bound_probabilities,
                                     distinct_policies, masked_forward, policy_macs,
                                     residual_blocks, self_critical_loss)

__all__ = ["policy_step", "train_blockdrop", "assess"]


def policy_step(model: nn.Module, policy_net: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                gamma: float, alpha: float = 0.8, decided: int | None = None,
                logit_decay: float = 0.0,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    """One REINFORCE step's loss (and, when the ResNet trains, its cross entropy).

    `decided`: how many of the last blocks the policy decides (the curriculum); the rest
    run always and add nothing to log P. Returns (loss, figures of the batch).
    """
    K = len(residual_blocks(model))
    decided = K if decided is None else decided
    if not 1 <= decided <= K:
        raise ValueError(f"decided={decided!r}: expected 1..{K} (the blocks the policy decides)")
    logits = policy_net(x)  # (B, K)
    probs = bound_probabilities(logits, alpha)
    sampled = torch.bernoulli(probs.detach(), generator=generator)  # (B, K) in {0, 1}
    greedy = (probs.detach() > 0.5).float()
    sampled[:, :K - decided] = 1  # the curriculum: the first K - decided blocks always run
    greedy[:, :K - decided] = 1
    with torch.set_grad_enabled(model.training):
        out = masked_forward(model, x, sampled)  # (B, classes)
    with torch.no_grad():
        greedy_logits = masked_forward(model, x, greedy)
    reward = blockdrop_reward(sampled, out.argmax(1) == y, gamma)  # (B,)
    greedy_reward = blockdrop_reward(greedy, greedy_logits.argmax(1) == y, gamma)
    loss = self_critical_loss(probs[:, K - decided:], sampled[:, K - decided:], reward, greedy_reward)
    if logit_decay:  # keeps the logits where an image's own features can still flip them
        loss = loss + logit_decay * logits[:, K - decided:].pow(2).mean()
    if model.training:
        loss = loss + F.cross_entropy(out, y)
    return loss, {"reward": greedy_reward.mean().item(), "blocks": greedy.sum(1).mean().item(),
                  "accuracy": (greedy_logits.argmax(1) == y).float().mean().item()}


def train_blockdrop(model: nn.Module, policy_net: nn.Module, loader, *, gamma: float,
                    alpha: float = 0.8, curriculum_epochs: int = 3, joint_epochs: int = 1,
                    lr: float = 1e-3, model_lr: float = 1e-4, logit_decay: float = 0.0,
                    seed: int = 0, progress: bool = True) -> dict[str, list[float]]:
    """The curriculum (policy only, ResNet fixed), then joint fine-tuning; in place.

    The curriculum's `curriculum_epochs` passes over `loader` are split into K equal
    stages; stage t decides the last t blocks. Returns per-pass means of the greedy
    policy's reward, blocks used and accuracy on the training batches.
    """
    K = len(residual_blocks(model))
    for name, v in (("curriculum_epochs", curriculum_epochs), ("joint_epochs", joint_epochs)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name}={v!r}: expected a non-negative integer")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    policy_opt = torch.optim.Adam(policy_net.parameters(), lr=lr)
    model_opt = torch.optim.Adam(model.parameters(), lr=model_lr)
    total = (curriculum_epochs + joint_epochs) * len(loader)
    bar = None
    if progress and total:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"BlockDrop policy (gamma {gamma:g})", unit="batch")
    history: dict[str, list[float]] = {"reward": [], "blocks": [], "accuracy": [], "phase": []}
    step, curriculum_steps = 0, curriculum_epochs * len(loader)
    for epoch in range(curriculum_epochs + joint_epochs):
        joint = epoch >= curriculum_epochs
        model.train(joint)
        policy_net.train()
        sums = {"reward": 0.0, "blocks": 0.0, "accuracy": 0.0}
        for x, y in loader:
            decided = K if joint else min(K, 1 + step * K // max(curriculum_steps, 1))
            loss, figures = policy_step(model, policy_net, x, y.long(), gamma=gamma, alpha=alpha,
                                        decided=decided, logit_decay=logit_decay, generator=g)
            policy_opt.zero_grad(set_to_none=True)
            model_opt.zero_grad(set_to_none=True)
            loss.backward()
            policy_opt.step()
            if joint:
                model_opt.step()
            for k in sums:
                sums[k] += figures[k] / len(loader)
            step += 1
            if bar is not None:
                bar.set_postfix(blocks=f"{figures['blocks']:.1f}/{K}", acc=f"{figures['accuracy']:.3f}")
                bar.update(1)
        for k, v in sums.items():
            history[k].append(v)
        history["phase"].append("joint" if joint else "curriculum")
    if bar is not None:
        bar.close()
    model.eval()
    policy_net.eval()
    return history


@torch.no_grad()
def assess(net: BlockDropNet, loader, input_shape=(1, 28, 28)) -> dict[str, object]:
    """The deployed BlockDrop on a loader: accuracy, blocks used, exact MACs (policy network
    included) and distinct policies, overall and per image."""
    net.eval()
    policies, correct = [], []
    for x, y in loader:
        p = net.policy(x)  # (B, K)
        correct.append(net(x).argmax(1) == y)
        policies.append(p)
    policy, correct = torch.cat(policies), torch.cat(correct)
    macs = policy_macs(net.model, policy, net.policy_net, input_shape)  # (N,)
    return {"accuracy": correct.float().mean().item(), "blocks": policy.float().sum(1).mean().item(),
            "macs": macs.float().mean().item(), "distinct": distinct_policies(policy),
            "policy": policy, "correct": correct, "per_image_macs": macs}
