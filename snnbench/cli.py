"""Command line: parse and check arguments, then call the library. No logic of its own.

Exit status: 0 ok, 1 the run failed, 2 bad command-line input (nothing was run), 3 timeout.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

EXAMPLES = """\
examples:
  snnbench tasks                                   which tasks exist and whether their data is here
  snnbench train --task digits-dvs --model submissions/template.py
  snnbench evaluate --task digits-dvs --model submissions/template.py \\
      --checkpoint checkpoints/digits-dvs/template-seed0-T10.pt
  snnbench sweep --tasks digits,digits-dvs --models 'baselines/*' --seeds 0,1,2 --train --jobs 2
  snnbench leaderboard                             rebuild leaderboard/LEADERBOARD.md from the store
  snnbench cite 3f2a9c1b                           BibTeX for a stored result
  snnbench data check --data-root ~/data           which real datasets are present, partial, corrupt

environment: SNNBENCH_DATA (data root, default ~/data), SNNBENCH_STORE (result store, default
./leaderboard/results), SNNBENCH_CACHE (frame cache, default ~/.cache/snnbench).
exit status: 0 ok, 1 run failed, 2 bad input, 3 timeout.
"""


class UsageError(ValueError):
    """Bad command-line input: printed as one line, exit status 2, nothing run."""


def _positive(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be at least 1, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--timeout must be a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--timeout must be positive, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit 2, as for every other bad input
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="snnbench",
        description="Evaluate spiking neural networks under one protocol; every number lands in a "
        "Parquet store with its provenance, and the leaderboard is built from that store.",
        epilog=EXAMPLES,
        formatter_class=fmt,
    )
    from snnbench import __version__

    parser.add_argument("--version", action="version", version=f"snnbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("tasks", help="list tasks, their versions and whether their data is present")
    p.add_argument("--data-root", help="folder holding the real datasets (default: SNNBENCH_DATA or ~/data)")

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--task", required=True, help="task id (see `snnbench tasks`)")
        p.add_argument(
            "--model", required=True, help="submission: a .py file or a package folder defining build(task)"
        )
        p.add_argument(
            "--seed",
            type=int,
            default=0,
            help="seeds python, numpy and torch before build and before running (default 0)",
        )
        p.add_argument(
            "--timesteps",
            type=_positive("--timesteps"),
            help="override the task's T (recorded; the leaderboard groups by T)",
        )
        p.add_argument(
            "--data-root", help="folder holding the real datasets (default: SNNBENCH_DATA or ~/data)"
        )

    p = sub.add_parser(
        "evaluate",
        help="evaluate a submission on a task and store the run",
        description="Run the submission isolated in a child process on the task's test split, measure "
        "accuracy, spikes, SynOps, MACs, energy, latency and footprint, and append one run to the store.",
        formatter_class=fmt,
    )
    run_options(p)
    p.add_argument("--checkpoint", help="state_dict to load into build(task)'s model (from `snnbench train`)")
    p.add_argument("--store", help="result store folder (default: SNNBENCH_STORE or ./leaderboard/results)")
    p.add_argument(
        "--limit",
        type=_positive("--limit"),
        help="evaluate only the first N test samples (stored as not reportable)",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=600.0,
        help="seconds for the whole submission: build and every forward (default 600)",
    )
    p.add_argument(
        "--metrics",
        default="",
        help="comma-separated metric families to run beyond the task's own, e.g. robustness "
        "(FGSM/PGD/noise/event corruptions with gradient-masking checks, PROTOCOLS.md section 4)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "train", help="train a submission (its train() or the default BPTT recipe) and save a checkpoint"
    )
    run_options(p)
    p.add_argument("--epochs", type=_positive("--epochs"), help="override the task's training epochs")
    p.add_argument("--out", help="checkpoint path (default: checkpoints/<task>/<method>-seed<S>-T<T>.pt)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "sweep",
        help="evaluate a grid of tasks x submissions x seeds into one store (optionally training first)",
        description="Each cell runs `snnbench train` (with --train) and `snnbench evaluate` as its own "
        "process, locally in parallel (--jobs) or as Ray tasks on a cluster (--ray ADDRESS).",
        formatter_class=fmt,
    )
    p.add_argument("--tasks", required=True, help="comma-separated task ids, e.g. digits,digits-dvs")
    p.add_argument(
        "--models", required=True, help="comma-separated submission paths or globs, e.g. 'baselines/*'"
    )
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument(
        "--train", action="store_true", help="train every cell with `snnbench train` before evaluating it"
    )
    p.add_argument(
        "--jobs", type=_positive("--jobs"), default=1, help="cells run at once on this machine (default 1)"
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run cells as Ray tasks on this cluster (pip install 'snnbench[ray]')",
    )
    p.add_argument("--store", help="result store folder (default: SNNBENCH_STORE or ./leaderboard/results)")
    p.add_argument(
        "--limit", type=_positive("--limit"), help="passed to every evaluate (runs become not reportable)"
    )

    p = sub.add_parser("leaderboard", help="rebuild LEADERBOARD.md and site/index.html from the store alone")
    p.add_argument("--store", help="result store folder (default: SNNBENCH_STORE or ./leaderboard/results)")
    p.add_argument("--out", help="output folder (default: the store's parent folder)")
    p.add_argument(
        "--skip-corrupt",
        action="store_true",
        help="build anyway when part files are unreadable, listing them on the page",
    )

    p = sub.add_parser("cite", help="BibTeX for a stored result and the method's paper")
    p.add_argument("result_id", help="a result id or a unique prefix of one (see LEADERBOARD.md)")
    p.add_argument("--store", help="result store folder (default: SNNBENCH_STORE or ./leaderboard/results)")

    p = sub.add_parser("data", help="check where real datasets must be and whether they are usable")
    p.add_argument(
        "action",
        choices=["check"],
        help="check: one line per task with present / partial / missing / corrupt",
    )
    p.add_argument("--data-root", help="folder holding the real datasets (default: SNNBENCH_DATA or ~/data)")
    p.add_argument("--task", help="check only this task")
    return parser


# ---------------------------------------------------------------- commands


def _task(task_id: str):
    from snnbench.tasks import TaskError, get_task

    try:
        return get_task(task_id)
    except TaskError as exc:
        raise UsageError(str(exc)) from None


def _submission(path: str):
    from snnbench.submission import resolve

    try:
        return resolve(path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _store(path: str | None):
    from snnbench.store import Store, default_store_path

    try:
        return Store(default_store_path(path))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_tasks(args) -> int:
    from tabulate import tabulate

    from snnbench import data
    from snnbench.tasks import load_tasks

    rows = []
    for task in load_tasks().values():
        status = _status_word(data, task, args.data_root)
        width = task.classes if task.kind == "classification" else task.actions
        shape = "x".join(map(str, task.input_shape))
        rows.append([task.id, task.version, task.kind, f"[T,B,{shape}]", task.timesteps, width, status])
    print(tabulate(rows, headers=["task", "version", "kind", "input", "T", "classes/actions", "data"]))
    print(
        f"\ndata root: {data.data_root(args.data_root)}  (set --data-root or SNNBENCH_DATA; `snnbench data check` says more)"
    )
    return 0


def _status_word(data, task, root) -> str:
    """present / missing / corrupt / embedded, or `partial (n of N)`."""
    try:
        st = data.check(task, root)
    except (ImportError, data.DataError) as exc:
        return f"error: {exc}"
    if st.word == "partial" and st.detail:
        return f"partial ({st.detail.split(';')[0].split(',')[0]})"
    return st.word


def cmd_data(args) -> int:
    from snnbench import data
    from snnbench.tasks import load_tasks

    tasks = [_task(args.task)] if args.task else list(load_tasks().values())
    worst = 0
    for task in tasks:
        try:
            st = data.check(task, args.data_root)
        except (ImportError, data.DataError) as exc:
            print(f"{task.id:14s} error     {exc}")
            worst = 1
            continue
        extra = "; ".join(s for s in (st.layout, st.detail) if s)
        print(f"{task.id:14s} {st.word:9s} {st.folder}" + (f"  ({extra})" if extra else ""))
        if st.word == "corrupt":
            worst = 1
    return worst


def cmd_evaluate(args) -> int:
    from tabulate import tabulate

    from snnbench.data import DataError
    from snnbench.evaluate import evaluate, headline

    task = _task(args.task)
    ref = _submission(args.model)
    from snnbench.tasks import METRIC_FAMILIES

    extra = tuple(m for m in args.metrics.split(",") if m)
    unknown = [m for m in extra if m not in METRIC_FAMILIES]
    if unknown:
        raise UsageError(
            f"--metrics: unknown family {unknown[0]!r}; choose from {', '.join(METRIC_FAMILIES)}"
        )
    if args.checkpoint and not Path(args.checkpoint).is_file():
        raise UsageError(f"--checkpoint {args.checkpoint}: no such file; train one with `snnbench train`")
    store = _store(args.store)
    try:
        outcome = evaluate(
            task,
            ref,
            store,
            checkpoint=args.checkpoint,
            seed=args.seed,
            timesteps=args.timesteps,
            limit=args.limit,
            timeout=args.timeout,
            data_root=args.data_root,
            progress=not args.quiet and sys.stderr.isatty(),
            extra_metrics=extra,
        )
    except DataError as exc:
        raise UsageError(str(exc)) from None
    run = outcome.run
    if run["data_status"] == "partial":
        print(f"warning: {task.id} data is partial; this run is stored as not reportable", file=sys.stderr)
    print(
        f"{task.id} v{task.version} | {run['method']} | seed {run['seed']} | T={run['timesteps']} | status {run['status']}"
    )
    if run["status"] != "ok":
        print(f"error: {run['error']}", file=sys.stderr)
        if outcome.log_path:
            print(f"traceback: {outcome.log_path}", file=sys.stderr)
    else:
        print(tabulate(headline(outcome), tablefmt="plain"))
        if run["uncounted"]:
            print(
                f"note: activity figures are a lower bound; uncounted module types: {', '.join(run['uncounted'])}"
            )
        if not run["reportable"]:
            print("note: not reportable (--limit or partial data); the leaderboard leaves it out")
    print(f"result {run['result_id']} -> {store.path}")
    return outcome.exit_code


def cmd_train(args) -> int:
    from snnbench.data import DataError
    from snnbench.submission import SubmissionError
    from snnbench.training import train

    task = _task(args.task)
    ref = _submission(args.model)
    try:
        result = train(
            task,
            ref,
            seed=args.seed,
            timesteps=args.timesteps,
            data_root=args.data_root,
            out=args.out,
            epochs=args.epochs,
            progress=not args.quiet,
        )
    except DataError as exc:
        raise UsageError(str(exc)) from None
    except SubmissionError as exc:
        print(f"snnbench train: {exc}", file=sys.stderr)
        return 1
    last = result.history[-1] if result.history else {}
    acc = f", final train accuracy {last['train_accuracy']:.3f}" if "train_accuracy" in last else ""
    print(f"trained {ref.method} on {task.id} with {result.recipe} in {result.seconds:.1f} s{acc}")
    print(f"checkpoint: {result.checkpoint}  sha256 {result.sha256[:16]}")
    print(f"next: snnbench evaluate --task {task.id} --model {args.model} --checkpoint {result.checkpoint}")
    return 0


def cmd_sweep(args) -> int:
    from snnbench import sweep

    tasks = [t for t in args.tasks.split(",") if t]
    for tid in tasks:
        _task(tid)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        raise UsageError(f"--seeds must be comma-separated whole numbers, got {args.seeds!r}") from None
    models = sweep.expand_models(m for m in args.models.split(",") if m)
    for model in models:
        _submission(model)
    if not models or not seeds:
        raise UsageError("--models and --seeds must name at least one submission and one seed")
    store = str(_store(args.store).path)
    extra = ["--limit", str(args.limit)] if args.limit else []
    cells = sweep.grid(tasks, models, seeds)
    results = sweep.run(
        cells, train=args.train, store=store, jobs=args.jobs, ray_address=args.ray, extra=extra
    )
    failed = [r for r in results if r.exit_code != 0]
    for r in failed:
        last = r.tail.strip().splitlines()[-1] if r.tail.strip() else ""
        print(f"{r.cell.label()}: exit {r.exit_code}: {last}", file=sys.stderr)
    print(
        f"{len(results) - len(failed)} of {len(results)} runs ok -> {store}; `snnbench leaderboard` rebuilds the page"
    )
    return 1 if failed else 0


def cmd_leaderboard(args) -> int:
    from snnbench import leaderboard
    from snnbench.store import CorruptStoreError

    store = _store(args.store)
    out = Path(args.out) if args.out else store.path.parent
    try:
        written = leaderboard.build(store.path, out, skip_corrupt=args.skip_corrupt)
    except CorruptStoreError as exc:
        print(f"snnbench leaderboard: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_cite(args) -> int:
    from snnbench.cite import cite

    store = _store(args.store)
    try:
        print(cite(store.path, args.result_id))
    except (ValueError, KeyError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None
    return 0


COMMANDS = {
    "tasks": cmd_tasks,
    "evaluate": cmd_evaluate,
    "train": cmd_train,
    "leaderboard": cmd_leaderboard,
    "sweep": cmd_sweep,
    "cite": cmd_cite,
    "data": cmd_data,
}


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (partial data, unpinned splits) as one line each, without the source line."""
    print(f"warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _one_line_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"snnbench {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
