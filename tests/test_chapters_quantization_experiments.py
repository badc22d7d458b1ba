"""Chapter 03's experiments: the bits search follows its rule, the claims follow the numbers,
and the zoo recipes are registered (the full runs are `nclib reproduce deep-compression-*`
and `linear-quant`)."""
import pytest
import torch

from nclib import zoo
from nclib.chapters.quantization import experiments as ex
from nclib.course.papers import table
from nclib.course.reproduce import EXPERIMENTS, Run
from nclib.quant import compressed, kmeans

SMALL_WIDTHS = {"Linear": (5, 2, 1)}


@pytest.fixture(scope="module")
def deep300():
    run = Run("deep-compression-lenet300", "MNIST", "small")
    out = ex.run_deep_compression(run, "lenet300", seeds=(0,),
                                  compress=lambda n, s: ex.deep_compress(n, s, widths=SMALL_WIDTHS))
    return run, out


def test_bits_search_stops_at_the_first_width_that_costs_too_much():
    """Widths are lowered while val stays within max_drop of the pruned model; the first miss ends it."""
    model, info = ex.deep_compress("lenet300", 0, widths=SMALL_WIDTHS)
    trials = info["trials"]
    assert [t["bits"]["Linear"] for t in trials][0] == 5
    for t in trials[1:]:
        assert t["kept"] == (t["val"] >= info["pruned_val"] - ex.MAX_VAL_DROP - 1e-9)
    assert all(t["kept"] for t in trials[1:-1])
    kept = [t["bits"]["Linear"] for t in trials if t["kept"]]
    assert info["bits"]["Linear"] == kept[-1]
    assert trials[-1]["kept"] or trials[-1]["bits"]["Linear"] < info["bits"]["Linear"]
    widths = {kmeans.codebook(m)[0].numel() for m in kmeans.shared_layers(model).values()}
    assert widths == {2 ** info["bits"]["Linear"]}


def test_deep_compression_rows_come_from_files_and_claims_follow_them(deep300):
    """Stages shrink file by file; the compression claim is dense bytes / the Huffman file's bytes."""
    run, out = deep300
    sizes = out[0]["sizes"]
    stages = list(sizes.values())
    assert stages == sorted(stages, reverse=True) and len(stages) == 4
    dense_bytes = next(r.ours for r in run.rows if r.label == "dense fp32 bytes")
    rate = dense_bytes / sizes["+ Huffman coding"]
    rate_claim, acc_claim = run.claims
    assert rate_claim.value == pytest.approx(rate, abs=0.05) and rate_claim.holds == (rate >= 40)
    dense_test = 100 - next(r.ours for r in run.rows if r.label == "dense test error")
    drop = out[0]["test"] - dense_test
    assert acc_claim.value == pytest.approx(drop, abs=0.01) and acc_claim.holds == (drop >= -0.5)
    assert abs(out[0]["measured"] / sizes["+ Huffman coding"] - 1) < 0.02


def test_zoo_compressed_models_rebuild_their_codebooks(tmp_path):
    """The zoo keeps a compressed model as plain weights; compressed_model shares them again exactly."""
    model, info = ex.compressed_model("lenet300", 0)
    plain = zoo.trained("dc-lenet300-s0", progress=False)
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(model(x), plain(x))
    for name, layer in kmeans.shared_layers(model).items():
        assert kmeans.codebook(layer)[0].numel() == 2 ** info["bits"]["Linear"]
    compressed.save_compressed(model, tmp_path / "m.nclib")
    assert torch.equal(compressed.load_compressed(tmp_path / "m.nclib")(x), model(x))


def test_linear_quant_claims_follow_the_numbers():
    """8-bit PTQ's claim compares the worse of per tensor / per channel with fp32; QAT's compares
    what it won back with half of what 4-bit PTQ lost."""
    run = Run("linear-quant", "MNIST", "small")
    out = ex.run_linear(run, networks=("lenet5",), ptq_bits=(8, 4), qat_epochs=1)["lenet5"]
    ptq8, qat4 = run.claims
    worst8 = min(out["ptq"][8, False], out["ptq"][8, True])
    assert ptq8.holds == (worst8 >= out["fp32"] - 0.5)
    lost, won = out["fp32"] - out["ptq"][4, False], out["qat"] - out["ptq"][4, False]
    assert qat4.value == pytest.approx(won, abs=0.01) and qat4.holds == (won >= 0.5 * lost - 1e-9)
    int8 = next(r.ours for r in run.rows if r.label == "LeNet-5: PTQ 8-bit per tensor, int8 state bytes")
    fp32 = next(r.ours for r in run.rows if r.label == "LeNet-5: fp32 state_dict bytes")
    assert 0.24 < int8 / fp32 < 0.30  # int8 weights: a quarter, plus scales


