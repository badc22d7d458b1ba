"""nclib.quant.compressed: the file rebuilds the same model, its size is what measure counts,
and a damaged or foreign file is refused."""
import hashlib
import pickle
import struct
import zlib

import numpy as np
import pytest
import torch
from torch import nn

from nclib import measure, models
from nclib.quant import coding, compressed, kmeans, quantized


def _pruned(model, density=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.mul_(torch.rand(m.weight.shape, generator=g) < density)
    return model


def _x(n=6, shape=(1, 28, 28)):
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(1))


def _shared_lenet300(bits=4):
    model = _pruned(models.LeNet300100())
    return kmeans.share_weights(model, bits).eval()


@pytest.mark.parametrize("how", ["huffman", "fixed"])
@pytest.mark.parametrize("make", [
    _shared_lenet300,
    lambda: kmeans.share_weights(_pruned(models.LeNet5(), 0.2), {"conv1": 6, "conv2": 5, "fc1": 3, "fc2": 4}),
    lambda: kmeans.share_weights(models.SmallVGG(), 4),  # dense: one label per weight, BN buffers
    lambda: _pruned(models.LeNet5(), 0.05),  # pruned, not shared: fp32 values, relative indices
    lambda: models.MobileNetV1(num_classes=10, width_mult=0.25, resolution=32),  # grouped convs
])
def test_load_gives_identical_outputs(make, how, tmp_path):
    """load_compressed(save_compressed(m)) computes exactly what m computes, in eval mode."""
    torch.manual_seed(0)
    model = make().eval()
    x = _x(shape=getattr(model, "input_shape", (1, 28, 28)))
    compressed.save_compressed(model, tmp_path / "m.nclib", coding=how)
    loaded = compressed.load_compressed(tmp_path / "m.nclib")
    assert torch.equal(model(x), loaded(x))
    assert set(kmeans.shared_layers(loaded)) == set(kmeans.shared_layers(model))
    for name, layer in kmeans.shared_layers(model).items():
        for a, b in zip(kmeans.codebook(layer), kmeans.codebook(loaded.get_submodule(name))):
            assert torch.equal(a, b)


def test_quantized_layers_and_their_scales_survive(tmp_path, tiny_loaders):
    """A PTQ model (QuantConv2d / QuantLinear with activation scales) loads with identical outputs."""
    q = quantized.quantize_model(models.LeNet5(), tiny_loaders.train, num_bits=4, num_batches=2)
    compressed.save_compressed(q, tmp_path / "q.nclib")
    loaded = compressed.load_compressed(tmp_path / "q.nclib")
    x = _x()
    assert torch.equal(q(x), loaded(x))
    assert type(loaded.conv1).__name__ == "QuantConv2d"
    assert torch.equal(loaded.conv1.input_quantizer.scale, q.conv1.input_quantizer.scale)


def test_file_size_is_what_measure_counts(tmp_path):
    """File bytes = compressed_bytes + FRAMING, and storage_bytes('huffman') is within 2% of it."""
    model = _shared_lenet300()
    size = compressed.save_compressed(model, tmp_path / "m.nclib")
    assert size == (tmp_path / "m.nclib").stat().st_size
    assert size == compressed.compressed_bytes(model) + compressed.FRAMING
    assert abs(measure.storage_bytes(model, "huffman") / size - 1) < 0.02
    fixed = compressed.save_compressed(model, tmp_path / "f.nclib", coding="fixed")
    assert abs(measure.storage_bytes(model, "codebook") / fixed - 1) < 0.02
    assert size < fixed < measure.storage_bytes(models.LeNet300100(), "dense_fp32") / 10


def test_huffman_streams_cost_what_their_code_lengths_say():
    """Each layer's Huffman label bits = sum over symbols of count x code length (counted apart)."""
    model = _shared_lenet300()
    for row in compressed.layer_table(model):
        layer = model.get_submodule(row["layer"])
        _, labels = kmeans.codebook(layer)
        gaps, entries = coding.encode_relative(labels, row["index_bits"])
        counts = dict(zip(*np.unique(entries.numpy(), return_counts=True)))
        lengths = coding.code_lengths(counts)
        bits = sum(int(c) * lengths[s] for s, c in counts.items())
        assert row["entries"] == gaps.numel()
        assert row["weight_bits_huffman"] == pytest.approx(bits / row["entries"])
        assert row["weight_bits"] == 4 and row["index_bits"] == 5
        assert row["kept_pct"] == pytest.approx(100 * float((layer.weight != 0).float().mean()))


def test_index_bits_per_layer(tmp_path):
    """index_bits may differ per layer; a bad width names the argument."""
    model = _shared_lenet300()
    rows = compressed.layer_table(model, index_bits={"fc1": 4, "fc2": 6})
    assert [r["index_bits"] for r in rows] == [4, 6, 5]
    compressed.save_compressed(model, tmp_path / "m.nclib", index_bits={"fc1": 4})
    assert torch.equal(compressed.load_compressed(tmp_path / "m.nclib")(_x()), model(_x()))
    with pytest.raises(ValueError, match="index_bits=0"):
        compressed.save_compressed(model, tmp_path / "n.nclib", index_bits=0)
    with pytest.raises(ValueError, match="coding='zip'"):
        compressed.save_compressed(model, tmp_path / "n.nclib", coding="zip")


def _saved(tmp_path):
    path = tmp_path / "m.nclib"
    compressed.save_compressed(_shared_lenet300(), path)
    return path, path.read_bytes()


