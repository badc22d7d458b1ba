"""Checks of chapter 03: pass on the reference, fail with the right message on wrong answers."""
import copy
import re
import heapq
import itertools
import math
from pathlib import Path

import pytest
import torch

from nclib import data, models, zoo
from nclib.chapters.quantization import checks as ref
from nclib.chapters.quantization import experiments as ex
from nclib.chapters.quantization.checks import budget, questions
from nclib.course import check
from nclib.course import questions as qs
from nclib.quant import binary, bitpack, compressed, kmeans, uniform
from nclib.train import evaluate


def _stub(*args, **kwargs):
    raise NotImplementedError


# ---------------------------------------------------------------- the solution notebook's answers
def cluster_weights(weight, num_bits, num_iter=20):
    w = weight.detach().flatten()  # (N,)
    centroids = torch.linspace(w.min().item(), w.max().item(), 2 ** num_bits)  # (k,) linear start
    labels = (w[:, None] - centroids[None]).abs().argmin(1)  # (N,) the nearest centroid
    for _ in range(num_iter):
        for j in range(len(centroids)):
            members = w[labels == j]
            if len(members):  # an empty cluster keeps its centroid
                centroids[j] = members.mean()
        labels = (w[:, None] - centroids[None]).abs().argmin(1)  # (N,)
    return centroids, labels.view(weight.shape)


def centroid_grad(weight_grad, labels, num_centroids):
    grad = torch.zeros(num_centroids, dtype=weight_grad.dtype)  # (k,)
    return grad.index_add_(0, labels.flatten(), weight_grad.flatten())  # Eq. 3: sum per cluster


def huffman_lengths(counts):
    symbols = [s for s, n in counts.items() if n > 0]
    if len(symbols) == 1:
        return {symbols[0]: 1}  # a lone symbol still needs a 1-bit code word
    order = itertools.count()  # breaks ties between equal counts (lists are not compared)
    heap = [(counts[s], next(order), [s]) for s in symbols]  # (count, tie-break, leaves)
    heapq.heapify(heap)
    lengths = dict.fromkeys(symbols, 0)
    while len(heap) > 1:
        n_a, _, a = heapq.heappop(heap)  # the two least frequent nodes
        n_b, _, b = heapq.heappop(heap)
        for s in a + b:  # every leaf under the new node is one level deeper
            lengths[s] += 1
        heapq.heappush(heap, (n_a + n_b, next(order), a + b))
    return lengths


def affine_quantize(x, scale, zero_point, num_bits=8):
    q = torch.round(x / scale) + zero_point  # the level of each value
    return q.clamp(0, 2 ** num_bits - 1).to(torch.uint8)  # num_bits <= 8


def affine_dequantize(q, scale, zero_point):
    return scale * (q.float() - zero_point)  # float first: uint8 - zero_point would wrap


def fake_quant_ste(x, scale, zero_point, num_bits=8):
    lo, hi = scale * (0 - zero_point), scale * (2 ** num_bits - 1 - zero_point)  # the real range
    y = affine_dequantize(affine_quantize(x, scale, zero_point, num_bits), scale, zero_point)
    x = torch.clamp(x, lo, hi)  # gradient 1 inside the range, 0 where clamped
    return x + (y - x).detach()  # forward: y; backward: straight through to x


# ---------------------------------------------------------------- the usual mistakes
def _kmeans(weight, num_bits, num_iter, *, start="linear", update=True, keep_empty=True):
    """k-means with a switch for each mistake: the start, no update, nan for empty clusters."""
    w = weight.flatten()
    k = 2 ** num_bits
    if start == "linear":
        centroids = torch.linspace(w.min().item(), w.max().item(), k)
    else:  # Forgy: k weights drawn at random, seeded (the same on every call) or not
        g = torch.Generator().manual_seed(0) if start == "seeded" else None
        centroids = w[torch.randperm(w.numel(), generator=g)[:k]].clone()
    labels = (w[:, None] - centroids[None]).abs().argmin(1)
    for _ in range(num_iter if update else 0):
        for j in range(k):
            if (labels == j).any() or not keep_empty:
                centroids[j] = w[labels == j].mean()
        labels = (w[:, None] - centroids[None]).abs().argmin(1)
    return centroids, labels.view(weight.shape)


def cluster_stale(weight, num_bits, num_iter=20):
    """Assign, then update, num_iter times: the labels name the centroids before the last move."""
    w = weight.flatten()
    centroids = torch.linspace(w.min().item(), w.max().item(), 2 ** num_bits)
    for _ in range(num_iter):
        labels = (w[:, None] - centroids[None]).abs().argmin(1)
        for j in range(centroids.numel()):
            if (labels == j).any():
                centroids[j] = w[labels == j].mean()
    return centroids, labels.view(weight.shape)


