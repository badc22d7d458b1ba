"""Chapter 06 experiment `blockdrop`: a ResNet of 9 BasicBlocks on the bundled digits with a
BlockDrop policy network (Wu et al., CVPR 2018), beside the paper's ResNet-110 on CIFAR-10.

The ResNet (`RESNET`) is trained first, with stochastic depth (blocks dropped at random, so
that it works with blocks missing); the policy network then learns by the curriculum
and joint fine-tuning of `nclib.dynamic.blockdrop_train` (`POLICY`). Its reward's trade-off
gamma (what a wrong prediction costs) is varied in `GAMMAS`: the lecture's accuracy
against compute. Each trained pair is a zoo entry (`policy_name(gamma)`).

Latency: one thread, the ResNet's BatchNorms folded into its convolutions for both the full
network and BlockDrop (`fold_for_inference`), BlockDrop's time including its policy network;
batch 1 (each image its own policy) and batch 64 (images grouped by policy).
"""
from __future__ import annotations

import time

import torch
from torch import nn

from nclib import data, measure, models, train, zoo
from nclib.course.papers import table
from nclib.course.reproduce import Run, experiment
from nclib.dynamic import blockdrop
from nclib.dynamic.blockdrop_train import assess, train_blockdrop
from nclib.pruning.surgery import fold_for_inference

RESNET = dict(widths=[16, 32, 64], blocks_per_stage=3, epochs=8, lr=2e-3, survival=0.7)
POLICY = dict(alpha=0.8, lr=3e-3, curriculum_epochs=3, joint_epochs=1, model_lr=1e-4,
              logit_decay=0.01)
GAMMA = 1.0  # the main model's: a wrong prediction costs as much as a right one's best reward
GAMMAS = (0.5, GAMMA, 5.0)  # the trade-off curve

__all__ = ["RESNET", "POLICY", "GAMMA", "GAMMAS", "resnet_name", "policy_name", "resnet",
           "blockdrop_net", "num_blocks", "for_inference", "per_image_ms", "run_blockdrop"]


def resnet_name() -> str:
    return "dyn-resnet"


def policy_name(gamma: float) -> str:
    return f"dyn-blockdrop-g{gamma:g}"


def num_blocks() -> int:
    return len(RESNET["widths"]) * RESNET["blocks_per_stage"]


def _build_resnet(widths: list, blocks_per_stage: int, **_) -> nn.Module:
    return models.SmallResNet(tuple(widths), blocks_per_stage)


def _train_resnet(widths: list, blocks_per_stage: int, epochs: int, lr: float, survival: float,
                  progress: bool = True):
    torch.manual_seed(0)
    net = models.SmallResNet(tuple(widths), blocks_per_stage)
    L = data.loaders("mnist", seed=0)
    h = train.fit(blockdrop.StochasticDepth(net, survival), L.train, L.val, epochs=epochs, lr=lr,
                  progress=progress, desc=resnet_name())
    return net, {"test_accuracy": train.evaluate(net, L.test), "val_accuracy": h.val_acc[-1]}


def _build_pair(widths: list, blocks_per_stage: int, alpha: float, **_) -> nn.Module:
    net = models.SmallResNet(tuple(widths), blocks_per_stage)
    return blockdrop.BlockDropNet(net, blockdrop.PolicyNet(len(net.blocks)), alpha)


def _train_pair(widths: list, blocks_per_stage: int, gamma: float, alpha: float, lr: float,
                curriculum_epochs: int, joint_epochs: int, model_lr: float, logit_decay: float,
                resnet: dict, progress: bool = True):
    net = zoo.trained(resnet_name(), progress=progress)
    torch.manual_seed(0)
    policy_net = blockdrop.PolicyNet(len(net.blocks))
    L = data.loaders("mnist", seed=0)
    history = train_blockdrop(net, policy_net, L.train, gamma=gamma, alpha=alpha, lr=lr,
                              curriculum_epochs=curriculum_epochs, joint_epochs=joint_epochs,
                              model_lr=model_lr, logit_decay=logit_decay, progress=progress)
    pair = blockdrop.BlockDropNet(net, policy_net, alpha).eval()
    return pair, {"test_accuracy": train.evaluate(pair, L.test), "history": history}


