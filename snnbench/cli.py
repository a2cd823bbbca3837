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
  snnbench leaderboard                             your runs next to the committed baselines (page in your store)
  snnbench cite 3f2a9c1b                           BibTeX for a stored result
  snnbench show 3f2a9c1b                           a stored run: provenance, headline, per-layer table
  snnbench data check --data-root ~/data           which real datasets are present, partial, corrupt

environment: SNNBENCH_DATA (data root, default ~/data), SNNBENCH_STORE (your result store, default
~/.local/share/snnbench/results), SNNBENCH_CACHE (frame and kernel cache, default ~/.cache/snnbench),
OMP_NUM_THREADS (torch threads; 1 per process on a shared machine).
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


STORE_HELP = (
    "result store folder, or a pyarrow filesystem URI such as s3://bucket/results (default: "
    "SNNBENCH_STORE, else ~/.local/share/snnbench/results; the committed baselines live in leaderboard/results)"
)


def device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        help="torch device for the model, e.g. cpu, cuda, cuda:1 (default: cuda when available, else "
        "cpu); recorded in the run row",
    )


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
    from snnbench.metrics.registry import FAMILIES

    parser.add_argument("--version", action="version", version=f"snnbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "tasks",
        help="list tasks, their versions and whether their data is present",
        description="One row per task file in tasks/: id, version, kind, the input the model gets, "
        "T, classes or actions, and the state of its data on this machine (embedded, present, "
        "partial (n of N), missing or corrupt).",
        formatter_class=fmt,
    )
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
    p.add_argument(
        "--checkpoint",
        help="state_dict to load into build(task)'s model (from `snnbench train`); without one, a "
        "submission that trains is evaluated untrained and stored as not reportable",
    )
    p.add_argument("--store", help=STORE_HELP)
    device_option(p)
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
        help="comma-separated metric families to run beyond the task's own: "
        + "; ".join(f"{n} ({f.summary})" for n, f in FAMILIES.items() if f.built and f.where == "parent"),
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "train",
        help="train a submission (its train() or the default BPTT recipe) and save a checkpoint",
        description="Train on the task's training split in this process: the submission's own "
        "train(model, task, data, budget) if it has one, else the default surrogate-gradient BPTT "
        "recipe (or double DQN on RL tasks), under the task's [train] budget. Writes a plain "
        "state_dict (byte-identical for identical weights) and <checkpoint>.json, the training record "
        "(recipe, budget, epochs done, wall time) that `evaluate` copies into its run.",
        formatter_class=fmt,
    )
    run_options(p)
    device_option(p)
    p.add_argument("--epochs", type=_positive("--epochs"), help="override the task's training epochs")
    p.add_argument(
        "--wall-time",
        type=_seconds,
        metavar="SECONDS",
        help="stop training after this many seconds; a budget cut short is recorded in the "
        "checkpoint's record and in every run evaluated from it",
    )
    p.add_argument("--out", help="checkpoint path (default: checkpoints/<task>/<method>-seed<S>-T<T>.pt)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="for long trainings that may be interrupted (Atari DQN): keep the training state in "
        "<checkpoint>.state/ (saved every so often and at the --wall-time cap) and continue from it "
        "if it is there; run the same command again to go on",
    )
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
        help="run cells as Ray tasks (one CPU each) on the existing cluster at ADDRESS (host:port, or "
        "'auto' on a cluster node); every node must see this folder and the store (pip install 'snnbench[ray]')",
    )
    p.add_argument("--store", help=STORE_HELP)
    p.add_argument(
        "--limit", type=_positive("--limit"), help="passed to every evaluate (runs become not reportable)"
    )
    p.add_argument(
        "--metrics", default="", help="passed to every evaluate, e.g. robustness (see `evaluate --help`)"
    )

    p = sub.add_parser(
        "leaderboard",
        help="build the leaderboard page: your runs next to the committed baselines",
        description="Build LEADERBOARD.md and the static site site/ (tables, plots, a page per method) from result stores alone. By default "
        "your store (--store / SNNBENCH_STORE / ~/.local/share/snnbench/results) is shown next to the "
        "committed baselines (leaderboard/results, read-only, marked as such) and the page is written "
        "into your store's folder; no tracked file changes. --committed rebuilds the project's own "
        "leaderboard/ from the committed store only (what `sweep --train` maintainers do).",
        formatter_class=fmt,
    )
    p.add_argument("--store", help=STORE_HELP)
    p.add_argument(
        "--out", help="output folder (default: your store's folder; with --committed: leaderboard/)"
    )
    p.add_argument(
        "--committed",
        action="store_true",
        help="rebuild the committed leaderboard/ from the committed store alone",
    )
    p.add_argument(
        "--no-baselines", action="store_true", help="show only your store, without the committed baselines"
    )
    p.add_argument(
        "--skip-corrupt",
        action="store_true",
        help="build anyway when part files are unreadable, listing them on the page",
    )

    p = sub.add_parser(
        "cite",
        help="BibTeX for a stored result, or for every row of a task's table, and the methods' papers",
        description="Print a BibTeX entry for one stored run (task and version, method, headline "
        "figures, commit), the method's own CITATION, and the software entry for snnbench (year, "
        "version, repository URL). The id is looked up in your store, then in the committed baselines "
        "store. With --task instead of an id: one entry per row of that task's leaderboard table(s) "
        "(your runs and the committed baselines, as `snnbench leaderboard` shows them; --timesteps "
        "picks one T), then each method's CITATION and the software entry.",
        formatter_class=fmt,
    )
    p.add_argument("result_id", nargs="?", help="a result id or a unique prefix of one (see LEADERBOARD.md)")
    p.add_argument("--task", help="cite every row of this task's table instead of one result, e.g. digits")
    p.add_argument("--timesteps", type=_positive("--timesteps"), help="with --task: only the table at this T")
    p.add_argument("--store", help=STORE_HELP)

    p = sub.add_parser(
        "show",
        help="print a stored run: its provenance, headline figures and per-layer activity",
        description="Print one stored run: task and version, method, submission and checkpoint "
        "hashes, seed, T, device, versions, commit, status, whether it is reportable and why not, "
        "the metric families and the training record; then the headline figures and one row per "
        "layer (spikes, firing rate, SynOps, MACs, dense ops, neuron updates per sample). The id is "
        "looked up in your store, then in the committed baselines store.",
        formatter_class=fmt,
    )
    p.add_argument("result_id", help="a result id or a unique prefix of one (see LEADERBOARD.md)")
    p.add_argument("--store", help=STORE_HELP)

    p = sub.add_parser(
        "data",
        help="check where real datasets must be and whether they are usable",
        description="`snnbench data check` prints one line per task: present, partial (n of N), "
        "missing (with the folder layout expected under the data root) or corrupt (naming the bad "
        "file). Nothing is ever downloaded; docs/DATASETS.md says where each dataset comes from.",
        formatter_class=fmt,
    )
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


