"""Run a submission in a child process (PROTOCOLS.md section 7): the process boundary, nothing else.

Seeding, importing, building and loading the checkpoint belong to the submission contract
(snnbench.submission.build_seeded); the collectors belong to the metric registry, and the parent
names the families whose probes run in the child. The child gets a fresh working directory, an
environment without SNNBENCH_* variables, the task (which holds no paths) and input tensors; it
never gets labels, data paths or the store. It builds the model, runs forwards with the probes
attached, and sends outputs and counts back. The parent bounds everything by one deadline and
kills the child (SIGTERM, then SIGKILL) when it passes; a child that dies is a failed run, never a
crashed harness.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as tmp

from snnbench.submission import GlobalTorchState, SubmissionError, SubmissionRef, build_seeded, check_output

_ENV_PREFIX = "SNNBENCH_"


class SubmissionTimeout(RuntimeError):
    """The submission used up its --timeout budget."""


@dataclass
class ChildFailure(SubmissionError):
    """An error raised in the child, carried over with its traceback for the log."""

    message: str
    trace: str = ""

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------- child side


class _Child:
    """The child's state machine; each public method answers one command from the parent."""

    def __init__(
        self,
        ref: SubmissionRef,
        task,
        seed: int,
        checkpoint: bytes | None,
        timesteps: int,
        device: str = "cpu",
        families: tuple[str, ...] | None = None,
    ) -> None:
        self.ref, self.task, self.seed, self.checkpoint, self.timesteps = (
            ref,
            task,
            seed,
            checkpoint,
            timesteps,
        )
        self.device = torch.device(device)
        self.families = tuple(task.metrics) if families is None else tuple(families)
        self.state = GlobalTorchState.capture()
        self.model: torch.nn.Module | None = None
        self.probes: list = []
        self.latency_input: torch.Tensor | None = None
        self._graph: tuple[torch.Tensor, torch.Tensor] | None = None

    def build(self, with_probes: bool) -> dict:
        module, model = build_seeded(
            self.ref, self.task, self.seed, self.state, self.checkpoint, device=str(self.device)
        )
        self.checkpoint = None  # loaded; free the bytes
        model.eval()
        self.model = model
        if with_probes:
            self.probes = _make_probes(self.families)
            for probe in self.probes:
                probe.attach(model, self.task)
        return {"method_has_train": callable(getattr(module, "train", None))}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from snnbench.frameworks import reset_state

        assert self.model is not None
        batch = x.shape[1]
        x = x.to(self.device)
        reset_state(self.model)
        for probe in self.probes:
            probe.before_batch(batch, self.timesteps)
        with torch.no_grad():
            out = self.model(x)
        out = check_output(out, self.timesteps, batch, self.task.outputs)
        for probe in self.probes:
            probe.after_batch(out)
        if self.latency_input is None:
            self.latency_input = x.clone()
        return out.detach().to(device="cpu", dtype=torch.float32).clone()

    def forward_with_graph(self, x: torch.Tensor) -> torch.Tensor:
        """Forward that keeps the autograd graph to the input, for white-box attacks.

        Only after finish() (probes detached, so attack forwards are never counted). The parent
        computes g = dLoss/dOutput from its labels and sends g to input_gradient(): the labels
        never cross into this process, only the vector-Jacobian product comes back.
        """
        from snnbench.frameworks import reset_state

        assert self.model is not None
        if self.probes:
            raise RuntimeError("forward_with_graph is only allowed after finish()")
        reset_state(self.model)
        x = x.detach().to(self.device).clone().requires_grad_(True)
        with torch.enable_grad():
            out = check_output(self.model(x), self.timesteps, x.shape[1], self.task.outputs)
        self._graph = (x, out)
        return out.detach().to(device="cpu", dtype=torch.float32).clone()

    def input_gradient(self, cotangent: torch.Tensor) -> torch.Tensor:
        """d<output, cotangent>/d input for the last forward_with_graph (surrogate gradients, BPTT)."""
        assert self.model is not None and self._graph is not None
        x, out = self._graph
        self._graph = None
        (grad,) = torch.autograd.grad(out, x, grad_outputs=cotangent.to(device=out.device, dtype=out.dtype))
        return grad.detach().cpu().clone()

    def parameter_gradient_norms(self, cotangents: torch.Tensor) -> torch.Tensor:
        """||d<output, c_k>/d weights||^2 for each cotangent c_k (shape [K, *output]) of the last
        forward_with_graph: what weight-space metrics such as the empirical Fisher information
        need. As with input_gradient, the parent derives the cotangents from the labels it holds;
        only K squared norms come back."""
        assert self.model is not None and self._graph is not None
        _, out = self._graph
        params = [p for p in self.model.parameters() if p.requires_grad]
        norms = []
        for k in range(cotangents.shape[0]):
            last = k == cotangents.shape[0] - 1
            grads = torch.autograd.grad(
                out,
                params,
                grad_outputs=cotangents[k].to(device=out.device, dtype=out.dtype),
                retain_graph=not last,
                allow_unused=True,
            )
            norms.append(sum(float(g.double().pow(2).sum()) for g in grads if g is not None))
        self._graph = None
        return torch.tensor(norms, dtype=torch.float64)

    def train_on(self, inputs: torch.Tensor, labels: torch.Tensor, budget: dict) -> bytes:
        """Build a fresh model, train it on (inputs, labels) with the submission's train() or the
        default recipe, and return its checkpoint bytes; the model stays loaded for forward().

        For the privacy family (snnbench.metrics.privacy): the harness trains the submission on a
        member set it controls, here, in the submission's process, never in the harness's."""
        from torch.utils.data import TensorDataset

        from snnbench.recipes.bptt import Budget, TrainingData, default_train
        from snnbench.training import checkpoint_bytes

        module, model = build_seeded(
            self.ref, self.task, self.seed, self.state, None, device=str(self.device)
        )
        data = TrainingData(self.task, TensorDataset(inputs, labels), self.timesteps, self.seed)
        budget = Budget(**{k: v for k, v in budget.items() if k in Budget.__dataclass_fields__})
        if callable(getattr(module, "train", None)):
            trained = module.train(model, self.task, data, budget)
            model = trained if isinstance(trained, torch.nn.Module) else model
        else:
            model = default_train(model, self.task, data, budget, progress=False)
        self.state.restore()
        model.eval()
        self.model = model
        return checkpoint_bytes(model.state_dict())

    def set_surrogate(self, name: str) -> dict:
        """Swap every known neuron's backward surrogate to `name` ("own" restores the submission's);
        the forward is unchanged (snnbench.surrogates). Returns {framework: neurons swapped}."""
        from snnbench.surrogates import swap_surrogates

        assert self.model is not None
        return swap_surrogates(self.model, name)

    def train_twin(
        self, inputs: torch.Tensor, labels: torch.Tensor, epochs: int, lr: float, batch_size: int
    ) -> dict:
        """Build and briefly train the ANN twin (snnbench.twin) on encoded TRAINING inputs and
        their labels; only after finish(). The test labels never come here."""
        from snnbench.surrogates import swap_surrogates
        from snnbench.twin import make_twin, train_twin

        assert self.model is not None
        if self.probes:
            raise RuntimeError("train_twin is only allowed after finish()")
        if make_twin(self.model)[1] == 0:  # an ANN already: no twin, no transfer attack
            self._twin = None
            return {"replaced": 0}
        swap_surrogates(self.model, "own")
        with torch.enable_grad():
            self._twin, info = train_twin(self.model, inputs, labels, epochs, lr, batch_size, self.seed)
        return info

    def _trained_twin(self) -> torch.nn.Module:
        twin = getattr(self, "_twin", None)
        if twin is None:
            raise RuntimeError("no ANN twin: send train_twin first")
        return twin

    def twin_forward(self, x: torch.Tensor) -> torch.Tensor:
        from snnbench.frameworks import reset_state

        reset_state(self._trained_twin())
        with torch.no_grad():
            out = check_output(self._twin(x.to(self.device)), self.timesteps, x.shape[1], self.task.outputs)
        return out.detach().to(device="cpu", dtype=torch.float32).clone()

    def twin_forward_with_graph(self, x: torch.Tensor) -> torch.Tensor:
        """As forward_with_graph, through the ANN twin; input_gradient then pulls back through it."""
        from snnbench.frameworks import reset_state

        reset_state(self._trained_twin())
        x = x.detach().to(self.device).clone().requires_grad_(True)
        with torch.enable_grad():
            out = check_output(self._twin(x), self.timesteps, x.shape[1], self.task.outputs)
        self._graph = (x, out)
        return out.detach().to(device="cpu", dtype=torch.float32).clone()

    def finish(self) -> dict:
        from snnbench.frameworks import reset_state

        for probe in self.probes:
            probe.detach()
        rows = [r for probe in self.probes for r in probe.rows()]
        probes, self.probes = self.probes, []
        uncounted = sorted({u for probe in probes for u in getattr(probe, "uncounted", [])})
        if rows and "energy" in self.families:
            from snnbench.metrics.activity import ActivityProbe
            from snnbench.metrics.energy import energy_rows

            activity = next((p for p in probes if isinstance(p, ActivityProbe)), None)
            rows += energy_rows(rows, per_sample=activity.per_sample() if activity else None)
        latency = None
        if self.latency_input is not None and self.model is not None:
            times = []
            with torch.no_grad():
                for _ in range(4):  # first call warms caches and allocators; the median of 3 is kept
                    reset_state(self.model)
                    _synchronize(self.device)
                    t0 = time.perf_counter()
                    self.model(self.latency_input)
                    _synchronize(self.device)
                    times.append(time.perf_counter() - t0)
            latency = {"seconds": float(np.median(times[1:])), "batch": int(self.latency_input.shape[1])}
        return {"rows": [r.as_dict() for r in rows], "uncounted": uncounted, "latency": latency}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _make_probes(families: tuple[str, ...]) -> list:
    from snnbench.metrics import registry

    return [registry.load(name)() for name in registry.child_families(families)]


