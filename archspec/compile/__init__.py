"""build: Plan → ``torch.nn.Module``.

The only stage besides data and training that imports torch. Channels and
features come from the Plan (each node's input shapes), never recomputed here.
Submodules are named after the spec's layers, so ``state_dict`` keys read
``conv1.weight`` or ``stage2.0.conv1.weight``.
"""

from __future__ import annotations

from archspec.compile.network import Network, build

__all__ = ["Network", "build"]
