"""The child-process protocol itself: gradients for attacks cross as vector-Jacobian products."""

from __future__ import annotations

import pytest
import torch

from snnbench.sandbox import ChildFailure, Sandbox
from snnbench.submission import resolve
from snnbench.tasks import get_task

LINEAR = """
import torch
from torch import nn

def build(task):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(2), nn.Linear(64, 10))
"""


def reference_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Linear(64, 10))


def test_input_gradient_equals_local_autograd(write_submission):
    x = torch.rand(4, 3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    g = torch.randn(4, 3, 10, generator=torch.Generator().manual_seed(2))
    with Sandbox(resolve(write_submission(LINEAR)), get_task("digits"), 0, 4) as box:
        box.call("build", True)
        box.call("forward", x)
        box.call("finish")
        out = box.call("forward_with_graph", x)
        grad = box.call("input_gradient", g)
    net = reference_net()
    xr = x.clone().requires_grad_(True)
    ref_out = net(xr)
    (ref_out * g).sum().backward()
    assert torch.allclose(out, ref_out.detach(), atol=1e-6)
    assert torch.allclose(grad, xr.grad, atol=1e-6)


def test_graph_forwards_are_refused_while_probes_count(write_submission):
    with Sandbox(resolve(write_submission(LINEAR)), get_task("digits"), 0, 4) as box:
        box.call("build", True)
        with pytest.raises(ChildFailure, match="only allowed after finish"):
            box.call("forward_with_graph", torch.rand(4, 2, 1, 8, 8))