def cluster_random(weight, num_bits, num_iter=20):
    """A random (Forgy) start from the global random numbers: a new start on every call."""
    return _kmeans(weight, num_bits, num_iter, start="random")


def cluster_used_only(weight, num_bits, num_iter=20):
    """Returns only the centroids that some weight uses: fewer than 2^b when clusters are empty."""
    centroids, labels = cluster_weights(weight, num_bits, num_iter)
    used = labels.unique()  # ascending
    return centroids[used], torch.searchsorted(used, labels)


def huffman_with_zeros(counts):
    """Huffman's tree with a leaf for every symbol, those of count 0 too."""
    tie = itertools.count()
    heap = [(n, next(tie), [s]) for s, n in counts.items()]
    heapq.heapify(heap)
    lengths = dict.fromkeys(counts, 0)
    while len(heap) > 1:
        n_a, _, a = heapq.heappop(heap)
        n_b, _, b = heapq.heappop(heap)
        for s in a + b:
            lengths[s] += 1
        heapq.heappush(heap, (n_a + n_b, next(tie), a + b))
    return lengths


def shannon_lengths(counts):
    total = sum(counts.values())
    return {s: math.ceil(-math.log2(n / total)) for s, n in counts.items() if n > 0}


def fixed_lengths(counts):
    used = [s for s, n in counts.items() if n > 0]
    return dict.fromkeys(used, max(1, math.ceil(math.log2(len(used)))))


def _quantize(x, scale, zero_point, num_bits=8, *, clamp=True, zp=1, rounding=torch.round):
    q = rounding(x / scale) + zp * zero_point
    return (q.clamp(0, 2 ** num_bits - 1) if clamp else q).to(torch.uint8)


def fake_quant_round(x, scale, zero_point, num_bits=8):
    """Plain round: the values are right, but round's gradient is 0."""
    q = (torch.round(x / scale) + zero_point).clamp(0, 2 ** num_bits - 1)
    return scale * (q - zero_point)


def fake_quant_no_mask(x, scale, zero_point, num_bits=8):
    """Straight through everywhere, clamped values too."""
    return x + (fake_quant_round(x, scale, zero_point, num_bits) - x).detach()


CASES = {  # task -> (the solution, [(wrong answer, words its verdict must hold)])
    "cluster_weights": (cluster_weights, [
        (lambda w, b, n=20: _kmeans(w, b, n, update=False), "the centroids never moved"),
        (lambda w, b, n=20: (cluster_weights(w, b, n)[0], cluster_weights(w, b, n)[1].flatten()),
         "expected labels of shape (64, 100), like the weight, got labels of shape (6400,)"),
        (lambda w, b, n=20: _kmeans(w, b, n, start="seeded"),
         "expected inertia sum (w - C[I])^2 = 0.56175, the worst weight 1.2 stored as 1.033, got "
         "0.335861, the worst weight -0.8 stored as -0.4833. Hint: a smaller squared error"),
        (cluster_stale, "assign the weights once more"),
        (lambda w, b, n=20: _kmeans(w, b, n, keep_empty=False), "the mean of no weights is nan"),
        (cluster_used_only, "expected centroids: a float tensor of shape (4,), got a torch.float32 tensor "
         "of shape (3,). Hint: 2**num_bits = 4 centroids"),
    ]),
    "centroid_grad": (centroid_grad, [
        (lambda g, i, k: centroid_grad(g, i, k) / torch.bincount(i.flatten(), minlength=k).clamp(min=1),
         "that is the MEAN gradient"),
        (lambda g, i, k: torch.bincount(i.flatten(), weights=g.flatten()), "minlength=num_centroids"),
        (lambda g, i, k: g, "expected a tensor of shape (2,)"),
    ]),
    "huffman_lengths": (huffman_lengths, [
        (shannon_lengths, "those are Shannon's lengths"),
        (fixed_lengths, "that is a fixed-length code"),
        (lambda c: dict.fromkeys(c, 0) if len(c) == 1 else huffman_lengths(c), "give it length 1"),
        (huffman_with_zeros, "symbol 1 never occurs"),
        (lambda c: {s: max(1, n - 1) for s, n in huffman_lengths(c).items()}, "Kraft's inequality"),
        (lambda c: {s: n for s, n in huffman_lengths(c).items() if s != 0}, "no length for [0]"),
    ]),
    "affine_quantize": ((affine_quantize, affine_dequantize), [
        ((lambda *a: _quantize(*a, clamp=False), affine_dequantize),
         "expected tensor([0, 3, 6, 255]), got tensor([0, 3, 6, 67]). Hint: clamp"),
        ((lambda *a: _quantize(*a, zp=0), affine_dequantize), "add the zero point: it is"),
        ((lambda *a: _quantize(*a, zp=-1), affine_dequantize), "(you subtracted it)"),
        ((lambda *a: _quantize(*a, rounding=torch.floor), affine_dequantize),
         "got tensor([0, 3, 5, 255]). Hint: round to the NEAREST level"),
        ((lambda *a: affine_quantize(*a).float(), affine_dequantize), "an integer tensor"),
        ((affine_quantize, lambda q, s, z: s * q.float()), "subtract the zero point first"),
        ((affine_quantize, lambda q, s, z: s * (q - z).float()), "uint8 arithmetic wraps"),
        ((affine_quantize, lambda q, s, z: (q.float() - z) / s), "multiply by the scale"),
    ]),
    "fake_quant_ste": (fake_quant_ste, [
        (fake_quant_round, "round() has gradient 0"),
        (fake_quant_no_mask, "where a value was clamped"),
        (lambda *a: fake_quant_round(*a).detach(), "a tensor with no gradient"),
        (lambda x, s, z, b=8: fake_quant_ste(x, s, z, b) * 2, "quantize, then dequantize"),
    ]),
}
REFERENCES = {"cluster_weights": ref.ref_cluster_weights, "centroid_grad": ref.ref_centroid_grad,
              "huffman_lengths": ref.ref_huffman_lengths, "fake_quant_ste": ref.ref_fake_quant_ste,
              "affine_quantize": (ref.ref_affine_quantize, ref.ref_affine_dequantize)}