def _is_committed(store) -> bool:
    """True when `store` is the committed baselines store itself (never for a store at a URI)."""
    from snnbench.store import COMMITTED_STORE

    return store.is_local and COMMITTED_STORE.resolve() == store.path.resolve()


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
        folder = str(st.folder)
        parts = []
        for text in (st.layout, st.detail):  # say the folder once, at the start of the line
            text = (text or "").replace(f"{folder}: ", "").replace(f"{folder}/", "").strip()
            if text and text not in parts:
                parts.append(text)
        extra = "; ".join(parts)
        print(f"{task.id:14s} {st.word:9s} {folder}" + (f"  ({extra})" if extra else ""))
        if st.word == "corrupt":
            worst = 1
    return worst


def _usage(exc: Exception) -> UsageError:
    """A library input error in the CLI's words: the parameter at fault named by its flag."""
    from snnbench.metrics.registry import FamilyError

    argument = getattr(exc, "argument", None)
    if argument and exc.detail:
        return UsageError(f"--{argument.replace('_', '-')} {exc.detail}")
    if isinstance(exc, FamilyError):  # the API names the parameter, `metrics: ...`
        return UsageError(f"--{exc}")
    return UsageError(str(exc))


def cmd_evaluate(args) -> int:
    from tabulate import tabulate

    from snnbench import api
    from snnbench.evaluate import headline

    try:
        outcome = api.evaluate(
            args.task,
            args.model,
            checkpoint=args.checkpoint,
            seed=args.seed,
            timesteps=args.timesteps,
            limit=args.limit,
            metrics=args.metrics,
            store=args.store,
            device=args.device,
            timeout=args.timeout,
            data_root=args.data_root,
            progress=not args.quiet and sys.stderr.isatty(),
        )
    except api.INPUT_ERRORS as exc:
        raise _usage(exc) from None
    store = api.open_store(args.store)
    run = outcome.run
    print(
        f"{run['task']} v{run['task_version']} | {run['method']} | seed {run['seed']} | T={run['timesteps']} | status {run['status']}"
    )
    if run["status"] != "ok":
        print(f"error: {run['error']}", file=sys.stderr)
        if outcome.log_path:
            print(f"traceback: {outcome.log_path}", file=sys.stderr)
    else:
        print(tabulate(headline(outcome), tablefmt="plain"))
        _print_robustness(outcome.rows)
        if run["uncounted"]:
            print(
                f"note: activity figures are a lower bound; uncounted module types: {', '.join(run['uncounted'])}"
            )
        if run.get("train_budget_complete") is False:
            print(
                "note: the checkpoint's training ran short of its budget of epochs (see its training record)"
            )
        if run.get("untrained"):
            print(
                "note: not reportable: evaluated without --checkpoint, i.e. untrained (a submission that "
                "needs no training says NEEDS_TRAINING = False)"
            )
        elif not run["reportable"]:
            print("note: not reportable (--limit or partial data); the leaderboard leaves it out")
        _print_comparison(run, outcome.rows)
    print(f"result {run['result_id']} -> {store.path}")
    return outcome.exit_code