zoo.register(resnet_name(), train=_train_resnet, build=_build_resnet,
             settings=dict(RESNET),
             depends_on=(models.SmallResNet, models.BasicBlock, blockdrop.StochasticDepth,
                         blockdrop.masked_forward),
             description=f"chapter 06: SmallResNet {tuple(RESNET['widths'])} x "
                         f"{RESNET['blocks_per_stage']} blocks, Adam {RESNET['lr']:g}, "
                         f"{RESNET['epochs']} epochs with stochastic depth (survival "
                         f"{RESNET['survival']:g})")
for _gamma in GAMMAS:
    zoo.register(policy_name(_gamma), train=_train_pair, build=_build_pair,
                 settings=dict(widths=RESNET["widths"], blocks_per_stage=RESNET["blocks_per_stage"],
                               gamma=_gamma, resnet={"key": zoo.RECIPES[resnet_name()].key}, **POLICY),
                 depends_on=(_train_resnet, models.SmallResNet, models.BasicBlock, blockdrop.PolicyNet,
                             blockdrop.BlockDropNet, blockdrop.masked_forward, blockdrop.blockdrop_reward,
                             blockdrop.self_critical_loss, blockdrop.bound_probabilities,
                             train_blockdrop),
                 description=f"chapter 06: BlockDrop policy for dyn-resnet, gamma {_gamma:g}, "
                             f"curriculum {POLICY['curriculum_epochs']} + joint "
                             f"{POLICY['joint_epochs']} epochs")


def resnet() -> nn.Module:
    """The full ResNet, as trained before BlockDrop."""
    return zoo.trained(resnet_name(), progress=False)


def blockdrop_net(gamma: float = GAMMA) -> blockdrop.BlockDropNet:
    """The ResNet fine-tuned jointly with its policy network for `gamma`."""
    return zoo.trained(policy_name(gamma), progress=False)


def for_inference(pair: blockdrop.BlockDropNet) -> blockdrop.BlockDropNet:
    """The deployed pair: the ResNet's BatchNorms folded into its convolutions."""
    return blockdrop.BlockDropNet(fold_for_inference(pair.model), pair.policy_net, pair.alpha).eval()


def per_image_ms(models, images: torch.Tensor, rounds: int = 5, chunk: int = 10) -> list[float]:
    """Each model's mean milliseconds per image, the images run one at a time (batch 1, each
    with its own policy), one thread, freed memory kept for reuse.

    Each image counts with its fastest of `rounds` runs, so a slow spell of the machine costs
    the few calls it hits, not a whole pass (the best of whole passes swung the full ResNet's
    figure by 25% between runs). The models take turns every `chunk` images, each running
    them in a row after one untimed call that brings its weights back into the cache (as
    they would be deployed): both see the machine as it is at that moment, and the ratio of
    two models moves far less than when each ran all its images before the other."""
    if rounds < 1 or chunk < 1:
        raise ValueError(f"rounds={rounds!r}, chunk={chunk!r}: both must be at least 1")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    measure.keep_freed_memory()
    best = [[float("inf")] * len(images) for _ in models]
    try:
        with torch.inference_mode():
            for model in models:
                model.eval()
                for x in images[:5]:
                    model(x[None])  # warm-up
            for _ in range(rounds):
                for start in range(0, len(images), chunk):
                    for i, model in enumerate(models):
                        model(images[start][None])  # untimed: this model's weights back in cache
                        for j in range(start, min(start + chunk, len(images))):
                            t0 = time.perf_counter()
                            model(images[j][None])
                            best[i][j] = min(best[i][j], time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old)
    return [1000 * sum(b) / len(b) for b in best]


