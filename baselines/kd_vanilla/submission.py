"""kd_vanilla: plain Hinton distillation of a cached ANN teacher into a spiking student.

The control every KD baseline is read against (METHODS.md, Distillation). Loss:

    L = (1 - alpha) * CE(z_s, y) + alpha * tau^2 * KL(softmax(z_t / tau) || softmax(z_s / tau))

with one temperature tau = 4 for teacher and student (Hinton et al. 2015), alpha = 0.5. The teacher
is the "large" ReLU CNN of snnbench.teachers (trained once per machine on the same training split,
seed = the run's seed, and cached). The student is a spiking MLP: input -> 128 LIF -> classes LIF;
z_s is the output layer's spike count over the T steps (the quantity an SNN reads out; the same
student and readout as kd_hetero_temp, which changes only the student's temperature). The model
returns the output spikes [T, B, C]; the harness's mean over time is the spike count / T, so its
argmax is the student's prediction.
"""

from __future__ import annotations

from torch import nn

from snnbench.distill import distill_train, spike_count, spiking_mlp_student
from snnbench.teachers import get_teacher

CITATION = """@article{hinton2015distilling,
  title   = {Distilling the Knowledge in a Neural Network},
  author  = {Hinton, Geoffrey and Vinyals, Oriol and Dean, Jeff},
  journal = {arXiv preprint arXiv:1503.02531},
  year    = {2015}
}"""

TASKS = ("digits", "digits-dvs")
# Hinton et al. report speech and MNIST ANN figures; METHODS.md gives none for this control.
REPORTED = {}

HIDDEN = 128
TAU = 4.0  # one temperature for teacher and student
ALPHA = 0.5
TEACHER_SIZE = "large"


def build(task, hidden: int = HIDDEN) -> nn.Module:
    return spiking_mlp_student(task, hidden)


def train(
    model: nn.Module, task, data, budget, tau: float = TAU, alpha: float = ALPHA, teacher=None
) -> nn.Module:
    """Hinton KD for budget.epochs (Adam, cosine, budget.lr and batch size); teacher from the cache."""
    if teacher is None:
        teacher = get_teacher(task, data, TEACHER_SIZE, seed=budget.seed)
    return distill_train(
        model,
        task,
        data,
        budget,
        teacher,
        alpha=alpha,
        t_student=tau,
        t_teacher=tau,
        student_logits=spike_count,
    )
