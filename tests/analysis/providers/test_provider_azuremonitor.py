"""The Azure Monitor workspace provider module against respx routes: Microsoft Entra ID's token
endpoint (the OAuth 2 client-credentials grant, with a client secret or a workload identity's
client assertion) answering as it documents, and the workspace's Prometheus query API answering
as Flagger's ``azuremonitor_test.go`` does.

The module's ``PROVIDER`` is called directly with a ``Call`` built here; one test runs it through
the live sources with the provider injected (not through the registry).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from analysis import FailureKind, MetricQuery, QueryFailure, Series, open_metric_sources
from analysis._errors import MetricQueryError, NoValuesFound, ProviderUnavailable, QueryRejected
from analysis._types import CheckKind
from analysis.providers import _azuremonitor
from analysis.providers._azuremonitor import PROVIDER
from analysis.providers._base import Call, Http, Window
from config import MetricTemplateProvider
from tests.analysis.providers.providers_testkit import template_query

ADDRESS = "https://flagger-abc1.eastus.prometheus.monitor.azure.com"
QUERY_URL = ADDRESS + "/api/v1/query"
RANGE_URL = ADDRESS + "/api/v1/query_range"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "04b4ca0a-82b1-4c0a-bbbb-7946442e805b"
CLIENT_SECRET = "azure-client-secret-0123456789"
ACCESS_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.access-token-for-workspace"
ASSERTION = "eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.signature"
TOKEN_URL = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
SCOPE = "https://prometheus.monitor.azure.com/.default"
NOW = 1_800_000_000.0
SERVICE_PRINCIPAL = {"clientId": CLIENT, "tenantId": TENANT, "clientSecret": CLIENT_SECRET}
VECTOR_100 = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1545905245.458, "100"]}]},
}
VECTOR_1 = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1545905245.458, "1"]}]},
}
EXPR = "sum(envoy_cluster_upstream_rq)"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    _azuremonitor.forget_tokens()
    yield
    _azuremonitor.forget_tokens()


def _granted(token: str = ACCESS_TOKEN, expires_in: Any = 3599) -> httpx.Response:
    # Entra ID's v2.0 token endpoint answer to a client-credentials grant
    body = {"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in}
    return httpx.Response(200, json={**body, "access_token": token})


def _form(request: httpx.Request) -> dict[str, str]:
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def _query(**changes: Any) -> MetricQuery:
    fields: dict[str, Any] = {
        "canary": "test/podinfo",
        "metric": "upstream requests",
        "kind": CheckKind.TEMPLATE,
        "expr": EXPR,
        "server": ADDRESS,
        "provider_type": "azuremonitor",
        "secret": "test/azuremonitor",
        "template": "test/azuremonitor",
    }
    return template_query(**(fields | changes))


@asynccontextmanager
async def _http() -> AsyncIterator[Http]:
    async with httpx.AsyncClient(follow_redirects=True) as client:
        yield Http(lambda insecure: client)


def _call(
    http: Http,
    credentials: Mapping[str, str] | None = SERVICE_PRINCIPAL,
    *,
    address: str = ADDRESS,
    now: float = NOW,
    expr: str = EXPR,
    **query: Any,
) -> Call:
    return Call(
        query=_query(expr=expr, **query),
        expr=expr,
        address=address,
        credentials=credentials or {},
        has_secret=credentials is not None,
        now=now,
        http=http,
        sleep=asyncio.sleep,
    )


async def _value(credentials: Mapping[str, str] | None = SERVICE_PRINCIPAL, **call: Any) -> float:
    async with _http() as http:
        assert PROVIDER.value is not None
        return await PROVIDER.value(_call(http, credentials, **call))


async def _failure(
    credentials: Mapping[str, str] | None = SERVICE_PRINCIPAL, **call: Any
) -> MetricQueryError:
    with pytest.raises(MetricQueryError) as raised:
        await _value(credentials, **call)
    for secret in (CLIENT_SECRET, ACCESS_TOKEN, ASSERTION):
        assert secret not in str(raised.value)
    return raised.value


def _workload_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> None:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(ASSERTION + "\n")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    for name, value in env.items():
        monkeypatch.setenv(name, value)


# -- declaration (what validate says) ------------------------------------------------------------


def _problems(**fields: Any) -> list[tuple[str, str]]:
    # model_construct: the loader accepts the type once the registry lists it
    return PROVIDER.problems(MetricTemplateProvider.model_construct(type="azuremonitor", **fields))


def test_validate_accepts_a_workspace_query_endpoint_of_each_cloud() -> None:
    assert PROVIDER.type == "azuremonitor" and PROVIDER.built
    for host in (
        "flagger-abcd.eastus.prometheus.monitor.azure.com",
        "flagger-abcd.usgovvirginia.prometheus.monitor.azure.us",
        "flagger-abcd.chinaeast.prometheus.monitor.azure.cn",
        "FLAGGER-ABCD.EASTUS.PROMETHEUS.MONITOR.AZURE.US",
    ):
        assert _problems(address=f"https://{host}") == []
    assert PROVIDER.secret_keys == () and not PROVIDER.secret_required  # the pod's identity


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "required for azuremonitor"),
        ({"address": "http://flagger-abc1.eastus.prometheus.monitor.azure.com"}, "https://"),
        (
            {"address": "https://prometheus.example.com"},
            "azuremonitor address https://prometheus.example.com is not an Azure Monitor "
            "Workspace query endpoint, expected a host ending in .prometheus.monitor.azure.us, "
            ".prometheus.monitor.azure.cn, .prometheus.monitor.azure.com",
        ),
        ({"address": "https://prometheus.monitor.azure.com.example.com"}, "not an Azure Monitor"),
        ({"address": "https://notprometheus.monitor.azure.com"}, "not an Azure Monitor"),
    ],
)
def test_validate_refuses_what_flaggers_constructor_refuses(
    fields: dict[str, Any], expected: str
) -> None:
    [(field, message)] = _problems(**fields)
    assert field == "spec.provider.address" and expected in message


def test_validate_refuses_insecure_skip_verify() -> None:
    [(field, message)] = _problems(address=ADDRESS, insecure_skip_verify=True)
    assert field == "spec.provider.insecureSkipVerify"
    assert "azuremonitor provider does not support insecureSkipVerify" in message


# -- the token exchange ---------------------------------------------------------------------------


@respx.mock
async def test_a_service_principal_gets_a_token_and_queries_with_it() -> None:
    token = respx.post(TOKEN_URL).mock(return_value=_granted())
    query = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_100))
    assert await _value(headers={"Foo": "bar"}) == 100.0
    assert _form(token.calls.last.request) == {
        "client_id": CLIENT,
        "client_secret": CLIENT_SECRET,
        "grant_type": "client_credentials",
        "scope": SCOPE,
    }
    request = query.calls.last.request
    assert request.url.params["query"] == EXPR
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert request.headers["Foo"] == "bar"  # the template's headers too


@respx.mock
@pytest.mark.parametrize(
    ("host", "authority", "scope"),
    [
        (
            "flagger-abcd.usgovvirginia.prometheus.monitor.azure.us",
            "https://login.microsoftonline.us",
            "https://prometheus.monitor.azure.us/.default",
        ),
        (
            "flagger-abcd.chinaeast.prometheus.monitor.azure.cn",
            "https://login.chinacloudapi.cn",
            "https://prometheus.monitor.azure.cn/.default",
        ),
    ],
)
async def test_the_workspace_host_picks_the_cloud(host: str, authority: str, scope: str) -> None:
    token = respx.post(f"{authority}/{TENANT}/oauth2/v2.0/token").mock(return_value=_granted())
    respx.get(f"https://{host}/api/v1/query").mock(
        return_value=httpx.Response(200, json=VECTOR_100)
    )
    assert await _value(address=f"https://{host}", server=f"https://{host}") == 100.0
    assert _form(token.calls.last.request)["scope"] == scope


@respx.mock
async def test_the_token_is_reused_until_five_minutes_before_it_expires() -> None:
    token = respx.post(TOKEN_URL).mock(return_value=_granted(expires_in="3600"))
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_100))
    async with _http() as http:
        assert PROVIDER.value is not None
        await asyncio.gather(*(PROVIDER.value(_call(http)) for _ in range(5)))
        assert token.call_count == 1  # concurrent queries wait for the one request
        await PROVIDER.value(_call(http, now=NOW + 3600 - 301))
        assert token.call_count == 1
        await PROVIDER.value(_call(http, now=NOW + 3600 - 299))
        assert token.call_count == 2
        other = {**SERVICE_PRINCIPAL, "clientSecret": "another-client-secret"}
        await PROVIDER.value(_call(http, other, now=NOW + 3600 - 299))
        assert token.call_count == 3  # another identity, another token


@respx.mock
@pytest.mark.parametrize("expires_in", ["Infinity", "1e999", 10**12])
async def test_an_absurd_token_lifetime_is_bounded_to_a_day(expires_in: object) -> None:
    token = respx.post(TOKEN_URL).mock(return_value=_granted(expires_in=expires_in))
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_100))
    async with _http() as http:
        assert PROVIDER.value is not None
        await PROVIDER.value(_call(http))
        await PROVIDER.value(_call(http, now=NOW + 86_400 - 301))
        assert token.call_count == 1
        await PROVIDER.value(_call(http, now=NOW + 86_400))
        assert token.call_count == 2  # kept a day at most, never for ever


@respx.mock
async def test_a_nan_token_lifetime_is_not_cached() -> None:
    token = respx.post(TOKEN_URL).mock(return_value=_granted(expires_in="NaN"))
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_100))
    async with _http() as http:
        assert PROVIDER.value is not None
        await PROVIDER.value(_call(http))
        await PROVIDER.value(_call(http))
        assert token.call_count == 2


@respx.mock
async def test_a_secret_with_client_and_tenant_is_that_applications_workload_identity(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _workload_identity(monkeypatch, tmp_path, AZURE_CLIENT_ID="pod-client-id")
    token = respx.post(TOKEN_URL).mock(return_value=_granted())
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_100))
    assert await _value({"clientId": CLIENT, "tenantId": TENANT}) == 100.0
    assert _form(token.calls.last.request) == {
        "client_id": CLIENT,  # the Secret's, not the pod's
        "client_assertion": ASSERTION,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "grant_type": "client_credentials",
        "scope": SCOPE,
    }


@respx.mock
@pytest.mark.parametrize("credentials", [None, {}, {"other": "key"}])
async def test_without_azure_keys_the_pods_workload_identity_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, credentials: dict[str, str] | None
) -> None:
    _workload_identity(
        monkeypatch, tmp_path, AZURE_CLIENT_ID="pod-client-id", AZURE_TENANT_ID="pod-tenant-id"
    )
    token = respx.post("https://login.microsoftonline.com/pod-tenant-id/oauth2/v2.0/token").mock(
        return_value=_granted()
    )
    query = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_100))
    assert await _value(credentials, secret=None if credentials is None else "test/az") == 100.0
    form = _form(token.calls.last.request)
    assert form["client_id"] == "pod-client-id" and form["client_assertion"] == ASSERTION
    assert query.calls.last.request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


@respx.mock
@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        (
            {"tenantId": TENANT, "clientSecret": CLIENT_SECRET},
            "azuremonitor credentials does not contain a clientId",
        ),
        (
            {"clientId": CLIENT, "clientSecret": CLIENT_SECRET},
            "azuremonitor credentials does not contain a tenantId",
        ),
        ({"clientId": CLIENT}, "azuremonitor credentials does not contain a tenantId"),
        ({"tenantId": TENANT}, "azuremonitor credentials does not contain a clientId"),
    ],
)
async def test_an_incomplete_secret_is_refused_before_sending(
    credentials: dict[str, str], expected: str
) -> None:
    token = respx.post(TOKEN_URL).mock(return_value=_granted())
    query = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_100))
    error = await _failure(credentials)
    assert isinstance(error, QueryRejected) and expected in str(error)
    assert not token.called and not query.called


@respx.mock
@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "AZURE_CLIENT_ID"),
        ({"AZURE_CLIENT_ID": "pod-client-id"}, "AZURE_FEDERATED_TOKEN_FILE"),
    ],
)
async def test_a_pod_without_workload_identity_is_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], missing: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    route = respx.post(url__regex=r"https://login\.microsoftonline\.com/.*").mock(
        return_value=_granted()
    )
    error = await _failure(None, secret=None)
    assert isinstance(error, QueryRejected)
    assert f"workload identity needs {missing}" in str(error) and not route.called


async def test_an_unreadable_token_file_is_a_failed_token_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(tmp_path / "missing"))
    monkeypatch.setenv("AZURE_CLIENT_ID", "pod-client-id")
    monkeypatch.setenv("AZURE_TENANT_ID", "pod-tenant-id")
    error = await _failure(None, secret=None)
    assert isinstance(error, ProviderUnavailable)
    assert str(error).startswith("azuremonitor token request failed: cannot read")


@respx.mock
async def test_a_refused_token_request_names_itself_and_hides_the_secret() -> None:
    # Entra ID's error answer; this one even quotes the secret back
    body = {
        "error": "invalid_client",
        "error_description": f"AADSTS7000215: Invalid client secret provided: {CLIENT_SECRET}",
        "error_codes": [7000215],
    }
    token = respx.post(TOKEN_URL).mock(return_value=httpx.Response(401, json=body))
    query = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_100))
    error = await _failure()
    assert isinstance(error, QueryRejected)
    assert str(error).startswith("azuremonitor token request failed:")
    assert "AADSTS7000215" in str(error) and "HTTP 401" in str(error)
    assert token.called and not query.called
    token.mock(return_value=httpx.Response(503, text="busy"))
    assert (await _failure()).kind is FailureKind.TRANSPORT
    token.mock(side_effect=httpx.ReadTimeout("slow"))
    assert (await _failure()).kind is FailureKind.TIMEOUT


@respx.mock
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(200, json={"token_type": "Bearer", "expires_in": 3599}), "no access_token"),
        (_granted(expires_in="soon"), "not a number"),
        (httpx.Response(200, text="<html>sign in</html>"), "not JSON"),
    ],
)
async def test_a_malformed_token_answer_is_rejected(answer: httpx.Response, expected: str) -> None:
    respx.post(TOKEN_URL).mock(return_value=answer)
    error = await _failure()
    assert isinstance(error, QueryRejected)
    assert str(error).startswith("azuremonitor token request failed:") and expected in str(error)


async def test_a_tenant_id_with_a_path_is_refused() -> None:
    error = await _failure({**SERVICE_PRINCIPAL, "tenantId": "../common"})
    assert isinstance(error, QueryRejected) and "not a tenant ID" in str(error)


# -- the workspace query --------------------------------------------------------------------------


@respx.mock
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"insecure_skip_verify": True}, "does not support insecureSkipVerify"),
        ({"address": "http://flagger-abc1.eastus.prometheus.monitor.azure.com"}, "must use https"),
        ({"address": "https://prometheus.example.com"}, "not an Azure Monitor Workspace"),
    ],
)
async def test_no_token_is_asked_for_an_address_flagger_refuses(
    changes: dict[str, Any], expected: str
) -> None:
    token = respx.post(TOKEN_URL).mock(return_value=_granted())
    error = await _failure(**changes)
    assert isinstance(error, QueryRejected) and expected in str(error)
    assert not token.called


@respx.mock
async def test_the_token_replaces_a_template_authorization_header() -> None:
    respx.post(TOKEN_URL).mock(return_value=_granted())
    query = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_1))
    assert await _value(headers={"Authorization": "Bearer template", "Foo": "bar"}) == 1.0
    request = query.calls.last.request
    assert request.headers.get_list("Authorization") == [f"Bearer {ACCESS_TOKEN}"]
    assert request.headers["Foo"] == "bar"


@respx.mock
async def test_a_redirect_to_another_host_does_not_carry_the_token() -> None:
    # Flagger's TestAzureMonitorProvider_Redirect: the HTTP client drops Authorization
    respx.post(TOKEN_URL).mock(return_value=_granted())
    respx.get(QUERY_URL).mock(
        return_value=httpx.Response(
            302, headers={"Location": "https://elsewhere.invalid/api/v1/query?query=vector(1)"}
        )
    )
    elsewhere = respx.get("https://elsewhere.invalid/api/v1/query").mock(
        return_value=httpx.Response(200, json=VECTOR_1)
    )
    assert await _value() == 1.0  # the redirect was followed
    assert "Authorization" not in elsewhere.calls.last.request.headers


@respx.mock
async def test_a_token_endpoint_redirecting_elsewhere_never_gets_the_client_secret() -> None:
    # a 307 would post the form again, client_secret included, to whatever host it names
    respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(307, headers={"Location": "https://evil.invalid/token"})
    )
    evil = respx.post("https://evil.invalid/token").mock(return_value=_granted())
    error = await _failure()
    assert not evil.called
    assert "redirected from https://login.microsoftonline.com to https://evil.invalid" in str(error)


@respx.mock
@pytest.mark.parametrize(
    "body",
    [
        {"status": "success", "data": {"resultType": "vector", "result": []}},
        {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "NaN"]}]},
        },
    ],
    ids=["empty vector", "NaN"],
)
async def test_no_values_found(body: dict[str, Any]) -> None:
    respx.post(TOKEN_URL).mock(return_value=_granted())
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=body))
    error = await _failure()
    assert isinstance(error, NoValuesFound)
    assert str(error).startswith("azuremonitor: no values found")


@respx.mock
@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, FailureKind.REJECTED), (401, FailureKind.REJECTED), (503, FailureKind.TRANSPORT)],
)
async def test_query_errors_never_show_the_access_token(status: int, kind: FailureKind) -> None:
    respx.post(TOKEN_URL).mock(return_value=_granted())
    respx.get(QUERY_URL).mock(
        return_value=httpx.Response(
            status, json={"status": "error", "error": f"token {ACCESS_TOKEN} rejected"}
        )
    )
    error = await _failure()
    assert error.kind is kind and f"HTTP {status}" in str(error) and "rejected" in str(error)


@respx.mock
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("not json", "not JSON"),
        ('{"status": "success", "data": []}', "not a Prometheus API answer"),
        (
            '{"status": "success", "data": {"resultType": "vector", "result": '
            '[{"metric": {}, "value": [1, null]}]}}',
            "not a number",
        ),
    ],
)
async def test_malformed_query_answers_are_rejected(body: str, expected: str) -> None:
    respx.post(TOKEN_URL).mock(return_value=_granted())
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, text=body))
    error = await _failure()
    assert error.kind is FailureKind.REJECTED and expected in str(error)


@respx.mock
async def test_series_reads_the_range_api_with_the_token() -> None:
    respx.post(TOKEN_URL).mock(return_value=_granted())
    matrix = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {}, "values": [[NOW - 60, "99.5"], [NOW, "98"]]}],
        },
    }
    route = respx.get(RANGE_URL).mock(return_value=httpx.Response(200, json=matrix))
    async with _http() as http:
        assert PROVIDER.series is not None
        found = await PROVIDER.series(_call(http), Window(NOW - 60, NOW, 30))
    assert isinstance(found, Series)
    assert found.times.tolist() == [NOW - 60, NOW] and found.values.tolist() == [99.5, 98.0]
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    params = request.url.params
    assert (params["start"], params["end"], params["step"]) == (
        str(int(NOW - 60)),
        str(int(NOW)),
        "30",
    )


@respx.mock
async def test_ping_is_vector_1_with_a_token() -> None:
    respx.post(TOKEN_URL).mock(return_value=_granted())
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_1))
    async with _http() as http:
        assert PROVIDER.ping is not None
        await PROVIDER.ping(_call(http))
        assert route.calls.last.request.url.params["query"] == "vector(1)"
        assert route.calls.last.request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
        route.mock(return_value=httpx.Response(200, json=VECTOR_100))
        with pytest.raises(ProviderUnavailable, match="value is not 1"):
            await PROVIDER.ping(_call(http))


# -- through the live sources -------------------------------------------------------------------


@respx.mock
async def test_through_the_live_sources() -> None:
    respx.post(TOKEN_URL).mock(return_value=_granted())
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_100))
    secrets = {"test/azuremonitor": SERVICE_PRINCIPAL}
    async with open_metric_sources(
        sleep=asyncio.sleep, now=lambda: NOW, credentials=secrets.get
    ) as live:
        assert await live.fetch([_query()]) == [100.0]
        route.mock(
            return_value=httpx.Response(401, text=f"Authorization: Bearer {ACCESS_TOKEN} expired")
        )
        [answer] = await live.fetch([_query()])
        assert "HTTP 401" in await live.check_providers([_query()])
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.REJECTED
    assert answer.message.startswith("azuremonitor MetricTemplate azuremonitor.test:")
    for secret in (ACCESS_TOKEN, CLIENT_SECRET):
        assert secret not in answer.message
