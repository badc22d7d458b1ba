"""Training and evaluation: `fit`, `fine_tune` and `evaluate`, small enough to read in one sitting.

Hooks let later chapters change training without a new loop:

* ``loss_fn(logits, y)`` replaces cross-entropy. A loss that also needs the inputs (a
  distillation loss asks the teacher about them) sets the attribute ``uses_inputs = True``
  and is called as ``loss_fn(logits, y, x)``.
* ``step_hook(model, step)`` runs after every optimizer step (pruning re-applies its masks).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["fit", "fine_tune", "evaluate", "History", "OPTIMIZERS"]

OPTIMIZERS = ("adam", "sgd")


@dataclass
class History:
    """Per-epoch training curves, ready to plot."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def as_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self.__dict__.items()}

    def plot(self, ax=None):
        """Loss and accuracy per epoch (needs matplotlib)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(1, 2, figsize=(9, 3))
        x = range(1, self.epochs + 1)
        ax[0].plot(x, self.train_loss, label="train")
        ax[1].plot(x, self.train_acc, label="train")
        if self.val_loss:
            ax[0].plot(x, self.val_loss, label="val")
            ax[1].plot(x, self.val_acc, label="val")
        ax[0].set(xlabel="epoch", ylabel="loss")
        ax[1].set(xlabel="epoch", ylabel="accuracy")
        ax[0].legend()
        return ax


def _check_batch(model: nn.Module, batch, where: str) -> None:
    """Clear errors for the common mistakes, before any training happens."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"{where}: each batch must be a pair (inputs, labels), got "
                        f"{type(batch).__name__}")
    x, y = batch
    if not torch.is_tensor(x) or not torch.is_tensor(y):
        raise TypeError(f"{where}: inputs and labels must be tensors, got "
                        f"{type(x).__name__} and {type(y).__name__}")
    if y.dtype not in (torch.int64, torch.int32, torch.uint8, torch.int16):
        raise TypeError(f"{where}: labels must be integer class indices, got dtype {y.dtype}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{where}: labels must have shape (batch,) = ({x.shape[0]},), "
                         f"got {tuple(y.shape)}")
    if y.numel() and int(y.min()) < 0:
        raise ValueError(f"{where}: labels must be >= 0, got {int(y.min())}")


def _forward(model: nn.Module, x: torch.Tensor, y: torch.Tensor, where: str) -> torch.Tensor:
    try:
        logits = model(x)
    except RuntimeError as e:
        if "shape" in str(e) or "size" in str(e) or "dimension" in str(e):
            raise ValueError(f"{where}: the model cannot take inputs of shape "
                             f"{tuple(x.shape)}: {e}") from None
        raise
    if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
        raise ValueError(f"{where}: the model must return logits of shape (batch, classes), "
                         f"got {tuple(logits.shape)} for inputs {tuple(x.shape)}")
    if y.numel() and int(y.max()) >= logits.shape[1]:
        raise ValueError(f"{where}: a label is {int(y.max())} but the model outputs only "
                         f"{logits.shape[1]} classes (labels must be in 0..{logits.shape[1] - 1})")
    return logits


def _epoch_eval(model: nn.Module, loader, device: torch.device) -> tuple[float, float]:
    was_training = model.training
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if i == 0:
                _check_batch(model, batch, "evaluate")
            x, y = batch[0].to(device), batch[1].to(device).long()
            logits = _forward(model, x, y, "evaluate")
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            n += y.numel()
    model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the loader yielded no samples")
    return total_loss / n, correct / n


def evaluate(model: nn.Module, loader, device: str | torch.device | None = None) -> float:
    """Accuracy (fraction correct, in [0, 1]) of `model` on every sample of `loader`."""
    from nclib import get_device

    dev = get_device(device)
    model.to(dev)
    return _epoch_eval(model, loader, dev)[1]


def _make_optimizer(model: nn.Module, optimizer, lr: float, weight_decay: float):
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"optimizer={optimizer!r}: expected one of {', '.join(OPTIMIZERS)} "
                     "or a torch.optim.Optimizer")


