"""A compressed model file: Deep Compression's storage, written to disk and read back.

Han et al., "Deep Compression" (ICLR 2016), store a pruned, weight-shared layer as its
codebook (the shared values) plus, per stored entry, a relative index (Section 2, Fig. 2)
and a cluster label (Section 3), both Huffman-coded (Section 4). `save_compressed` writes
exactly that for every Conv2d and Linear weight, and everything else a model needs:

* a weight-shared layer whose centroid 0 is 0.0 (a pruned one: `nclib.quant.kmeans`): its
  entries (nonzeros and fillers) as gaps and labels; label 0 is the zero a filler stands on.
  Without a zero centroid: one label per weight.
* a pruned layer without sharing: gaps and 32-bit values, when that is smaller than dense.
* every other tensor (biases, BatchNorm statistics, activation-quantization scales): raw.

``coding="huffman"`` Huffman-codes the gap and label streams; ``coding="fixed"`` packs each
gap in `index_bits` and each label in log2(codebook size) bits (the "codebook" storage).

The file, byte by byte (integers little-endian)::

    8   magic b"NCLIBCMP"
    2   format version (1)
    4   H, the length of the header
    H   header: zlib-compressed UTF-8 JSON: the architecture (`nclib.quant.graph`), one
        record per tensor (name, shape, how it is coded, which segments hold it) and the
        byte length of every segment
    ... the segments, one after another: raw little-endian tensors, bit-packed fixed-width
        streams (most significant bit first), Huffman code-length tables (one byte per
        symbol 0..max) and Huffman payloads
    32  SHA-256 of everything before it

The file holds data only, never a pickle: loading reads JSON and numbers, builds layers
from a fixed table of types (`nclib.quant.graph.LAYERS`) and calls only functions from a
fixed table, so a file cannot run code. A truncated or altered file fails the checksum
and raises ValueError; so does a file whose parts disagree (shapes, counts).

`nclib.measure.storage_bytes(model, "codebook" | "huffman")` counts what the file stores
(header and segments) without writing it: the file adds 46 bytes of framing. The header,
mostly the architecture, is a few hundred bytes: 2-3% of a compressed LeNet.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from nclib import measure
from nclib.quant import coding, graph, kmeans, layers
from nclib.quant.segments import Coding, Writer, read_raw, read_stream

__all__ = ["save_compressed", "load_compressed", "compressed_bytes", "layer_table",
           "codebook_from_values", "MAGIC",
           "HAN_INDEX_BITS"]

MAGIC = b"NCLIBCMP"
VERSION = 1
HAN_INDEX_BITS = {"Conv2d": 8, "Linear": 5}  # Han et al.: 8-bit gaps for conv, 5-bit for fc


# ---------------------------------------------------------------- one weight
def _index_bits(kind: str, name: str, index_bits) -> int:
    if index_bits is None:
        return HAN_INDEX_BITS[kind] if kind in HAN_INDEX_BITS else 5
    bits = index_bits.get(name, HAN_INDEX_BITS.get(kind, 5)) if isinstance(index_bits, Mapping) else index_bits
    return measure.storage.check_bits(bits, f"index_bits[{name!r}]" if isinstance(index_bits, Mapping) else "index_bits")


def _encode_weight(w: Writer, layer: nn.Module, name: str, bits: int, how: Coding) -> dict:
    """The record of one Conv2d/Linear weight (see the module docstring)."""
    if kmeans.is_shared(layer):
        centroids, labels = kmeans.codebook(layer)
        width = max(1, math.ceil(math.log2(centroids.numel())))
        rec = {"kind": "shared", "codebook": w.raw(centroids.float()), "num_bits": width}
        # Relative entries only when centroid 0 is an exact zero: then a filler is label 0.
        if float(centroids[0]) == 0.0:
            gaps, entries = coding.encode_relative(labels, bits)
            if gaps.numel() * (bits + width) < labels.numel() * width:
                rec.update(index_bits=bits, gaps=w.stream(gaps.numpy(), bits, how),
                           labels=w.stream(entries.numpy(), width, how))
                return rec
        rec["labels"] = w.stream(labels.flatten().numpy(), width, how)
        return rec
    weight = layer.weight.detach().cpu().float()
    mask = getattr(layer, "weight_mask", None)  # a pruning mask (nclib.pruning): its zeros
    if isinstance(mask, torch.Tensor):
        weight = weight * mask.cpu()
    gaps, values = coding.encode_relative(weight, bits)
    if gaps.numel() * (32 + bits) < weight.numel() * 32:
        return {"kind": "relative", "index_bits": bits, "gaps": w.stream(gaps.numpy(), bits, how),
                "values": w.raw(values.float())}
    return {"kind": "raw", **w.raw(weight)}


def _decode_weight(rec: dict, segs: list[bytes], shape) -> torch.Tensor | tuple:
    numel = math.prod(shape)
    if rec["kind"] == "raw":
        return read_raw(rec, segs, shape)
    if rec["kind"] == "relative":
        gaps = torch.from_numpy(read_stream(rec["gaps"], segs))
        values = read_raw(rec["values"], segs, (gaps.numel(),))
        return _relative_to_dense(gaps, values, shape)
    centroids = read_raw(rec["codebook"], segs, (len(segs[rec["codebook"]["seg"]]) // 4,))
    labels = torch.from_numpy(read_stream(rec["labels"], segs))
    if "gaps" in rec:
        gaps = torch.from_numpy(read_stream(rec["gaps"], segs))
        if gaps.numel() != labels.numel():
            raise ValueError(f"{gaps.numel()} gaps but {labels.numel()} labels")
        labels = _relative_to_dense(gaps, labels, shape)
    if labels.numel() != numel:
        raise ValueError(f"{labels.numel()} labels for a weight of {numel} values")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= centroids.numel()):
        raise ValueError(f"a label outside the codebook of {centroids.numel()} values")
    return centroids, labels.reshape(shape).long()


def _relative_to_dense(gaps: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    end = int((gaps + 1).sum()) if gaps.numel() else 0
    if end > math.prod(shape) or (gaps.numel() and int(gaps.min()) < 0):
        raise ValueError(f"relative indices run to position {end}, past the {math.prod(shape)} "
                         "values of the weight")
    return coding.decode_relative(gaps, values, tuple(shape))


# ---------------------------------------------------------------- a whole model
def _compressible(model: nn.Module):
    """(name, layer, type) of every Conv2d/Linear (also quantized or weight-shared ones)."""
    for name, layer in model.named_modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            yield name, layer, "Conv2d" if isinstance(layer, nn.Conv2d) else "Linear"


def _encode_model(model: nn.Module, index_bits, how: Coding) -> tuple[list[dict], Writer]:
    if how not in ("huffman", "fixed"):
        raise ValueError(f"coding={how!r}: expected 'huffman' or 'fixed'")
    w, records = Writer(), []
    weights = {}
    for name, layer, kind in _compressible(model):
        bits = _index_bits(kind, name, index_bits)
        rec = _encode_weight(w, layer, name, bits, how)
        weights[f"{name}.weight" if name else "weight"] = rec
    for key, t in _plain_state(model).items():
        if key in weights:
            records.append({"name": key, "shape": list(t.shape), **weights.pop(key)})
        else:
            records.append({"name": key, "shape": list(t.shape), "kind": "raw", **w.raw(t)})
    return records, w


def _plain_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict a plain copy of `model` has: a shared weight appears as ``weight``, and a
    pruned layer's mask (``weight_mask``) is left out: its zeros are in the weight."""
    masks = {f"{name}.weight_mask" if name else "weight_mask" for name, layer, _ in _compressible(model)
             if isinstance(getattr(layer, "weight_mask", None), torch.Tensor)}
    state = {}
    for key, t in model.state_dict().items():
        if ".parametrizations." in f".{key}" or key in masks:
            continue
        state[key] = t
    for name, layer, _ in _compressible(model):
        if kmeans.is_shared(layer):
            state[f"{name}.weight" if name else "weight"] = layer.weight.detach()
    return state