@pytest.mark.parametrize("keep", [0, 10, 100, 1000, -33, -1])
def test_truncated_file_is_refused(tmp_path, keep):
    """A file cut short anywhere: ValueError saying it is not nclib or corrupt, never a model."""
    path, data = _saved(tmp_path)
    path.write_bytes(data[:keep])
    with pytest.raises(ValueError, match="corrupt|not an nclib"):
        compressed.load_compressed(path)


@pytest.mark.parametrize("where", [9, 15, 200, 2000, -40, -1])
def test_flipped_byte_is_refused(tmp_path, where):
    """One altered byte (header, segments or checksum): ValueError, never a wrong model."""
    path, data = _saved(tmp_path)
    broken = bytearray(data)
    broken[where] ^= 0x10
    path.write_bytes(bytes(broken))
    with pytest.raises(ValueError, match="corrupt|not an nclib|version"):
        compressed.load_compressed(path)


def _rewrite(path, data, change):
    """A file with its header changed by `change` and a checksum that matches again."""
    head_len = struct.unpack("<I", data[10:14])[0]
    import json
    header = json.loads(zlib.decompress(data[14:14 + head_len]))
    change(header)
    head = zlib.compress(json.dumps(header).encode())
    body = data[:8] + struct.pack("<HI", 1, len(head)) + head + data[14 + head_len:-32]
    path.write_bytes(body + hashlib.sha256(body).digest())


def test_consistent_checksum_but_wrong_contents_are_refused(tmp_path):
    """A crafted file whose checksum matches: unknown layer types and wrong shapes still fail."""
    path, data = _saved(tmp_path)
    _rewrite(path, data, lambda h: h["architecture"]["layers"]["fc1"].update(type="subprocess.Popen"))
    with pytest.raises(ValueError, match="layer type 'subprocess.Popen' is not one"):
        compressed.load_compressed(path)
    _rewrite(path, data, lambda h: h["tensors"][0].update(shape=[10, 10]))
    with pytest.raises(ValueError, match="does not fit the architecture"):
        compressed.load_compressed(path)
    _rewrite(path, data, lambda h: h["tensors"].pop())
    with pytest.raises(ValueError, match="lacks"):
        compressed.load_compressed(path)


class _Evil:
    def __reduce__(self):
        return (open, ("/tmp/nclib_pwned", "w"))


def test_foreign_files_are_refused_without_running_them(tmp_path):
    """A pickle (even one that would run code) and a torch.save file are refused, unread."""
    pwned = tmp_path / "pickle.nclib"
    pwned.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ValueError, match="not an nclib compressed model"):
        compressed.load_compressed(pwned)
    import os
    assert not os.path.exists("/tmp/nclib_pwned")
    torch.save(models.LeNet5().state_dict(), tmp_path / "sd.nclib")
    with pytest.raises(ValueError, match="not an nclib compressed model"):
        compressed.load_compressed(tmp_path / "sd.nclib")


def test_existing_file_is_kept_unless_overwrite(tmp_path):
    """save_compressed refuses to replace a file unless told to, and the file stays as it was."""
    path = tmp_path / "mine.nclib"
    path.write_bytes(b"my work")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        compressed.save_compressed(models.LeNet300100(), path)
    assert path.read_bytes() == b"my work"
    compressed.save_compressed(models.LeNet300100(), path, overwrite=True)
    assert compressed.load_compressed(path).fc1.weight.shape == (300, 784)


def test_pruned_model_with_masks_saves_as_its_baked_form(tmp_path):
    """A model that still carries pruning masks is saved as if baked: the file loads, computes
    what the masked model computes and has the baked model's bytes (the mask is its zeros)."""
    from nclib.pruning import magnitude

    torch.manual_seed(0)
    model = models.LeNet((8, 16), 32).eval()
    magnitude.prune_model(model, {"conv2": 0.6, "fc1": 0.8})
    with torch.no_grad():  # a removed weight made nonzero again is still saved as a zero
        model.fc1.weight[~model.fc1.weight_mask] = 1.0
    n = compressed.save_compressed(model, tmp_path / "masked.nclib")
    loaded = compressed.load_compressed(tmp_path / "masked.nclib")
    x = _x()
    assert torch.equal(model(x), loaded(x))  # the forward pre-hook re-zeroed fc1 first
    assert not any(k.endswith("weight_mask") for k in loaded.state_dict())
    assert n == compressed.save_compressed(magnitude.bake(model), tmp_path / "baked.nclib")


def test_unsupported_model_names_the_layer(tmp_path):
    """A model with a layer the format does not hold: ValueError naming it, and no file written."""
    model = nn.Sequential(nn.Linear(4, 4), nn.GELU())
    with pytest.raises(ValueError, match="'1' is a GELU"):
        compressed.save_compressed(model, tmp_path / "g.nclib")
    assert not (tmp_path / "g.nclib").exists()


def test_codebook_from_values_is_exact():
    """A shared weight kept as a plain tensor gives back a codebook with the same reconstruction."""
    w = torch.randn(40, 50)
    w[w.abs() < 1] = 0
    centroids, labels = kmeans.kmeans_quantize(w, 3)
    plain = kmeans.shared_weight(centroids, labels)
    c, lab = compressed.codebook_from_values(plain, 3)
    assert c.numel() == 8 and float(c[0]) == 0.0 and torch.equal(c[lab], plain)
    with pytest.raises(ValueError, match="do not fit 2 bits"):
        compressed.codebook_from_values(plain, 2)
