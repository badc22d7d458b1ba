"""nclib reproduce: the registry, the JSON schema, claims that can fail, and runs on MNIST files."""
import json
import shutil
import struct

import numpy as np
import pytest
import torch

from nclib import cli, data, train, zoo
from nclib.chapters.distillation.experiments import hinton
from nclib.course import papers, reproduce


def test_list_names_overview_sizes(capsys):
    """--list names every experiment, overview-sizes among them."""
    assert cli.main(["reproduce", "--list"]) == 0
    assert "overview-sizes" in capsys.readouterr().out


def test_overview_sizes_json_schema_and_claims(capsys):
    """--json prints one object of the documented shape; the lecture's size claims hold."""
    assert cli.main(["reproduce", "overview-sizes", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"experiment", "dataset", "scale", "seconds", "rows", "claims"}
    assert set(out["rows"][0]) == {"label", "paper", "ours", "unit"}
    assert set(out["claims"][0]) == {"text", "value", "target", "holds"}
    assert len(out["claims"]) >= 6 and all(c["holds"] for c in out["claims"])
    vgg = next(r for r in out["rows"] if r["label"] == "VGG-16 params")
    assert vgg["paper"] == 138e6 and abs(vgg["ours"] / 138e6 - 1) < 0.02


def test_failing_claim_is_reported_not_hidden(monkeypatch, capsys):
    """A claim that does not hold is printed as such, and the exit code is still 0."""
    monkeypatch.setattr(reproduce, "EXPERIMENTS", dict(reproduce.EXPERIMENTS))
    monkeypatch.setattr(reproduce, "_load_all", lambda: None)

    @reproduce.experiment("toy", dataset="none", scale="tiny", summary="test")
    def toy(run):
        run.row("x", paper=1.0, ours=2.0, unit="%")
        run.claim_close("x matches", 2.0, 1.0, 0.1)

    assert cli.main(["reproduce", "toy"]) == 0
    out = capsys.readouterr().out
    assert "[DOES NOT HOLD] x matches (off by 100.00%, allowed 10%)" in out
    assert "data set none; scale tiny" in out


def test_unknown_experiment(capsys):
    """An unknown name exits 2 and points to --list."""
    assert cli.main(["reproduce", "nope"]) == 2
    assert "--list" in capsys.readouterr().err


def test_paper_tables_have_sources_and_lookup():
    """Every paper table names its source; rows are found by label, unknown labels listed."""
    assert all(t.source and t.rows for t in papers.TABLES.values())
    assert papers.table("han2015").row("LeNet-5 Pruned")["compression"] == 12
    assert papers.table("mobilenet").row("MobileNet")["million_mult_adds"] == 569
    with pytest.raises(KeyError, match="LeNet-5 Ref"):
        papers.table("han2015").row("LeNet-7")
    with pytest.raises(ValueError, match="name='imagenet'"):
        papers.table("imagenet")


# ---------------------------------------------------------------- --dataset mnist --root DIR
def _write_idx(path, array):
    """An uncompressed IDX file of unsigned bytes (the MNIST format), as tests/test_data.py."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    """torchvision's MNIST layout with 300 training and 100 test digits taken from the bundled ones."""
    X, y = data.load_mnist()
    images, labels = (X[:, 0] * 255).round().numpy(), y.numpy()
    order = np.random.default_rng(0).permutation(len(labels))
    root = tmp_path_factory.mktemp("mnist")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, idx in (("train", order[:300]), ("t10k", order[300:400])):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images[idx])
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels[idx])
    return root


