"""Latency rows: timesteps used and wall-clock per sample of the evaluation forward."""

from __future__ import annotations

from snnbench.metrics import MetricRow


def latency_rows(timesteps: int, seconds_per_batch: float | None, batch: int | None) -> list[MetricRow]:
    """latency_timesteps always; latency_ms_per_sample and throughput when a timing exists.

    The timing is the median of three hook-free forwards of the first evaluation batch (after one
    warm-up), measured in the submission's process, so probe overhead never inflates it.
    """
    rows = [MetricRow("latency_timesteps", float(timesteps), "steps")]
    if seconds_per_batch and batch:
        per_sample = seconds_per_batch / batch
        rows.append(MetricRow("latency_ms_per_sample", per_sample * 1e3, "ms", n=batch))
        rows.append(MetricRow("throughput_samples_per_s", 1.0 / per_sample, "1/s", n=batch))
    return rows
