"""nclib.dynamic.blockdrop_train: the curriculum, the REINFORCE step, and a policy that learns."""
import pytest
import torch
from torch import nn

from nclib import models
from nclib.dynamic import blockdrop
from nclib.dynamic.blockdrop_train import assess, policy_step, train_blockdrop


def _idle_resnet(seed: int = 0) -> nn.Module:
    """A 6-block ResNet whose residual branches add nothing (last BN scale and shift 0)."""
    torch.manual_seed(seed)
    net = models.SmallResNet(widths=(8, 8, 8), blocks_per_stage=2)
    with torch.no_grad():
        for b in net.blocks:
            b.bn2.weight.zero_()
            b.bn2.bias.zero_()
    return net.eval()


def _batches(net: nn.Module, n: int = 4, size: int = 16):
    """Random images labelled by the network itself: every policy predicts them right."""
    g = torch.Generator().manual_seed(3)
    out = []
    for _ in range(n):
        x = torch.randn(size, 1, 28, 28, generator=g)
        with torch.no_grad():
            out.append((x, net(x).argmax(1)))
    return out


def test_the_curriculum_runs_the_undecided_blocks_and_leaves_them_out_of_log_p():
    """With decided = 2 of 6, only the last 2 blocks' probabilities get a gradient."""
    net, policy = _idle_resnet(), blockdrop.PolicyNet(6)
    (x, y), = _batches(net, 1)
    loss, figures = policy_step(net, policy, x, y, gamma=5.0, decided=2,
                                generator=torch.Generator().manual_seed(0))
    loss.backward()
    grad = policy.head.bias.grad
    assert (grad[:4] == 0).all() and (grad[4:] != 0).any()
    assert figures["blocks"] >= 4 and figures["accuracy"] == 1.0
    with pytest.raises(ValueError, match="decided=7"):
        policy_step(net, policy, x, y, gamma=5.0, decided=7)


def test_a_policy_learns_to_drop_blocks_that_add_nothing():
    """Where every block is useless, the reward 1 - (used / K)^2 teaches the policy to drop them."""
    net, policy = _idle_resnet(), blockdrop.PolicyNet(6)
    data = _batches(net)
    before = assess(blockdrop.BlockDropNet(net, policy), data)["blocks"]
    history = train_blockdrop(net, policy, data, gamma=5.0, lr=0.1, curriculum_epochs=12,
                              joint_epochs=0, progress=False)
    after = assess(blockdrop.BlockDropNet(net, policy), data)
    # seeds 0-2 end at 0-1 of 6 blocks from about 3.4 (a random policy network)
    assert after["blocks"] <= 2 and before - after["blocks"] >= 1.4 and after["accuracy"] >= 0.98
    assert history["phase"] == ["curriculum"] * 12 and len(history["blocks"]) == 12


def test_joint_fine_tuning_trains_the_resnet_too():
    """In the joint phase the ResNet's weights change; in the curriculum they do not."""
    net, policy = _idle_resnet(), blockdrop.PolicyNet(6)
    w = net.stem[0].weight.detach().clone()
    train_blockdrop(net, policy, _batches(net, 2), gamma=1.0, curriculum_epochs=1, joint_epochs=0,
                    progress=False)
    assert torch.equal(w, net.stem[0].weight)
    train_blockdrop(net, policy, _batches(net, 2), gamma=1.0, curriculum_epochs=0, joint_epochs=1,
                    progress=False)
    assert not torch.equal(w, net.stem[0].weight)
    with pytest.raises(ValueError, match="joint_epochs=-1"):
        train_blockdrop(net, policy, [], gamma=1.0, joint_epochs=-1)


def test_assess_counts_blocks_macs_and_distinct_policies():
    """assess matches the greedy policy's own counts and the skipping network's predictions."""
    net, policy = _idle_resnet(), blockdrop.PolicyNet(6)
    data = _batches(net, 2)
    pair = blockdrop.BlockDropNet(net, policy).eval()
    r = assess(pair, data)
    x = torch.cat([b[0] for b in data])
    p = pair.policy(x)
    assert r["blocks"] == pytest.approx(p.float().sum(1).mean().item())
    assert r["distinct"] == blockdrop.distinct_policies(p)
    assert r["macs"] == pytest.approx(blockdrop.policy_macs(net, p, policy).float().mean().item())
    with torch.no_grad():
        assert torch.allclose(pair(x), blockdrop.masked_forward(net, x, p), atol=1e-5)


def test_blockdrop_net_needs_residual_blocks():
    """A network without residual blocks is a clear error."""
    with pytest.raises(ValueError, match="residual blocks"):
        blockdrop.BlockDropNet(models.LeNet5(), blockdrop.PolicyNet(3))
