"""nclib.nas.search on a Dask cluster: the same history as in-process, children really trained."""
import time

import pytest

from nclib.nas import ChildEvaluator, ChildRecipe, SearchSpace, random_search, rl_search

distributed = pytest.importorskip("distributed", reason="the `cluster` extra: pip install -e .[cluster]")

TINY = ChildRecipe(n_train=100, epochs=1, batch_size=20)  # a fraction of a second a child


def test_a_local_dask_cluster_gives_the_serial_history(tmp_path, monkeypatch):
    """Two worker processes train the children; each search's history equals the serial one."""
    monkeypatch.setenv("NCLIB_CACHE", str(tmp_path))
    space = SearchSpace()
    evaluate = ChildEvaluator(space, TINY, cache=False)  # trained, never looked up
    t0 = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        executor = client.get_executor()
        on_dask = {search: search(space, 8, seed=3, executor=executor, evaluate=evaluate,
                                  batch_size=4) for search in (random_search, rl_search)}
    assert time.perf_counter() - t0 < 60
    for search, history in on_dask.items():
        _same(history, search(space, 8, seed=3, evaluate=evaluate, batch_size=4))


def _same(on_dask, serial) -> None:
    assert [t.tokens for t in on_dask.trials] == [t.tokens for t in serial.trials]
    assert [(t.val_acc, t.test_acc, t.reward) for t in on_dask.trials] == [
        (t.val_acc, t.test_acc, t.reward) for t in serial.trials]
    assert all(t.seconds > 0 for t in on_dask.trials)  # trained there, not read from a table
