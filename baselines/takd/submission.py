"""takd: teacher-assistant knowledge distillation (Mirzadeh et al. 2020) into a tiny spiking student.

A large capacity gap between teacher and student hurts KD. TAKD inserts a mid-size teacher
assistant: the TA is distilled from the teacher, then the student is distilled from the TA only.
Here: teacher = the cached "xlarge" ReLU CNN of snnbench.teachers (53k parameters on digits);
TA = the "medium" ANN of the same family (3.7k), trained by KD from the teacher (tau = 4,
alpha = 0.5, the task's budget) inside train() and discarded afterwards; student = a tiny
spiking MLP (input -> 32 LIF -> classes LIF), distilled from the TA with kd_vanilla's loss
(tau = 4, alpha = 0.5, z_s = output spike count). Direct KD (the check's control) is the same
student distilled from the teacher itself. Chain length 1 (one TA).
"""

from __future__ import annotations

from torch import nn

from snnbench.distill import distill_train, spike_count, spiking_mlp_student
from snnbench.teachers import build_teacher, get_teacher
from snnbench.training import TrainingData

CITATION = """@inproceedings{mirzadeh2020improved,
  title     = {Improved Knowledge Distillation via Teacher Assistant},
  author    = {Mirzadeh, Seyed Iman and Farajtabar, Mehrdad and Li, Ang and Levine, Nir and
               Matsukawa, Akihiro and Ghasemzadeh, Hassan},
  booktitle = {Proceedings of the AAAI Conference on Artificial Intelligence},
  volume    = {34},
  pages     = {5191--5198},
  year      = {2020}
}"""

TASKS = ("digits",)
# METHODS.md: beats direct KD on CIFAR-10/100 and ImageNet (unverified), no figure given.
REPORTED = {}

HIDDEN = 32  # the tiny student
TAU = 4.0
ALPHA = 0.5
TEACHER_SIZE = "xlarge"
TA_SIZE = "medium"
TA_SEED_OFFSET = 7919  # the TA's init and batch order, apart from the student's


def build(task, hidden: int = HIDDEN) -> nn.Module:
    return spiking_mlp_student(task, hidden)


def train_assistant(task, data, budget, teacher, size: str = TA_SIZE) -> nn.Module:
    """The TA: a `size` ANN distilled from `teacher` (tau, alpha as the student), frozen after."""
    import torch

    seed = budget.seed + TA_SEED_OFFSET
    own = TrainingData(task, data.dataset, data.timesteps, seed)  # its own batches and history
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        assistant = build_teacher(task, size, data.timesteps)
        distill_train(assistant, task, own, budget, teacher, alpha=ALPHA, t_student=TAU)
    for p in assistant.parameters():
        p.requires_grad_(False)
    return assistant.eval()


def train(model: nn.Module, task, data, budget, teacher=None, assistant=None) -> nn.Module:
    """Teacher (cache) -> TA (trained here by KD) -> student (KD from the TA only)."""
    if assistant is None:
        if teacher is None:
            teacher = get_teacher(task, data, TEACHER_SIZE, seed=budget.seed)
        assistant = train_assistant(task, data, budget, teacher)
    return distill_train(
        model,
        task,
        data,
        budget,
        assistant,
        alpha=ALPHA,
        t_student=TAU,
        t_teacher=TAU,
        student_logits=spike_count,
    )
