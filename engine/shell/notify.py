"""Route a canary's alerts to chat providers: Flagger's ``alert()`` decision (flagger-behaviour §6).

``AlertRouter`` is the engine's ``on_alert``. For each Alert effect it builds the fields
(``Cluster`` from ``--cluster-name``; with metadata also Target, Failed checks threshold, Progress
deadline and Traffic routing), then:

* a Canary without ``analysis.alerts`` goes to the global notifier from the controller's flags --
  MS Teams when ``--msteams-url`` / ``MSTEAMS_URL`` is set, else Slack -- with no severity filter;
* a Canary with ``analysis.alerts`` goes to every entry whose severity admits the alert: ``info``
  receives everything, ``warn`` receives warn and error, ``error`` only error; an empty severity is
  ``info`` (§12 Q6). The entry's AlertProvider is read through the Cluster (namespace defaults to
  the Canary's); its Secret's ``address`` overrides ``spec.address`` and its ``token`` is sent as
  a bearer token; username and channel default to ``flagger`` and ``general``.

Alerting is best effort, as in Flagger: a missing or invalid provider, a missing Secret or a
provider that answers non-2xx is logged and skipped, and never stops the other providers or the
tick. Entries are posted concurrently, so one slow provider costs the tick at most 10 s: 5 s to
read its AlertProvider and Secret, 5 s for the post (Flagger's notifiers' timeout).

A hook's address, its token and its proxy's user info are credentials: ``alert_not_sent`` errors
are redacted with them (``analysis._text.redact``), the global notifier's are added to the log
redaction (``engine.shell.logs.add_secrets``; the sender adds each provider's as it posts), and
neither ``NotifyOptions`` nor ``Target`` shows them in its repr.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import anyio
import structlog

from analysis import hook_secrets, redact, url_secrets
from config import Alert as AlertEntry
from config import Canary, SpecError, parse_alert_provider
from engine.core.effects import Alert, Severity
from engine.shell import logs
from engine.shell.alerts import (
    ALERT_TIMEOUT_SECONDS,
    DEFAULT_ALERT_USERNAME,
    AlertField,
    AlertSender,
)
from traffic import ALERT_PROVIDER, SECRET, Cluster, ObjectRef, decode_secret_data

log = structlog.get_logger("canary-engine")

_RANK: Mapping[str, int] = {"info": 0, "warn": 1, "error": 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyOptions:
    """The controller's notification flags (Flagger's ``-slack-*``, ``-msteams-*``,
    ``-cluster-name``), after Flagger's environment overrides were applied."""

    # The hook URLs, the token and the proxies (user info) are credentials: kept out of the repr.
    slack_url: str = field(default="", repr=False)
    slack_token: str = field(default="", repr=False)
    slack_proxy_url: str = field(default="", repr=False)
    slack_user: str = DEFAULT_ALERT_USERNAME
    slack_channel: str = ""
    msteams_url: str = field(default="", repr=False)
    msteams_proxy_url: str = field(default="", repr=False)
    cluster_name: str = ""

    @classmethod
    def from_flags(
        cls,
        *,
        slack_url: str | None = None,
        slack_token: str | None = None,
        slack_proxy_url: str | None = None,
        slack_user: str | None = None,
        slack_channel: str | None = None,
        msteams_url: str | None = None,
        msteams_proxy_url: str | None = None,
        cluster_name: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> NotifyOptions:
        """Apply Flagger's precedence: a non-empty SLACK_URL, SLACK_TOKEN, SLACK_PROXY_URL,
        MSTEAMS_URL or MSTEAMS_PROXY_URL in the environment wins over the flag."""
        env = os.environ if environ is None else environ

        def pick(name: str, flag: str | None) -> str:
            return env.get(name) or flag or ""

        return cls(
            slack_url=pick("SLACK_URL", slack_url),
            slack_token=pick("SLACK_TOKEN", slack_token),
            slack_proxy_url=pick("SLACK_PROXY_URL", slack_proxy_url),
            slack_user=slack_user or DEFAULT_ALERT_USERNAME,
            slack_channel=slack_channel or "",
            msteams_url=pick("MSTEAMS_URL", msteams_url),
            msteams_proxy_url=pick("MSTEAMS_PROXY_URL", msteams_proxy_url),
            cluster_name=cluster_name or "",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where one alert goes: a provider type, its hook URL and how to post there."""

    type: str
    address: str = field(repr=False)  # the hook URL is the credential
    name: str  # for logs: "slack (global)" or "<provider>.<namespace>"
    channel: str = ""  # "": Flagger's default, applied by the payload (alerts.alert_payload)
    username: str = ""
    token: str = field(default="", repr=False)
    proxy: str = field(default="", repr=False)

    @property
    def secrets(self) -> list[str]:
        """What no message about this target may show (see ``analysis._text.hook_secrets``)."""
        return hook_secrets(self.address, token=self.token, proxy=self.proxy)


def global_target(options: NotifyOptions) -> Target | None:
    """The global notifier: MS Teams when its URL is set, else Slack, else none."""
    if options.msteams_url:
        return Target(
            type="msteams",
            address=options.msteams_url,
            name="msteams (global)",
            proxy=options.msteams_proxy_url,
        )
    if options.slack_url:
        # Flagger refuses an empty channel and then sends nothing; the payload has the
        # AlertProviders' default instead (alerts.alert_payload).
        return Target(
            type="slack",
            address=options.slack_url,
            name="slack (global)",
            channel=options.slack_channel,
            username=options.slack_user,
            token=options.slack_token,
            proxy=options.slack_proxy_url,
        )
    return None


def entry_receives(entry: AlertEntry, severity: Severity) -> bool:
    """Whether an ``analysis.alerts`` entry receives an alert of ``severity``: the entry's
    severity is the minimum level (info < warn < error); empty means info (Q6)."""
    return _RANK[severity] >= _RANK[entry.effective_severity]


def alert_fields(
    canary: Canary, *, with_metadata: bool, cluster_name: str = ""
) -> tuple[AlertField, ...]:
    """Flagger's alert fields: ``Cluster`` when named, then the canary's metadata if asked."""
    fields: list[AlertField] = []
    if cluster_name:
        fields.append(AlertField("Cluster", cluster_name))
    if not with_metadata:
        return tuple(fields)
    spec = canary.spec
    analysis = spec.effective_analysis
    target = spec.target_ref
    fields += [
        AlertField("Target", f"{target.kind}/{target.name}.{canary.metadata.namespace}"),
        AlertField("Failed checks threshold", str(analysis.failed_checks_threshold)),
        AlertField("Progress deadline", f"{spec.progress_deadline_seconds}s"),
    ]
    # Flagger's order of precedence; the max shown is the weight the run really stops at.
    routing = ""
    if analysis.step_weight and analysis.step_weight > 0:
        routing = f"Weight step: {analysis.step_weight} max: {analysis.effective_max_weight}"
    elif analysis.step_weights:
        steps = ",".join(str(w) for w in analysis.step_weights)
        routing = f"Weight steps: {steps} max: {analysis.effective_max_weight}"
    elif analysis.match:
        routing = "A/B Testing"
    elif analysis.effective_iterations > 0:
        routing = "Blue/Green"
    if routing:
        fields.append(AlertField("Traffic routing", routing))
    return tuple(fields)


class AlertRouter:
    """``EngineDeps.on_alert``: decide who receives an alert and post it; never raises."""

    def __init__(
        self,
        cluster: Cluster,
        sender: AlertSender,
        options: NotifyOptions | None = None,
    ) -> None:
        self._cluster = cluster
        self._sender = sender
        self._options = options or NotifyOptions()
        self._global = global_target(self._options)
        flags = self._options
        logs.add_secrets(  # whatever mentions them in a log line later is masked
            [
                *hook_secrets(flags.slack_url, token=flags.slack_token),
                *hook_secrets(flags.msteams_url),
                *url_secrets(flags.slack_proxy_url),
                *url_secrets(flags.msteams_proxy_url),
            ]
        )

    @property
    def global_notifier(self) -> str:
        """``msteams``, ``slack`` or "" (none), for the startup log."""
        return self._global.type if self._global is not None else ""

    async def __call__(self, canary: Canary, alert: Alert) -> None:
        fields = alert_fields(
            canary, with_metadata=alert.with_metadata, cluster_name=self._options.cluster_name
        )
        entries = canary.spec.effective_analysis.alerts
        if not entries:
            if self._global is not None:
                await self._post(canary, alert, fields, self._global)
            return
        # Every entry that receives the alert is posted to at once; the group returns when all
        # posts are done (each has its own 5 s budget) and cancels the others if one fails.
        async with anyio.create_task_group() as group:
            for entry in entries:
                if entry_receives(entry, alert.severity):
                    group.start_soon(self._route, canary, alert, fields, entry)

    async def _route(
        self, canary: Canary, alert: Alert, fields: tuple[AlertField, ...], entry: AlertEntry
    ) -> None:
        ref = entry.provider_ref
        namespace = ref.namespace or canary.metadata.namespace
        where = f"{ref.name}.{namespace}"
        try:
            # The provider and its Secret are read within 5 s, as the post is sent: a slow API
            # server would hold the tick for the Kubernetes client's 30 s.
            with anyio.fail_after(ALERT_TIMEOUT_SECONDS):
                target = await self._resolve(where, ref.name, namespace)
        except TimeoutError:
            target = f"alert provider {where} could not be read within {ALERT_TIMEOUT_SECONDS:g}s"
        except Exception as exc:  # best effort: a Cluster error must not end the tick
            target = f"alert provider {where} could not be read: {exc}"
        if isinstance(target, str):
            log.error(
                "alert_not_sent",
                canary=canary.ref,
                alert=entry.name,
                provider=where,
                error=redact(target),
            )
            return
        await self._post(canary, alert, fields, target, entry=entry.name)

    async def _resolve(self, where: str, name: str, namespace: str) -> Target | str:
        """The provider's Target, or why it cannot be used."""
        body = await self._cluster.get(ObjectRef(ALERT_PROVIDER, namespace, name))
        if body is None:
            return f"alert provider {where} not found"
        spec_body = body.get("spec")
        if isinstance(spec_body, dict) and spec_body.get("secretRef") and spec_body.get("address"):
            # The CRD's oneOf keeps both from being stored; if a cluster without that schema
            # holds both, Flagger's rule decides: the Secret's address is the one used.
            body = {**body, "spec": {k: v for k, v in spec_body.items() if k != "address"}}
        try:
            provider = parse_alert_provider(body)
        except SpecError as exc:
            problems = "; ".join(map(str, exc.problems))
            address = spec_body.get("address") if isinstance(spec_body, dict) else None
            secrets = hook_secrets(address) if isinstance(address, str) else []
            return redact(f"alert provider {where} is invalid: {problems}", secrets)
        spec = provider.spec
        address, token = spec.address or "", ""
        if spec.secret_ref is not None:
            secret_name = f"{spec.secret_ref.name}.{namespace}"
            secret = await self._cluster.get(ObjectRef(SECRET, namespace, spec.secret_ref.name))
            if secret is None:
                return f"alert provider {where} secretRef: secret {secret_name} not found"
            try:
                data = _decode(secret.get("data") or {})
            except ValueError as exc:
                return f"alert provider {where} secretRef: secret {secret_name}: {exc}"
            address = data.get("address", "")
            token = data.get("token", "")
            if not address:
                return f"alert provider {where} secretRef: secret {secret_name} has no 'address'"
        return Target(
            type=spec.type,
            address=address,
            name=where,
            channel=spec.channel or "",
            username=spec.username or "",
            token=token,
            proxy=spec.proxy or "",
        )

    async def _post(
        self,
        canary: Canary,
        alert: Alert,
        fields: tuple[AlertField, ...],
        target: Target,
        *,
        entry: str | None = None,
    ) -> None:
        try:
            error = await self._sender.send(
                target.type,
                target.address,
                message=alert.message,
                canary=canary.metadata.name,
                namespace=canary.metadata.namespace,
                severity=alert.severity,
                fields=fields,
                channel=target.channel,
                username=target.username,
                token=target.token,
                proxy=target.proxy,
            )
        except Exception as exc:  # the sender should not raise; never let an alert end a tick
            error = f"{type(exc).__name__}: {exc}"
        context = {"alert": entry} if entry is not None else {}
        if error:
            # The sender redacts its own errors; this also covers a sender that does not (or one
            # that raised) -- the provider's reply may echo the hook's path or the token.
            error = redact(error, target.secrets)
            log.error(
                "alert_not_sent", canary=canary.ref, provider=target.name, error=error, **context
            )
        else:
            log.debug(
                "alert_sent",
                canary=canary.ref,
                provider=target.name,
                severity=alert.severity,
                **context,
            )


def _decode(data: Mapping[str, object]) -> dict[str, str]:
    """The Secret's ``address`` and ``token``, base64-decoded (surrounding whitespace, such as
    the newline ``echo`` leaves, dropped)."""
    return {k: v.strip() for k, v in decode_secret_data(data, ("address", "token")).items()}