def _mnist_json(capsys, root, name, *extra):
    assert cli.main(["reproduce", name, "--dataset", "mnist", "--root", str(root), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def _no_zoo(monkeypatch):
    """Make any use of a zoo model fail: a run on the files must train its own dense model."""
    def refuse(name, *args, **kwargs):
        raise AssertionError(f"zoo.trained({name!r}) was called on a --dataset mnist run")
    monkeypatch.setattr(zoo, "trained", refuse)


def _dataset_line(root):
    return (f"full MNIST, torchvision's IDX files in {root / 'MNIST' / 'raw'}: 275 train / 25 val "
            "(the last 25 of the training file) / 100 test")


def test_sources_split_bundled_as_before_and_files_into_train_val_test(mnist_root):
    """The bundled source is data.split of the 5,000 digits; the files give the training file less its
    last twelfth (validation) and the test file."""
    bundled = reproduce.Source().splits()
    before = data.split(*data.load_mnist())
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(bundled, before))
    parts = reproduce.Source("mnist", mnist_root).splits()
    X, y = data.load_torchvision("mnist", mnist_root, train=True)
    assert [len(p[1]) for p in parts] == [275, 25, 100]
    assert torch.equal(parts.train[0], X[:275]) and torch.equal(parts.val[1], y[275:])
    assert torch.equal(parts.test[1], data.load_torchvision("mnist", mnist_root, train=False)[1])


def test_train_on_repeats_the_recipe_on_given_digits(monkeypatch):
    """zoo.train_on with the bundled split gives train_model's weights (one epoch, to be quick); it refuses
    a recipe that train_model does not train."""
    monkeypatch.setattr(zoo, "RECIPES", dict(zoo.RECIPES))
    settings = dict(zoo.RECIPES["lenet300"].settings, epochs=1)
    zoo.register("lenet300-1epoch", train=zoo.train_model, build=zoo.build_model, settings=settings)
    ours = zoo.train_on("lenet300-1epoch", data.split(*data.load_mnist()))
    theirs, _ = zoo.train_model(**settings, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))
    assert not ours.training
    zoo.register("toy", train=lambda progress=True: torch.nn.Linear(1, 1),
                 build=lambda: torch.nn.Linear(1, 1), settings={})
    with pytest.raises(ValueError, match="name='toy'.*lenet300"):
        zoo.train_on("toy", data.split(*data.load_mnist()))


def test_han_on_mnist_files_trains_its_own_dense_model(mnist_root, monkeypatch, capsys):
    """han2015-lenet300 on the files states them and their counts, never loads a zoo model, fills every
    row and both claims, and its dense model is not the bundled one."""
    bundled_error = 100 - 100 * train.evaluate(zoo.trained("lenet300", progress=False),
                                               data.loaders("mnist").test)
    _no_zoo(monkeypatch)
    out = _mnist_json(capsys, mnist_root, "han2015-lenet300")
    assert out["dataset"] == _dataset_line(mnist_root)
    assert out["scale"].startswith("dense model trained on these digits as the zoo's (LeNet-300-100")
    rows = {r["label"]: r for r in out["rows"]}
    assert sum(label.endswith("val / test accuracy") for label in rows) == 10
    assert "chosen compression, per seed" in rows and rows["dense params"]["ours"] == 266_610
    assert rows["dense test error"]["ours"] != pytest.approx(bundled_error, abs=0.01)
    assert [c["text"].split(" (")[0] for c in out["claims"]] == [
        "every seed's chosen compression is at least 12x, as Han et al.'s",
        "the chosen models' mean test accuracy is within 0.5 points of dense"]


def test_lowrank_on_mnist_files_fills_every_rank(mnist_root, monkeypatch, capsys):
    """lowrank-lenet300 on the files: the data set line, every rank's rows and the claim, from a dense
    LeNet-300-100 trained on the files (its accuracy is not the bundled model's)."""
    bundled = 100 * train.evaluate(zoo.trained("lenet300", progress=False), data.loaders("mnist").test)
    _no_zoo(monkeypatch)
    out = _mnist_json(capsys, mnist_root, "lowrank-lenet300")
    assert out["dataset"] == _dataset_line(mnist_root)
    assert "trained on these digits as the zoo's" in out["scale"]
    rows = {r["label"]: r["ours"] for r in out["rows"]}
    for K in (108, 43, 21, 10, 4):
        assert f"rank {K}: accuracy, fine-tuned" in rows
    assert rows["dense test accuracy"] != pytest.approx(bundled, abs=0.01)
    assert len(out["claims"]) == 1 and "rank 21" in out["claims"][0]["text"]


