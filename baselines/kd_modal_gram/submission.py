"""kd_modal_gram: multi-modality distillation by learning the teacher's modality-level Gram matrix
(Liu 2021, arXiv:2112.11447) into a two-branch spiking student.

Two modalities of one sample: an 8x8 intensity image (digits) and the event-camera frames of the
same sample (digits-dvs, [T, 2, 32, 32]). Per sample, each network embeds each modality in one
branch; F stacks the two L2-normalised embeddings (M = 2 rows), G = F F^T (2 x 2; off-diagonal =
the cosine between the two modality embeddings). The student's loss:

    L = CE(z_s, y) + alpha * tau^2 * KL(softmax(z_t / tau) || softmax(z_s / tau))
        + beta * mean_batch ||G_S - G_T||_F^2                    (snnbench.distill.modality_gram_loss)

Teacher: a two-branch ReLU ANN trained inside train() (cross-entropy, Adam at a constant 1e-3,
the task's epochs and batch size, seed = run seed + TEACHER_SEED_OFFSET), one snnbench.teachers
TeacherNet body per modality (the `medium` width: 32-d embeddings = each body's penultimate
features) and a fused linear head on the concatenated embeddings. It is discarded after training.
Student: one spiking branch per modality, Flatten - Linear - LIF (EMBED units; embedding = the
time-mean spike rate), a fused Linear - LIF output on the concatenated branch spikes;
z_s = output spike count (the KD baselines' readout).

Leaderboard run (TASKS = digits-dvs): the harness passes one task's input, the DVS frames, and
nothing else at test time, and the digits-dvs training split only at training time. So the image
modality is DERIVED inside the model from the same input (`derived_image`: events summed over time
and polarity, 4x4 average-pooled to 8x8, divided by the sample's maximum, repeated over T as direct
input), for the teacher and the student, in training and at test. The two modalities are then
two views of one recording, not independent sensors. The check (check.py) instead uses true pairs
(the digits image and the digits-dvs recording of the same load_digits() index) for training and
test, through the same networks (`forward_pair`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from snnbench.distill import modality_gram, modality_gram_loss, soft_kl
from snnbench.neurons import LIF, MultiStep
from snnbench.teachers import SIZES, TeacherNet

CITATION = """@article{liu2021multimodality,
  title   = {Multi-Modality Distillation via Learning the Teacher's Modality-level Gram Matrix},
  author  = {Liu, Peng},
  journal = {arXiv preprint arXiv:2112.11447},
  year    = {2021}
}"""

TASKS = ("digits-dvs",)
# METHODS.md: beats output-only multi-modal KD, no figure given.
REPORTED = {}

EMBED = 64  # the student's per-modality embedding width (LIF units per branch)
ALPHA = 0.5  # weight of the soft-target KD term (reconstruction)
BETA = 3.0  # weight of the modality Gram term (reconstruction: beta * Gram ~ CE at the start)
TAU = 4.0  # one temperature for teacher and student
TEACHER_SIZE = "medium"  # TeacherNet width per branch: 4 * 8 = 32-d teacher embeddings
TEACHER_LR = 1e-3  # snnbench.teachers' recipe: Adam at a constant lr
TEACHER_SEED_OFFSET = 7919  # teacher init and batch order, apart from the student's
IMAGE_SHAPE = (1, 8, 8)  # the image modality
POOL = 4  # 32x32 event counts -> 8x8 derived image


def derived_image(dvs: torch.Tensor) -> torch.Tensor:
    """[T, B, 2, S, S] event frames -> [T, B, 1, S/POOL, S/POOL]: the image modality derived from the
    same recording (events summed over time and polarity, average-pooled, divided by the sample's
    maximum so it lies in [0, 1]; 0 for an empty recording), repeated over T (direct input)."""
    steps = dvs.shape[0]
    counts = dvs.sum(dim=(0, 2))[:, None]  # [B, 1, S, S]
    pooled = F.avg_pool2d(counts, POOL)
    peak = pooled.flatten(1).amax(1).clamp_min(1e-6)[:, None, None, None]
    img = pooled / peak
    return img.unsqueeze(0).expand(steps, *img.shape).contiguous()


class TwoBranchSNN(nn.Module):
    """Spiking student: image branch and event branch (Flatten - Linear - LIF each), fused output
    Linear - LIF on the concatenated branch spikes. forward(x) is the harness's path (image derived
    from x); forward(dvs, image=..., embeddings=True) takes both modalities and also returns the
    embeddings (training goes through __call__, so the harness's training probe sees every pass)."""

    def __init__(self, dvs_shape: tuple[int, ...], classes: int, embed: int = EMBED) -> None:
        super().__init__()
        n_img = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]
        n_dvs = 1
        for s in dvs_shape:
            n_dvs *= s
        self.image_branch = nn.Sequential(
            MultiStep(nn.Flatten()), MultiStep(nn.Linear(n_img, embed)), LIF(tau=2.0)
        )
        self.event_branch = nn.Sequential(
            MultiStep(nn.Flatten()), MultiStep(nn.Linear(n_dvs, embed)), LIF(tau=2.0)
        )
        self.head = nn.Sequential(MultiStep(nn.Linear(2 * embed, classes)), LIF(tau=2.0))

    def forward(self, x: torch.Tensor, image: torch.Tensor | None = None, embeddings: bool = False):
        """x = DVS frames [T, B, 2, S, S]; image [T, B, 1, 8, 8] (default: derived_image(x)).
        Output spikes [T, B, C]; with embeddings=True also the image and event embeddings [B, E],
        the branches' time-mean spike rates."""
        s_img = self.image_branch(derived_image(x) if image is None else image)
        s_dvs = self.event_branch(x)
        out = self.head(torch.cat([s_img, s_dvs], dim=-1))
        return (out, s_img.mean(0), s_dvs.mean(0)) if embeddings else out

    def forward_pair(self, image: torch.Tensor, dvs: torch.Tensor):
        """(output spikes, image embedding, event embedding) of a true pair."""
        return self(dvs, image=image, embeddings=True)