def _serialize(model: nn.Module, how: Coding, index_bits) -> bytes:
    """The whole file: framing, header, segments, checksum (see the module docstring)."""
    arch = graph.describe(model)
    records, w = _encode_model(model, index_bits, how)
    header = {"format": "nclib-compressed", "version": VERSION, "architecture": arch,
              "tensors": records, "segments": [len(s) for s in w.segments]}
    head = zlib.compress(json.dumps(header, separators=(",", ":")).encode(), 9)
    body = MAGIC + struct.pack("<HI", VERSION, len(head)) + head + b"".join(w.segments)
    return body + hashlib.sha256(body).digest()


FRAMING = len(MAGIC) + 6 + 32  # magic, version, header length; the checksum


def compressed_bytes(model: nn.Module, coding: Coding = "huffman", index_bits=None) -> int:
    """What `save_compressed` stores, in bytes: the header (architecture and tensor records)
    and every segment; the file adds only `FRAMING` bytes (magic, lengths, checksum)."""
    return len(_serialize(model, coding, index_bits)) - FRAMING


def save_compressed(model: nn.Module, path: str | os.PathLike, *, coding: Coding = "huffman",
                    index_bits: int | Mapping[str, int] | None = None, overwrite: bool = False) -> int:
    """Write `model` to `path` in the compressed format; returns the file's size in bytes.

    Args:
        coding: "huffman" (Deep Compression's last stage) or "fixed" (fixed-width gaps and labels).
        index_bits: relative-index width, one for all layers or {layer name: bits}; None is
            Han et al.'s choice, 8 bits for Conv2d and 5 for Linear.
        overwrite: replace an existing file at `path` (by default it is an error).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"path={str(path)!r}: the file exists; pass overwrite=True to replace it")
    data = _serialize(model, coding, index_bits)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return len(data)


def load_compressed(path: str | os.PathLike) -> nn.Module:
    """The model in the file `path`, in eval mode: its outputs equal the saved model's.

    Weight-shared layers come back weight-shared (labels and centroids). Raises ValueError
    for a file that is not an nclib compressed model, is truncated or altered, or whose
    parts disagree.
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < len(MAGIC) + 6 + 32 or data[: len(MAGIC)] != MAGIC:
        raise ValueError(f"{path}: not an nclib compressed model (it does not start with {MAGIC!r})")
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise ValueError(f"{path}: the file is corrupt (truncated or altered): its SHA-256 "
                         "checksum does not match its contents")
    version, head_len = struct.unpack("<HI", body[len(MAGIC): len(MAGIC) + 6])
    if version != VERSION:
        raise ValueError(f"{path}: format version {version}; this nclib reads version {VERSION}")
    try:
        start = len(MAGIC) + 6
        header = json.loads(zlib.decompress(body[start: start + head_len]))
        segs, at = [], start + head_len
        for n in header["segments"]:
            segs.append(body[at: at + n])
            at += n
        if at != len(body):
            raise ValueError(f"the segments end at byte {at}, the data at {len(body)}")
        model = graph.rebuild(header["architecture"])
        return _load_tensors(model, header["tensors"], segs)
    except (KeyError, TypeError, IndexError, zlib.error, json.JSONDecodeError, ValueError) as e:
        raise ValueError(f"{path}: not a valid nclib compressed model ({type(e).__name__}: {e})") from None