def test_experiments_and_recipes_are_registered():
    """The three experiments are registered, the zoo lists every seed's compressed model, and the
    compression targets are the paper's."""
    assert {"deep-compression-lenet300", "deep-compression-lenet5", "linear-quant"} <= set(EXPERIMENTS)
    for name in ("lenet300", "lenet5"):
        for seed in ex.SEEDS:
            assert f"dc-{name}-s{seed}" in zoo.RECIPES
    assert {ex.qat_name("lenet5"), ex.qat_name("vgg_small")} <= set(zoo.RECIPES)
    paper = table("deep-compression")
    assert ex.MIN_RATE == {"lenet300": paper.row("LeNet-300-100 Compressed")["compression"],
                           "lenet5": paper.row("LeNet-5 Compressed")["compression"]}


def test_binary_mnist_rows_and_claims_follow_the_models():
    """With tiny stand-in models the rows are their errors and bytes, and each claim compares
    with the fp32 model's accuracy by its stated margin."""
    from nclib.quant import binary

    torch.manual_seed(0)
    small = {k: ex.binary_mlp(k, hidden=(16,)).eval() for k in ("fp32", "bc-det", "bnn")}
    run = Run("binary-mnist", "MNIST", "small")
    out = ex.run_binary_mnist(run, kinds=tuple(small), get=small.__getitem__)
    assert [c.holds for c in run.claims] == [
        out["fp32"]["acc"] - out["bc-det"]["acc"] <= 2, out["fp32"]["acc"] - out["bnn"]["acc"] <= 5]
    assert out["bnn"]["bytes"] == binary.binary_bytes(small["bnn"]) < out["fp32"]["bytes"]
    assert out["bnn"]["packed_agree"] == 100.0  # to_packed predicts as the float model
    errors = {r.label: r for r in run.rows if r.label.endswith("test error")}
    assert errors["BNN (binary weights and activations): test error"].paper == 0.96
    assert set(ex.KINDS) == {"fp32", "bc-det", "bc-stoch", "bnn", "xnor"}
    assert all(ex.mlp_name(k) in zoo.RECIPES for k in ex.KINDS)


def test_binary_mlp_kinds_have_the_layers_their_papers_describe():
    """BinaryConnect: binary weights, ReLU; BNN: binary inputs except the first layer; XNOR: fp32
    first and last layers, scaled binary hidden layers; stochastic latent weights in [-1, 1]."""
    from nclib.quant import binary

    def layers(kind):
        return [m for n, m in ex.binary_mlp(kind, hidden=(8, 8)).named_children() if n.startswith("fc")]

    assert all(isinstance(m, binary.BinarizedLinear) and not m.activations for m in layers("bc-det"))
    assert [m.activations for m in layers("bnn")] == [False, True, True]
    x = layers("xnor")
    assert type(x[0]) is torch.nn.Linear and type(x[-1]) is torch.nn.Linear and x[1].scale and x[1].input_scale
    assert all(m.weights == "stochastic" and m.weight.abs().max() > 0.5 for m in layers("bc-stoch"))
    with pytest.raises(ValueError, match="kind='bnm'"):
        ex.binary_mlp("bnm")


def test_xnor_speed_claims_follow_the_sweep_and_the_op_count_is_the_papers():
    """On small sizes the sweep makes one row per size and batch; bit-exactness holds; S(256, 9) = 62.27."""
    run = Run("xnor-speed", "random", "small")
    out = ex.run_xnor_speed(run, sizes=(64, 128), batches=(1, 2), conv=False)
    assert out["exact"] is True and len(out["sweep"]) == 4
    assert ex.op_speedup(256, 9) == pytest.approx(62.27, abs=0.01)
    assert 20 < out["storage_ratio"] <= 32  # alpha and bias weigh more at n = 128
    assert run.claims[0].holds == (out["sweep"][0]["speedup"] >= 4.0)  # n = 128, batch 1


def test_apprentice_claim_is_the_mean_gain_of_distillation():
    """A one-epoch run: the claim's value is mean(kd) - mean(labels) over the seeds."""
    import statistics

    run = Run("apprentice", "MNIST", "small")
    accs = ex.run_apprentice(run, seeds=(0,), epochs=1)
    gain = statistics.fmean(accs["kd"]) - statistics.fmean(accs["labels"])
    (claim,) = run.claims
    assert claim.value == pytest.approx(gain, abs=0.01) and claim.holds == (gain >= 0.5)
    assert ex.ternary_student(0).conv1.weights == "ternary"
