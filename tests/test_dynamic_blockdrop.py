"""nclib.dynamic.blockdrop: rewards, the self-critical loss, and skipping that equals masking."""
import pytest
import torch
from torch import nn

from nclib import measure, models
from nclib.dynamic import blockdrop


def _resnet(seed: int = 0) -> nn.Module:
    """SmallResNet with 6 blocks and random BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    net = models.SmallResNet(widths=(8, 16, 32), blocks_per_stage=2)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    return net.eval()


def test_reward_is_eq_2():
    """1 - (used / K)^2 when right, -gamma when wrong."""
    policy = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 0, 0]])
    correct = torch.tensor([True, True, True, False])
    assert blockdrop.blockdrop_reward(policy, correct, gamma=5.0).tolist() == [0.75, 0.0, 1.0, -5.0]


def test_bounded_probabilities_stay_within_alpha():
    """p = alpha s + (1 - alpha)(1 - s) lies in [1 - alpha, alpha]; alpha below 0.5 is refused."""
    p = blockdrop.bound_probabilities(torch.tensor([-50.0, 0.0, 50.0]), alpha=0.8)
    assert torch.allclose(p, torch.tensor([0.2, 0.5, 0.8]))
    with pytest.raises(ValueError, match="alpha=0.3"):
        blockdrop.bound_probabilities(torch.zeros(2), alpha=0.3)


def test_self_critical_gradient_pushes_toward_the_better_policy():
    """A sampled policy better than the greedy one becomes likelier after a gradient step."""
    logits = torch.zeros(1, 4, requires_grad=True)
    sampled = torch.tensor([[1, 0, 0, 1]])
    loss = blockdrop.self_critical_loss(torch.sigmoid(logits), sampled, torch.tensor([1.0]),
                                        torch.tensor([0.2]))
    loss.backward()
    assert (logits.grad[0, [0, 3]] < 0).all() and (logits.grad[0, [1, 2]] > 0).all()
    flat = blockdrop.self_critical_loss(torch.full((1, 4), 0.5), sampled, torch.tensor([0.4]),
                                        torch.tensor([0.4]))
    assert flat.item() == 0.0


@pytest.mark.parametrize("group", [True, False])
def test_skipping_equals_masking_on_random_inputs_and_policies(group):
    """Only the kept blocks, run per image or per group of equal policies, give the masked logits."""
    net = _resnet()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 1, 28, 28, generator=g)
    policy = torch.randint(0, 2, (12, 6), generator=g)
    policy[5] = policy[2]  # two images share a policy: one group
    with torch.no_grad():
        masked = blockdrop.masked_forward(net, x, policy)
        skipped = blockdrop.skipping_forward(net, x, policy, group=group)
    assert (masked - skipped).abs().max() < 1e-5


def test_all_blocks_kept_is_the_plain_network_and_none_kept_still_predicts():
    """Policy 1...1 equals the ResNet's own forward; policy 0...0 returns finite logits."""
    net = _resnet()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        full = blockdrop.skipping_forward(net, x, torch.ones(3, 6))
        assert torch.allclose(full, net(x), atol=1e-5)
        none = blockdrop.skipping_forward(net, x, torch.zeros(3, 6))
    assert none.shape == (3, 10) and torch.isfinite(none).all()


def test_policy_macs_are_exact():
    """All kept: nclib.measure's count of the ResNet (plus the policy net); none kept: the fixed part."""
    net, policy_net = _resnet(), blockdrop.PolicyNet(6)
    dense = measure.count_macs(net, (1, 28, 28)).total
    extra = measure.count_macs(policy_net, (1, 28, 28)).total
    costs = blockdrop.block_macs(net)
    assert costs["fixed"] + sum(costs["residual"]) == dense
    macs = blockdrop.policy_macs(net, torch.tensor([[1] * 6, [0] * 6, [1, 0, 0, 0, 0, 1]]), policy_net)
    assert macs.tolist() == [dense + extra, costs["fixed"] + extra,
                             costs["fixed"] + extra + costs["residual"][0] + costs["residual"][5]]


def test_a_policy_of_the_wrong_length_and_a_plain_network_are_clear_errors():
    """The policy needs one decision per block; a network without residual blocks is refused."""
    net = _resnet()
    with pytest.raises(ValueError, match=r"expected \(2, 6\)"):
        blockdrop.skipping_forward(net, torch.zeros(2, 1, 28, 28), torch.ones(2, 5))
    with pytest.raises(ValueError, match="residual blocks"):
        blockdrop.masked_forward(models.LeNet5(), torch.zeros(1, 1, 28, 28), torch.ones(1, 2))


@pytest.mark.parametrize("bias", [5.0, -5.0, 0.0])
def test_blockdrop_net_at_batch_1_and_in_a_batch_equals_masking_under_its_own_policy(bias):
    """BlockDropNet's forward (batch 1 and batch 8) gives the masked logits of its policy,
    with every block kept (bias +5), none kept (-5) and a mixed policy."""
    net, policy_net = _resnet(), blockdrop.PolicyNet(6)
    with torch.no_grad():
        policy_net.head.bias.fill_(bias)
        if bias == 0.0:
            policy_net.head.bias.copy_(torch.tensor([3.0, -3.0, 3.0, -3.0, 0.0, 0.0]))
    pair = blockdrop.BlockDropNet(net, policy_net).eval()
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        masked = blockdrop.masked_forward(net, x, pair.policy(x))
        one_by_one = torch.cat([pair(x[i:i + 1]) for i in range(8)])
        assert (pair(x) - masked).abs().max() < 1e-5 and (one_by_one - masked).abs().max() < 1e-5
    kept = pair.policy(x).float().sum(1)
    assert (kept == 6).all() if bias > 0 else (kept == 0).all() if bias < 0 else (kept >= 2).all()