def fit(model: nn.Module, train_loader, val_loader=None, epochs: int = 10, *,
        lr: float = 1e-3, optimizer: Literal["adam", "sgd"] | torch.optim.Optimizer = "adam",
        weight_decay: float = 0.0, loss_fn: Callable | None = None,
        step_hook: Callable[[nn.Module, int], None] | None = None,
        device: str | torch.device | None = None, progress: bool = True,
        desc: str = "fit") -> History:
    """Train `model` for `epochs` passes over `train_loader`; returns the `History`.

    Args:
        train_loader, val_loader: iterables of ``(x, y)`` batches (val is optional).
        epochs: number of passes (0 trains nothing).
        lr, optimizer, weight_decay: "adam" or "sgd" (momentum 0.9), or your own optimizer.
        loss_fn: ``loss_fn(logits, y)``; default cross-entropy. See the module docstring
            for losses that need the inputs.
        step_hook: called as ``step_hook(model, step)`` after every optimizer step.
        device: where to train; default: what `nclib.setup` chose.
        progress: show a progress bar (one line per `fit`, in notebooks and terminals).
    """
    from nclib import get_device

    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs={epochs!r}: expected a non-negative integer")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr={lr!r}: expected a positive number")
    dev = get_device(device)
    model.to(dev)
    opt = _make_optimizer(model, optimizer, lr, weight_decay)
    uses_inputs = getattr(loss_fn, "uses_inputs", False)
    loss_fn = loss_fn or F.cross_entropy
    history = History()
    bar = None
    if progress and epochs:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=desc, unit="epoch", leave=True)
    step = 0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        total_loss, correct, n = 0.0, 0, 0
        for i, batch in enumerate(train_loader):
            if epoch == 0 and i == 0:
                _check_batch(model, batch, "fit(train_loader)")
            x, y = batch[0].to(dev), batch[1].to(dev).long()
            logits = _forward(model, x, y, "fit(train_loader)")
            loss = loss_fn(logits, y, x) if uses_inputs else loss_fn(logits, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"fit: the loss became {loss.item()} at epoch "
                                         f"{epoch + 1}, step {step}; try a smaller lr (now {lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step_hook is not None:
                step_hook(model, step)
            total_loss += loss.item() * y.numel()
            correct += (logits.argmax(1) == y).sum().item()
            n += y.numel()
        if n == 0:
            raise ValueError("fit: train_loader yielded no samples")
        history.train_loss.append(total_loss / n)
        history.train_acc.append(correct / n)
        if val_loader is not None:
            vl, va = _epoch_eval(model, val_loader, dev)
            history.val_loss.append(vl)
            history.val_acc.append(va)
        history.seconds.append(time.perf_counter() - t0)
        if bar is not None:
            post = {"loss": f"{history.train_loss[-1]:.3f}", "acc": f"{history.train_acc[-1]:.3f}"}
            if history.val_acc:
                post["val_acc"] = f"{history.val_acc[-1]:.3f}"
            bar.set_postfix(post)
            bar.update(1)
    if bar is not None:
        bar.close()
    return history


def fine_tune(model: nn.Module, train_loader, epochs: int, *, lr: float, seed: int = 0,
              weight_decay: float = 0.0, loss_fn: Callable | None = None,
              step_hook: Callable[[nn.Module, int], None] | None = None,
              device: str | torch.device | None = None, progress: bool = False) -> nn.Module:
    """Train an already trained (pruned, factorized, ...) `model` a little further; returns it.

    torch's random state is seeded with `seed` first, so models fine-tuned with one recipe
    see the same random draws: what differs between them is the model, not the luck of the
    run. A loader with its own generator (`data.loaders`) moves on with every pass: give
    each model a fresh one to give it the same batches. Adam, in place; the other
    arguments are `fit`'s.

    Example:
        >>> fine_tune(pruned, data.loaders("mnist").train, epochs=2, lr=3e-4)
    """
    torch.manual_seed(seed)
    fit(model, train_loader, epochs=epochs, lr=lr, weight_decay=weight_decay, loss_fn=loss_fn,
        step_hook=step_hook, device=device, progress=progress, desc="fine-tune")
    return model