def _child_main(conn, ref, task, seed, checkpoint, timesteps, workdir, device, families) -> None:
    os.chdir(workdir)
    for key in [k for k in os.environ if k.startswith(_ENV_PREFIX)]:
        del os.environ[key]
    child = _Child(ref, task, seed, checkpoint, timesteps, device, families)
    while True:
        try:
            command, payload = conn.recv()
        except EOFError:
            return
        if command == "stop":
            conn.send(("ok", None))
            return
        try:
            result = getattr(child, command)(*payload)
            conn.send(("ok", result))
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent as a message
            trace = traceback.format_exc()
            message = str(exc) if isinstance(exc, SubmissionError) else _one_line(command, exc)
            try:
                conn.send(("error", (message, trace)))
            except Exception:
                return
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                return


def _one_line(command: str, exc: BaseException) -> str:
    where = {"forward": "the model's forward", "build": "build", "finish": "metric collection"}.get(
        command, command
    )
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, SystemExit):
        return f"{where} called sys.exit({exc.code}); a submission must not exit the process"
    return f"{where} raised {type(exc).__name__}{': ' + text[:400] if text else ''}"


# ---------------------------------------------------------------- parent side


def _context():
    """A forkserver that has imported torch once: each child then starts in milliseconds, not
    seconds, yet still as a fresh process (never a fork of the harness, which holds labels).
    Falls back to spawn where forkserver does not exist."""
    try:
        ctx = tmp.get_context("forkserver")
    except ValueError:
        return tmp.get_context("spawn")
    ctx.set_forkserver_preload(["torch", "numpy", "snnbench.sandbox", "snnbench.frameworks"])
    return ctx