@pytest.mark.parametrize("name", list(CASES))
def test_reference_and_solution_pass(name, capsys):
    """nclib's reference and the solution notebook's answer both get full points and a PASS verdict."""
    task = getattr(check.quantization, name)
    for answer in (REFERENCES[name], CASES[name][0]):
        r = task(answer)
        assert (r.status, r.points, r.max_points) == ("passed", task.points, task.points), r.reason
    assert capsys.readouterr().out.count("[PASS]") == 2


@pytest.mark.parametrize("name, wrong, message",
                         [(n, w, m) for n, (_, bad) in CASES.items() for w, m in bad])
def test_wrong_versions_fail_with_input_expected_got_and_hint(name, wrong, message):
    """A wrong answer fails, naming the input, the expected and received value, and a hint."""
    torch.manual_seed(0)  # the random start draws from the global generator
    r = getattr(check.quantization, name).grade(wrong)
    assert r.status == "failed" and r.points == 0, r.reason
    assert message in r.reason and "for input" in r.reason, r.reason
    assert "Hint:" in r.reason, r.reason


def _kmeans_vectorized(weight, num_bits, num_iter=20):
    """In float64, sums by index_add, distances squared, and a stop once nothing moves."""
    w = weight.double().flatten()
    c = torch.linspace(w.min().item(), w.max().item(), 2 ** num_bits, dtype=torch.float64)
    labels = ((w[:, None] - c[None]) ** 2).argmin(1)
    for _ in range(num_iter):
        sizes = torch.bincount(labels, minlength=len(c))
        sums = torch.zeros_like(c).index_add_(0, labels, w)
        new = torch.where(sizes > 0, sums / sizes.clamp(min=1), c)
        if torch.equal(new, c):
            break
        c, labels = new, ((w[:, None] - new[None]) ** 2).argmin(1)
    return c, labels.reshape(weight.shape)


def _huffman_reversed_ties(counts):
    """Huffman with equal counts merged newest first: other lengths, the same total."""
    tie = itertools.count(0, -1)
    heap = [(n, next(tie), [s]) for s, n in counts.items() if n > 0]
    heapq.heapify(heap)
    if len(heap) == 1:
        return {heap[0][2][0]: 1}
    lengths = dict.fromkeys(counts, 0)
    while len(heap) > 1:
        (n_a, _, a), (n_b, _, b) = heapq.heappop(heap), heapq.heappop(heap)
        for s in a + b:
            lengths[s] += 1
        heapq.heappush(heap, (n_a + n_b, next(tie), a + b))
    return {s: n for s, n in lengths.items() if counts[s] > 0}