def run_blockdrop(run: Run, gammas=GAMMAS, get_resnet=resnet, get_pair=blockdrop_net,
                  timed_images: int = 100, rounds: int = 5) -> dict:
    """Accuracy, blocks, MACs, distinct policies and latency of BlockDrop against the full
    ResNet; the trade-off over `gammas`; the claims."""
    test = data.loaders("mnist").test
    X = torch.cat([x for x, _ in test])
    full, pair = get_resnet().eval(), get_pair(GAMMA).eval()
    K = len(blockdrop.residual_blocks(full))
    full_acc = 100 * train.evaluate(full, test)
    full_macs = measure.count_macs(full, (1, 28, 28)).total
    r = assess(pair, test)
    ratio = full_macs / r["macs"]
    paper = table("blockdrop")
    base, ours = paper.row("ResNet-110"), paper.row("BlockDrop")
    run.row("full ResNet: test accuracy", base["accuracy_pct"], round(full_acc, 1), "%")
    run.row("BlockDrop: test accuracy", ours["accuracy_pct"], round(100 * r["accuracy"], 1), "%")
    run.row(f"BlockDrop: blocks used on average (ours of {K}, paper of {base['blocks_total']})",
            ours["blocks_used"], round(r["blocks"], 2), "blocks")
    run.row("BlockDrop: fraction of blocks used", round(ours["blocks_used"] / ours["blocks_total"], 3),
            round(r["blocks"] / K, 3), "")
    run.row("MACs per image: full / BlockDrop (policy network included)", None,
            f"{full_macs:,} / {r['macs']:,.0f}", "MACs")
    run.row("distinct policies on the 1,000 test digits", None, r["distinct"], "")
    full_f, pair_f = fold_for_inference(full), for_inference(pair)
    ms_full, ms_bd = per_image_ms([full_f, pair_f], X[:timed_images], rounds)
    batch = X[:64]
    lat = measure.best_latencies([full_f, pair_f], inputs=batch, rounds=rounds, repeats=10)
    speed1, speed64 = ms_full / ms_bd, lat[0].median_ms / lat[1].median_ms
    groups = blockdrop.distinct_policies(pair.policy(batch))
    run.row(f"batch 1: ms per image, full / BlockDrop ({timed_images} test digits)", None,
            f"{ms_full:.3f} / {ms_bd:.3f}", "ms")
    run.row(f"batch 64: ms, full / BlockDrop ({groups} groups of equal policies)", None,
            f"{lat[0].median_ms:.2f} / {lat[1].median_ms:.2f}", "ms")
    for g in gammas:
        if g != GAMMA:
            other = assess(get_pair(g).eval(), test)
            run.row(f"gamma {g:g}: accuracy / blocks used", None,
                    f"{100 * other['accuracy']:.1f}% / {other['blocks']:.2f}", "")
    run.claim(f"BlockDrop uses at most 0.6 of the blocks ({r['blocks']:.2f} of {K})",
              round(r["blocks"] / K, 3), "<= 0.6", r["blocks"] <= 0.6 * K)
    run.claim(f"with accuracy within 1 point of the full ResNet ({100 * r['accuracy']:.1f}% vs {full_acc:.1f}%)",
              round(100 * r["accuracy"] - full_acc, 1), ">= -1", 100 * r["accuracy"] >= full_acc - 1)
    run.claim(f"batch-1 speed-up at least 0.8x the MAC reduction ({ratio:.2f}x)", round(speed1, 2),
              f">= {0.8 * ratio:.2f}", speed1 >= 0.8 * ratio)
    run.claim("grouped batch-64 speed-up at least 0.6x the MAC reduction", round(speed64, 2),
              f">= {0.6 * ratio:.2f}", speed64 >= 0.6 * ratio)
    return {"full_acc": full_acc, "assess": r, "ratio": ratio, "speedup_1": speed1,
            "speedup_64": speed64, "groups_64": groups, "full_macs": full_macs}


@experiment("blockdrop", dataset="MNIST, the 5,000 bundled digits (1,000 test)",
            scale=f"SmallResNet {tuple(RESNET['widths'])} with {num_blocks()} BasicBlocks, a "
                  f"policy CNN; curriculum {POLICY['curriculum_epochs']} + joint "
                  f"{POLICY['joint_epochs']} epochs; latency one thread, BatchNorm folded; the "
                  "paper: ResNet-110 (54 blocks) on CIFAR-10",
            summary="BlockDrop: blocks really skipped per image and in grouped batches")
def blockdrop_experiment(run: Run) -> None:
    run_blockdrop(run)
