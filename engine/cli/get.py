"""``canary-engine get NAME [-n NS] [--watch] [-o json]`` (and ``kubectl canary get``).

Reads the Canary and its Events through the Cluster seam (a GET and a LIST, nothing cached) and
prints ``engine.cli.canary_view``'s table or JSON document. ``--watch`` then follows the API's
watches of Canaries and Events in the namespace and prints again whenever what is shown changes
(not on every watch event: the ADDED replay of a fresh watch, or a status write that changes
nothing shown, prints nothing). On a terminal the table is redrawn in place; piped, each update
is appended (``-o json``: one compact document per line). It runs until Ctrl-C (exit 130), or
until the Canary is deleted (exit 0).

Exit statuses: 0 shown, 1 the Canary does not exist, 4 no usable kubeconfig, or the API is
unreachable or refused (the message says which), 130 interrupted.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import Literal, TextIO

from config import CanaryEngineError
from engine.cli.canary_view import View, build_view, is_canary_event, render_table, to_json
from engine.shell.clock import RealClock
from traffic import CANARY, EVENT, Cluster, Kind, ObjectRef, WatchEvent, open_kube_cluster
from traffic.cluster import ClusterError, ReadBody, default_namespace

EXIT_NOT_FOUND = 1
EXIT_UNREACHABLE = 4
EXIT_INTERRUPTED = 130
#: Redraw in place on a terminal: cursor home, clear the screen.
_CLEAR = "\033[H\033[2J"


@dataclass(frozen=True, slots=True, kw_only=True)
class GetOptions:
    name: str
    namespace: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    watch: bool = False
    output: Literal["table", "json"] = "table"


@dataclass(slots=True)
class _Printer:
    """Prints a view when it differs from the last one printed."""

    out: TextIO
    output: Literal["table", "json"]
    colour: bool
    in_place: bool
    watching: bool
    clock: RealClock
    last: View | None = None

    def show(self, view: View) -> None:
        if view == self.last:
            return
        first, self.last = self.last is None, view
        if self.output == "json":
            self.out.write(to_json(view, compact=self.watching) + "\n")
        else:
            text = render_table(view, colour=self.colour, now=self.clock.utcnow())
            if self.in_place:
                self.out.write(_CLEAR + text + "\n")
            else:
                self.out.write(("" if first else "\n") + text + "\n")
        self.out.flush()


async def run_get(
    options: GetOptions,
    out: TextIO,
    *,
    colour: bool,
    in_place: bool,
    err: TextIO = sys.stderr,
) -> int:
    namespace = options.namespace or default_namespace(options.kubeconfig, context=options.context)
    clock = RealClock()
    printer = _Printer(out, options.output, colour, in_place, options.watch, clock)
    ref = ObjectRef(CANARY, namespace, options.name)
    try:
        async with open_kube_cluster(
            options.kubeconfig,
            sleep=clock.sleep,
            namespaces=(namespace,),
            cache_kinds=(),  # one GET and one LIST; --watch starts its own watches
            context=options.context,
        ) as cluster:
            body = await cluster.get(ref)
            if body is None:
                err.write(
                    f"canary {namespace}/{options.name} not found (kubectl get canaries -n "
                    f"{namespace} lists the Canaries there; -n picks the namespace)\n"
                )
                return EXIT_NOT_FOUND
            events = await cluster.list(EVENT, namespace)
            printer.show(build_view(body, events))
            if not options.watch:
                return 0
            return await _follow(cluster, ref, printer, err, body, events)
    except ClusterError as exc:
        err.write(f"canary-engine get: {exc}\n")
        return EXIT_UNREACHABLE


async def _follow(
    cluster: Cluster,
    ref: ObjectRef,
    printer: _Printer,
    err: TextIO,
    body: ReadBody,
    listed: list[ReadBody],
) -> int:
    """Print on every change of the Canary or of its events, until the Canary is deleted.
    ``body`` and ``listed`` are what was shown first: the watches' replay of the current objects
    then changes nothing, and an update of either arriving first never shows half the picture."""
    queue: asyncio.Queue[WatchEvent | CanaryEngineError] = asyncio.Queue()

    async def pump(kind: Kind) -> None:
        try:
            async for event in cluster.watch(kind, ref.namespace):
                queue.put_nowait(event)
        except CanaryEngineError as exc:
            queue.put_nowait(exc)

    def about_this_canary(event: ReadBody) -> bool:
        return is_canary_event(event, ref.namespace, ref.name)

    # Only this Canary's Events are kept: the watch sees every Event of the namespace, and a
    # busy namespace would otherwise fill memory and rebuild the view for others' Events.
    events = {_key(e): e for e in listed if about_this_canary(e)}
    # Plain tasks, not a TaskGroup: a watch's error must leave as itself (exit status 4 and its
    # message), not wrapped in an ExceptionGroup.
    tasks = [asyncio.create_task(pump(kind)) for kind in (CANARY, EVENT)]
    try:
        while True:
            batch = [await queue.get()]
            while not queue.empty():  # a burst (a watch's initial replay) prints once
                batch.append(queue.get_nowait())
            relevant = False
            for item in batch:
                if isinstance(item, CanaryEngineError):
                    raise item
                if item.body.get("kind") == "Event":
                    if not about_this_canary(item.body):
                        continue
                    relevant = True
                    if item.type == "DELETED":
                        events.pop(_key(item.body), None)  # expired (kept for an hour)
                    else:
                        events[_key(item.body)] = item.body
                elif _key(item.body) == (ref.namespace, ref.name):
                    relevant = True
                    if item.type == "DELETED":
                        err.write(f"canary {ref.namespace}/{ref.name} deleted\n")
                        return 0
                    body = item.body
            if relevant:
                printer.show(build_view(body, events.values()))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _key(body: ReadBody) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))
