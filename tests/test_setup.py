"""nclib.setup: seeding, threads and device choice."""
import random

import numpy as np
import pytest
import torch

import nclib


def test_setup_seeds_everything_reproducibly():
    """Two setups with the same seed give the same random numbers in random, numpy, torch."""
    nclib.setup(seed=7, device="cpu")
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    nclib.setup(seed=7, device="cpu")
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b


def test_setup_reports_choice_and_sets_threads():
    """setup returns what it chose and torch uses that many threads."""
    s = nclib.setup(seed=0, threads=1, device="auto")
    assert s.threads == 1 and torch.get_num_threads() == 1
    assert s.device in ("cpu", "cuda", "mps")
    assert "threads 1" in str(s) and "seed 0" in str(s)


def test_default_threads_leaves_a_core_free(monkeypatch):
    """Without NCLIB_THREADS, the default is cores - 1 (at least 1, at most 8)."""
    monkeypatch.delenv("NCLIB_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(2)), raising=False)
    assert nclib.default_threads() == 1
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert nclib.default_threads() == 8
    monkeypatch.setenv("NCLIB_THREADS", "3")
    assert nclib.default_threads() == 3
    monkeypatch.setenv("NCLIB_THREADS", "zero")
    with pytest.raises(ValueError, match="NCLIB_THREADS"):
        nclib.default_threads()


@pytest.mark.parametrize("kwargs, match", [
    ({"device": "tpu"}, "device='tpu'"),
    ({"threads": 0}, "threads=0"),
    ({"seed": -1}, "seed=-1"),
    ({"seed": 1.5}, "seed=1.5"),
])
def test_setup_rejects_bad_arguments(kwargs, match):
    """Bad arguments raise ValueError naming the argument and its value."""
    with pytest.raises(ValueError, match=match):
        nclib.setup(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_setup_rejects_missing_cuda():
    """Asking for CUDA where there is none says so and offers 'auto' or 'cpu'."""
    with pytest.raises(ValueError, match="CUDA is not available"):
        nclib.setup(device="cuda")