def _fake_quant_masked(x, scale, zero_point, num_bits=8):
    """The STE as a mask on round(x / scale): the value y, the gradient 1 where not clamped."""
    t = torch.round(x / scale) + zero_point
    inside = (t >= 0) & (t <= 2 ** num_bits - 1)
    y = scale * (t.clamp(0, 2 ** num_bits - 1) - zero_point)
    return y.detach() + (x - x.detach()) * inside


@pytest.mark.parametrize("name, answer", [
    ("cluster_weights", _kmeans_vectorized), ("huffman_lengths", _huffman_reversed_ties),
    ("affine_quantize", (lambda x, s, z, b=8: (torch.floor(x / s + 0.5) + z).clamp(0, 2 ** b - 1).int(),
                         lambda q, s, z: (q.long() - z) * s)),
    ("fake_quant_ste", _fake_quant_masked)], ids=lambda v: v if isinstance(v, str) else "")
def test_other_correct_answers_pass(name, answer):
    """Other correct ways pass: float64 and an early stop, other tie-breaks, floor(t + 1/2),
    int32 levels, the STE as a mask."""
    r = getattr(check.quantization, name).grade(answer)
    assert r.status == "passed", r.reason
    two_codes = {0: 1, 1: 1, 2: 2, 3: 2}  # a case of the check: the lengths differ, the totals not
    assert name != "huffman_lengths" or answer(two_codes) != ref.ref_huffman_lengths(two_codes)


def test_a_random_start_is_named():
    """A random start from the global generator gives a new result on a second call: the hint says so."""
    torch.manual_seed(0)
    r = check.quantization.cluster_weights.grade(cluster_random)
    assert r.status == "failed" and "a random start?" in r.reason and "linspace" in r.reason, r.reason


@pytest.mark.parametrize("name", list(CASES))
def test_stub_and_missing_answer_are_not_attempted(name):
    """The released stub (NotImplementedError), None and ... are 'not attempted', not failures."""
    task = getattr(check.quantization, name)
    stub = (_stub, _stub) if name == "affine_quantize" else _stub
    for student in (stub, None, ...):
        r = task.grade(student)
        assert r.status == "not_attempted" and r.points == 0, r.reason


def test_question_answers_are_hashed_not_written():
    """The registrations hold the answers' salted hashes; the number 64 is nowhere in its own."""
    source = Path(questions.__file__).read_text()
    start = source.index("zero_point_uint8 = number(")
    end = source.find("\n\n", start)  # the registration ends at a blank line
    number = source[start:end if end > 0 else None]
    assert qs.answer_hash("quantization.why_linear_init", "b") in source
    assert qs.number_hash("quantization.zero_point_uint8", 64, 0.2) in number and "64" not in number


def test_points_follow_the_other_chapters():
    """2 points for k-means, Huffman and the budget, 1 for the others: 10 in all with the questions."""
    names = [*CASES, "compressed_under_budget", "why_linear_init", "zero_point_uint8"]
    points = {n: getattr(check.quantization, n).points for n in names}
    assert points == {"cluster_weights": 2, "centroid_grad": 1, "huffman_lengths": 2,
                      "affine_quantize": 1, "fake_quant_ste": 1, "compressed_under_budget": 2,
                      "why_linear_init": 1, "zero_point_uint8": 1}
    assert set(names) <= set(ref.__all__)


def test_affine_pair_is_checked_as_a_pair():
    """One function alone, nclib's own inside the pair, or a stub dequantize fail with what to do."""
    task = check.quantization.affine_quantize
    for student, words in [(affine_quantize, "hand in both functions as a pair"),
                           ((uniform.quantize, affine_dequantize),
                            "nclib's own `nclib.quant.uniform.quantize`"),
                           ((affine_quantize, _stub), "affine_dequantize is still the stub")]:
        r = task.grade(student)
        assert r.status == "failed" and words in r.reason, r.reason


def test_student_exception_is_an_error_naming_the_input():
    """An exception in the student's code becomes an 'error' verdict naming the input."""
    r = check.quantization.centroid_grad.grade(lambda g, i, k: g @ i)
    assert r.status == "error" and "RuntimeError" in r.reason and "hand-worked" in r.reason


def test_references_agree_with_autograd_and_torch():
    """Eq. 3 by index_add equals autograd through C[I]; fake quantization equals torch's."""
    from nclib.chapters.quantization.checks import linear, sharing
    for _, g, labels, k in sharing._grad_cases():
        assert torch.allclose(ref.ref_centroid_grad(g, labels, k), sharing._autograd_grad(g, labels, k))
    for _, x, s, z, b in linear._cases():
        want = torch.fake_quantize_per_tensor_affine(x, float(s), int(z), 0, 2 ** b - 1)
        assert torch.equal(ref.ref_fake_quant_ste(x, s, z, b), want)