def test_hinton_on_mnist_files_trains_on_every_training_digit(mnist_root, monkeypatch, capsys):
    """hinton2015 on the files uses the whole training file, as Hinton et al. did, and says so; rows and
    claims are all there (at a tiny scale: the registered run's Scale replaced)."""
    tiny = hinton.Scale(n_train=200, seeds=(0, 1), teacher_epochs=1, student_epochs=1, temperatures=(1, 4))
    monkeypatch.setattr(hinton, "FULL", tiny)
    out = _mnist_json(capsys, mnist_root, "hinton2015")
    assert out["dataset"] == _dataset_line(mnist_root)
    assert out["scale"].startswith("every training digit (as Hinton et al.); teacher SmallVGG 1 epochs")
    labels = [r["label"] for r in out["rows"]]
    assert "student 784-30-30-10, labels only" in labels and "temperature sweep: kd_loss T=4" in labels
    assert len(out["claims"]) == 3


def test_capstone_order_on_mnist_files_trains_its_own_teacher(mnist_root, monkeypatch, capsys):
    """capstone-order on the files: no zoo model (the SmallVGG teacher is trained on the files),
    a row per order, the difference and the claim (tiny scale: one seed, one epoch a phase)."""
    from nclib.chapters.capstone.experiments import order

    monkeypatch.setattr(order, "FULL", order.Scale(seeds=(0,), phase1_epochs=1, phase2_epochs=1))
    _no_zoo(monkeypatch)
    out = _mnist_json(capsys, mnist_root, "capstone-order")
    assert out["dataset"] == _dataset_line(mnist_root)
    labels = [r["label"] for r in out["rows"]]
    assert [label.split(":")[0] for label in labels if ": test accuracy" in label] == list(order.ORDERS)
    assert any(label.startswith("distil-prune minus prune-distil") for label in labels)
    assert len(out["claims"]) == 1


def test_missing_mnist_file_gives_load_torchvisions_error(mnist_root, tmp_path, capsys):
    """A missing file stops the run before it trains, with load_torchvision's message naming the file and
    the folder, and a non-zero exit."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES[:3]:  # no t10k-labels-idx1-ubyte
        shutil.copy(mnist_root / "MNIST" / "raw" / name, raw / name)
    assert cli.main(["reproduce", "lowrank-lenet300", "--dataset", "mnist", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"load_torchvision(name='mnist'): missing t10k-labels-idx1-ubyte in {raw}" in err


@pytest.mark.parametrize("argv, match", [
    (["thinet", "--dataset", "mnist", "--root", "."],
     "--dataset mnist: thinet runs on bundled only; the experiments that accept --dataset mnist: "
     "capstone-order, ensemble, han2015-lenet300, han2015-lenet5, hinton2015, lowrank-lenet300"),
    (["lowrank-lenet300", "--dataset", "mnist"], "--dataset mnist needs --root DIR"),
    (["lowrank-lenet300", "--root", "."], "--root .: only --dataset mnist reads files"),
    (["lowrank-lenet300", "--device", "cuda"], "device='cuda': CUDA is not available"),
])
def test_bad_dataset_root_or_device_is_refused(argv, match, monkeypatch, capsys):
    """An experiment that does not take --dataset mnist, a missing or stray --root, and --device cuda
    without CUDA each exit 2 with one line saying why."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main(["reproduce", *argv]) == 2
    assert match in capsys.readouterr().err


def test_experiments_declare_the_data_sets_they_accept():
    """The MNIST experiments accept the files; the others only the bundled digits; a bad name is refused."""
    reproduce._load_all()
    accept = {name for name, e in reproduce.EXPERIMENTS.items() if "mnist" in e.datasets}
    assert accept == {"han2015-lenet300", "han2015-lenet5", "hinton2015", "ensemble", "lowrank-lenet300",
                      "capstone-order"}
    with pytest.raises(ValueError, match="datasets=\\('imagenet',\\)"):
        reproduce.experiment("toy", dataset="none", scale="tiny", summary="test", datasets=("imagenet",))


def test_statistics_over_seeds():
    """mean_se gives the mean and stdev / sqrt(n); se_of_difference adds the two variances of the means."""
    mean, se = reproduce.mean_se([1.0, 2.0, 3.0])
    assert mean == 2.0 and se == pytest.approx(1 / 3 ** 0.5)
    assert reproduce.mean_se([5.0]) == (5.0, 0.0)
    assert reproduce.se_of_difference([1.0, 3.0], [0.0, 0.0, 3.0]) == pytest.approx((2 / 2 + 3 / 3) ** 0.5)
    assert reproduce.se_of_difference([1.0], [2.0, 3.0]) == float("inf")
