"""Azure Monitor workspaces: managed Prometheus with an Entra ID token (Flagger's ``azuremonitor``).

Flagger's ``azuremonitor.go`` is its Prometheus provider holding a Microsoft Entra ID access token
for the workspace: ``GET <address>/api/v1/query?query=<PromQL>`` with ``Authorization: Bearer
<token>`` (5 s), the template's headers sent too. Read and judged as the ``prometheus`` provider
reads an answer (``analysis.providers._promcompat``); series use ``/api/v1/query_range``; ``ping``
is ``vector(1)`` = 1.

The address must be a workspace's query endpoint over HTTPS (``https://<workspace>.<region>.
prometheus.monitor.azure.com``) and ``insecureSkipVerify`` is refused, so the token only ever goes
to a verified workspace host (``validate`` says so too). The host picks the cloud, as in Flagger:
``.prometheus.monitor.azure.com`` (public), ``.azure.us`` (government), ``.azure.cn`` (China),
each with its Entra ID authority and the scope ``https://prometheus.monitor.azure.<tld>/.default``.

The identity comes from the optional credentials Secret, as Flagger's ``newAzureCredential``:
``clientSecret`` (with ``clientId`` and ``tenantId``, both then required) is a service principal:
the OAuth 2 client-credentials grant with the secret; ``clientId`` + ``tenantId`` alone is a
workload identity for that application; no Secret (or none of the keys) is the controller pod's
workload identity (``AZURE_CLIENT_ID`` / ``AZURE_TENANT_ID`` set by the Azure Workload Identity
webhook). A workload identity sends the projected service-account token in
``AZURE_FEDERATED_TOKEN_FILE`` as a ``client_assertion`` (what azidentity's
WorkloadIdentityCredential does). Either way it is one form POST to
``<authority>/<tenantId>/oauth2/v2.0/token``, bounded by Flagger's 30 s token timeout; tokens are
cached per identity until five minutes before they expire (as MSAL does), and a token request
failure reads "azuremonitor token request failed: ...". The access token, the client secret and
the assertion are masked in every message.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from analysis._errors import MetricQueryError, ProviderUnavailable, QueryRejected
from analysis._types import Series
from analysis.providers import _promcompat
from analysis.providers._base import (
    DEFAULT_TIMEOUT_SECONDS,
    Call,
    MetricProvider,
    Window,
    json_object,
    number,
)
from config import MetricTemplateProvider

if TYPE_CHECKING:
    import asyncio

CLIENT_ID_KEY = "clientId"
TENANT_ID_KEY = "tenantId"
CLIENT_SECRET_KEY = "clientSecret"
#: Flagger's ``azureTokenTimeout``.
TOKEN_TIMEOUT_SECONDS = 30.0
#: A cached token is renewed this long before it expires (MSAL's margin).
REFRESH_MARGIN_SECONDS = 300.0
#: The longest a token is kept whatever its expires_in says.
MAX_TOKEN_LIFETIME_SECONDS = 86_400.0
#: Workspace host suffix -> the Entra ID authority of its cloud (azcore's cloud configurations).
CLOUDS: tuple[tuple[str, str], ...] = (
    (".prometheus.monitor.azure.us", "https://login.microsoftonline.us"),
    (".prometheus.monitor.azure.cn", "https://login.chinacloudapi.cn"),
    (".prometheus.monitor.azure.com", "https://login.microsoftonline.com"),
)
_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_TENANT_ID = re.compile(r"^[0-9a-zA-Z.-]+$")  # azidentity's validTenantID: no path in a tenant

_Key = tuple[str, ...]
#: identity key -> (access token, expiry in the engine clock's seconds).
_tokens: dict[_Key, tuple[str, float]] = {}
#: One token request per identity at a time, per event loop (an asyncio.Lock belongs to one).
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True, slots=True)
class _Identity:
    tenant: str
    client: str
    secret: str = field(default="", repr=False)  # "" for a workload identity
    token_file: str = ""  # the projected service-account token (workload identity)


async def _value(call: Call) -> float:
    base, headers, secrets = await _authorized(call)
    return await _promcompat.value(call, "azuremonitor", base, call.expr, headers, secrets)


async def _series(call: Call, window: Window) -> Series:
    base, headers, secrets = await _authorized(call)
    return await _promcompat.series(call, "azuremonitor", base, call.expr, window, headers, secrets)


async def _ping(call: Call) -> None:
    base, headers, secrets = await _authorized(call)
    await _promcompat.ping(call, "azuremonitor", base, headers, secrets)


async def _authorized(call: Call) -> tuple[str, dict[str, str], list[str]]:
    """The API base, the headers carrying a token and what to mask: Flagger's constructor."""
    problem = _address_problem(call.address, call.query.endpoint.insecure_skip_verify)
    if problem:
        raise QueryRejected(problem)
    authority, scope = _cloud(call.address)
    identity = _identity(call)
    token = await _token(call, authority, scope, identity)
    headers = call.headers_without_authorization  # credentials win over a template header
    headers["Authorization"] = f"Bearer {token}"
    return _promcompat.api_url(call.address, ""), headers, [token, identity.secret]


