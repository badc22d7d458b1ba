"""Knowledge distillation: train a small student to imitate a large teacher.

* Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network" (NIPS 2014 Deep
  Learning Workshop, arXiv 1503.02531, 2015). Soft targets are a softmax at temperature T
  (their Eq. 1):  q_i = exp(z_i / T) / sum_j exp(z_j / T).  The student minimizes
      L = alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, y)
  with s, t the student's and teacher's logits. (The paper writes the soft term as a
  cross-entropy with the teacher's soft targets; it differs from the KL divergence by the
  teacher's entropy, a constant, so the gradients are the same.) Its Eq. 2-4 give the
  gradient of the soft term with respect to a student logit z_i, (1/T)(q_i - p_i) for the
  student's and teacher's soft probabilities q and p, which for large T becomes logit
  matching, (z_i - v_i) / (N T^2) for N classes and zero-mean logits: hence the T^2 factor.
* Ba and Caruana, "Do Deep Nets Really Need to be Deep?" (NIPS 2014, arXiv 1312.6184):
  regress the teacher's logits directly, L = 1/(2B) sum_b ||s_b - t_b||^2 (`logit_mse`).
* Ensembles as teachers (Hinton et al., Section 4: an ensemble of 10 speech models distilled
  into one): `Ensemble` averages the members' probabilities.

`DistillationLoss` plugs any of this into `nclib.train.fit` through its ``loss_fn`` hook.
`CachedTeacher` runs the teacher once over a fixed training set and looks its answers up,
for when the inputs are not augmented.

Shapes use B (batch), C (classes), N (samples in a data set), K (ensemble members).
"""
from __future__ import annotations

import hashlib
import math
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["softmax_with_temperature", "kd_loss", "logit_mse", "Ensemble", "CachedTeacher",
           "DistillationLoss", "distillation_step", "KINDS"]

KINDS = ("kd", "logit_mse")


def _check_temperature(temperature: float) -> None:
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature) or temperature <= 0):
        raise ValueError(f"temperature={temperature!r}: expected a positive finite number "
                         "(T = 1 is the ordinary softmax, larger T gives softer targets)")


def _check_alpha(alpha: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha={alpha!r}: expected a number in [0, 1] (the weight of the "
                         "soft term; 1 - alpha weights the cross-entropy with the labels)")


def _check_option(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(map(repr, allowed))}")


def _check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    if student_logits.ndim != 2 or teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher_logits has shape {tuple(teacher_logits.shape)} and "
                         f"student_logits {tuple(student_logits.shape)}: expected the same "
                         "shape (B, C), batch by classes")


def softmax_with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.'s soft targets: softmax(logits / T) over the last dimension (Eq. 1)."""
    _check_temperature(temperature)
    # q_i = exp(z_i / T) / sum_j exp(z_j / T)
    return torch.softmax(logits / temperature, dim=-1)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
            temperature: float = 4.0, alpha: float = 0.9) -> torch.Tensor:
    """Hinton et al.'s loss: alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, y).

    Args:
        student_logits, teacher_logits: (B, C) raw scores (no softmax applied).
        labels: (B,) integer classes for the cross-entropy term.
        temperature: T > 0; both softmaxes are taken at T.
        alpha: weight of the soft term in [0, 1]; alpha = 0 is plain cross-entropy.

    Returns:
        A scalar. The KL term is summed over classes and averaged over the batch
        ("batchmean"); averaging over classes as well ("mean") would shrink it C times.
    """
    _check_logits(student_logits, teacher_logits)
    _check_temperature(temperature)
    _check_alpha(alpha)
    if labels.shape != student_logits.shape[:1]:
        raise ValueError(f"labels has shape {tuple(labels.shape)}: expected (B,) = "
                         f"({student_logits.shape[0]},), one class per row of the logits")
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)  # (B, C)
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=1)  # (B, C)
    # KL(p_t || p_s) = 1/B sum_b sum_c p_t[b, c] * (log p_t[b, c] - log p_s[b, c])
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(1).mean()
    # The soft term's gradients scale as 1/T^2 (Eq. 2-4: a 1/T from dividing the logits,
    # and the soft probabilities' differences shrink as 1/T too), so multiplying by T^2
    # keeps its weight against the hard term the same whatever T is tried.
    soft = temperature ** 2 * kl
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft + (1 - alpha) * hard


