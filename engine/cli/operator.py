"""``canary-engine promote|abort|retry|pause|resume NAME`` (and ``kubectl canary ...``).

Each command is one JSON merge patch of the Canary's ``canary-engine.io/command`` annotation
(engine.core.commands), sent through the Cluster seam with no cache: the user needs only ``patch``
on ``canaries.flagger.app``. The controller acts on it at once; this command does not wait for it
(its event says what happened: ``kubectl describe canary NAME``).

There is one command slot, and the controller handles a command between two ticks, so a command
sent while a tick is still running (a slow webhook) could replace one not handled yet, which would
then never happen. Where the user may also ``get`` the Canary, the command first reads it and
refuses to replace an unhandled command (``--replace`` does), and the patch carries the
``resourceVersion`` it read, so a command written in between is not overwritten either.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from config import CanaryEngineError
from engine.core.commands import (
    SHORT_ID,
    command_patch,
    encode_command,
    handled_command_id,
    read_command,
)
from engine.shell.clock import Clock, stamp
from traffic import CANARY, Cluster, ObjectRef
from traffic.cluster import ClusterError, Conflict, Forbidden, NotFound

#: Exit statuses (as ``get``): 0 sent, 1 no such Canary, 2 bad input, 4 the API refused or failed,
#: 5 an earlier command is not handled yet (``--replace`` replaces it).
EXIT_NOT_FOUND = 1
EXIT_API = 4
EXIT_PENDING = 5
#: Writes retried when the Canary changed between the read and the patch.
_CONFLICT_ATTEMPTS = 3


class CommandNotSent(CanaryEngineError):
    """The command could not be written; ``exit_code`` says why (EXIT_NOT_FOUND, EXIT_API)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True, kw_only=True)
class SentCommand:
    """What was written, and the Canary as the API server returned it."""

    namespace: str
    name: str
    command: str
    full: bool
    id: str
    canary: Mapping[str, Any]

    @property
    def label(self) -> str:
        return f"{self.command} --full" if self.full else self.command

    def describe(self) -> str:
        """One paragraph for the terminal: what was sent and where the Canary stands."""
        status = self.canary.get("status") or {}
        phase = status.get("phase") or "not initialised"
        where = f"phase {phase}"
        if status.get("phase"):
            where += f", canary weight {status.get('canaryWeight', 0)}"
        if status.get("pausedAt"):
            where += f", paused since {status['pausedAt']}"
        return (
            f"{self.label} sent to Canary {self.namespace}/{self.name} "
            f"(command {self.id[:SHORT_ID]}); it was at {where}.\nThe controller acts on it at "
            f"once; its event says what it did: kubectl describe canary {self.name} "
            f"-n {self.namespace}"
        )


async def send_command(
    cluster: Cluster,
    clock: Clock,
    *,
    namespace: str,
    name: str,
    command: str,
    full: bool = False,
    command_id: str | None = None,
    replace: bool = False,
) -> SentCommand:
    """Write the command annotation; CanaryEngineError naming the Canary and the fix."""
    command_id = command_id or uuid.uuid4().hex
    value = encode_command(
        command,
        command_id=command_id,
        requested_at=stamp(clock),
        full=full,
    )
    ref = ObjectRef(CANARY, namespace, name)
    try:
        for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
            patch = command_patch(value)
            version = None if replace else await _unless_pending(cluster, ref)
            if version:
                patch["metadata"]["resourceVersion"] = version
            try:
                body = await cluster.patch(ref, patch)
                break
            except Conflict:
                if attempt == _CONFLICT_ATTEMPTS:
                    raise
    except NotFound:
        raise CommandNotSent(
            f"Canary {namespace}/{name} not found (kubectl get canaries -n {namespace} lists "
            "the Canaries there; -n picks the namespace)",
            EXIT_NOT_FOUND,
        ) from None
    except ClusterError as exc:
        hint = ""
        if isinstance(exc, Forbidden):
            hint = (
                f"; {command} needs the RBAC verb patch on canaries.flagger.app in namespace "
                f"{namespace} (README: Operator commands)"
            )
        raise CommandNotSent(f"{command} {namespace}/{name}: {exc}{hint}", EXIT_API) from None
    return SentCommand(
        namespace=namespace, name=name, command=command, full=full, id=command_id, canary=body
    )


async def _unless_pending(cluster: Cluster, ref: ObjectRef) -> str | None:
    """The Canary's resourceVersion, after checking that it holds no unhandled command; None
    when the user may not read it (a patch-only Role: the command is sent unchecked, as before).
    NotFound when there is no such Canary."""
    try:
        body = await cluster.get(ref)
    except Forbidden:
        return None
    if body is None:
        raise NotFound(f"canaries {ref.name} not found")
    earlier = read_command((body.get("metadata") or {}).get("annotations"))
    if earlier is not None and earlier.id != handled_command_id(body):
        raise CommandNotSent(
            f"Canary {ref.namespace}/{ref.name} holds {earlier.label} ({earlier.short}), which "
            "the controller has not handled yet (it handles a command between two ticks, after "
            "a running tick's webhooks); sending another would replace it. Wait for its event "
            f"(kubectl describe canary {ref.name} -n {ref.namespace}), or pass --replace to "
            "replace it",
            EXIT_PENDING,
        )
    version = (body.get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None


async def run_command(
    *,
    command: str,
    name: str,
    namespace: str | None,
    full: bool,
    kubeconfig: str | None,
    context: str | None,
    clock: Clock,
    replace: bool = False,
) -> SentCommand:
    """Open the cluster (no cache) and send one command."""
    from traffic import open_kube_cluster
    from traffic.cluster import default_namespace

    namespace = namespace or default_namespace(kubeconfig, context=context)
    async with AsyncExitStack() as stack:
        try:
            cluster = await stack.enter_async_context(
                open_kube_cluster(kubeconfig, sleep=clock.sleep, cache_kinds=(), context=context)
            )
        except ClusterError as exc:  # no usable kubeconfig: say which, as kubectl would
            raise CommandNotSent(f"{command} {namespace}/{name}: {exc}", EXIT_API) from None
        return await send_command(
            cluster,
            clock,
            namespace=namespace,
            name=name,
            command=command,
            full=full,
            replace=replace,
        )