def test_checks_leave_the_global_random_state_alone():
    """Running the code checks (tasks 1-5 and 7-9) does not change the notebook's next random
    numbers."""
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for name, answer in {**REFERENCES, **BINARY_REFERENCES}.items():
        getattr(check.quantization, name).grade(answer)
    assert torch.equal(torch.rand(3), expected)


def test_questions_accept_the_right_answer_only():
    """The two concept questions pass their answer and fail the usual wrong ones, explaining."""
    for task, right, wrong in [(check.quantization.why_linear_init, "B ", ["a", "c"]),
                               (check.quantization.zero_point_uint8, 64, [63.75, 63, 0, 128, 191])]:
        assert task.grade(right).status == "passed"
        for answer in wrong:
            r = task.grade(answer)
            assert r.status == "failed" and r.reason.startswith("not "), r.reason
        assert task.grade(...).status == "not_attempted"


# ---------------------------------------------------------------- task 6: the budget
@pytest.fixture(scope="module")
def pruned():
    return ex.pruned("lenet300", 0)


@pytest.fixture(scope="module")
def solution(pruned):
    """The reference answer, the solution notebook's: fc1 and fc2 at 3 bits, fc3 at 4, one
    epoch of centroid training (about 1 s)."""
    return ref.ref_compressed_under_budget(pruned)


def _shared(model, bits):
    return kmeans.share_weights(copy.deepcopy(model), bits)


def test_budget_passes_the_solution_with_margin(solution, pruned, tmp_path, capsys):
    """The solution passes, its file 5% under the budget and its accuracy half a point over the
    bar; the pruned model handed to the reference is left unshared. (Sizes and accuracies are
    matched as patterns: the zoo's weights, and so the Huffman codes, may differ by machine.)"""
    r = check.quantization.compressed_under_budget(solution)
    assert (r.status, r.points, r.max_points) == ("passed", 2, 2), r.reason
    assert re.match(r"1\d\.\d kB on disk \(budget 15 kB\) and ", r.reason), r.reason
    assert re.search(r"test accuracy \(bar 93%\): \d+x smaller than the dense fp32 model", r.reason)
    assert "[PASS]" in capsys.readouterr().out
    assert compressed.save_compressed(solution, tmp_path / "m.nclib") <= 0.95 * budget.BUDGET_BYTES
    assert evaluate(solution, data.loaders("mnist").test, device="cpu") >= budget.MIN_ACCURACY + 0.005
    assert budget.BUDGET_BITS == {"fc1": 3, "fc2": 3, "fc3": 3} and not kmeans.shared_layers(pruned)


