"""Chapter 05 concept questions: why REINFORCE needs a baseline, and why two searches are
compared at equal budgets.

The accepted answers are stored as hashes (`nclib.course.questions`); the explanation is
shown once a student has answered.
"""
from nclib.course.questions import choice

__all__ = ["why_baseline", "equal_budget"]

why_baseline = choice(
    "nas", "why_baseline",
    options={"a": "Without a baseline the gradient estimate is biased: in expectation it points "
                  "away from the better architectures.",
             "b": "Every reward is positive (accuracies near 0.95), so without a baseline each "
                  "sampled architecture is made more likely, the good ones only a little more; "
                  "R - b keeps the expected gradient and gives each sample the sign of better "
                  "or worse than usual, which cuts the variance.",
             "c": "The baseline rescales the rewards to [0, 1], so that Adam's steps have the "
                  "right size."},
    answer_hash="92ddff1bc8de4cd1419eeb2c5ac5709c5508727bc70205ed1e7f776851982085",
    explanation="E[grad log P(a)] = 0, so subtracting a constant b changes no expectation (Eq. 2 "
                "stays unbiased); what it changes is the variance: with rewards of 0.90 to "
                "0.97, R alone pushes every sample up, and only R - b tells the good from the "
                "bad in one batch.",
    hint="Lecture 05, section 5 (REINFORCE with a baseline): compare the gradient of one batch "
         "with and without b; what is the expected value of grad log P(a)?")

equal_budget = choice(
    "nas", "equal_budget",
    options={"a": "The best accuracy found can only rise with every child evaluated, so a search "
                  "given more children looks better whatever its strategy; and children are "
                  "what a search costs (Zoph and Le's 12,800 on 800 GPUs).",
             "b": "The controller's learning rate was tuned for one budget, so it cannot run "
                  "for any other.",
             "c": "Random search cannot evaluate more than 10% of a space without repeating "
                  "architectures."},
    answer_hash="774c68f74a3078a86bd3bce2e6bb9131c928d55d071a64a942ab6ca23db4832f",
    explanation="Best-so-far is a running maximum: more samples never lower it. A strategy is "
                "better only if it finds more with the same number of children, the unit of "
                "cost; the lecture's curves compare both searches child by child.",
    hint="Lecture 05, section 6 (RL against random search): what does the best-so-far curve "
         "of either search do as children are added?")