def _load_tensors(model: nn.Module, records: list[dict], segs: list[bytes]) -> nn.Module:
    expected = model.state_dict()
    state, shared = {}, {}
    for rec in records:
        name, shape = rec["name"], tuple(rec["shape"])
        if name not in expected or tuple(expected[name].shape) != shape:
            raise ValueError(f"tensor {name!r} of shape {shape} does not fit the architecture")
        if name.endswith("weight") and rec["kind"] in ("relative", "shared"):
            value = _decode_weight(rec, segs, shape)
        else:
            value = read_raw(rec, segs, shape)
        if isinstance(value, tuple):
            shared[name.rpartition(".")[0]] = value
            value = value[0][value[1]]
        state[name] = value.to(expected[name].dtype)
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ValueError(f"the file lacks {', '.join(missing)}")
    model.load_state_dict(state)
    for layer_name, (centroids, labels) in shared.items():
        kmeans.attach_codebook(model.get_submodule(layer_name), centroids, labels)
    return model.eval()


def codebook_from_values(weight: torch.Tensor, num_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(centroids, labels) of a weight holding at most 2^num_bits distinct values, exactly.

    For a shared weight kept as a plain tensor (`kmeans.unshare`): centroid 0 is 0.0 when
    the weight has zeros (as `kmeans.kmeans_quantize` pins it), the rest its other values
    in order; unused centroids repeat the last value. Raises ValueError if there are more.
    """
    k = 2 ** kmeans.check_num_bits(num_bits)
    values = torch.unique(weight.detach())  # sorted
    has_zero = bool((values == 0).any())
    values = torch.cat([values.new_zeros(1), values[values != 0]]) if has_zero else values
    if values.numel() > k:
        raise ValueError(f"weight: {values.numel()} distinct values do not fit {num_bits} bits "
                         f"({k} centroids)")
    centroids = torch.cat([values, values[-1:].expand(k - values.numel())])
    order = torch.argsort(values)
    labels = order[torch.searchsorted(values[order], weight.detach())]
    return centroids, labels.reshape(weight.shape)


def layer_table(model: nn.Module, index_bits=None) -> list[dict]:
    """Deep Compression's Table 2-5 columns per Conv2d/Linear weight: entries, and bits per
    weight and per index before and after Huffman coding (from the streams themselves)."""
    rows = []
    for name, layer, kind in _compressible(model):
        bits = _index_bits(kind, name, index_bits)
        fixed, huff = Writer(), Writer()
        f, h = (_encode_weight(fixed, layer, name, bits, "fixed"),
                _encode_weight(huff, layer, name, bits, "huffman"))
        numel = layer.weight.numel()
        entries = f["gaps"]["count"] if "gaps" in f else numel
        weight_bits = f.get("num_bits", 32)
        row = {"layer": name, "weights": numel, "entries": entries,
               "kept_pct": 100 * int(torch.count_nonzero(layer.weight.detach())) / numel,
               "weight_bits": weight_bits, "index_bits": bits if "gaps" in f else 0,
               "weight_bits_huffman": (h["labels"]["bit_length"] / entries) if "labels" in h else 32.0,
               "index_bits_huffman": (h["gaps"]["bit_length"] / entries) if "gaps" in h else 0.0,
               "bytes_fixed": sum(map(len, fixed.segments)), "bytes_huffman": sum(map(len, huff.segments))}
        rows.append(row)
    return rows


_CONV = graph.LAYERS["Conv2d"][1]
graph.register_layer("QuantLinear", layers.QuantLinear, graph.LAYERS["Linear"][1] + layers.QUANT_FIELDS)
graph.register_layer("QuantConv2d", layers.QuantConv2d, _CONV + layers.QUANT_FIELDS)
measure.register_format("codebook", lambda m: compressed_bytes(m, "fixed"))
measure.register_format("huffman", lambda m: compressed_bytes(m, "huffman"))