def test_budget_leaves_the_model_alone(solution):
    """The check measures a copy: the codebooks stay attached and nothing changes."""
    before = copy.deepcopy(solution.state_dict())
    check.quantization.compressed_under_budget.grade(solution)
    assert kmeans.is_shared(solution.fc1)
    assert all(torch.equal(v, solution.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("make, words", [
    (lambda m: _shared(m, 5), [re.compile(r"1\d\.\d kB on disk \(budget 15 kB\) and 9\d\.\d% test accuracy "
                                          r"\(bar 93%\): over the byte budget"), "fewer bits per label"]),
    (lambda m: copy.deepcopy(m), [re.compile(r"7\d\.\d kB on disk"), "fc1, fc2, fc3 do not share their weights"]),
    (lambda m: _shared(m, {"fc1": 3, "fc2": 3}), ["fc3 does not share its weights"]),
    (lambda m: _shared(zoo.trained("lenet300"), 3), [re.compile(r"9\d\.\d kB on disk"), "Hint: fc1 is not pruned"]),
    (lambda m: copy.deepcopy(zoo.trained("lenet300")),
     ["1,066.9 kB", "do not share their weights", "; and fc1 is not pruned"]),
    (lambda m: _shared(m, 2), [re.compile(r"1\d\.\d kB on disk"),
                               re.compile(r"\d\d\.\d% test accuracy \(bar 93%\): below the accuracy bar")]),
    (lambda m: models.MLP(), ["that is not a LeNet-300-100",
                              "got the layers [(784, 30), (30, 30), (30, 10)] in your MLP"]),
    (lambda m: models.LeNet300100(num_classes=5), ["(100, 5)"]),
    (lambda m: m.state_dict(), ["hand in the compressed model itself, an nn.Module"]),
], ids=["uniform_5_bits", "unshared", "fc3_unshared", "unpruned", "dense", "uniform_2_bits", "mlp",
        "5_classes", "state_dict"])
def test_budget_fails_wrong_models_saying_why(pruned, make, words):
    """Too big (and why), too inaccurate, not a LeNet-300-100, or no model: no points, the reason."""
    r = check.quantization.compressed_under_budget.grade(make(pruned))
    assert (r.status, r.points) == ("failed", 0), r.reason
    found = [w.search(r.reason) if isinstance(w, re.Pattern) else w in r.reason for w in words]
    assert all(found) and "Hint:" in r.reason, r.reason


def test_budget_not_attempted():
    """None and ... (the released answer) are 'not attempted'."""
    for student in (None, ...):
        assert check.quantization.compressed_under_budget.grade(student).status == "not_attempted"


def test_untraceable_model_fails_with_the_save_error():
    """A model save_compressed cannot describe fails with its error, not a crash."""
    class Branchy(models.LeNet300100):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
                return super().forward(x)
            return super().forward(-x)

    r = check.quantization.compressed_under_budget.grade(Branchy())
    assert r.status == "failed" and "save_compressed could not write your model" in r.reason, r.reason


# ---------------------------------------------------------------- tasks 7-9: binary networks
WORD = 2 ** 64 - 1  # a word's 64 bits as a non-negative Python int


def _sign(x):
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)  # sign(0) = +1


def sign_ste(x):
    inside = (x.abs() <= 1).to(x.dtype)  # BNN: the gradient passes where |x| <= 1
    return _sign(x).detach() + (x - x.detach()) * inside  # forward: sign; backward: the mask


def xnor_scale(weight):
    return weight.abs().mean(dim=tuple(range(1, weight.dim())))  # (O,): mean |W| per filter


def xnor_dot(a_words, b_words, n):
    differ = sum(bin((a ^ b) & WORD).count("1") for a, b in zip(a_words.tolist(), b_words.tolist()))
    return n - 2 * differ  # agreements minus disagreements


def _popcount(a_words, b_words, op, mask=WORD):
    return sum(bin(op(a, b) & mask).count("1") for a, b in zip(a_words.tolist(), b_words.tolist()))


def _clamp_ste(x):
    """Hard tanh's gradient by clamp: torch gives 0 at exactly +-1."""
    xc = x.clamp(-1, 1)
    return xc + (_sign(x) - xc).detach()


BINARY_CASES = {  # task -> (the solution, nclib's own, [(wrong answer, words of its verdict)])
    "sign_ste": (sign_ste, binary.sign_ste, [
        (lambda x: torch.sign(x) + (x - x.detach()) * (x.abs() <= 1),
         "expected tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0]), got tensor([-1.0, -1.0, "
         "-1.0, 0.0, 1.0, 1.0, 1.0, 1.0]). Hint: torch.sign(0) is 0"),
        (_sign, "got no gradient (None). Hint: the derivative of sign is 0 everywhere"),
        (lambda x: torch.sign(x) + (x == 0).to(x.dtype), "Hint: the derivative of sign is 0 everywhere"),
        (lambda x: x + (_sign(x) - x).detach(), "straight through everywhere: cancel the gradient"),
        (_clamp_ste, "right except at |x| = 1 exactly"),
        (lambda x: _sign(x).detach() + (x - x.detach()) * (x.abs() < 1), "right except at |x| = 1"),
        (lambda x: sign_ste(x).double(),
         "expected signs of dtype torch.float32, like x, got the right signs as torch.float64"),
    ]),
    "xnor_scale": (xnor_scale, binary.alpha, [
        (lambda w: w.abs().mean(), "got tensor(0.75). Hint: one alpha for the whole tensor"),
        (lambda w: w.abs().mean().expand(len(w)), "Hint: one alpha for the whole tensor"),
        (lambda w: w.flatten(1).abs().amax(1),
         "output channel 0 expected the alpha of least squared error ||W_o - alpha sign(W_o)||^2 = "
         "0.5, at alpha = 1, got alpha = 1.5, squared error 1.25. Hint: that is max |W|"),
        (lambda w: w.flatten(1).mean(1), "Hint: that is the mean of W"),
        (lambda w: w.flatten(1).norm(dim=1), "Hint: that is the L2 norm"),
        (lambda w: w.flatten(1).pow(2).mean(1).sqrt(), "Hint: that is the L2 norm"),
        (lambda w: w.flatten(1).abs().sum(1), "divide it by n"),
        (lambda w: w.abs().mean(0), "that is a mean over dim 0"),
        (lambda w: xnor_scale(w) * 1.0001, "expected tensor([1.0, 0.5]), got tensor([1.0001"),
    ]),
    "xnor_dot": (xnor_dot, bitpack.binary_matmul, [
        (lambda a, b, n: _popcount(a, b, lambda u, v: u ^ v),
         "hand-worked: a_words tensor([6]), b_words tensor([12]), n=5) expected 1, got 2. Hint: "
         "that is popcount(a xor b) itself"),
        (lambda a, b, n: 2 * _popcount(a, b, lambda u, v: ~(u ^ v)) - n,
         "expected 1, got 119. Hint: the xnor of two padding bits"),
        (lambda a, b, n: 2 * _popcount(a, b, lambda u, v: ~(u ^ v)) - 64 * len(a), "padding bits"),
        (lambda a, b, n: n - _popcount(a, b, lambda u, v: u ^ v), "the factor 2 is missing"),
        (lambda a, b, n: n - 2 * _popcount(a, b, lambda u, v: u & v), "{0, 1} dot product"),
        (lambda a, b, n: n - 2 * _popcount(a, b, lambda u, v: u ^ v, mask=-1),  # bin(negative)
         "n=64: a_words tensor([-7841207463952305691]), b_words tensor([2994594310938555366]), "
         "n=64) expected 12, got -14. Hint: a word with bit 63 set is a negative int64"),
        (lambda a, b, n: torch.tensor(xnor_dot(a, b, n)), "expected the int 1, got tensor(1)"),
        (lambda a, b, n: (a.__ixor__(b), 0)[1], "got the words modified in place"),
    ]),
}
BINARY_REFERENCES = {"sign_ste": ref.ref_sign_ste, "xnor_scale": ref.ref_xnor_scale,
                     "xnor_dot": ref.ref_xnor_dot}


@pytest.mark.parametrize("name", list(BINARY_CASES))
def test_binary_reference_and_solution_pass(name, capsys):
    """Tasks 7-9: the chapter's reference and the solution's answer get full points and a PASS."""
    task = getattr(check.quantization, name)
    for answer in (BINARY_REFERENCES[name], BINARY_CASES[name][0]):
        r = task(answer)
        assert (r.status, r.points, r.max_points) == ("passed", 1, 1), r.reason
    assert capsys.readouterr().out.count("[PASS]") == 2


@pytest.mark.parametrize("name, wrong, message",
                         [(n, w, m) for n, (_, _, bad) in BINARY_CASES.items() for w, m in bad])
def test_binary_wrong_versions_fail_naming_the_mistake(name, wrong, message):
    """Each usual mistake of tasks 7-9 fails, naming the input, the expected and received value
    and the hint that names it."""
    r = getattr(check.quantization, name).grade(wrong)
    assert r.status == "failed" and r.points == 0, r.reason
    assert message in r.reason and "for input" in r.reason and "Hint:" in r.reason, r.reason


@pytest.mark.parametrize("name", list(BINARY_CASES))
def test_binary_refuses_nclibs_own_function(name):
    """Handing in nclib's own sign_ste, alpha or binary_matmul fails: write your own."""
    r = getattr(check.quantization, name).grade(BINARY_CASES[name][1])
    assert r.status == "failed" and "nclib's own `nclib.quant." in r.reason, r.reason


@pytest.mark.parametrize("name", list(BINARY_CASES))
def test_binary_stub_and_missing_answer_are_not_attempted(name):
    """The stub, None and ... are 'not attempted' for tasks 7-9."""
    for student in (_stub, None, ...):
        r = getattr(check.quantization, name).grade(student)
        assert r.status == "not_attempted" and r.points == 0, r.reason


def _numpy_xnor_dot(a_words, b_words, n):
    """The words as numpy uint64, numpy 2's popcount."""
    import numpy as np
    differ = np.bitwise_count(a_words.numpy().view(np.uint64) ^ b_words.numpy().view(np.uint64))
    return n - 2 * int(differ.sum())


def _and_form_xnor_dot(a_words, b_words, n):
    """The {0, 1} form, Eq. (2) of nclib.quant.bitpack: n - 2|u| - 2|v| + 4 popcount(u and v)."""
    u, v = _popcount(a_words, a_words, lambda x, _: x), _popcount(b_words, b_words, lambda x, _: x)
    return n - 2 * u - 2 * v + 4 * _popcount(a_words, b_words, lambda x, y: x & y)


class _SignFunction(torch.autograd.Function):
    """sign_ste as an autograd.Function, the mask in float64 arithmetic."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1)


def _sign_where(x):
    """The gradient path kept by torch.where: x where |x| <= 1, a constant elsewhere."""
    inside = torch.where(x.abs() <= 1, x, x.detach())
    return inside + (_sign(x) - inside).detach()


@pytest.mark.parametrize("name, answer", [
    ("sign_ste", _SignFunction.apply), ("sign_ste", _sign_where),
    ("xnor_scale", lambda w: w.abs().mean(dim=tuple(range(1, w.dim())), keepdim=True)),
    ("xnor_scale", lambda w: w.double().flatten(1).abs().sum(1) / w[0].numel()),
    ("xnor_dot", _numpy_xnor_dot), ("xnor_dot", _and_form_xnor_dot),
    ("xnor_dot", lambda a, b, n: __import__("numpy").int64(xnor_dot(a, b, n)))],
    ids=["sign_function", "sign_where", "alpha_keepdim", "alpha_float64", "dot_numpy",
         "dot_and_form", "dot_numpy_int"])
def test_binary_other_correct_answers_pass(name, answer):
    """Other correct ways pass: an autograd.Function, alpha with keepdim or in float64, numpy's
    popcount on uint64, the {0, 1} form of the dot product, a numpy int."""
    r = getattr(check.quantization, name).grade(answer)
    assert r.status == "passed", r.reason


def test_binary_references_agree_with_the_formulas():
    """ref_xnor_dot is the dot product of the unpacked signs; the cases include words with bit 63
    set and every n of the task; ref_xnor_scale minimises ||W - alpha sign(W)||^2 per channel."""
    from nclib.chapters.quantization.checks import binary as checks_binary
    cases = checks_binary._dot_cases()
    assert {n for *_, n in cases} == {1, 5, 8, 63, 64, 65, 100, 200}
    assert any(bool((a < 0).any()) for _, a, _, _ in cases) and any(bool(((a ^ b) < 0).any())
                                                                    for _, a, b, _ in cases)
    for _, a, b, n in cases:
        want = int(bitpack.unpack_signs(a, n) @ bitpack.unpack_signs(b, n))
        assert ref.ref_xnor_dot(a, b, n) == want == xnor_dot(a, b, n)
    for _, w in checks_binary._scale_cases():
        best = ref.ref_xnor_scale(w).flatten().double()
        for scale in (best * 0.99, best * 1.01, best + 1e-3):
            assert bool((checks_binary._errors(w, best) <= checks_binary._errors(w, scale)).all())


def test_binary_points_and_exports():
    """Tasks 7-9 and the new question are 1 point each and exported with their references."""
    names = [*BINARY_CASES, "binary_not_faster"]
    assert {n: getattr(check.quantization, n).points for n in names} == dict.fromkeys(names, 1)
    assert set(names) | {"ref_sign_ste", "ref_xnor_scale", "ref_xnor_dot"} <= set(ref.__all__)


def test_binary_not_faster_accepts_c_only():
    """The question passes 'c' (any case, spaces) and fails 'a' and 'b', explaining and naming
    section 9; its registration holds the hash, not the letter."""
    task = check.quantization.binary_not_faster
    assert task.grade(" C").status == "passed"
    for answer in ("a", "b"):
        r = task.grade(answer)
        assert r.status == "failed" and r.reason.startswith(f"not {answer!r}"), r.reason
        assert "Packed bits that run" in r.reason and "F.linear" in r.reason
    assert task.grade("d").status == "failed" and task.grade(...).status == "not_attempted"
    source = Path(questions.__file__).read_text()
    assert qs.answer_hash("quantization.binary_not_faster", "c") in source


def test_binarize_to_budget_passes_a_measured_choice_and_fails_two_wrong_ones():
    """The reference choice (the best on the validation digits within the budget) passes; fc1
    alone is over the budget and all four layers fall below the accuracy bar, each with its
    measured figures; a layer that does not exist is named."""
    from nclib.chapters.quantization.checks import binary_budget as bb

    choice = bb.ref_binarize_to_budget()
    assert "fc1" in choice
    r = check.quantization.binarize_to_budget(choice)
    assert (r.status, r.points) == ("passed", 2), r.reason
    r = check.quantization.binarize_to_budget({"fc1"})
    assert r.status == "failed" and "over the byte budget" in r.reason and "bytes (budget 1,200,000)" in r.reason
    r = check.quantization.binarize_to_budget(["fc1", "fc2", "fc3", "fc4"])
    assert r.status == "failed" and "below the accuracy bar" in r.reason
    r = check.quantization.binarize_to_budget({"fc5"})
    assert r.status == "failed" and "fc1, fc2, fc3, fc4" in r.reason
