"""Engine layer: the decision core, the shell that drives it, and the commands.

Top layer: may import ``analysis``, ``traffic`` and ``config``; nothing imports it. Inside, three
packages in one direction, enforced by import-linter: ``engine.cli -> engine.shell -> engine.core``.

* ``engine.core`` -- the pure decision core: ``decide(canary, status, observation, now)`` (one tick
  of Flagger's loop), its effects and the operator commands' semantics. No I/O, no clock.
* ``engine.shell`` -- what drives the core: the clock (real or virtual), the per-canary driver
  (observe, decide, carry the effects out), the controller process (watches, leader election,
  ``/metrics``, alerts, logs).
* ``engine.cli`` -- the commands: ``canary-engine`` (``run``, ``simulate``, ``sweep``, ``record``,
  ``validate``, ``get``, ``report``, the operator commands, ``loadtester``) and ``kubectl-canary``.

Names are imported on first use (PEP 562), so ``canary-engine --help`` and ``validate`` do not
pay for numpy, httpx and kubernetes-asyncio (README "Security and limits", start-up).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.core.effects import Alert as Alert
    from engine.core.effects import CountOutcome as CountOutcome
    from engine.core.effects import Decision as Decision
    from engine.core.effects import Event as Event
    from engine.core.effects import Need as Need
    from engine.core.effects import Observation as Observation
    from engine.core.effects import Promote as Promote
    from engine.core.effects import RunPostRolloutHooks as RunPostRolloutHooks
    from engine.core.effects import ScaleFromZero as ScaleFromZero
    from engine.core.effects import ScaleToZero as ScaleToZero
    from engine.core.effects import SetRoutes as SetRoutes
    from engine.core.machine import decide as decide
    from engine.core.machine import has_target_changed as has_target_changed
    from engine.shell.clock import Clock as Clock
    from engine.shell.clock import RealClock as RealClock
    from engine.shell.clock import VirtualClock as VirtualClock
    from engine.shell.loop import CanaryDriver as CanaryDriver
    from engine.shell.loop import EngineDeps as EngineDeps
    from engine.shell.loop import Settings as Settings
    from engine.shell.loop import TickReport as TickReport
    from engine.shell.loop import run_canary_loop as run_canary_loop

_WHERE = {
    "Clock": "engine.shell.clock",
    "RealClock": "engine.shell.clock",
    "VirtualClock": "engine.shell.clock",
    "Alert": "engine.core.effects",
    "CountOutcome": "engine.core.effects",
    "Decision": "engine.core.effects",
    "Event": "engine.core.effects",
    "Need": "engine.core.effects",
    "Observation": "engine.core.effects",
    "Promote": "engine.core.effects",
    "RunPostRolloutHooks": "engine.core.effects",
    "ScaleFromZero": "engine.core.effects",
    "ScaleToZero": "engine.core.effects",
    "SetRoutes": "engine.core.effects",
    "CanaryDriver": "engine.shell.loop",
    "EngineDeps": "engine.shell.loop",
    "Settings": "engine.shell.loop",
    "TickReport": "engine.shell.loop",
    "run_canary_loop": "engine.shell.loop",
    "decide": "engine.core.machine",
    "has_target_changed": "engine.core.machine",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Alert",
    "CanaryDriver",
    "Clock",
    "CountOutcome",
    "Decision",
    "EngineDeps",
    "Event",
    "Need",
    "Observation",
    "Promote",
    "RealClock",
    "RunPostRolloutHooks",
    "ScaleFromZero",
    "ScaleToZero",
    "SetRoutes",
    "Settings",
    "TickReport",
    "VirtualClock",
    "decide",
    "has_target_changed",
    "run_canary_loop",
]