def _print_robustness(rows) -> None:
    from tabulate import tabulate

    attacks = [(r.condition, f"{r.value:.4f}", r.n) for r in rows if r.metric == "robust_accuracy"]
    flags = [
        (r.condition, "FAILED" if r.value >= 0.5 else "ok")
        for r in rows
        if r.metric == "gradient_masking_suspected"
    ]
    if attacks:
        print("\nrobust accuracy (first n test samples)")
        print(tabulate(attacks, headers=["attack", "accuracy", "n"], tablefmt="plain"))
    if flags:
        print("\ngradient-masking checks")
        print(tabulate(flags, headers=["check", "result"], tablefmt="plain"))


def _print_comparison(run: dict, rows) -> None:
    """This run next to the committed baselines of the same task, version and T."""
    import pandas as pd
    from tabulate import tabulate

    from snnbench.cite import headline as figures_of
    from snnbench.leaderboard import comparison
    from snnbench.store import COMMITTED_STORE

    frame = pd.DataFrame([r.as_dict() for r in rows]) if rows else pd.DataFrame()
    table = comparison(run, figures_of(frame), COMMITTED_STORE)
    if table is None:
        return
    headers, body = table
    print(
        f"\n{run['task']} v{run['task_version']}, T={run['timesteps']}: this run next to the committed baselines"
    )
    print(tabulate(body, headers=headers, tablefmt="github", disable_numparse=True))
    print(
        "`snnbench leaderboard` writes the full page (your runs and the baselines) into your store's folder"
    )


def cmd_train(args) -> int:
    from snnbench import api
    from snnbench.submission import SubmissionError
    from snnbench.training import record_path

    try:
        result = api.train(
            args.task,
            args.model,
            seed=args.seed,
            timesteps=args.timesteps,
            epochs=args.epochs,
            wall_time_s=args.wall_time,
            out=args.out,
            device=args.device,
            data_root=args.data_root,
            progress=not args.quiet,
            resume=args.resume,
        )
    except api.INPUT_ERRORS as exc:
        raise _usage(exc) from None
    except SubmissionError as exc:
        print(f"snnbench train: {exc}", file=sys.stderr)
        return 1
    task, method, device = result.record["task"], result.record["method"], result.record["budget"]["device"]
    last = result.history[-1] if result.history else {}
    acc = f", final train accuracy {last['train_accuracy']:.3f}" if "train_accuracy" in last else ""
    print(f"trained {method} on {task} with {result.recipe} in {result.seconds:.1f} s on {device}{acc}")
    if not result.budget_complete:
        done = result.record.get("epochs_completed")
        print(
            f"warning: training {'stopped at the wall-time cap' if result.record.get('stopped_by') == 'wall_time_s' else 'ran'} "
            f"after {done} of {result.record['budget']['epochs']} epochs of its budget; this is recorded and "
            "every run evaluated from this checkpoint says so",
            file=sys.stderr,
        )
    print(
        f"checkpoint: {result.checkpoint}  sha256 {result.sha256[:16]}  (record: {record_path(result.checkpoint)})"
    )
    print(f"next: snnbench evaluate --task {task} --model {args.model} --checkpoint {result.checkpoint}")
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
    families = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    if families:
        from snnbench.metrics.registry import FamilyError, check

        try:
            check(list(families))
        except FamilyError as exc:
            raise UsageError(str(exc)) from None
    cells = sweep.grid(tasks, models, seeds)
    try:
        if args.ray:
            sweep.require_ray()
        results = sweep.run(
            cells,
            train=args.train,
            store=store,
            jobs=args.jobs,
            ray_address=args.ray,
            limit=args.limit,
            metrics=families,
            progress=sys.stderr.isatty(),
        )
    except sweep.RayUnavailable as exc:
        raise UsageError(str(exc)) from None
    failed = [r for r in results if r.exit_code != 0]
    for r in failed:
        last = r.tail.strip().splitlines()[-1] if r.tail.strip() else ""
        print(f"{r.cell.label()}: exit {r.exit_code}: {last}", file=sys.stderr)
    print(sweep.summary_table(results, store))
    skipped = sum(r.skipped for r in results)
    resumed = f" ({skipped} already stored, skipped)" if skipped else ""
    print(
        f"{len(results) - len(failed)} of {len(results)} runs ok{resumed} -> {store}; `snnbench leaderboard` builds the page"
    )
    if failed:
        print("rerun the same command to resume: runs already stored are skipped", file=sys.stderr)
    return 1 if failed else 0


