"""Chapter 02 concept questions: the T^2 factor and PyTorch's KL reductions.

The accepted answers are stored as hashes (`nclib.course.questions`); the explanation is
shown once a student has answered.
"""
from nclib.course.questions import choice, number

__all__ = ["why_t_squared", "mean_vs_batchmean"]

why_t_squared = choice(
    "distillation", "why_t_squared",
    options={"a": "It makes KL(p_t || p_s) equal to KL(p_s || p_t).",
             "b": "It turns the softened probabilities back into logits.",
             "c": "The soft term's gradients shrink as 1/T^2 when T grows; T^2 keeps them "
                  "the same size at every temperature."},
    answer_hash="aff43dde8c239b3c4b965cc9f28943f3a7a8e58c96aca45a087f7a5163429804",
    explanation="For a large T the gradient of the KL is about (s - t) / (C T^2) (Hinton et "
                "al., eq. 3-4): without T^2, trying a higher temperature would also quietly "
                "turn the soft term down.")

mean_vs_batchmean = number(
    "distillation", "mean_vs_batchmean", tolerance=0.01,
    answer_hash="9be23504c915f05a3973ab6131af43bdfc502026c0767a2d439cf9cc50a2ee0e",
    explanation="'mean' divides the summed KL by B x C and 'batchmean' by B, so 'mean' is "
                "smaller by the number of classes, which silently shifts the balance alpha sets.",
    hint="Lecture 02, section 3 (The distillation loss), under 'The reduction: \"batchmean\"', "
         "and the reduction argument in the torch.nn.functional.kl_div docs say what each "
         "reduction divides the summed KL by.")