def _address_problem(address: str, insecure: bool) -> str:
    """Flagger's refusals of a workspace address, "" when it is one."""
    if insecure:
        return "azuremonitor provider does not support insecureSkipVerify"
    parts = urlsplit(address)
    if parts.scheme.lower() != "https":
        return f"azuremonitor address {address} must use https"
    host = (parts.hostname or "").lower()
    if not any(host.endswith(suffix) for suffix, _ in CLOUDS):
        expected = ", ".join(suffix for suffix, _ in CLOUDS)
        return (
            f"azuremonitor address {address} is not an Azure Monitor Workspace query endpoint, "
            f"expected a host ending in {expected}"
        )
    return ""


def _cloud(address: str) -> tuple[str, str]:
    """(Entra ID authority, token scope) of the workspace's cloud."""
    host = (urlsplit(address).hostname or "").lower()
    suffix, authority = next((s, a) for s, a in CLOUDS if host.endswith(s))
    return authority, f"https://{suffix.removeprefix('.')}/.default"


def _identity(call: Call) -> _Identity:
    """Flagger's ``newAzureCredential``: the Secret's keys pick the identity."""
    client = call.credentials.get(CLIENT_ID_KEY, "")
    tenant = call.credentials.get(TENANT_ID_KEY, "")
    secret = call.credentials.get(CLIENT_SECRET_KEY, "")
    if secret or client or tenant:
        for key, found in ((CLIENT_ID_KEY, client), (TENANT_ID_KEY, tenant)):
            if not found:
                keys = ", ".join(sorted(call.credentials)) or "none"
                raise QueryRejected(
                    f"azuremonitor credentials does not contain a {key} (keys found: {keys})"
                )
    if secret:
        return _Identity(tenant=tenant, client=client, secret=secret)
    # A workload identity: the webhook's variables fill in what the Secret does not say.
    client = client or os.environ.get("AZURE_CLIENT_ID", "")
    tenant = tenant or os.environ.get("AZURE_TENANT_ID", "")
    token_file = os.environ.get("AZURE_FEDERATED_TOKEN_FILE", "")
    for name, found in (
        ("AZURE_CLIENT_ID", client),
        ("AZURE_FEDERATED_TOKEN_FILE", token_file),
        ("AZURE_TENANT_ID", tenant),
    ):
        if not found:
            raise QueryRejected(
                f"azuremonitor: the workload identity needs {name}, which the Azure Workload "
                "Identity webhook sets on the controller's pod; or give the template a Secret "
                f"with {CLIENT_ID_KEY}, {TENANT_ID_KEY} and {CLIENT_SECRET_KEY}"
            )
    return _Identity(tenant=tenant, client=client, token_file=token_file)