class TwoBranchTeacher(nn.Module):
    """ReLU ANN teacher: one TeacherNet body per modality (time folded into channels), a fused
    linear head on the concatenated penultimate features. The bodies' own heads are unused.
    forward() takes the time-folded inputs [B, T*C, H, W] (an ANN's batch-first call, as the
    training probe prices it); forward_pair(image, dvs) folds [T, B, ...] inputs and calls it."""

    def __init__(self, dvs_shape: tuple[int, ...], classes: int, timesteps: int, size: str = TEACHER_SIZE):
        super().__init__()
        width = SIZES[size]
        self.image_net = TeacherNet(IMAGE_SHAPE, classes, width, timesteps)
        self.event_net = TeacherNet(tuple(dvs_shape), classes, width, timesteps)
        self.fused = nn.Linear(2 * 4 * width, classes)

    def forward(self, dvs_folded: torch.Tensor, image_folded: torch.Tensor):
        """(logits [B, C], image embedding [B, 4w], event embedding [B, 4w])."""
        e_img = self.image_net.body(image_folded)
        e_dvs = self.event_net.body(dvs_folded)
        return self.fused(torch.cat([e_img, e_dvs], dim=-1)), e_img, e_dvs

    def forward_pair(self, image: torch.Tensor, dvs: torch.Tensor):
        return self(self.event_net.static_input(dvs), self.image_net.static_input(image))


def build(task, embed: int = EMBED) -> nn.Module:
    return TwoBranchSNN(tuple(task.input_shape), int(task.outputs), embed)


def build_pair_teacher(task, timesteps: int, size: str = TEACHER_SIZE) -> TwoBranchTeacher:
    return TwoBranchTeacher(tuple(task.input_shape), int(task.outputs), timesteps, size)


class HarnessPairs:
    """(image, dvs, y) batches from the harness's TrainingData: image derived from the DVS input."""

    def __init__(self, data) -> None:
        self.data = data
        self.timesteps = data.timesteps
        self.history = data.history

    def loader(self, batch_size: int, shuffle: bool = True):
        for x, y in self.data.loader(batch_size, shuffle=shuffle):
            yield derived_image(x), x, y


class PairedData:
    """True pairs for the check: image [N, 1, 8, 8] (pixel / 16) and DVS frames [N, T, 2, S, S] of
    the same samples, labels [N]. loader() draws a new seeded order on every call (as TrainingData)
    and yields (image [T, B, 1, 8, 8] repeated over T, dvs [T, B, 2, S, S], y [B])."""

    def __init__(self, images, frames, labels, timesteps: int, seed: int = 0) -> None:
        self.images = torch.as_tensor(images, dtype=torch.float32)
        self.frames = torch.as_tensor(frames)
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        if not (len(self.images) == len(self.frames) == len(self.labels)):
            raise ValueError("images, frames and labels differ in length")
        if self.frames.shape[1] != timesteps:
            raise ValueError(f"frames have {self.frames.shape[1]} time bins, T={timesteps}")
        self.timesteps, self.seed = int(timesteps), int(seed)
        self.history: list[dict] = []
        self._calls = 0

    def __len__(self) -> int:
        return len(self.labels)

    def loader(self, batch_size: int, shuffle: bool = True):
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self._calls)
        self._calls += 1
        order = torch.randperm(len(self), generator=gen) if shuffle else torch.arange(len(self))
        for i in range(0, len(self), batch_size):
            idx = order[i : i + batch_size]
            img = self.images[idx]
            yield (
                img.unsqueeze(0).expand(self.timesteps, *img.shape).contiguous(),
                self.frames[idx].float().transpose(0, 1).contiguous(),
                self.labels[idx],
            )


