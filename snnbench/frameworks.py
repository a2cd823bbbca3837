"""What snnbench knows about other frameworks' spiking neurons, without importing them.

The activity probes must read spikes from snnTorch, SpikingJelly, Norse and sinabs models, yet
snnbench depends on none of them. So classes are recognised by name: walking type(m).__mro__ and
matching each class's module and qualified name. A framework that is not installed simply never
matches. For every recognised neuron we know:

- where its spikes are in what it returns (snnTorch returns (spk, mem) or (spk, syn, mem), Norse
  (spikes, state); the spike tensor is always the first element);
- how its spike tensor is laid out: "tb" [T, B, ...] (multi-step: snnbench, SpikingJelly
  step_mode="m", Norse sequence modules, snnTorch StateLeaky), "b" [B, ...] one timestep per call
  (snnTorch, SpikingJelly step_mode="s", Norse *Cell), "bt" [B, T, ...] (sinabs; its *Squeeze
  variants fold to [B*T, ...]). The layout is a preference: the probe still checks it against the
  tensor's shape and the batch's B and T.

reset_state(model) clears the state that frameworks keep inside modules, so each batch starts
fresh: snnTorch's mem/syn buffers (per instance, never the class-wide reset_hidden), SpikingJelly
MemoryModule.reset(), sinabs reset_states(). snnbench and Norse neurons keep no state in modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from torch import nn

from snnbench.neurons import BaseNeuron


@dataclass(frozen=True)
class NeuronInfo:
    """A recognised spiking neuron module: its framework and its spike tensor's preferred layout."""

    framework: str
    layout: str
    folded_batch_major: bool = False  # sinabs *Squeeze: [B*T, ...] with b outer


def _mro_names(module: nn.Module) -> tuple[tuple[str, str], ...]:
    return _type_names(type(module))


@lru_cache(maxsize=4096)
def _type_names(cls: type) -> tuple[tuple[str, str], ...]:
    return tuple((c.__module__ or "", c.__qualname__) for c in cls.__mro__)


def _first_class_from(names: tuple[tuple[str, str], ...], package: str) -> str | None:
    """Qualified name of the most derived class of the module that comes from `package`."""
    for mod, qual in names:
        if mod == package or mod.startswith(package + "."):
            return qual
    return None


def _has(names: tuple[tuple[str, str], ...], package: str, quals: set[str]) -> bool:
    return any((mod == package or mod.startswith(package + ".")) and qual in quals for mod, qual in names)


# Norse leaky integrators derive from SNNCell/SNN but emit membrane voltages, not spikes.
_NORSE_NON_SPIKING = {"LICell", "LI", "LIBoxCell", "LIBox"}
_SJ_BASES = {"BaseNode", "SimpleBaseNode"}
_SINABS_SPIKING = {"IAF", "LIF", "ALIF", "IAFSqueeze", "LIFSqueeze", "ALIFSqueeze", "SpikingLayer"}


def neuron_info(module: nn.Module) -> NeuronInfo | None:
    """NeuronInfo if `module` is a spiking neuron snnbench recognises, else None."""
    if isinstance(module, BaseNeuron):
        return NeuronInfo("snnbench", "tb")
    names = _mro_names(module)
    if _has(names, "snntorch", {"SpikingNeuron"}):
        # StateLeaky and its subclasses run a whole [T, B, ...] sequence and return only the
        # membrane unless output=True.
        if _has(names, "snntorch", {"StateLeaky"}):
            return NeuronInfo("snntorch", "tb") if getattr(module, "output", False) else None
        return NeuronInfo("snntorch", "b")
    if _has(names, "spikingjelly", _SJ_BASES):
        step_mode = getattr(module, "step_mode", None)
        if step_mode is None:  # legacy clock_driven package: MultiStep* classes take [T, B, ...]
            multi = type(module).__name__.startswith("MultiStep")
        else:
            multi = step_mode == "m"
        return NeuronInfo("spikingjelly", "tb" if multi else "b")
    if _has(names, "norse", {"SNNCell", "SNN", "SNNRecurrentCell", "SNNRecurrent"}):
        if _first_class_from(names, "norse") in _NORSE_NON_SPIKING:
            return None
        cell = _has(names, "norse", {"SNNCell", "SNNRecurrentCell"})
        return NeuronInfo("norse", "b" if cell else "tb")
    if _has(names, "sinabs", _SINABS_SPIKING) and not _has(names, "sinabs", {"ExpLeak"}):
        if getattr(module, "spike_fn", True) is None:  # sinabs LIF without a spike function
            return None
        squeeze = any("Squeeze" in qual for mod, qual in names if mod.startswith("sinabs"))
        return NeuronInfo("sinabs", "bt", folded_batch_major=squeeze)
    return None


def spike_output(output):
    """The spike tensor in what a recognised neuron returned (first element of a tuple/list)."""
    while isinstance(output, (tuple, list)):
        if not output:
            return None
        output = output[0]
    return output


def reset_state(model: nn.Module) -> None:
    """Clear neuron state kept in modules, instance by instance, so the next batch starts fresh."""
    for m in model.modules():
        names = _mro_names(m)
        if _has(names, "snntorch", {"SpikingNeuron"}):
            reset = getattr(m, "reset_mem", None)
            if callable(reset):
                reset()
        elif _has(names, "spikingjelly", {"MemoryModule"}):
            m.reset()
        elif any(mod == "sinabs" or mod.startswith("sinabs.") for mod, _ in names):
            reset = getattr(m, "reset_states", None)  # sinabs StatefulLayer and its subclasses
            if callable(reset):
                reset()
