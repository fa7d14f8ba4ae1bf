"""The namespace a command-line tool uses when none is given, as kubectl picks it.

kubectl (and so a kubectl plugin) takes the namespace of the kubeconfig's current context (or of
``--context``), else ``default``. Inside a Pod without an explicit kubeconfig the client uses the
service account (``open_kube_cluster``), so the namespace is the service account's. Only reads
files; kubernetes-asyncio's loader reads one kubeconfig file, not a ``$KUBECONFIG`` list, so the
few keys needed are read here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _documents(paths: str) -> list[dict[str, Any]]:
    found = []
    for path in paths.split(os.pathsep):
        if not path:
            continue
        try:
            doc = yaml.safe_load(Path(path).expanduser().read_text())
        except (OSError, yaml.YAMLError):
            continue  # the client's loader reports an unusable kubeconfig; here: no namespace
        if isinstance(doc, dict):
            found.append(doc)
    return found


def default_namespace(kubeconfig: str | None = None, *, context: str | None = None) -> str:
    """The service account's namespace in a Pod (no explicit kubeconfig), else the current
    context's (kubectl's merge rules: the first file that sets a key wins), else ``default``."""
    in_pod = os.environ.get("KUBERNETES_SERVICE_HOST") and SERVICE_ACCOUNT_NAMESPACE.exists()
    if kubeconfig is None and in_pod:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    paths = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    docs = _documents(paths)
    wanted = context or next(
        (d["current-context"] for d in docs if isinstance(d.get("current-context"), str)), None
    )
    for doc in docs:
        for entry in doc.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") == wanted:
                namespace = (entry.get("context") or {}).get("namespace")
                return str(namespace) if namespace else "default"
    return "default"