class Sandbox:
    """A submission running in its own process, driven command by command under one deadline."""

    def __init__(
        self,
        ref: SubmissionRef,
        task,
        seed: int,
        timesteps: int,
        checkpoint: bytes | str | None = None,
        timeout: float = 600.0,
        device: str = "cpu",
        families: tuple[str, ...] | None = None,
    ) -> None:
        """`checkpoint`: the bytes to load (hash these; a path is read here, once)."""
        self.ref, self.task, self.seed, self.timesteps = ref, task, seed, timesteps
        if isinstance(checkpoint, (str, os.PathLike)):
            checkpoint = Path(checkpoint).read_bytes()
        self.checkpoint = checkpoint
        self.device = device
        self.families = families
        self.timeout = timeout
        self.process = None
        self.conn = None
        self.workdir: str | None = None

    def __enter__(self) -> Sandbox:
        self.deadline = time.monotonic() + self.timeout
        ctx = _context()
        self.conn, child_conn = ctx.Pipe()
        self.workdir = tempfile.mkdtemp(prefix="snnbench-submission-")
        args = (
            child_conn,
            self.ref,
            self.task,
            self.seed,
            self.checkpoint,
            self.timesteps,
            self.workdir,
            self.device,
            self.families,
        )
        self.process = ctx.Process(target=_child_main, args=args, daemon=True)
        hidden = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(_ENV_PREFIX)}
        try:
            self.process.start()
        finally:
            os.environ.update(hidden)
        child_conn.close()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def call(self, command: str, *payload):
        """Send one command and wait for its answer until the deadline."""
        assert self.conn is not None and self.process is not None
        try:
            self.conn.send((command, payload))
        except (BrokenPipeError, OSError):
            raise self._died(command) from None
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or not self.conn.poll(remaining):
            self.close()
            raise SubmissionTimeout(
                f"the submission exceeded --timeout {self.timeout:g}s during {command}; raise --timeout or make it faster"
            )
        try:
            kind, result = self.conn.recv()
        except (EOFError, OSError, ConnectionError):
            raise self._died(command) from None
        if kind == "error":
            message, trace = result
            raise ChildFailure(message, trace)
        return result

    def _died(self, command: str) -> ChildFailure:
        assert self.process is not None
        self.process.join(timeout=5)
        code = self.process.exitcode
        if code is not None and code < 0:
            how = f"was killed by signal {signal.Signals(-code).name}"
        else:
            how = f"exited with status {code}"
        return ChildFailure(
            f"the submission process {how} during {command}; it must return, not exit or crash"
        )

    def close(self) -> None:
        if self.process is not None and self.process.is_alive():
            try:
                self.conn.send(("stop", ()))
                self.process.join(timeout=2)
            except Exception:
                pass
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(timeout=3)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(timeout=3)
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
