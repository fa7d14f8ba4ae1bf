"""Valid Flagger input that canary-engine cannot drive yet: said plainly, once, with the way out.

Flagger accepts these Canaries; canary-engine refuses them at validation (``canary-engine
validate``, ``simulate``, and the controller's ``Validated=False`` condition) instead of failing on
some later tick. Each problem names the field, what is not built, and what works instead.

Pure data: no I/O. Imports only ``config`` siblings.
"""

from __future__ import annotations

from collections.abc import Iterable

from config._spec import NOT_BUILT_AUTOSCALERS, CanarySpec
from config.errors import Problem

_KNATIVE_API_GROUP = "serving.knative.dev"


def _knative_target(spec: CanarySpec) -> bool:
    return spec.target_ref.api_version.startswith(f"{_KNATIVE_API_GROUP}/")


def is_knative(spec: CanarySpec) -> bool:
    """A Knative Canary: a Knative Service target, or the ``knative`` provider (Flagger requires
    the two together)."""
    return spec.provider == "knative" or _knative_target(spec)


def not_built_problems(spec: CanarySpec) -> Iterable[Problem]:
    """What in ``spec`` canary-engine cannot drive yet, one problem per feature."""
    if is_knative(spec):
        # Knative Services are driven by the knative router and workload (traffic/_knative.py);
        # Flagger requires the target and the provider together. (A knative provider on another
        # target is the router's own check.)
        if _knative_target(spec) and spec.provider != "knative":
            yield Problem(
                "spec.provider",
                "a Knative Service target needs provider knative (it routes with the Service's "
                "own traffic split), as in Flagger",
            )
        return
    scaler = spec.autoscaler_ref
    if scaler is not None and scaler.kind in NOT_BUILT_AUTOSCALERS:
        yield Problem(
            "spec.autoscalerRef.kind",
            f"{scaler.kind} (KEDA's HTTP add-on) is not built yet in canary-engine (valid in "
            "newer Flagger); built: HorizontalPodAutoscaler, ScaledObject",
        )
    # (Other target and autoscaler kinds are refused by the schema: TargetRef.kind and
    # AutoscalerRef.kind list what Flagger accepts. A DaemonSet's stepWeight is the kubernetes
    # router's own check: a mesh or an ingress weighs a DaemonSet's traffic as well.)
