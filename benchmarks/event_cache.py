"""Frame cache: first evaluation pass (decode + bin + cache) vs a cached pass.

Writes synthetic CIFAR10-DVS recordings in the original AEDAT 2.0 format (the same writer the
tests use), then times reading every train item through snnbench's real loader: once from an
empty cache, then from the warm cache. Each figure is the minimum over repeats, since the
machine may be shared. Also compares one binning worker with two.

    .venv/bin/python benchmarks/event_cache.py [--per-class 30] [--events 100000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from snnbench.data import load_split  # noqa: E402
from snnbench.tasks import get_task  # noqa: E402
from tests.fixtures_writers import write_cifar10dvs  # noqa: E402


def read_all(task, root: Path) -> tuple[float, float, int]:
    """(seconds in load(), seconds to load and read every item, number of items)."""
    t0 = time.perf_counter()
    dataset = load_split(task, "train", root).dataset
    t_load = time.perf_counter() - t0
    for i in range(len(dataset)):
        dataset[i]
    return t_load, time.perf_counter() - t0, len(dataset)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # partial / unpinned-split warnings of the synthetic set
    work = Path(tempfile.mkdtemp(prefix="snnbench-event-cache-"))
    try:
        write_cifar10dvs(work / "data", per_class=args.per_class, n_events=args.events)
        size = sum(p.stat().st_size for p in (work / "data").rglob("*.aedat")) / 1e6
        print(f"{10 * args.per_class} recordings x {args.events} events (AEDAT 2.0, {size:.0f} MB)")
        task = get_task("cifar10dvs")
        task = dataclasses.replace(task, data={**task.data, "total_recordings": 10 * args.per_class})
        results = {}
        for workers in (1, 2):
            os.environ["SNNBENCH_DATA_WORKERS"] = str(workers)
            firsts, cached = [], []
            for r in range(args.repeats):
                os.environ["SNNBENCH_CACHE"] = str(work / f"cache-{workers}-{r}")
                firsts.append(read_all(task, work / "data"))
                cached += [read_all(task, work / "data") for _ in range(3)]
            first = min(firsts, key=lambda v: v[1])
            warm = min(cached, key=lambda v: v[1])
            results[workers] = (first, warm)
            print(
                f"workers={workers}: first pass {first[1]:.2f} s ({first[2]} items) | cached {warm[1]:.3f} s"
                f" | speed-up {first[1] / warm[1]:.1f}x (load() alone {first[0] / warm[0]:.0f}x)"
            )
        (first, warm) = results[2]
        print(
            f"event_cache: cached vs first-pass read of the train split {first[1] / warm[1]:.1f}x (target >= 10x)"
        )
        print(
            f"event_cache: first pass with two binning workers vs one {results[1][0][1] / results[2][0][1]:.2f}x (target >= 1.5x)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
