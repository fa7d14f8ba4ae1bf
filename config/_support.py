"""Valid Flagger input that canary-engine cannot drive yet: said plainly, once, with the way out.

Flagger accepts these Canaries; canary-engine refuses them at validation (``canary-engine
validate``, ``simulate``, and the controller's ``Validated=False`` condition) instead of failing on
some later tick. Each problem names the field, what is not built, and what works instead.

Pure data: no I/O. Imports only ``config`` siblings.
"""

from __future__ import annotations

from collections.abc import Iterable

from config._spec import CanarySpec
from config.errors import Problem

#: Target kinds canary-engine drives.
SUPPORTED_TARGET_KINDS = ("Deployment", "DaemonSet", "Service")
#: ``autoscalerRef`` kinds canary-engine drives (an HPA, or a KEDA ScaledObject).
SUPPORTED_AUTOSCALER_KINDS = ("HorizontalPodAutoscaler", "ScaledObject")

_KNATIVE_API_GROUP = "serving.knative.dev"


def is_knative(spec: CanarySpec) -> bool:
    """A Knative Canary: a Knative Service target, or the ``knative`` provider (Flagger requires
    the two together)."""
    return spec.provider == "knative" or spec.target_ref.api_version.startswith(
        f"{_KNATIVE_API_GROUP}/"
    )


def not_built_problems(spec: CanarySpec) -> Iterable[Problem]:
    """What in ``spec`` canary-engine cannot drive yet, one problem per feature."""
    if is_knative(spec):
        # Knative Services are driven by the knative router and workload (traffic/_knative.py);
        # Flagger requires the target and the provider together. (A knative provider on another
        # target is the router's own check.)
        knative_target = spec.target_ref.api_version.startswith(f"{_KNATIVE_API_GROUP}/")
        if knative_target and spec.provider != "knative":
            yield Problem(
                "spec.provider",
                "a Knative Service target needs provider knative (it routes with the Service's "
                "own traffic split), as in Flagger",
            )
        return
    kind = spec.target_ref.kind
    if kind not in SUPPORTED_TARGET_KINDS:
        yield Problem(
            "spec.targetRef.kind",
            f"{kind} targets are not supported by canary-engine yet; Deployment, DaemonSet and "
            "Service targets can be analysed",
        )
    analysis = spec.analysis if spec.analysis is not None else spec.canary_analysis
    if kind == "DaemonSet" and analysis is not None and analysis.iterations is None:
        # One pod per node: no replica count to split traffic with (Flagger: blue/green only).
        yield Problem(
            "spec.analysis.iterations",
            "DaemonSet targets are blue/green only, as in Flagger: set iterations instead of "
            "stepWeight / stepWeights",
        )
    autoscaler = spec.autoscaler_ref
    if autoscaler is not None and autoscaler.kind not in SUPPORTED_AUTOSCALER_KINDS:
        yield Problem(
            "spec.autoscalerRef.kind",
            f"{autoscaler.kind} autoscalers (KEDA) cannot be driven by canary-engine yet: it "
            "would neither pause it nor create its -primary copy. Use a HorizontalPodAutoscaler "
            "(autoscaling/v2), or keep Flagger for this Canary",
        )
