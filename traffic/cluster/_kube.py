"""KubeCluster: the Cluster protocol over kubernetes-asyncio, with a watch-fed local cache.

The only module of the project that imports ``kubernetes_asyncio`` (and the only one that names
``aiohttp`` errors). Everything above it sees plain JSON dicts and the ``ClusterError`` tree.

Flow. ``open_kube_cluster()`` loads a client configuration (an explicit kubeconfig path; else the
in-cluster service account; else ``$KUBECONFIG`` or ``~/.kube/config``), opens one
``ApiClient`` and starts the cache for ``cache_kinds``. Every request goes through one generic
path, ``ApiClient.call_api`` with a URL built from the ``Kind`` (``/api/v1/...`` or
``/apis/{group}/{version}/...``), so built-in kinds and custom resources share one code path and
bodies stay plain dicts (no model classes).

The cache (an informer per kind and namespace, or per kind cluster-wide when no namespaces are
given) LISTs once, then WATCHes from the list's resourceVersion. A dropped or timed-out watch
resumes from the last resourceVersion it saw; a 410 Gone (``ERROR`` event or HTTP status) makes it
LIST again and turn the difference into ADDED / MODIFIED / DELETED events. Once a kind's cache
has synced, ``get`` and ``list`` answer from memory, so a controller tick at steady state sends
no read requests (but for Secrets, below); reads of uncached kinds, and of cached kinds before
their first LIST has completed, go to the API server. ``watch()`` fans the cache's events out to
each caller.

Secrets are never cached (``NEVER_CACHED``: ``start_cache`` skips them, whoever asks). A cache
would LIST and WATCH every Secret in scope, hold every credential of the cluster in memory and
need RBAC ``list``/``watch`` on secrets, when the controller reads only the few its Canaries
reference (tracked by the target's pod spec, a MetricTemplate's or an AlertProvider's
``secretRef``). Each read of a Secret is a GET of that Secret by name, as in Flagger, so ``get``
is the only read RBAC has to grant on them (config/deploy/rbac.yaml).

Writes: ``create`` (POST), ``patch`` (PATCH with an explicit ``application/merge-patch+json``
content type; NB: the client library otherwise sends dict bodies of custom objects as JSON
patch and the server answers 400), ``status=True`` via the ``/status`` subresource,
``expect_version`` as a ``metadata.resourceVersion`` precondition inside the patch body, and
``delete`` (404 ignored). The object a write returns goes into the cache at once
(read-your-writes); the watch event for it arrives later with the same resourceVersion and is
dropped as a duplicate. resourceVersions are compared as integers when both are integers (as on
every real API server) so that a late, older watch event never overwrites a newer write, and
a deleted key is remembered (a tombstone) until the stream passes the deletion, so a late event
never resurrects it.

Errors: every ``kubernetes_asyncio`` and ``aiohttp`` exception is translated with
``raise ... from e``: 404 -> ``NotFound``, 409 -> ``Conflict``, 429 / 5xx / connection errors /
timeouts -> ``ClusterUnavailable``, anything else (400, 401, 403, 422, configuration) ->
``ClusterError``. Library exceptions never leave this module.

Time: nothing here reads the clock; the cache's retry delays go through the injected ``sleep``.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import aiohttp
import structlog
import yaml
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException, OpenApiException
from kubernetes_asyncio.config import ConfigException

from traffic.cluster._errors import (
    ClusterError,
    ClusterUnavailable,
    Conflict,
    Forbidden,
    NotFound,
)
from traffic.cluster._json import json_copy, read_only
from traffic.cluster._protocol import (
    DEFAULT_CACHE_KINDS,
    SECRET,
    Body,
    Kind,
    ObjectRef,
    ReadBody,
    WatchEvent,
    kind_of,
    labels_match,
)
from traffic.cluster._reads import ReadLog, current_read_log, tracking_reads

log = structlog.get_logger("canary-engine")

Sleep = Callable[[float], Awaitable[None]]


#: Kinds ``start_cache`` never caches, even when asked to: every read is a GET of the named object.
#: Secrets: the controller needs only the ones its Canaries reference, not a LIST + WATCH of all.
NEVER_CACHED: frozenset[Kind] = frozenset({SECRET})

MERGE_PATCH = "application/merge-patch+json"

#: Seconds a LIST may stay silent (the server serialising a large collection) before it counts
#: as failed; the API server's own limit for a request is one minute by default.
LIST_SILENCE_TIMEOUT = 120.0
#: Objects per page of a LIST (client-go's reflector reads pages of 500).
LIST_PAGE_SIZE = 500
#: Seconds a watch may stay silent before its connection counts as dead and is renewed from the
#: same resourceVersion. The API server sends a watch that allows bookmarks a BOOKMARK about
#: once a minute, so only a hung connection or server stays silent this long; renewing it costs
#: one request, where waiting for the server's own timeout left the cache stale for minutes.
WATCH_SILENCE_TIMEOUT = 90.0
#: How often a kubeconfig's exec-plugin or GCP token is checked for expiry (the library's
#: default; a token is renewed within 5 minutes of its expiry).
TOKEN_REFRESH_SECONDS = 60.0

_OBJECT_RESPONSE = {200: "object", 201: "object", 202: "object"}
_EventType = Literal["ADDED", "MODIFIED", "DELETED"]
_Key = tuple[str, str]  # (namespace, name)
_T = TypeVar("_T")


# ---------------------------------------------------------------------------- configuration


async def load_configuration(
    kubeconfig: str | None = None, *, context: str | None = None
) -> client.Configuration:
    """Build a client configuration; reads files only, leaves the library's global default alone.

    An explicit ``kubeconfig`` path wins; without one: the in-cluster service account, then
    ``$KUBECONFIG`` (which may list several files, ``:``-separated), then ``~/.kube/config``.
    ``context`` picks a kubeconfig context (default: its current-context). ``ClusterError``
    when no usable configuration is found.
    """
    configuration, _ = await _load_configuration(kubeconfig, context=context)
    return configuration


async def _load_configuration(
    kubeconfig: str | None, *, context: str | None
) -> tuple[client.Configuration, Any]:
    """``load_configuration``, with the kubeconfig loader (None in a cluster, whose service
    account token the library refreshes itself): it renews exec-plugin and GCP tokens."""
    configuration = client.Configuration()
    if kubeconfig is None:
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except ConfigException:
            pass
        else:
            return configuration, None
    paths = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    if not _any_file_exists(paths):
        raise ClusterError(
            f"no Kubernetes configuration: not in a cluster and no kubeconfig at {paths}"
        )
    if os.pathsep not in paths:
        _check_kubeconfig_shape(paths)
    try:
        loader = await config.load_kube_config(
            config_file=paths,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (
        ConfigException,
        OSError,
        ValueError,
        TypeError,
        KeyError,
        yaml.YAMLError,
        # the library asserts on some wrong types (a server that is not a string) and recurses
        # on deep nesting: a bad file, not a crash
        AssertionError,
        RecursionError,
        AttributeError,
    ) as e:
        detail = f"{type(e).__name__}: {e}" if isinstance(e, AssertionError | AttributeError) else e
        # the library quotes its own objects ("<...ConfigNode object at 0x7f...>"): say what it is
        detail = _LIBRARY_OBJECT.sub("a value of the wrong type", str(detail))
        raise ClusterError(f"cannot load the Kubernetes configuration {paths}: {detail}") from e
    return configuration, loader


def _renews_a_token(loader: Any) -> bool:
    """Whether the kubeconfig's user gets its token from GCP or an exec plugin, the two the
    library's ``refresh_token`` renews (it reads the same two attributes). A static token, a
    certificate or a context without a user (``kubectl proxy``) has nothing to renew."""
    if loader is None:
        return False
    user = getattr(loader, "_user", None)
    return getattr(loader, "provider", None) == "gcp" or (user is not None and "exec" in user)


async def _keep_token_fresh(
    loader: Any, configuration: client.Configuration, every: float, sleep: Sleep
) -> None:
    """Renew a kubeconfig's short-lived token before it expires (EKS's ``aws eks get-token``
    lasts 15 minutes, GKE's plugin an hour): the library sets it once at load, and every request
    after its expiry would answer 401 until a restart. Started only where there is a token to
    renew (``_renews_a_token``). A failed renewal (the plugin missing or down) is logged with the
    error's type only (a plugin's output may hold credentials; the library's own error line goes
    through the log redaction) and tried again."""
    while True:
        try:
            await config.refresh_token(loader, configuration, interval=every)
            return
        except AttributeError:
            # The plugin answers a client certificate, not a token: the library renews only
            # tokens, and the certificate is read once, when the client is built.
            log.warning(
                "kube_token_refresh_stopped",
                reason="the exec plugin gives a client certificate, which is not renewed",
            )
            return
        except Exception as exc:  # e.g. ConfigException from a failing exec plugin
            log.warning("kube_token_refresh_failed", error=type(exc).__name__, retry_in=every)
            await sleep(every)


_LIBRARY_OBJECT = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def _check_kubeconfig_shape(path: str) -> None:
    """A kubeconfig is a YAML mapping; the library answers an empty file or a list with
    "'NoneType' object does not support item assignment"."""
    try:
        # sync on purpose: a startup-only read, as the library's own
        with open(os.path.expanduser(path), encoding="utf-8") as file:
            loaded = yaml.safe_load(file)
    except (OSError, ValueError, yaml.YAMLError, RecursionError):
        return  # the library's own error says it better
    if not isinstance(loaded, dict):
        raise ClusterError(
            f"cannot load the Kubernetes configuration {path}: it is "
            f"{'empty' if loaded is None else 'not a mapping'}; a kubeconfig is a YAML mapping "
            "with clusters, contexts and users (kubectl config view shows one)"
        )


def _any_file_exists(paths: str) -> bool:
    # Sync on purpose: a startup-only stat; the loader reads these files synchronously anyway.
    return any(os.path.exists(os.path.expanduser(p)) for p in paths.split(os.pathsep) if p)


@asynccontextmanager
async def open_kube_cluster(
    kubeconfig: str | None = None,
    *,
    sleep: Sleep,
    namespaces: Sequence[str] = (),
    cache_kinds: Sequence[Kind] = DEFAULT_CACHE_KINDS,
    context: str | None = None,
    request_timeout: float = 30.0,
    watch_timeout: float = 300.0,
    watch_silence: float = WATCH_SILENCE_TIMEOUT,
    backoff: tuple[float, float] = (0.5, 30.0),
    token_refresh: float = TOKEN_REFRESH_SECONDS,
) -> AsyncIterator[KubeCluster]:
    """Open a ``KubeCluster`` for the duration of the block, its cache started for
    ``cache_kinds`` (not awaited: reads go to the API until a kind has synced; use
    ``wait_synced()`` to wait), except ``NEVER_CACHED`` kinds (Secrets), always read by GET.

    ``namespaces`` scopes the cluster (and its cache) to those namespaces: ``list(kind, None)``
    and ``watch(kind, None)`` then cover them only, so a namespaced RBAC Role suffices; empty
    means all namespaces. ``sleep`` waits between cache retries (pass the engine Clock's).
    ``request_timeout`` bounds each request (seconds; a LIST only by its silence, at least
    ``LIST_SILENCE_TIMEOUT``, as a large collection takes long); ``watch_timeout`` is the
    server-side lifetime of one watch request before the cache renews it, ``watch_silence`` how
    long one may stay silent before it is renewed anyway; ``backoff`` is the
    (first, max) retry delay of the cache after a failure; ``token_refresh`` how often a
    kubeconfig's exec-plugin or GCP token is checked for expiry. ``ClusterError`` if no
    configuration loads.
    """
    configuration, loader = await _load_configuration(kubeconfig, context=context)
    api = client.ApiClient(configuration)
    cluster = KubeCluster(
        api,
        watch_api=_watch_client(configuration),
        sleep=sleep,
        namespaces=namespaces,
        request_timeout=request_timeout,
        watch_timeout=watch_timeout,
        watch_silence=watch_silence,
        backoff=backoff,
    )
    refresher = (
        asyncio.create_task(_keep_token_fresh(loader, configuration, token_refresh, sleep))
        if _renews_a_token(loader)
        else None
    )
    try:
        if cache_kinds:
            await cluster.start_cache(cache_kinds, wait=False)
        yield cluster
    finally:
        if refresher is not None:
            refresher.cancel()
            await asyncio.gather(refresher, return_exceptions=True)
        await cluster.aclose()


def _watch_client(configuration: client.Configuration) -> client.ApiClient:
    """A client for the cache's watches, with no bound on its connections.

    A watch holds one HTTP/1.1 connection for its whole life (aiohttp has no HTTP/2 to share
    one), and the library's pool allows 100 per host: a cache of 7 kinds in 15 namespaces would
    take them all, and every GET, status write and Lease renewal would then wait for a free one
    until it timed out (leadership lost). The watches are bounded by the cache's kinds and
    namespaces anyway; requests keep the bounded pool of their own client. Both share the
    configuration object, so a refreshed token reaches both."""
    bounded = configuration.connection_pool_maxsize
    configuration.connection_pool_maxsize = 0  # aiohttp: no limit
    try:
        return client.ApiClient(configuration)
    finally:
        configuration.connection_pool_maxsize = bounded


# ---------------------------------------------------------------------------- helpers


def _path(
    kind: Kind, namespace: str | None, name: str | None = None, sub: str | None = None
) -> str:
    path = f"/apis/{kind.group}/{kind.version}" if kind.group else f"/api/{kind.version}"
    if kind.namespaced and namespace is not None:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{kind.plural}"
    if name is not None:
        path += f"/{quote(name, safe='')}"
    if sub is not None:
        path += f"/{sub}"
    return path


def _typed(kind: Kind, body: Body) -> Body:
    # NB: items of built-in lists come without apiVersion/kind; watch objects and single reads
    # carry them. Fill them so every body that leaves this module is self-describing.
    body.setdefault("apiVersion", kind.api_version)
    body.setdefault("kind", kind.kind)
    return body


def _key_of(body: Mapping[str, Any]) -> _Key:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def _rv_of(body: Mapping[str, Any] | None) -> str | None:
    if not body:
        return None
    rv = (body.get("metadata") or {}).get("resourceVersion")
    return str(rv) if rv not in (None, "") else None


def _as_int(rv: str | None) -> int | None:
    if rv is None:
        return None
    try:
        return int(rv)
    except ValueError:
        return None


def _is_newer(candidate: str | None, than: str | None) -> bool:
    """Whether ``candidate`` is a later resourceVersion than ``than`` (unknown: treat as newer,
    unless they are equal)."""
    a, b = _as_int(candidate), _as_int(than)
    if a is not None and b is not None:
        return a > b
    return candidate != than


def _empties_finalizers(answer: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    """Whether a successful merge patch removed the last finalizer of an object marked for
    deletion, which makes the API server delete it."""
    patch_meta = patch.get("metadata")
    return (
        bool((answer.get("metadata") or {}).get("deletionTimestamp"))
        and isinstance(patch_meta, dict)
        and "finalizers" in patch_meta
        and not patch_meta["finalizers"]
    )


def _label_selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _status_message(payload: Any) -> str | None:
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", "replace")
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return payload.strip()[:200] or None
    if isinstance(payload, dict) and payload.get("message"):
        return str(payload["message"])
    return None


def _error_for_status(
    status: int,
    reason: str | None,
    message: str | None,
    what: str,
    headers: Mapping[str, str] | None = None,
) -> ClusterError:
    text = f"{what}: {status} {reason or ''}".rstrip()
    if message:
        text += f": {message}"
    if status == 404:
        return NotFound(text)
    if status == 403:
        return Forbidden(text)
    if status == 409:
        return Conflict(text)
    if status == 410:
        return _Gone(text)
    if status == 429 or status >= 500:
        return ClusterUnavailable(text, retry_after=_retry_after(headers))
    return ClusterError(text)


#: The longest Retry-After honoured (seconds): a server asking for more is retried after this.
MAX_RETRY_AFTER = 60.0


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """The seconds of a Retry-After header (the API server sends whole seconds; an HTTP date
    or garbage is ignored)."""
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    try:
        seconds = float(str(value).strip()) if value is not None else None
    except ValueError:
        return None
    if seconds is None or not 0 <= seconds < float("inf"):
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _translate(error: BaseException, what: str) -> ClusterError:
    """The ClusterError for a client-library (or transport) exception."""
    if isinstance(error, ApiException):
        status = int(error.status or 0)
        if status == 0:  # raised by the client itself, before or without a response
            return ClusterError(f"{what}: {error.reason}")
        return _error_for_status(
            status, error.reason, _status_message(error.body), what, error.headers
        )
    if isinstance(error, aiohttp.ClientError | TimeoutError | OSError):
        return ClusterUnavailable(f"{what}: {type(error).__name__}: {error}".rstrip(": "))
    if isinstance(error, OpenApiException):
        return ClusterError(f"{what}: {error}")
    return ClusterUnavailable(f"{what}: malformed response: {error}")


class _Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): LIST again."""


class _Gone(ClusterError):
    """410 Gone on a request: a LIST's continue token expired (the server compacted past the
    list's resourceVersion while its pages were read)."""


# ---------------------------------------------------------------------------- the cache


class _Informer:
    """The cache of one kind in one namespace (or cluster-wide when ``namespace`` is None)."""

    def __init__(self, owner: KubeCluster, kind: Kind, namespace: str | None) -> None:
        self.owner, self.kind, self.namespace = owner, kind, namespace
        self.objects: dict[_Key, Body] = {}
        #: Counts every change of ``objects`` (what a tracked ``list`` compares; ReadLog).
        self.changes = 0
        self.synced = asyncio.Event()
        self.resource_version: str | None = None  # where the next watch resumes
        self._tombstones: dict[_Key, str | None] = {}
        self._subscribers: set[asyncio.Queue[WatchEvent | None]] = set()
        self.task: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        return f"{self.kind.plural}.{self.kind.group}" if self.kind.group else self.kind.plural

    # -- the loop

    async def run(self) -> None:
        first, most = self.owner._backoff
        delay = first
        relisted = False  # the last LIST has not been followed by any watch event yet
        try:
            while True:
                try:
                    if self.resource_version is None:
                        await self._relist()
                        relisted = True
                    if await self._watch_once():  # progress: the back-off starts over
                        relisted, delay = False, first
                        continue
                    # The stream ended without an event (timeout or drop): pause briefly so a
                    # server that closes watches at once cannot make this loop spin.
                    await self.owner._sleep(first)
                except _Expired:
                    log.info("cache_watch_expired", resource=self.label, namespace=self.namespace)
                    self.resource_version = None
                    if relisted:  # expired straight after a LIST: do not re-list in a tight loop
                        await self.owner._sleep(delay)
                        delay = min(delay * 2, most)
                except ClusterError as e:
                    # a server that says when to come back (429/503 Retry-After) is believed
                    wait = max(delay, getattr(e, "retry_after", None) or 0.0)
                    log.warning(
                        "cache_sync_failed",
                        resource=self.label,
                        namespace=self.namespace,
                        error=str(e),
                        retry_in=wait,
                    )
                    await self.owner._sleep(wait)
                    delay = min(delay * 2, most)
                except Exception as e:  # a cache that stops stalls every reader of it
                    # Whatever an answer held that this code did not foresee, the cache starts
                    # over from a fresh LIST after the back-off instead of ending for good.
                    log.error(
                        "cache_sync_failed",
                        resource=self.label,
                        namespace=self.namespace,
                        error=f"{type(e).__name__}: {e}",
                        retry_in=delay,
                    )
                    self.resource_version = None
                    await self.owner._sleep(delay)
                    delay = min(delay * 2, most)
        finally:
            # Stopped (closed, or a bug): stop answering from a cache nobody keeps current.
            self.synced.clear()
            for queue in self._subscribers:
                queue.put_nowait(None)

    async def _relist(self) -> None:
        listed = await self.owner._list_pages(
            _path(self.kind, self.namespace),
            what=f"list {self.label}",
            bounds=self.owner._list_timeout,
        )
        items = listed.get("items") or []
        list_rv = _rv_of(listed)
        fresh: dict[_Key, Body] = {}
        for item in items:
            body = _typed(self.kind, item)
            fresh[_key_of(body)] = body
        for key in list(self.objects):
            if key not in fresh and not _is_newer(_rv_of(self.objects[key]), list_rv):
                self.remove(key, list_rv)
        for body in fresh.values():
            self.apply(body)
        # The LIST settles every deletion before it; only later ones still need guarding.
        self._tombstones = {
            k: t for k, t in self._tombstones.items() if t is not None and _is_newer(t, list_rv)
        }
        self.resource_version = list_rv
        self.synced.set()

    async def _watch_once(self) -> bool:
        """One watch request; True if it delivered at least one event."""
        got = False
        response = await self.owner._open_watch(self.kind, self.namespace, self.resource_version)
        try:
            async for raw in response.content:
                line = raw.strip()
                if not line:
                    continue
                event = json.loads(line)
                if not isinstance(event, dict):
                    raise ValueError(f"a watch event that is not an object: {line[:200]!r}")
                self._handle(event)
                got = True
        except aiohttp.ServerTimeoutError:
            # Silent past watch_silence: renewed like a stream the server ended, from the same
            # resourceVersion (a hung connection, not an error to back off from).
            log.info("cache_watch_silent", resource=self.label, namespace=self.namespace)
        except (
            aiohttp.ClientError,
            # a line past aiohttp's limit (LineTooLong) is not a ClientError
            aiohttp.http_exceptions.HttpProcessingError,
            TimeoutError,
            OSError,
            ValueError,
        ) as e:
            raise _translate(e, f"watch {self.label}") from e
        finally:
            response.close()
        return got

    def _handle(self, event: Mapping[str, Any]) -> None:
        type_, obj = event.get("type"), event.get("object")
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata", {}), dict):
            raise ClusterUnavailable(f"watch {self.label}: malformed event {event!r:.200}")
        if type_ == "ERROR":
            if obj.get("code") == 410:
                raise _Expired(obj.get("message"))
            # Anything else: start over from a fresh LIST after the back-off.
            self.resource_version = None
            raise _error_for_status(
                int(obj.get("code") or 500),
                obj.get("reason"),
                obj.get("message"),
                f"watch {self.label}",
            )
        rv = _rv_of(obj)
        if type_ in ("ADDED", "MODIFIED"):
            self.apply(_typed(self.kind, obj))
        elif type_ == "DELETED":
            self.remove(_key_of(obj), rv, _typed(self.kind, obj))
        elif type_ != "BOOKMARK":
            raise ClusterUnavailable(f"watch {self.label}: unknown event type {type_!r}")
        if rv is not None:
            self.resource_version = rv
            if self._tombstones:
                # Events older than a deletion cannot arrive once the stream has passed it.
                self._tombstones = {
                    k: t for k, t in self._tombstones.items() if t is None or _is_newer(t, rv)
                }

    # -- state changes (from the stream, a LIST, or our own writes)

    def apply(self, body: Body, *, written: bool = False) -> None:
        """Take a newer version of an object (``written``: the answer to our own write). The
        cache keeps a read-only copy (``traffic.cluster._json``), which readers share."""
        meta = body.get("metadata")
        if isinstance(meta, dict) and "managedFields" in meta:
            # Server-side apply's bookkeeping: often a third of an object's size on a real API
            # server, and nothing here reads it (client-go's informers strip it the same way).
            meta = {k: v for k, v in meta.items() if k != "managedFields"}
            body = {**body, "metadata": meta}
        key, rv = _key_of(body), _rv_of(body)
        old = self.objects.get(key)
        if old is not None and not _is_newer(rv, _rv_of(old)):
            return  # a duplicate of, or older than, what we already hold
        if key in self._tombstones:
            deleted_at = self._tombstones[key]
            # A late event from before a deletion we already applied. When we do not know the
            # deletion's version (our own DELETE), only our own later writes get through.
            if (deleted_at is None and not written) or (
                deleted_at is not None and not _is_newer(rv, deleted_at)
            ):
                return
        self._tombstones.pop(key, None)
        body = read_only(body)  # as it is when already read-only; else only what is new is copied
        self.objects[key] = body
        self.changes += 1
        self._publish(WatchEvent("MODIFIED" if old is not None else "ADDED", body))

    def remove(
        self, key: _Key, rv: str | None, body: Body | None = None, *, written: bool = False
    ) -> None:
        """Forget an object deleted at resourceVersion ``rv`` (``written``: by our own DELETE).

        ``rv`` None (our DELETE answered a Status, which carries no version): until the stream's
        DELETED event (or a LIST) settles it, ignore every event for the key.
        """
        old = self.objects.get(key)
        if old is not None and not written and not _is_newer(rv, _rv_of(old)):
            return  # a deletion from before the version we hold (re-created since)
        if self.objects.pop(key, None) is not None:
            self.changes += 1
        if old is None and rv is None:
            return  # never held, or the DELETED event already came: nothing to guard
        self._tombstones[key] = rv
        if old is not None:
            self._publish(WatchEvent("DELETED", body if body is not None else old))

    def _publish(self, event: WatchEvent) -> None:
        for queue in self._subscribers:
            queue.put_nowait(event)

    # -- readers

    def subscribe(self) -> tuple[builtins.list[Body], asyncio.Queue[WatchEvent | None]]:
        """The current objects and a queue of what happens next (atomically: no gap)."""
        queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        self._subscribers.add(queue)
        return [self.objects[k] for k in sorted(self.objects)], queue

    def holds(self, key: _Key, body: Body | None) -> Callable[[], bool]:
        """A ReadLog probe: True while this cache is in sync and holds ``body`` (the very same
        stored version, or still nothing) under ``key``."""
        return lambda: self.synced.is_set() and self.objects.get(key) is body

    def unchanged_since(self) -> Callable[[], bool]:
        """A ReadLog probe: True while this cache is in sync and nothing in it has changed."""
        changes = self.changes
        return lambda: self.synced.is_set() and self.changes == changes

    def unsubscribe(self, queue: asyncio.Queue[WatchEvent | None]) -> None:
        self._subscribers.discard(queue)

    async def wait_synced(self) -> None:
        if self.synced.is_set():
            return
        assert self.task is not None
        waiter = asyncio.ensure_future(self.synced.wait())
        try:
            await asyncio.wait({waiter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not self.synced.is_set():
            raise ClusterError(f"the cache of {self.label} stopped before it synced")


# ---------------------------------------------------------------------------- the cluster


class KubeCluster:
    """The Cluster protocol on a kubernetes-asyncio ``ApiClient``; see the module docstring.

    Build it with ``open_kube_cluster``; the constructor takes an open ``ApiClient`` (closed
    by ``aclose``). Extra surface beyond the protocol: ``start_cache``, ``wait_synced``,
    ``cached_kinds``, ``is_cached``, ``server`` and ``aclose``.
    """

    def __init__(
        self,
        api: client.ApiClient,
        *,
        watch_api: client.ApiClient | None = None,
        sleep: Sleep,
        namespaces: Sequence[str] = (),
        request_timeout: float = 30.0,
        watch_timeout: float = 300.0,
        watch_silence: float = WATCH_SILENCE_TIMEOUT,
        backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self._api = api
        # The cache's watches hold their connections for minutes: their own pool (_watch_client)
        self._watch_api = watch_api or api
        self._sleep = sleep
        self.namespaces: tuple[str, ...] = tuple(dict.fromkeys(namespaces))
        self._backoff = backoff
        self._request_timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._watch_timeout = watch_timeout
        self._watch_client_timeout = aiohttp.ClientTimeout(
            total=None,
            connect=request_timeout,
            sock_connect=request_timeout,
            # The server ends the watch after watch_timeout and sends bookmarks meanwhile:
            # silence past either means a dead connection (WATCH_SILENCE_TIMEOUT).
            sock_read=min(watch_timeout + max(request_timeout, 30.0), watch_silence),
        )
        # A cache's first LIST of a large collection (100,000 Services) legitimately takes
        # longer than any single-object request, and a server may answer only once it has
        # serialised it all: no total bound, only a bound on silence. Lists made during a tick
        # (uncached, label-selected) keep request_timeout: a silent server must not stall it.
        self._list_timeout = aiohttp.ClientTimeout(
            total=None,
            connect=request_timeout,
            sock_connect=request_timeout,
            sock_read=max(request_timeout, LIST_SILENCE_TIMEOUT),
        )
        self._informers: dict[tuple[Kind, str | None], _Informer] = {}
        self._closed = False

    # -- the cache

    async def start_cache(self, kinds: Iterable[Kind], *, wait: bool = True) -> None:
        """Cache each kind (per configured namespace, or cluster-wide): LIST, then WATCH.

        ``NEVER_CACHED`` kinds (Secrets) are skipped: their reads stay GETs of the named object.
        Idempotent per kind. With ``wait``, return once every one of them has synced (it keeps
        retrying while the API is unavailable: bound it with ``asyncio.timeout``).
        """
        started = [
            inf
            for kind in kinds
            if kind not in NEVER_CACHED
            for inf in self._ensure_informers(kind)
        ]
        if wait:
            for informer in started:
                await informer.wait_synced()

    async def wait_synced(self, kinds: Iterable[Kind] | None = None) -> None:
        """Wait until the cache of ``kinds`` (default: every cached kind) has synced.

        ``ClusterError`` if a cache stopped (the cluster was closed)."""
        wanted = None if kinds is None else set(kinds)
        for (kind, _), informer in list(self._informers.items()):
            if wanted is None or kind in wanted:
                await informer.wait_synced()

    @property
    def server(self) -> str:
        """The API server's address, as the kubeconfig gives it (which cluster this is)."""
        return str(self._api.configuration.host)

    @property
    def cached_kinds(self) -> frozenset[Kind]:
        """The kinds with a cache (synced or not)."""
        return frozenset(kind for kind, _ in self._informers)

    def is_cached(self, kind: Kind, namespace: str | None = None) -> bool:
        """Whether reads of ``kind`` in ``namespace`` (None: the whole scope) answer from the
        cache right now (it exists and has synced)."""
        return self._cache_for(kind, namespace) is not None

    def _scope(self, kind: Kind) -> tuple[str | None, ...]:
        return self.namespaces if (self.namespaces and kind.namespaced) else (None,)

    def _ensure_informers(
        self, kind: Kind, namespaces: Iterable[str | None] | None = None
    ) -> builtins.list[_Informer]:
        if self._closed:
            raise ClusterError("the cluster is closed")
        found = []
        for namespace in self._scope(kind) if namespaces is None else namespaces:
            informer = self._informers.get((kind, namespace))
            if informer is None:
                informer = _Informer(self, kind, namespace)
                informer.task = asyncio.create_task(
                    informer.run(), name=f"kube-cache {informer.label} {namespace or '*'}"
                )
                self._informers[(kind, namespace)] = informer
            found.append(informer)
        return found

    def _cache_for(self, kind: Kind, namespace: str | None) -> builtins.list[_Informer] | None:
        """The synced informers that together hold every object of ``kind`` in ``namespace``
        (None: the scope), or None when the API must answer."""
        if (kind, None) in self._informers:
            candidates = [self._informers[(kind, None)]]
        elif namespace is not None and (kind, namespace) in self._informers:
            candidates = [self._informers[(kind, namespace)]]
        elif namespace is None and self.namespaces and kind.namespaced:
            candidates = [
                self._informers[(kind, ns)]
                for ns in self.namespaces
                if (kind, ns) in self._informers
            ]
            if len(candidates) != len(self.namespaces):
                return None
        else:
            return None
        return candidates if all(inf.synced.is_set() for inf in candidates) else None

    def _keepers(self, kind: Kind, namespace: str) -> builtins.list[_Informer]:
        """The informers that keep objects of ``kind`` in ``namespace``: the cluster-wide one
        and the namespace's, where they exist."""
        found = (self._informers.get((kind, None)), self._informers.get((kind, namespace)))
        return [informer for informer in found if informer is not None]

    def _absorb(self, kind: Kind, body: Body) -> None:
        keepers = self._keepers(kind, _key_of(body)[0])
        if keepers:
            kept = read_only(body)  # one copy, shared by a cluster-wide and a namespaced cache
            for informer in keepers:
                informer.apply(kept, written=True)

    def _absorb_delete(self, ref: ObjectRef, rv: str | None) -> None:
        for informer in self._keepers(ref.kind, ref.namespace):
            informer.remove((ref.namespace, ref.name), rv, written=True)

    # -- requests

    async def _list_pages(
        self,
        path: str,
        *,
        what: str,
        query: Sequence[tuple[str, str]] = (),
        bounds: aiohttp.ClientTimeout | None = None,
    ) -> Body:
        """A LIST read in pages of ``LIST_PAGE_SIZE`` (``limit`` / ``continue``, as client-go's
        reflector reads one): the items of every page, and the list's resourceVersion (every
        page is read at the first one's). A single LIST of 100,000 objects is one answer of
        hundreds of MB that the API server must build within its request timeout; pages keep
        each answer small. A continue token that expired (410) reads the list again unpaged, as
        client-go's pager does."""
        items: builtins.list[Any] = []
        token = ""
        version: Any = None
        while True:
            page_query = [*query, ("limit", str(LIST_PAGE_SIZE))]
            if token:
                page_query.append(("continue", token))
            try:
                page = await self._request("GET", path, query=page_query, what=what, bounds=bounds)
            except _Gone:
                if not token:
                    raise
                return await self._request("GET", path, query=query, what=what, bounds=bounds)
            metadata = page.get("metadata") or {}
            if version is None:
                version = metadata.get("resourceVersion")
            items.extend(page.get("items") or [])
            token = str(metadata.get("continue") or "")
            if not token:
                return {"metadata": {"resourceVersion": version}, "items": items}

    async def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
        bounds: aiohttp.ClientTimeout | None = None,
    ) -> Body:
        """One API request through the client; the JSON object answered. Translates errors.
        ``bounds``: instead of the per-request time bounds (LISTs pass theirs)."""
        if method != "GET":
            reads = current_read_log()
            if reads is not None:
                reads.wrote = True
        headers = {"Accept": "application/json"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        try:
            result = await self._api.call_api(
                path,
                method,
                query_params=list(query),
                header_params=headers,
                body=body,
                response_types_map=_OBJECT_RESPONSE,
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _preload_content=True,
                _request_timeout=bounds or self._request_timeout,
            )
        except (OpenApiException, aiohttp.ClientError, TimeoutError, OSError) as e:
            raise _translate(e, what) from e
        if not isinstance(result, dict):
            raise ClusterUnavailable(
                f"{what}: the server answered {type(result).__name__}, not an object"
            )
        return result

    async def _open_watch(
        self, kind: Kind, namespace: str | None, resource_version: str | None
    ) -> aiohttp.ClientResponse:
        """Start a watch request; the streaming response (the caller closes it)."""
        what = f"watch {kind.plural}"
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(max(1, int(self._watch_timeout)))),
        ]
        if resource_version is not None:
            query.append(("resourceVersion", resource_version))
        try:
            response: aiohttp.ClientResponse = await self._watch_api.call_api(
                _path(kind, namespace),
                "GET",
                query_params=query,
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=self._watch_client_timeout,
            )
        except (OpenApiException, aiohttp.ClientError, TimeoutError, OSError) as e:
            raise _translate(e, what) from e
        if response.status != 200:
            try:
                text = await response.text()
            except (aiohttp.ClientError, TimeoutError, OSError):
                text = ""
            finally:
                response.close()
            if response.status == 410:
                raise _Expired(text)
            raise _error_for_status(
                response.status, response.reason, _status_message(text), what, response.headers
            )
        return response

    # -- the Cluster protocol

    def track_reads(self) -> AbstractContextManager[ReadLog]:
        """Record what the work inside the block reads and writes (``traffic.cluster._reads``):
        afterwards ``unchanged()`` says whether running it again would read the same."""
        return tracking_reads()

    async def get(self, ref: ObjectRef, *, fresh: bool = False) -> ReadBody | None:
        """The object or None; from the cache when ``ref.kind`` is cached and synced, unless
        ``fresh`` (then from the server, and the cache takes the answer if it is newer)."""
        cached = None if fresh else self._cache_for(ref.kind, ref.namespace)
        reads = current_read_log()
        if cached is not None:
            key = (ref.namespace, ref.name)
            for informer in cached:
                found = informer.objects.get(key)
                if reads is not None:
                    reads.note(informer.holds(key, found))
                if found is not None:
                    return found  # read-only, as the cache keeps it
            return None
        if reads is not None:
            reads.complete = False
        try:
            body = await self._request(
                "GET", _path(ref.kind, ref.namespace, ref.name), what=f"get {ref}"
            )
        except NotFound:
            return None
        found = read_only(_typed(ref.kind, body))
        if fresh:
            # the watch will bring this version too; until then the cache would answer older
            for keeper in self._keepers(ref.kind, ref.namespace):
                if keeper.synced.is_set():
                    keeper.apply(found)
        return found

    async def list(
        self, kind: Kind, namespace: str | None, *, labels: Mapping[str, str] | None = None
    ) -> builtins.list[ReadBody]:
        """Objects of a kind in a namespace (None: every namespace in scope), sorted by
        namespace and name, filtered by equality ``labels``. From the cache when synced;
        ``NotFound`` if the server does not serve the kind."""
        cached = self._cache_for(kind, namespace)
        reads = current_read_log()
        if cached is not None:
            if reads is not None:
                for informer in cached:
                    reads.note(informer.unchanged_since())
            found: builtins.list[ReadBody] = [
                body
                for informer in cached
                for key, body in informer.objects.items()
                if (namespace is None or key[0] == namespace) and labels_match(body, labels)
            ]
            found.sort(key=_key_of)
            return found
        if reads is not None:
            reads.complete = False
        query = [("labelSelector", _label_selector(labels))] if labels else []
        scopes: Sequence[str | None] = (
            self.namespaces
            if namespace is None and self.namespaces and kind.namespaced
            else (namespace,)
        )
        items: builtins.list[ReadBody] = []
        for scope in scopes:
            listed = await self._list_pages(
                _path(kind, scope),
                query=query,
                what=f"list {kind.plural} in {scope or 'all namespaces'}",
            )
            items.extend(read_only(_typed(kind, item)) for item in listed.get("items") or [])
        items.sort(key=_key_of)
        return items

    async def create(self, body: Body) -> ReadBody:
        """Create the object (POST); the stored body. ``Conflict`` if it exists; ``ValueError``
        for a body of an unknown kind."""
        try:
            kind = kind_of(body)
        except KeyError as e:
            raise ValueError(f"unknown kind {e.args[0]}; see KNOWN_KINDS") from None
        sent = json_copy(body)
        meta = sent.setdefault("metadata", {})
        namespace = str(meta.get("namespace") or "default") if kind.namespaced else None
        if namespace is not None:
            meta["namespace"] = namespace
        name = meta.get("name") or f"{meta.get('generateName', '')}*"
        created = await self._request(
            "POST", _path(kind, namespace), body=sent, what=f"create {kind.kind}/{namespace}/{name}"
        )
        created = _typed(kind, created)
        self._absorb(kind, created)  # the cache keeps its own read-only copy
        return created

    async def patch(
        self,
        ref: ObjectRef,
        patch: Body,
        *,
        status: bool = False,
        expect_version: str | None = None,
    ) -> ReadBody:
        """JSON merge patch (``application/merge-patch+json``) of the object or, with
        ``status``, of its ``/status`` subresource; the stored body. ``expect_version`` becomes
        a ``metadata.resourceVersion`` precondition: ``Conflict`` when stale. ``NotFound`` when
        the object (or, for kinds without one, the status subresource) does not exist."""
        body = json_copy(patch)
        if expect_version is not None:
            meta = body.setdefault("metadata", {})
            given = meta.get("resourceVersion")
            if given is not None and str(given) != expect_version:
                raise Conflict(
                    f"patch {ref}: the patch's resourceVersion {given} contradicts "
                    f"expect_version {expect_version}"
                )
            meta["resourceVersion"] = expect_version
        updated = await self._request(
            "PATCH",
            _path(ref.kind, ref.namespace, ref.name, "status" if status else None),
            body=body,
            content_type=MERGE_PATCH,
            what=f"patch {'status of ' if status else ''}{ref}",
        )
        updated = _typed(ref.kind, updated)
        if not status and _empties_finalizers(updated, patch):
            # The server deleted the object marked for deletion (its answer is the last stored
            # version): gone from the cache now, not when the watch's DELETED arrives.
            self._absorb_delete(ref, None)
        else:
            self._absorb(ref.kind, updated)  # the cache keeps its own read-only copy
        return updated

    async def delete(self, ref: ObjectRef) -> None:
        """Delete the object; a missing one is not an error. Gone from the cache at once,
        unless it has finalizers: then the server only marks it (``deletionTimestamp``) and the
        cache holds the marked object until the last finalizer is removed."""
        try:
            answer = await self._request(
                "DELETE", _path(ref.kind, ref.namespace, ref.name), what=f"delete {ref}"
            )
        except NotFound:
            self._absorb_delete(ref, None)
            return
        if answer.get("kind") != "Status" and (answer.get("metadata") or {}).get(
            "deletionTimestamp"
        ):
            self._absorb(ref.kind, _typed(ref.kind, answer))  # marked, not gone
            return
        self._absorb_delete(ref, None if answer.get("kind") == "Status" else _rv_of(answer))

    async def watch(self, kind: Kind, namespace: str | None) -> AsyncIterator[WatchEvent]:
        """The objects of a kind in a namespace (None: the scope) as ADDED, then each change.

        Fed by the cache (watching an uncached kind starts caching it, even a ``NEVER_CACHED``
        one: an explicit watch is a LIST + WATCH; the controller watches only Canaries); waits
        for the first LIST. ``ClusterUnavailable`` if the cache stops (the cluster closes) while
        watching."""
        informers = self._informers_for_watch(kind, namespace)
        for informer in informers:
            await informer.wait_synced()
        subscriptions = [informer.subscribe() for informer in informers]
        try:
            current = sorted(
                (body for objects, _ in subscriptions for body in objects), key=_key_of
            )
            for body in current:
                if namespace is None or _key_of(body)[0] == namespace:
                    yield WatchEvent("ADDED", json_copy(body))
            async for event in _merge_queues([queue for _, queue in subscriptions]):
                if event is None:
                    raise ClusterUnavailable(f"watch {kind.plural}: the cache stopped")
                if namespace is None or _key_of(event.body)[0] == namespace:
                    yield WatchEvent(event.type, json_copy(event.body))
        finally:
            for informer, (_, queue) in zip(informers, subscriptions, strict=True):
                informer.unsubscribe(queue)

    def _informers_for_watch(self, kind: Kind, namespace: str | None) -> builtins.list[_Informer]:
        if namespace is not None and (kind, None) in self._informers:
            return [self._informers[(kind, None)]]  # a cluster-wide cache covers it
        if namespace is not None and self.namespaces and kind.namespaced:
            return self._ensure_informers(kind, [namespace])  # in scope or not
        return self._ensure_informers(kind)  # the scope (filtered by namespace when given)

    # -- lifetime

    async def aclose(self) -> None:
        """Stop the cache and close the client. Idempotent."""
        if self._closed:
            return
        self._closed = True
        tasks = [inf.task for inf in self._informers.values() if inf.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._api.close()
        if self._watch_api is not self._api:
            await self._watch_api.close()


async def _merge_queues(
    queues: Sequence[asyncio.Queue[WatchEvent | None]],
) -> AsyncIterator[WatchEvent | None]:
    """Items of several queues in arrival order."""
    if len(queues) == 1:
        while True:
            yield await queues[0].get()
    getters: dict[asyncio.Task[WatchEvent | None], asyncio.Queue[WatchEvent | None]] = {}
    try:
        while True:
            for queue in queues:
                if queue not in getters.values():
                    getters[asyncio.ensure_future(queue.get())] = queue
            done, _ = await asyncio.wait(getters, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                del getters[task]
                yield task.result()
    finally:
        for task in getters:
            task.cancel()
