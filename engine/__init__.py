"""Engine layer: the pure decision core, the async driver, clocks, simulate and the CLI.

Top layer: may import ``analysis``, ``traffic`` and ``config``; nothing imports it.

Names are imported on first use (PEP 562), so ``canary-engine --help`` and ``validate`` do not
pay for numpy, httpx and kubernetes-asyncio (README "Security and limits", start-up).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine._clock import Clock as Clock
    from engine._clock import RealClock as RealClock
    from engine._clock import VirtualClock as VirtualClock
    from engine._effects import Alert as Alert
    from engine._effects import CountOutcome as CountOutcome
    from engine._effects import Decision as Decision
    from engine._effects import Event as Event
    from engine._effects import Need as Need
    from engine._effects import Observation as Observation
    from engine._effects import Promote as Promote
    from engine._effects import RunPostRolloutHooks as RunPostRolloutHooks
    from engine._effects import ScaleFromZero as ScaleFromZero
    from engine._effects import ScaleToZero as ScaleToZero
    from engine._effects import SetRoutes as SetRoutes
    from engine._loop import CanaryDriver as CanaryDriver
    from engine._loop import EngineDeps as EngineDeps
    from engine._loop import Settings as Settings
    from engine._loop import TickReport as TickReport
    from engine._loop import run_canary_loop as run_canary_loop
    from engine._machine import decide as decide
    from engine._machine import has_target_changed as has_target_changed

_WHERE = {
    "Clock": "engine._clock",
    "RealClock": "engine._clock",
    "VirtualClock": "engine._clock",
    "Alert": "engine._effects",
    "CountOutcome": "engine._effects",
    "Decision": "engine._effects",
    "Event": "engine._effects",
    "Need": "engine._effects",
    "Observation": "engine._effects",
    "Promote": "engine._effects",
    "RunPostRolloutHooks": "engine._effects",
    "ScaleFromZero": "engine._effects",
    "ScaleToZero": "engine._effects",
    "SetRoutes": "engine._effects",
    "CanaryDriver": "engine._loop",
    "EngineDeps": "engine._loop",
    "Settings": "engine._loop",
    "TickReport": "engine._loop",
    "run_canary_loop": "engine._loop",
    "decide": "engine._machine",
    "has_target_changed": "engine._machine",
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
