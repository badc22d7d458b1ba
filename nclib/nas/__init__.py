"""Neural architecture search with reinforcement learning (Zoph and Le, ICLR 2017).

* `space`: small CNNs for digits as a sequence of decisions (`SearchSpace`);
* `child`: training a child by a fixed recipe for its reward, cached (`evaluate_child`);
* `table`: every architecture of the space trained once, shipped with nclib (`load_table`);
* `controller`: the LSTM controller and REINFORCE with a moving-average baseline;
* `search`: random search and the controller's search, on any concurrent.futures executor.
"""
from nclib.nas.space import ChildNet, Decision, SearchSpace
from nclib.nas.child import (ChildEvaluator, ChildRecipe, ChildResult, accuracy_reward,
                             evaluate_child, mnas_reward, paper_reward, train_child)
from nclib.nas.table import Table, load_table, pareto_front, tabulate
from nclib.nas.controller import Controller, reinforce_loss, update_baseline
from nclib.nas.search import SearchHistory, Trial, evaluate_batch, random_search, rl_search

__all__ = ["SearchSpace", "Decision", "ChildNet", "ChildRecipe", "ChildResult", "ChildEvaluator",
           "evaluate_child", "train_child", "accuracy_reward", "paper_reward", "mnas_reward",
           "Table", "load_table", "tabulate", "pareto_front", "Controller", "reinforce_loss",
           "update_baseline", "SearchHistory", "Trial", "evaluate_batch", "random_search",
           "rl_search"]