async def _token(call: Call, authority: str, scope: str, identity: _Identity) -> str:
    """An access token for ``scope``: the cached one while it is fresh, else a new one."""
    if not _TENANT_ID.match(identity.tenant):
        raise QueryRejected("azuremonitor credentials hold a tenantId that is not a tenant ID")
    held = hashlib.sha256(identity.secret.encode()).hexdigest() if identity.secret else ""
    key = (authority, identity.tenant, identity.client, held, identity.token_file, scope)
    cached = _fresh(key, call.now)
    if cached:
        return cached
    async with _lock(key):
        cached = _fresh(key, call.now)  # another query may have fetched it meanwhile
        if cached:
            return cached
        form = {"client_id": identity.client, "scope": scope, "grant_type": "client_credentials"}
        assertion = ""
        if identity.secret:
            form["client_secret"] = identity.secret
        else:
            assertion = await _assertion(identity.token_file)
            form |= {"client_assertion": assertion, "client_assertion_type": _JWT_BEARER}
        masked = [identity.secret, assertion]
        try:
            response = await call.http.send(
                "azuremonitor",
                "POST",
                f"{authority}/{identity.tenant}/oauth2/v2.0/token",
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
                content=urlencode(form).encode(),
                time_limit=TOKEN_TIMEOUT_SECONDS,
            )
            body = json_object(response, "azuremonitor")
            token = body.get("access_token")
            if not isinstance(token, str) or not token:
                raise QueryRejected("the answer holds no access_token")
            lifetime = number(body.get("expires_in", 0), "azuremonitor", "an expires_in")
        except MetricQueryError as exc:
            exc.args = (f"azuremonitor token request failed: {exc}",)
            raise _promcompat.redacted(exc, masked) from None
        # Entra ID tokens live about an hour; an absurd or non-finite expires_in must neither keep
        # a token for ever nor stop caching: bound it to a day (NaN: not cached).
        lifetime = 0.0 if math.isnan(lifetime) else min(lifetime, MAX_TOKEN_LIFETIME_SECONDS)
        _tokens[key] = (token, call.now + lifetime)
        return token


def _fresh(key: _Key, now: float) -> str:
    token, expires = _tokens.get(key, ("", 0.0))
    return token if token and now < expires - REFRESH_MARGIN_SECONDS else ""


def _lock(key: _Key) -> asyncio.Lock:
    import asyncio  # here, not at the top: `validate` imports this module for its rules only

    return _locks.setdefault(asyncio.get_running_loop(), {}).setdefault(key, asyncio.Lock())


async def _assertion(path: str) -> str:
    """The projected service-account token (Kubernetes rotates the file; read it each time)."""
    import asyncio  # here, not at the top: `validate` imports this module for its rules only

    try:
        text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8")
    except OSError as exc:
        raise ProviderUnavailable(
            f"azuremonitor token request failed: cannot read AZURE_FEDERATED_TOKEN_FILE "
            f"{path}: {exc.strerror or exc}"
        ) from None
    return text.strip()


def forget_tokens() -> None:
    """Drop the cached access tokens (tests)."""
    _tokens.clear()


class _WorkspaceProvider(MetricProvider):
    """A MetricProvider whose ``problems`` also refuse what Flagger's constructor refuses: a
    host that is not a workspace query endpoint, and ``insecureSkipVerify``."""

    __slots__ = ()

    def problems(self, spec: MetricTemplateProvider) -> list[tuple[str, str]]:
        found = MetricProvider.problems(self, spec)
        address_refused = any(name == "spec.provider.address" for name, _ in found)
        if spec.address and not address_refused:
            problem = _address_problem(spec.address, insecure=False)
            if problem:
                found.append(("spec.provider.address", problem))
        if spec.insecure_skip_verify:
            found.append(
                (
                    "spec.provider.insecureSkipVerify",
                    "azuremonitor provider does not support insecureSkipVerify: the token only "
                    "goes to a verified workspace host",
                )
            )
        return found


PROVIDER: MetricProvider = _WorkspaceProvider(
    type="azuremonitor",
    summary="Azure Monitor workspace Prometheus query endpoint",
    address_required=True,
    schemes=("https",),  # the token must travel over TLS
    deadline=TOKEN_TIMEOUT_SECONDS + DEFAULT_TIMEOUT_SECONDS,  # a token request, then the query
    value=_value,
    series=_series,
    ping=_ping,
)