def cmd_leaderboard(args) -> int:
    from snnbench import leaderboard
    from snnbench.store import COMMITTED_STORE, CorruptStoreError

    if args.committed:
        if args.store:
            raise UsageError("--committed builds from the committed store only; drop --store")
        store_path, baselines = COMMITTED_STORE, None
        out = Path(args.out) if args.out else COMMITTED_STORE.parent
    else:
        store = _store(args.store)
        store_path = store.path
        baselines = None if args.no_baselines else COMMITTED_STORE
        if not args.out and not store.is_local:
            raise UsageError(f"the store {store_path} is not a local folder; give --out FOLDER for the page")
        out = Path(args.out) if args.out else store_path
    try:
        written = leaderboard.build(
            store_path,
            out,
            skip_corrupt=args.skip_corrupt,
            baselines=baselines,
            submissions_root=COMMITTED_STORE.parent.parent if args.committed else None,
        )
    except CorruptStoreError as exc:
        print(f"snnbench leaderboard: {exc}", file=sys.stderr)
        return 1
    pages = [p for p in written if p.suffix == ".html"]
    print(f"wrote {written[0]}")
    print(
        f"wrote {pages[0] if pages else out / 'site'} and {len(written) - 1 - (1 if pages else 0)} more files under {out / 'site'}"
    )
    return 0


def cmd_cite(args) -> int:
    from snnbench.cite import cite, cite_table
    from snnbench.store import COMMITTED_STORE

    if (args.result_id is None) == (args.task is None):
        raise UsageError("give a result id, or --task TASK for a whole table (not both)")
    if args.timesteps is not None and args.task is None:
        raise UsageError("--timesteps goes with --task")
    store = _store(args.store)
    places = [store.path] + ([] if _is_committed(store) else [COMMITTED_STORE])
    if args.task is not None:
        stores = [(store.path, "yours")] + [(p, "baseline") for p in places[1:]]
        try:
            print(cite_table(stores, args.task, args.timesteps), end="")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return 0
    errors = []
    for place in places:
        try:
            print(cite(place, args.result_id))
            return 0
        except (ValueError, KeyError) as exc:
            errors.append(str(exc).strip("'\""))
    raise UsageError(errors[0])


def cmd_show(args) -> int:
    from snnbench.show import show
    from snnbench.store import COMMITTED_STORE

    store = _store(args.store)
    places = [store.path] + ([] if _is_committed(store) else [COMMITTED_STORE])
    errors = []
    for place in places:
        try:
            text = show(place, args.result_id)
        except (ValueError, KeyError) as exc:
            errors.append(str(exc).strip("'\""))
            continue
        print(text, end="")
        return 0
    raise UsageError(errors[0])


COMMANDS = {
    "tasks": cmd_tasks,
    "evaluate": cmd_evaluate,
    "train": cmd_train,
    "leaderboard": cmd_leaderboard,
    "sweep": cmd_sweep,
    "cite": cmd_cite,
    "show": cmd_show,
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