def train_teacher(task, pairs, budget, seed: int, lr: float = TEACHER_LR, track=None) -> TwoBranchTeacher:
    """A two-branch teacher built and trained with `seed` in a forked RNG (the caller's random
    state is unchanged): cross-entropy on the fused logits, Adam at a constant lr, budget.epochs,
    budget.batch_size; returned frozen, in eval mode. `track(teacher)` (e.g. the harness's
    data.track_training as an ANN) is called before training and its handle stopped after."""
    device = torch.device(getattr(budget, "device", "cpu"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        teacher = build_pair_teacher(task, pairs.timesteps).to(device)
        handle = track(teacher) if track is not None else None
        optimiser = torch.optim.Adam(teacher.parameters(), lr=lr)
        for _ in range(budget.epochs):
            teacher.train()
            for img, dvs, y in pairs.loader(budget.batch_size):
                logits = teacher.forward_pair(img.to(device), dvs.to(device))[0]
                loss = F.cross_entropy(logits, y.to(device))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
    if handle is not None:
        handle.stop()
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def distill_pairs(
    model: TwoBranchSNN,
    teacher: TwoBranchTeacher | None,
    pairs,
    budget,
    *,
    alpha: float = ALPHA,
    beta: float = BETA,
    tau: float = TAU,
) -> TwoBranchSNN:
    """Adam + L = CE + alpha * KD + beta * modality Gram loss through BPTT (cosine schedule,
    budget.epochs, stops on budget.wall_time_s). teacher None = CE only. One dict per epoch goes
    to pairs.history (loss, its parts, train accuracy)."""
    import time

    device = torch.device(getattr(budget, "device", "cpu"))
    model.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=budget.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, budget.epochs))
    started = time.monotonic()
    for epoch in range(budget.epochs):
        model.train()
        seen = correct = 0
        sums = {"loss": 0.0, "ce": 0.0, "kd": 0.0, "gram": 0.0}
        for img, dvs, y in pairs.loader(budget.batch_size):
            img, dvs, y = img.to(device), dvs.to(device), y.to(device)
            out, e_img, e_dvs = model.forward_pair(img, dvs)
            z_s = out.sum(0)  # output spike count
            ce = F.cross_entropy(z_s, y)
            kd = gram = torch.zeros((), device=device)
            if teacher is not None and (alpha > 0 or beta > 0):
                with torch.no_grad():
                    z_t, t_img, t_dvs = teacher.forward_pair(img, dvs)
                if alpha > 0:
                    kd = soft_kl(z_s, z_t, tau, tau)
                if beta > 0:
                    gram = modality_gram_loss([e_img, e_dvs], [t_img, t_dvs])
            loss = ce + alpha * kd + beta * gram
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            n = y.numel()
            seen += n
            correct += int((z_s.argmax(1) == y).sum())
            for key, value in (("loss", loss), ("ce", ce), ("kd", kd), ("gram", gram)):
                sums[key] += float(value.detach()) * n
        schedule.step()
        entry = {
            "epoch": epoch + 1,
            **{k: v / seen for k, v in sums.items()},
            "train_accuracy": correct / seen,
        }
        pairs.history.append(entry)
        if budget.wall_time_s and time.monotonic() - started > budget.wall_time_s:
            break
    model.eval()
    return model


@torch.no_grad()
def gram_distance(model: TwoBranchSNN, teacher: TwoBranchTeacher, pairs, batch_size: int = 256) -> float:
    """Mean over the samples of ||G_S - G_T||_F (per-sample modality Gram matrices)."""
    model.eval()
    teacher.eval()
    total, seen = 0.0, 0
    for img, dvs, _ in pairs.loader(batch_size, shuffle=False):
        _, s_img, s_dvs = model.forward_pair(img, dvs)
        _, t_img, t_dvs = teacher.forward_pair(img, dvs)
        diff = modality_gram([s_img, s_dvs]) - modality_gram([t_img, t_dvs])
        total += float(diff.pow(2).sum(dim=(1, 2)).sqrt().sum())
        seen += img.shape[1]
    return total / seen


def train(model: nn.Module, task, data, budget, teacher: TwoBranchTeacher | None = None) -> nn.Module:
    """Leaderboard path: teacher (trained here on the training split, image derived from the DVS
    input) -> two-branch spiking student with CE + alpha KD + beta modality Gram loss."""
    from snnbench.recipes.bptt import TrainingData

    if teacher is None:
        seed = budget.seed + TEACHER_SEED_OFFSET
        own = HarnessPairs(TrainingData(task, data.dataset, data.timesteps, seed))  # its own batches
        track = getattr(data, "track_training", None)  # the teacher's training is priced too (ANN mode)
        teacher = train_teacher(
            task,
            own,
            budget,
            seed,
            track=None if track is None else (lambda m: track(m, "ann", name="teacher")),
        )
    return distill_pairs(model, teacher, HarnessPairs(data), budget)
