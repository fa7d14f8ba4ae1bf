"""Turn one tick's checks, webhook answers and routes into ``status.lastAnalysis`` /
``status.achievedWeights`` (config._last_analysis), redacted, ready for the tick's status patch.

A tick that ran checks replaces the recorded checks (a tick without any keeps them, so a Canary
that failed still shows the checks that failed it); a webhook's answer replaces that webhook's
entry, and entries of webhooks no longer in the spec are dropped. When nothing but the times
would change, on a status that does not change otherwise, the stored record is kept as it is, so
a Canary held at a gate is not rewritten every interval only to move a timestamp.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from analysis import CheckResult, HookOutcome, redact
from config import (
    AchievedWeights,
    CanaryStatus,
    CheckRecord,
    LastAnalysis,
    Webhook,
    WebhookRecord,
)
from traffic import Routes


def check_record(result: CheckResult) -> CheckRecord:
    query = result.query
    value = result.value
    return CheckRecord(
        metric=redact(query.metric),
        target=query.target,
        value=value if value is not None and math.isfinite(value) else None,
        min=result.lo,
        max=result.hi,
        verdict=result.verdict.name.lower(),
        explanation=redact(result.explanation or ""),
        dry_run=result.dry_run,
    )


def webhook_record(outcome: HookOutcome, when: str) -> WebhookRecord:
    # Never the URL nor the answer's text: either may carry a credential.
    hook = outcome.hook
    return WebhookRecord(
        name=redact(hook.name), type=hook.hook_type.value, ok=outcome.ok, time=when
    )


def record_hook_answers(
    status: CanaryStatus,
    hook_calls: Sequence[HookOutcome],
    *,
    hooks: Sequence[Webhook],
    when: str,
) -> CanaryStatus:
    """``status`` with these webhook answers (and their time) in ``lastAnalysis``, the checks as
    they were: the answers of the hooks run after a run's last status write (post-rollout)."""
    before = status.last_analysis or LastAnalysis()
    webhooks = _webhook_answers(before, hook_calls, hooks, when)
    return status.replace(last_analysis=dataclasses.replace(before, webhooks=webhooks))


def _webhook_answers(
    before: LastAnalysis, hook_calls: Sequence[HookOutcome], hooks: Sequence[Webhook], when: str
) -> tuple[WebhookRecord, ...]:
    """Each webhook's last answer, these calls' replacing the recorded ones, in spec order."""
    answers = {(w.name, w.type): w for w in before.webhooks}
    answers.update({(a.name, a.type): a for a in (webhook_record(h, when) for h in hook_calls)})
    in_spec = [(redact(h.name), h.hook_type.value) for h in hooks]
    return tuple(answers[key] for key in dict.fromkeys(in_spec) if key in answers)


def record_tick(
    old: CanaryStatus,
    new: CanaryStatus,
    *,
    checks: Sequence[CheckResult],
    hook_calls: Sequence[HookOutcome],
    hooks: Sequence[Webhook],
    routes: Routes | None,
    when: str,
) -> CanaryStatus:
    """``new`` (the decided status) with what this tick observed; ``old`` is the persisted one,
    ``hooks`` the Canary's webhooks in spec order."""
    achieved = new.achieved_weights
    if routes is not None:
        got = routes.achieved
        achieved = None if got is None else AchievedWeights(got.canary, got.primary)
    before = new.last_analysis or LastAnalysis()
    recorded = LastAnalysis(
        time=when if checks else before.time,
        checks=tuple(check_record(c) for c in checks) if checks else before.checks,
        webhooks=_webhook_answers(before, hook_calls, hooks, when),
    )
    if new.last_analysis is None and not recorded.checks and not recorded.webhooks:
        return new.replace(achieved_weights=achieved)
    unchanged = new.replace(last_analysis=old.last_analysis, achieved_weights=achieved) == old
    if unchanged and old.last_analysis is not None and recorded.same_results(old.last_analysis):
        recorded = old.last_analysis
    return new.replace(last_analysis=recorded, achieved_weights=achieved)
