"""nclib.nas.controller: the LSTM controller, REINFORCE with a baseline, the moving average."""
import math

import pytest
import torch

from nclib.nas import Controller, SearchSpace, reinforce_loss, update_baseline


def _controller(seed=0):
    torch.manual_seed(seed)
    return Controller(SearchSpace())


def test_the_paper_shape_and_initialization():
    """2 LSTM layers of 35 units, weights uniform in [-0.08, 0.08], one softmax per decision."""
    c = _controller()
    assert c.lstm.num_layers == 2 and c.lstm.hidden_size == 35
    assert all(p.abs().max() <= 0.08 for p in c.parameters())
    assert [h.out_features for h in c.heads] == [3, 2, 2, 3, 2, 2, 3, 2]


def test_sampled_log_prob_is_the_sum_of_each_steps_log_softmax():
    """sample's log P equals log_prob(tokens) and the product of probabilities(tokens)."""
    c = _controller()
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        tokens, log_prob, entropy = c.sample(g)
        probs = c.probabilities(tokens)
        by_hand = sum(math.log(float(p[t])) for p, t in zip(probs, tokens))
        assert log_prob.item() == pytest.approx(by_hand, abs=1e-5)
        assert c.log_prob(tokens).item() == pytest.approx(by_hand, abs=1e-5)
        ent = sum(float(-(p * p.log()).sum()) for p in probs)
        assert entropy.item() == pytest.approx(ent, abs=1e-5)


def test_a_fed_back_token_changes_the_next_steps_distribution():
    """The next softmax depends on the token chosen before it (the LSTM reads it)."""
    c = _controller()
    with torch.no_grad():
        for e in c.embed:
            e.weight.normal_()
    a = c.probabilities((0,) * 8)
    b = c.probabilities((2,) + (0,) * 7)
    assert torch.equal(a[0], b[0]) and not torch.allclose(a[1], b[1])


def test_sampling_follows_the_controllers_first_softmax():
    """Over 3,000 samples the first token's frequencies match its probabilities within 3%."""
    c = _controller()
    with torch.no_grad():
        c.heads[0].bias.copy_(torch.tensor([1.5, 0.0, -1.0]))
    p = c.probabilities()[0]
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(3)
    with torch.no_grad():
        for _ in range(3000):
            counts[c.sample(g)[0][0]] += 1
    assert torch.allclose(counts / 3000, p, atol=0.03)


def test_reinforce_gradient_is_eq_2():
    """grad of the loss = -1/m sum (R - b) grad log P; a reward equal to b gives no gradient."""
    c = _controller()
    g = torch.Generator().manual_seed(2)
    samples = [c.sample(g) for _ in range(3)]
    rewards, b = torch.tensor([0.9, 0.5, 0.7]), 0.7
    loss = reinforce_loss(torch.stack([s[1] for s in samples]), rewards, b)
    grads = torch.autograd.grad(loss, list(c.parameters()), retain_graph=True, allow_unused=True)
    expected = [torch.zeros_like(p) for p in c.parameters()]
    for (_, lp, _), r in zip(samples, rewards):
        gi = torch.autograd.grad(lp, list(c.parameters()), retain_graph=True, allow_unused=True)
        for e, gg in zip(expected, gi):
            if gg is not None:
                e -= (r - b) * gg / 3
    for got, e in zip(grads, expected):
        assert torch.allclose(got if got is not None else torch.zeros_like(e), e, atol=1e-6)
    flat = reinforce_loss(torch.stack([s[1] for s in samples]), torch.full((3,), b), b)
    assert all(gr is None or gr.abs().max() == 0 for gr in torch.autograd.grad(
        flat, list(c.parameters()), allow_unused=True))


def test_the_entropy_bonus_is_subtracted():
    """loss with entropy_weight w is the plain loss minus w x mean entropy."""
    lp, h = torch.tensor([-2.0, -3.0]), torch.tensor([4.0, 6.0])
    plain = reinforce_loss(lp, torch.tensor([1.0, 0.0]), 0.5)
    assert float(plain) == pytest.approx(-(0.5 * -2.0 + -0.5 * -3.0) / 2)
    assert float(reinforce_loss(lp, torch.tensor([1.0, 0.0]), 0.5, h, 0.1)) == pytest.approx(
        float(plain) - 0.1 * 5.0)


def test_the_moving_average_baseline():
    """b starts at the first reward, then b <- d b + (1 - d) R; a decay outside [0, 1) is refused."""
    b = update_baseline(None, 0.5)
    assert b == 0.5
    assert update_baseline(b, 1.0, decay=0.9) == pytest.approx(0.55)
    with pytest.raises(ValueError, match="decay=1.0"):
        update_baseline(b, 1.0, decay=1.0)


def test_sample_needs_a_generator_and_log_prob_valid_tokens():
    """Sampling without a torch.Generator, or scoring an unknown token, is a clear error."""
    c = _controller()
    with pytest.raises(TypeError, match="generator"):
        c.sample(None)
    with pytest.raises(ValueError, match="token 5"):
        c.log_prob((5, 0, 0, 0, 0, 0, 0, 0))