def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Ba and Caruana's mimic loss, regression on the teacher's logits: 1/(2B) sum_b ||s_b - t_b||^2.

    Summed over classes like `kd_loss`, so it equals ``C / 2 * F.mse_loss(s, t)``.
    """
    _check_logits(student_logits, teacher_logits)
    # L = 1/(2B) sum_b sum_c (s[b, c] - t[b, c])^2
    return 0.5 * (student_logits - teacher_logits).pow(2).sum(1).mean()


class Ensemble(nn.Module):
    """Several models answering as one: the average of their probabilities.

    This course's one definition of an ensemble (Hinton et al. average the members'
    predicted distributions): p = 1/K sum_k softmax(z_k). The output is log p, (B, C)
    log-probabilities that `argmax`, cross-entropy and `kd_loss` use like logits (softmax
    gives back p). They are not logits for `logit_mse`: regression would chase their very
    negative values. Example::

        teacher = Ensemble([trained_a, trained_b, trained_c, trained_d])
    """

    def __init__(self, models: Sequence[nn.Module]):
        super().__init__()
        models = list(models)
        if not models:
            raise ValueError(f"models={models!r}: expected at least one model")
        self.members = nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.stack([m(x) for m in self.members])  # (K, B, C)
        # log p = log(1/K sum_k softmax(z_k)) = logsumexp_k(log_softmax(z_k)) - log K,
        # which never takes the log of a probability that underflowed to 0
        return torch.logsumexp(F.log_softmax(z, dim=2), dim=0) - math.log(len(self.members))


def _fingerprint(row: torch.Tensor) -> bytes:
    """A short digest of one input's exact values, to look it up in a cache."""
    return hashlib.blake2b(row.contiguous().numpy().tobytes(), digest_size=16).digest()


class CachedTeacher(nn.Module):
    """A teacher run once over a fixed set of inputs; afterwards it looks its answers up.

    Distillation without augmentation shows the student the same images every epoch, so
    the teacher's logits can be computed once instead of once per batch. Inputs are found
    by their exact values (a digest of their bytes), so shuffling and batching do not
    matter; an input that was not in `X` (an augmented one, say) is an error.

    Args:
        teacher: the model to ask; it runs in eval mode under `torch.no_grad`.
        X: (N, ...) every input the student will train on, e.g. ``loader.dataset.tensors[0]``.
        batch_size: how many inputs the teacher sees at once while filling the cache.
    """

    def __init__(self, teacher: nn.Module, X: torch.Tensor, batch_size: int = 500):
        super().__init__()
        if len(X) == 0:
            raise ValueError(f"X has shape {tuple(X.shape)}: expected at least one input to cache")
        was_training = teacher.training
        teacher.eval()
        device = next(teacher.parameters(), torch.empty(0)).device
        with torch.no_grad():
            logits = torch.cat([teacher(X[i:i + batch_size].to(device)).cpu()
                                for i in range(0, len(X), batch_size)])  # (N, C)
        teacher.train(was_training)
        self.register_buffer("logits", logits)
        self.index = {_fingerprint(row): i for i, row in enumerate(X.detach().cpu())}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            rows = [self.index[_fingerprint(row)] for row in x.detach().cpu()]
        except KeyError:
            raise ValueError("CachedTeacher: an input is not among the cached ones (were the "
                             "inputs augmented?); pass the teacher itself instead") from None
        return self.logits[rows].to(x.device)  # (B, C)


class DistillationLoss:
    """`kd_loss` or `logit_mse` against a teacher, as a ``loss_fn`` for `nclib.train.fit`.

    The teacher answers each batch in eval mode without gradients, on the inputs' device;
    its weights never change. ``kind="logit_mse"`` ignores `temperature`, `alpha` and the
    labels (Ba and Caruana train on the teacher's logits alone). Example::

        loss_fn = DistillationLoss(teacher, temperature=4, alpha=0.9)
        fit(student, data.train, data.val, epochs=10, loss_fn=loss_fn)

    Without augmentation, ``DistillationLoss(CachedTeacher(teacher, X_train))`` asks the
    teacher once per training input instead of once per batch.
    """

    uses_inputs = True  # fit calls loss_fn(student_logits, labels, x)

    def __init__(self, teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.9,
                 kind: Literal["kd", "logit_mse"] = "kd"):
        _check_temperature(temperature)
        _check_alpha(alpha)
        _check_option("kind", kind, KINDS)
        self.teacher = teacher.eval()
        self.temperature, self.alpha, self.kind = temperature, alpha, kind

    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's (B, C) logits for inputs `x`, with no graph behind them."""
        tensors = [*self.teacher.parameters(), *self.teacher.buffers()]
        if tensors and tensors[0].device != x.device:
            self.teacher.to(x.device)
        self.teacher.eval()  # again, in case someone called .train() on it since
        with torch.no_grad():
            return self.teacher(x)

    def __call__(self, student_logits: torch.Tensor, labels: torch.Tensor,
                 x: torch.Tensor) -> torch.Tensor:
        teacher_logits = self.teacher_logits(x)  # (B, C)
        if self.kind == "logit_mse":
            return logit_mse(student_logits, teacher_logits)
        return kd_loss(student_logits, teacher_logits, labels, self.temperature, self.alpha)


def distillation_step(student: nn.Module, teacher: nn.Module, optimizer: torch.optim.Optimizer,
                      batch: tuple[torch.Tensor, torch.Tensor], temperature: float = 4.0,
                      alpha: float = 0.9) -> float:
    """One step of Hinton et al.'s training: the teacher answers, only the student learns.

    Returns the batch's `kd_loss` as a float (computed before the step).
    """
    x, y = batch
    teacher.eval()  # BatchNorm and dropout in inference mode: the teacher only answers
    with torch.no_grad():
        teacher_logits = teacher(x)  # (B, C), no graph: no gradients reach the teacher
    loss = kd_loss(student(x), teacher_logits, y, temperature, alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
