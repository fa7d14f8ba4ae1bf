"""What kube-apiserver refuses (422 Invalid) when a built-in kind is created or updated: the
validation of the objects canary-engine writes (apps/v1 Deployments and DaemonSets, core/v1
Services, ConfigMaps, Secrets and Events, autoscaling/v2 HorizontalPodAutoscalers,
coordination.k8s.io/v1 Leases and networking.k8s.io/v1 Ingresses), for the test API server
(``tests/kubeapi.py``), which otherwise stores anything.

Each rule is ported from Kubernetes' own validation code (read, not remembered) and names the
Go function it mirrors; the error text is the real server's (``field.Error``: ``<path>: Invalid
value: "x": <detail>``, joined as ``NewInvalid`` joins them). Only what a rule reads is
implemented: a field it does not cover is accepted, as it is by the rules here, never refused
on a guess.

The server validates the *defaulted* internal object, so the defaults that decide a rule (a
Deployment's RollingUpdate 25%/25%, a pod's restartPolicy Always, a Service port's protocol TCP
and targetPort = port...) are applied to a copy before validating; the stored object is not
defaulted (the fake keeps what was written). A Service is the exception the brief asks for: its
``clusterIP`` is allocated on create, and an update that leaves it out keeps the allocated one
(``patchAllocatedValues``), as kube-apiserver does.

Not covered: admission (quota, PodSecurity, webhooks), field-level validation of pod volume
sources, security contexts, resources, probes beyond their handler, and custom resources
(KEDA's ScaledObject is a CRD: the API server checks it against its CRD schema only, which this
repository does not ship). Test-only module.
"""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Body = dict[str, Any]

# ---------------------------------------------------------------------------- field.Error


@dataclass(frozen=True, slots=True)
class FieldError:
    """``field.Error``: its ``Error()`` text is ``<path>: <ErrorBody()>``."""

    type: str  # Invalid, Required, Duplicate, NotSupported, Forbidden, TooLong, NotFound
    path: str
    value: Any = ""
    detail: str = ""

    @property
    def body(self) -> str:
        """``ErrorBody()``: Required, Forbidden and TooLong print no value."""
        if self.type in ("Required value", "Forbidden", "Too long"):
            body = self.type
        else:
            body = f"{self.type}: {_go_value(self.value)}"
        return f"{body}: {self.detail}" if self.detail else body

    def __str__(self) -> str:
        return f"{self.path}: {self.body}"


def _go_value(value: Any) -> str:
    """How ErrorBody prints a bad value: a string quoted (%q), a number or bool plain, anything
    else (Go prints a struct with %#v) as compact JSON, which is this fake's approximation."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("Invalid value", path, value, detail)


def _required(path: str, detail: str = "") -> FieldError:
    return FieldError("Required value", path, "", detail)


def _forbidden(path: str, detail: str) -> FieldError:
    return FieldError("Forbidden", path, "", detail)


def _duplicate(path: str, value: Any) -> FieldError:
    return FieldError("Duplicate value", path, value)


def _not_found(path: str, value: Any) -> FieldError:
    return FieldError("Not found", path, value)


def _not_supported(path: str, value: Any, valid: Iterable[str]) -> FieldError:
    # field.NotSupported: "supported values: " and each value quoted
    return FieldError(
        "Unsupported value", path, value, "supported values: " + ", ".join(f'"{v}"' for v in valid)
    )


def _too_long(path: str, limit: int) -> FieldError:
    return FieldError("Too long", path, "", f"must have at most {limit} bytes")


def invalid_message(kind: str, group: str, name: str, errors: list[FieldError]) -> str:
    """``apierrors.NewInvalid``'s message: ``Kind.group "name" is invalid: <errors>`` (one error
    plain, several as ``[a, b]``, duplicates dropped as ``ErrorList.ToAggregate`` drops them)."""
    texts = list(dict.fromkeys(str(e) for e in errors))
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    qualified = f"{kind}.{group}" if group else kind
    return f'{qualified} "{name}" is invalid: {joined}'


# ---------------------------------------------------------------------------- util/validation

_QNAME_CHAR = "[A-Za-z0-9]"
_QNAME_EXT = "[-A-Za-z0-9_.]"
_QUALIFIED_NAME_FMT = f"({_QNAME_CHAR}{_QNAME_EXT}*)?{_QNAME_CHAR}"
_QUALIFIED_NAME = re.compile(f"^{_QUALIFIED_NAME_FMT}$")
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_LABEL_VALUE_FMT = f"({_QUALIFIED_NAME_FMT})?"
_LABEL_VALUE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(f"^{_DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_WILDCARD_SUBDOMAIN_FMT = "\\*\\." + _DNS1123_SUBDOMAIN_FMT
_WILDCARD_SUBDOMAIN = re.compile(f"^{_WILDCARD_SUBDOMAIN_FMT}$")
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL = re.compile(f"^{_DNS1035_LABEL_FMT}$")
_PERCENT_FMT = "[0-9]+%"
_PERCENT = re.compile(f"^{_PERCENT_FMT}$")
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY = re.compile(f"^{_CONFIG_KEY_FMT}$")
_PORT_NAME_CHARSET = re.compile("^[-a-z0-9]+$")
_ONE_LETTER = re.compile("[a-z]")


def _max_len(n: int) -> str:  # validation.MaxLenError
    return f"must be no more than {n} characters"


def _regex_error(msg: str, fmt: str, *examples: str) -> str:  # validation.RegexError
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    text = msg + " (e.g. "
    for i, example in enumerate(examples):
        text += (" or " if i else "") + f"'{example}', "
    return text + f"regex used for validation is '{fmt}')"


def is_dns1123_label(value: str) -> list[str]:
    """``validation.IsDNS1123Label``."""
    errs = [_max_len(63)] if len(value) > 63 else []
    if not _DNS1123_LABEL.match(value) and _DNS1123_SUBDOMAIN.match(value):
        errs.append("must not contain dots")  # a valid subdomain, so the dots are what is wrong
    elif not _DNS1123_LABEL.match(value):
        errs.append(
            _regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                "or '-', and must start and end with an alphanumeric character",
                _DNS1123_LABEL_FMT,
                "my-name",
                "123-abc",
            )
        )
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """``validation.IsDNS1123Subdomain``."""
    errs = [_max_len(253)] if len(value) > 253 else []
    if not _DNS1123_SUBDOMAIN.match(value):
        errs.append(
            _regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
                _DNS1123_SUBDOMAIN_FMT,
                "example.com",
            )
        )
    return errs


def is_wildcard_dns1123_subdomain(value: str) -> list[str]:
    """``validation.IsWildcardDNS1123Subdomain``."""
    errs = [_max_len(253)] if len(value) > 253 else []
    if not _WILDCARD_SUBDOMAIN.match(value):
        errs.append(
            _regex_error(
                "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS "
                "subdomain, which must consist of lower case alphanumeric characters, '-' or '.' "
                "and end with an alphanumeric character",
                _WILDCARD_SUBDOMAIN_FMT,
                "*.example.com",
            )
        )
    return errs


def is_dns1035_label(value: str) -> list[str]:
    """``validation.IsDNS1035Label``."""
    errs = [_max_len(63)] if len(value) > 63 else []
    if not _DNS1035_LABEL.match(value):
        errs.append(
            _regex_error(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                "start with an alphabetic character, and end with an alphanumeric character",
                _DNS1035_LABEL_FMT,
                "my-name",
                "abc-123",
            )
        )
    return errs


def is_qualified_name(value: str) -> list[str]:
    """``validation.IsQualifiedName``: ``[prefix/]name``, prefix a DNS subdomain, name at most 63
    characters of ``([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]``."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + m for m in is_dns1123_subdomain(prefix)]
    else:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _QUALIFIED_NAME.match(name):
        errs.append(
            "name part "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """``validation.IsValidLabelValue``: at most 63 characters, ``(qualified name)?``."""
    errs = [_max_len(63)] if len(value) > 63 else []
    if not _LABEL_VALUE.match(value):
        errs.append(
            _regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character",
                _LABEL_VALUE_FMT,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errs


def is_valid_port_num(port: Any) -> list[str]:
    """``validation.IsValidPortNum``: 1..65535."""
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return []
    return ["must be between 1 and 65535, inclusive"]


def is_valid_port_name(port: str) -> list[str]:
    """``validation.IsValidPortName`` (an IANA_SVC_NAME): at most 15 of ``[-a-z0-9]``, at least
    one letter, no ``--``, no leading or trailing ``-``."""
    errs = [_max_len(15)] if len(port) > 15 else []
    if not _PORT_NAME_CHARSET.match(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _ONE_LETTER.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_percent(value: str) -> list[str]:
    """``validation.IsValidPercent``."""
    if _PERCENT.match(value):
        return []
    return [
        _regex_error(
            "a valid percent string must be a numeric string followed by an ending '%'",
            _PERCENT_FMT,
            "1%",
            "93%",
        )
    ]


def is_config_map_key(value: str) -> list[str]:
    """``validation.IsConfigMapKey``."""
    errs = [_max_len(253)] if len(value) > 253 else []
    if not _CONFIG_KEY.match(value):
        errs.append(
            _regex_error(
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                _CONFIG_KEY_FMT,
                "key.name",
                "KEY_NAME",
                "key-name",
            )
        )
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def is_valid_path_segment_name(name: str) -> list[str]:
    """``path.IsValidPathSegmentName``: not ``.``/``..``, no ``/`` or ``%``."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def _is_valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------- name functions


NameFn = Callable[[str, bool], list[str]]


def _mask_trailing_dash(name: str, prefix: bool) -> str:
    # apimachinery's maskTrailingDash: a generateName prefix may end with '-'
    return name[:-1] + "a" if prefix and len(name) > 1 and name.endswith("-") else name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    """``NameIsDNSSubdomain`` (Deployments, DaemonSets, ConfigMaps, Secrets, HPAs, Leases,
    Ingresses)."""
    return is_dns1123_subdomain(_mask_trailing_dash(name, prefix))


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    """``NameIsDNS1035Label`` (``ValidateServiceName``)."""
    return is_dns1035_label(_mask_trailing_dash(name, prefix))


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    """``path.ValidatePathSegmentName``: what the generic registry checks of every name (the only
    name rule for a core/v1 Event)."""
    if prefix:
        return [f"may not contain '{c}'" for c in ("/", "%") if c in name]
    return is_valid_path_segment_name(name)


# ---------------------------------------------------------------------------- metadata


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    """``v1validation.ValidateLabels``: each key a qualified name, each value a label value."""
    errs: list[FieldError] = []
    for key, value in (labels or {}).items():
        errs += [_invalid(path, key, m) for m in is_qualified_name(str(key))]
        errs += [_invalid(path, value, m) for m in is_valid_label_value(str(value))]
    return errs


_TOTAL_ANNOTATION_SIZE = 256 * (1 << 10)


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    """``ValidateAnnotations``: keys qualified names (case ignored), total size at most 256 KiB."""
    errs: list[FieldError] = []
    total = 0
    for key, value in (annotations or {}).items():
        errs += [_invalid(path, key, m) for m in is_qualified_name(str(key).lower())]
        total += len(str(key).encode()) + len(str(value).encode())
    if total > _TOTAL_ANNOTATION_SIZE:
        errs.append(_too_long(path, _TOTAL_ANNOTATION_SIZE))
    return errs


def validate_owner_references(refs: Any, path: str) -> list[FieldError]:
    """``ValidateOwnerReferences`` / ``validateOwnerReference``: apiVersion (its version), kind,
    name and uid must not be empty, an Event cannot own, and one reference at most is the
    controller."""
    errs: list[FieldError] = []
    first_controller = ""
    for ref in refs or ():
        api_version = str(ref.get("apiVersion") or "")
        kind = str(ref.get("kind") or "")
        version = api_version.rpartition("/")[2] if api_version.count("/") <= 1 else ""
        if not version:
            errs.append(_invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        if not kind:
            errs.append(_invalid(f"{path}.kind", kind, "kind must not be empty"))
        if not ref.get("name"):
            errs.append(_invalid(f"{path}.name", ref.get("name") or "", "name must not be empty"))
        if not ref.get("uid"):
            errs.append(_invalid(f"{path}.uid", ref.get("uid") or "", "uid must not be empty"))
        if api_version == "v1" and kind == "Event":
            errs.append(_invalid(path, ref, "/v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller") is True:
            current = f"{kind}/{ref.get('name') or ''}"
            if first_controller:
                errs.append(
                    _invalid(
                        path,
                        refs,
                        'Only one reference can have Controller set to true. Found "true" in '
                        f"references for {first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return errs


_STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def validate_finalizers(finalizers: Any, path: str, *, kube: bool) -> list[FieldError]:
    """``ValidateFinalizers`` (each a qualified name; orphan and foregroundDeletion not both)
    and, for the kinds validated by pkg/apis/core/validation's ObjectMeta wrapper (``kube``),
    ``validateKubeFinalizerName`` (a name without '/' must be a standard one)."""
    errs: list[FieldError] = []
    names = [str(f) for f in finalizers or ()]
    for i, name in enumerate(names):
        errs += [_invalid(path, name, m) for m in is_qualified_name(name)]
        if kube and "/" not in name and name not in _STANDARD_FINALIZERS:
            errs.append(
                _invalid(
                    f"{path}[{i}]",
                    name,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    if "orphan" in names and "foregroundDeletion" in names:
        errs.append(
            _invalid(path, names, "finalizer orphan and foregroundDeletion cannot be both set")
        )
    return errs


def validate_managed_fields(entries: Any, path: str) -> list[FieldError]:
    """``ValidateManagedFields``: operation Apply or Update, fieldsType FieldsV1."""
    errs: list[FieldError] = []
    for entry in entries or ():
        if entry.get("operation") not in ("Apply", "Update"):
            errs.append(
                _invalid(
                    f"{path}.operation", entry.get("operation") or "", "must be `Apply` or `Update`"
                )
            )
        if entry.get("fieldsType") and entry.get("fieldsType") != "FieldsV1":
            errs.append(_invalid(f"{path}.fieldsType", entry["fieldsType"], "must be `FieldsV1`"))
    return errs


def validate_object_meta(
    meta: Mapping[str, Any], name_fn: NameFn, *, update: bool, kube: bool = True
) -> list[FieldError]:
    """``ValidateObjectMetaAccessor`` on create (name by the kind's rule, namespace a DNS label)
    and ``ValidateObjectMetaAccessorUpdate`` on update (name, namespace, uid... are immutable:
    the test server keeps them itself), plus the finalizer rules."""
    errs: list[FieldError] = []
    if not update:
        if meta.get("generateName"):
            errs += [
                _invalid("metadata.generateName", meta["generateName"], m)
                for m in name_fn(str(meta["generateName"]), True)
            ]
        name = str(meta.get("name") or "")
        if not name:
            errs.append(_required("metadata.name", "name or generateName is required"))
        else:
            errs += [_invalid("metadata.name", name, m) for m in name_fn(name, False)]
        namespace = str(meta.get("namespace") or "")
        if not namespace:
            errs.append(_required("metadata.namespace"))
        else:
            errs += [
                _invalid("metadata.namespace", namespace, m) for m in is_dns1123_label(namespace)
            ]
    errs += validate_labels(meta.get("labels"), "metadata.labels")
    errs += validate_annotations(meta.get("annotations"), "metadata.annotations")
    errs += validate_owner_references(meta.get("ownerReferences"), "metadata.ownerReferences")
    errs += validate_finalizers(meta.get("finalizers"), "metadata.finalizers", kube=kube)
    errs += validate_managed_fields(meta.get("managedFields"), "metadata.managedFields")
    return errs


def _nonnegative(value: Any, path: str) -> list[FieldError]:
    """``ValidateNonnegativeField``."""
    if isinstance(value, int) and value < 0:
        return [_invalid(path, value, "must be greater than or equal to 0")]
    return []


def _immutable(new: Any, old: Any, path: str) -> list[FieldError]:
    """``ValidateImmutableField``."""
    return [] if new == old else [_invalid(path, new, "field is immutable")]


# ---------------------------------------------------------------------------- label selectors

_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(selector: Any, path: str) -> list[FieldError]:
    """``ValidateLabelSelector`` with ``AllowInvalidLabelValueInSelector: false`` (what a
    Deployment's selector, and a new pod template's affinity and spread terms, get): matchLabels
    as labels; each expression a known operator, values by operator, key a qualified name and
    every value a label value."""
    if not isinstance(selector, Mapping):
        return []
    errs = validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(selector.get("matchExpressions") or ()):
        at = f"{path}.matchExpressions[{i}]"
        op, values = expr.get("operator"), expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.append(
                    _required(
                        f"{at}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                    )
                )
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    _forbidden(
                        f"{at}.values",
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        else:
            errs.append(_invalid(f"{at}.operator", op or "", "not a valid selector operator"))
        errs += [
            _invalid(f"{at}.key", expr.get("key"), m)
            for m in is_qualified_name(str(expr.get("key") or ""))
        ]
        for j, value in enumerate(values):
            errs += [
                _invalid(f"{at}.values[{j}]", value, m) for m in is_valid_label_value(str(value))
            ]
    return errs


def _selector_parses(selector: Any) -> bool:
    """Whether ``LabelSelectorAsSelector`` succeeds (a known operator with the values it needs)."""
    for expr in (selector or {}).get("matchExpressions") or ():
        op, values = expr.get("operator"), expr.get("values") or []
        if op not in _SELECTOR_OPERATORS or (op in ("In", "NotIn") and not values):
            return False
    return True


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """``LabelSelectorAsSelector(selector).Matches(labels)``; a nil selector matches nothing,
    an empty one everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        have = key in labels
        if (
            (op == "In" and (not have or labels[key] not in values))
            or (op == "NotIn" and have and labels[key] in values)
            or (op == "Exists" and not have)
            or (op == "DoesNotExist" and have)
        ):
            return False
    return True


def _selector_empty(selector: Mapping[str, Any]) -> bool:
    return not (selector.get("matchLabels") or selector.get("matchExpressions"))


# ---------------------------------------------------------------------------- defaulting


def _default_pod_template(template: Body) -> None:
    """The ``SetDefaults_*`` of core/v1 that pod template validation depends on."""
    spec = template.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")  # SetDefaults_PodSpec
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or ():
            if not isinstance(container, dict):
                continue
            container.setdefault("terminationMessagePolicy", "File")  # SetDefaults_Container
            if not container.get("imagePullPolicy"):
                image = str(container.get("image") or "")
                tag = image.rsplit("/", 1)[-1]
                latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
                container["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
            for port in container.get("ports") or ():
                if isinstance(port, dict) and not port.get("protocol"):
                    port["protocol"] = "TCP"  # SetDefaults_ContainerPort


def _defaulted(plural: str, body: Mapping[str, Any]) -> Body:
    """A copy of ``body`` with the defaults (apps/v1, core/v1, autoscaling/v2) validation reads."""
    out: Body = copy.deepcopy(dict(body))
    if plural == "secrets" and not out.get("type"):
        out["type"] = "Opaque"  # SetDefaults_Secret
    if plural in ("configmaps", "secrets", "events"):
        return out
    spec = out.get("spec")
    if not isinstance(spec, dict):
        spec = out["spec"] = {}
    if plural == "deployments":  # apps/v1 SetDefaults_Deployment
        spec.setdefault("replicas", 1)
        strategy = spec.setdefault("strategy", {})
        if isinstance(strategy, dict):
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                rolling = strategy.get("rollingUpdate")
                if not isinstance(rolling, dict):
                    rolling = strategy["rollingUpdate"] = {}
                rolling.setdefault("maxUnavailable", "25%")
                rolling.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
    elif plural == "daemonsets":  # apps/v1 SetDefaults_DaemonSet
        strategy = spec.setdefault("updateStrategy", {})
        if isinstance(strategy, dict):
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                rolling = strategy.get("rollingUpdate")
                if not isinstance(rolling, dict):
                    rolling = strategy["rollingUpdate"] = {}
                rolling.setdefault("maxUnavailable", 1)
                rolling.setdefault("maxSurge", 0)
        spec.setdefault("revisionHistoryLimit", 10)
    elif plural == "services":  # core/v1 SetDefaults_Service
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["sessionAffinity"] == "ClientIP":
            client = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
            if client.get("timeoutSeconds") is None:
                spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
        for port in spec.get("ports") or ():
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if port.get("targetPort") in (None, 0, ""):
                    port["targetPort"] = port.get("port")
        if spec["type"] in ("NodePort", "LoadBalancer") and not spec.get("externalTrafficPolicy"):
            spec["externalTrafficPolicy"] = "Cluster"
        if spec["type"] != "ExternalName" and spec.get("internalTrafficPolicy") is None:
            spec["internalTrafficPolicy"] = "Cluster"
        if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
            spec["allocateLoadBalancerNodePorts"] = True
    elif plural == "horizontalpodautoscalers":  # autoscaling/v2 SetDefaults_HPA
        spec.setdefault("minReplicas", 1)
    if plural in ("deployments", "daemonsets") and isinstance(spec.get("template"), dict):
        _default_pod_template(spec["template"])
    return out


# ---------------------------------------------------------------------------- pod templates

#: VolumeSource members (one, and only one, per volume: validateVolumeSource).
_VOLUME_SOURCES = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret",
    "nfs", "iscsi", "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs",
    "quobyte", "downwardAPI", "fc", "flexVolume", "configMap", "azureFile", "vsphereVolume",
    "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos", "projected", "scaleIO",
    "csi", "ephemeral", "image",
)  # fmt: skip
_PROTOCOLS = ("SCTP", "TCP", "UDP")


def _validate_volumes(volumes: Any, path: str) -> tuple[set[str], list[FieldError]]:
    """``ValidateVolumes``: name required, a DNS-1123 label, unique; exactly one source."""
    names: set[str] = set()
    errs: list[FieldError] = []
    for i, volume in enumerate(volumes or ()):
        at = f"{path}[{i}]"
        own: list[FieldError] = []
        sources = [s for s in _VOLUME_SOURCES if volume.get(s) is not None]
        if not sources:
            own.append(_required(at, "must specify a volume type"))
        own += [
            _forbidden(f"{at}.{extra}", "may not specify more than 1 volume type")
            for extra in sources[1:]
        ]
        name = str(volume.get("name") or "")
        if not name:
            own.append(_required(f"{at}.name"))
        else:
            own += [_invalid(f"{at}.name", name, m) for m in is_dns1123_label(name)]
        if name in names:
            own.append(_duplicate(f"{at}.name", name))
        if own:
            errs += own
        else:
            names.add(name)
    return names, errs


def _validate_port_num_or_name(value: Any, path: str) -> list[FieldError]:
    """``ValidatePortNumOrName``: a number 1..65535 or an IANA_SVC_NAME."""
    if isinstance(value, str):
        return [_invalid(path, value, m) for m in is_valid_port_name(value)]
    return [_invalid(path, value, m) for m in is_valid_port_num(value)]


def _validate_handler(handler: Any, path: str, kinds: tuple[str, ...]) -> list[FieldError]:
    """``validateHandler``: exactly one handler type; a port number or name where one is used."""
    present = [k for k in kinds if handler.get(k) is not None]
    if not present:
        return [_required(path, "must specify a handler type")]
    errs = [
        _forbidden(f"{path}.{k}", "may not specify more than 1 handler type") for k in present[1:]
    ]
    first = present[0]
    action = handler[first]
    if first == "exec" and not action.get("command"):
        errs.append(_required(f"{path}.exec.command"))
    if first in ("httpGet", "tcpSocket"):
        errs += _validate_port_num_or_name(action.get("port"), f"{path}.{first}.port")
    return errs


def _validate_container_common(
    container: Mapping[str, Any], volumes: set[str], path: str
) -> list[FieldError]:
    """``validateContainerCommon``."""
    errs: list[FieldError] = []
    name = str(container.get("name") or "")
    if not name:
        errs.append(_required(f"{path}.name"))
    else:
        errs += [_invalid(f"{path}.name", name, m) for m in is_dns1123_label(name)]
    if not container.get("image"):
        errs.append(_required(f"{path}.image"))
    policy = container.get("terminationMessagePolicy")
    if policy not in ("File", "FallbackToLogsOnError"):
        errs.append(
            _not_supported(
                f"{path}.terminationMessagePolicy", policy, ("File", "FallbackToLogsOnError")
            )
        )
    port_names: set[str] = set()
    for i, port in enumerate(container.get("ports") or ()):  # validateContainerPorts
        at = f"{path}.ports[{i}]"
        if port.get("name"):
            msgs = is_valid_port_name(str(port["name"]))
            if msgs:
                errs += [_invalid(f"{at}.name", port["name"], m) for m in msgs]
            elif port["name"] in port_names:
                errs.append(_duplicate(f"{at}.name", port["name"]))
            else:
                port_names.add(port["name"])
        if not port.get("containerPort"):
            errs.append(_required(f"{at}.containerPort"))
        else:
            errs += [
                _invalid(f"{at}.containerPort", port["containerPort"], m)
                for m in is_valid_port_num(port["containerPort"])
            ]
        if port.get("hostPort"):
            errs += [
                _invalid(f"{at}.hostPort", port["hostPort"], m)
                for m in is_valid_port_num(port["hostPort"])
            ]
        if port.get("protocol") not in _PROTOCOLS:
            errs.append(_not_supported(f"{at}.protocol", port.get("protocol"), _PROTOCOLS))
    for i, env in enumerate(container.get("env") or ()):  # ValidateEnv
        if not env.get("name"):
            errs.append(_required(f"{path}.env[{i}].name"))
    for i, source in enumerate(container.get("envFrom") or ()):  # ValidateEnvFrom
        count = sum(source.get(k) is not None for k in ("configMapRef", "secretRef"))
        if count == 0:
            errs.append(
                _invalid(
                    f"{path}.envFrom", "", "must specify one of: `configMapRef` or `secretRef`"
                )
            )
        elif count > 1:
            errs.append(
                _invalid(
                    f"{path}.envFrom", "", "may not have more than one field specified at a time"
                )
            )
        for key in ("configMapRef", "secretRef"):
            ref = source.get(key)
            if ref is not None and not ref.get("name"):
                errs.append(_required(f"{path}.envFrom[{i}].{key}.name"))
    mount_paths: set[str] = set()
    for i, mount in enumerate(container.get("volumeMounts") or ()):  # ValidateVolumeMounts
        at = f"{path}.volumeMounts[{i}]"
        mount_name = str(mount.get("name") or "")
        if not mount_name:
            errs.append(_required(f"{at}.name"))
        if mount_name not in volumes:
            errs.append(_not_found(f"{at}.name", mount_name))
        mount_path = str(mount.get("mountPath") or "")
        if not mount_path:
            errs.append(_required(f"{at}.mountPath"))
        if mount_path in mount_paths:
            errs.append(_invalid(f"{at}.mountPath", mount_path, "must be unique"))
        mount_paths.add(mount_path)
    pull = container.get("imagePullPolicy")
    if pull not in ("Always", "IfNotPresent", "Never"):  # validatePullPolicy
        errs.append(
            _not_supported(f"{path}.imagePullPolicy", pull, ("Always", "IfNotPresent", "Never"))
        )
    return errs


def _validate_containers(
    containers: Any, init: Any, volumes: set[str], path: str
) -> list[FieldError]:
    """``validateContainers`` and ``validateInitContainers``: containers required; names unique
    across both lists; probes and lifecycle hooks with exactly one handler."""
    if not containers:
        return [_required(f"{path}.containers")]
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, container in enumerate(containers):
        at = f"{path}.containers[{i}]"
        errs += _validate_container_common(container, volumes, at)
        name = container.get("name")
        if name in names:
            errs.append(_duplicate(f"{at}.name", name))
        else:
            names.add(name)
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if isinstance(container.get(probe), Mapping):
                errs += _validate_handler(
                    container[probe], f"{at}.{probe}", ("exec", "httpGet", "tcpSocket", "grpc")
                )
        lifecycle = container.get("lifecycle") or {}
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), Mapping):
                errs += _validate_handler(
                    lifecycle[hook],
                    f"{at}.lifecycle.{hook}",
                    ("exec", "httpGet", "tcpSocket", "sleep"),
                )
        if container.get("restartPolicy") is not None:
            errs.append(_forbidden(f"{at}.restartPolicy", "may not be set for non-init containers"))
    for i, container in enumerate(init or ()):
        at = f"{path}.initContainers[{i}]"
        errs += _validate_container_common(container, volumes, at)
        name = container.get("name")
        if name in names:
            errs.append(_duplicate(f"{at}.name", name))
        elif name:
            names.add(name)
    return errs


def _validate_affinity_terms(terms: Any, path: str, weighted: bool) -> list[FieldError]:
    """``validatePodAffinityTerms`` / ``validateWeightedPodAffinityTerms``."""
    errs: list[FieldError] = []
    for i, term in enumerate(terms or ()):
        at = f"{path}[{i}]"
        if weighted:
            weight = term.get("weight")
            if not isinstance(weight, int) or not 1 <= weight <= 100:
                errs.append(_invalid(f"{at}.weight", weight, "must be in the range 1-100"))
            term = term.get("podAffinityTerm") or {}
            at = f"{at}.podAffinityTerm"
        errs += validate_label_selector(term.get("labelSelector"), f"{at}.labelSelector")
        topology = str(term.get("topologyKey") or "")
        if not topology:
            errs.append(_required(f"{at}.topologyKey", "can not be empty"))
        errs += [_invalid(f"{at}.topologyKey", topology, m) for m in is_qualified_name(topology)]
    return errs


def validate_pod_template(template: Any, path: str) -> list[FieldError]:
    """``ValidatePodTemplateSpec`` (labels and annotations at ``<path>.labels`` /
    ``.annotations``, as the real server names them) and the parts of ``ValidatePodSpec`` read:
    volumes, containers, restartPolicy, dnsPolicy, nodeSelector, pod (anti-)affinity, topology
    spread constraints, serviceAccountName, hostname, subdomain, activeDeadlineSeconds."""
    if not isinstance(template, Mapping):
        return [_required(path)]
    meta = template.get("metadata") or {}
    errs = validate_labels(meta.get("labels"), f"{path}.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    spec = template.get("spec") or {}
    sp = f"{path}.spec"
    volumes, verrs = _validate_volumes(spec.get("volumes"), f"{sp}.volumes")
    errs += verrs
    errs += _validate_containers(spec.get("containers"), spec.get("initContainers"), volumes, sp)
    restart = spec.get("restartPolicy")
    if restart not in ("Always", "OnFailure", "Never"):  # validateRestartPolicy
        errs.append(
            _not_supported(f"{sp}.restartPolicy", restart, ("Always", "OnFailure", "Never"))
        )
    dns = spec.get("dnsPolicy")
    dns_policies = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
    if dns not in dns_policies:  # validateDNSPolicy
        errs.append(_not_supported(f"{sp}.dnsPolicy", dns, dns_policies))
    errs += validate_labels(spec.get("nodeSelector"), f"{sp}.nodeSelector")
    affinity = spec.get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):  # validatePodAffinity / validatePodAntiAffinity
        rules = affinity.get(kind) or {}
        at = f"{sp}.affinity.{kind}"
        errs += _validate_affinity_terms(
            rules.get("requiredDuringSchedulingIgnoredDuringExecution"),
            f"{at}.requiredDuringSchedulingIgnoredDuringExecution",
            weighted=False,
        )
        errs += _validate_affinity_terms(
            rules.get("preferredDuringSchedulingIgnoredDuringExecution"),
            f"{at}.preferredDuringSchedulingIgnoredDuringExecution",
            weighted=True,
        )
    spread = spec.get("topologySpreadConstraints") or ()
    for i, constraint in enumerate(spread):  # validateTopologySpreadConstraints
        at = f"{sp}.topologySpreadConstraints[{i}]"
        skew = constraint.get("maxSkew")
        if not isinstance(skew, int) or skew <= 0:
            errs.append(_invalid(f"{at}.maxSkew", skew, "must be greater than zero"))
        if not constraint.get("topologyKey"):
            errs.append(_required(f"{at}.topologyKey", "can not be empty"))
        action = constraint.get("whenUnsatisfiable")
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(
                _not_supported(
                    f"{at}.whenUnsatisfiable", action, ("DoNotSchedule", "ScheduleAnyway")
                )
            )
        for other in spread[i + 1 :]:
            if (other.get("topologyKey"), other.get("whenUnsatisfiable")) == (
                constraint.get("topologyKey"),
                action,
            ):
                errs.append(
                    _duplicate(
                        f"{at}.{{topologyKey, whenUnsatisfiable}}",
                        f"{{{constraint.get('topologyKey')}, {action}}}",
                    )
                )
                break
        errs += validate_label_selector(constraint.get("labelSelector"), f"{at}.labelSelector")
    for field_, check in (
        ("serviceAccountName", is_dns1123_subdomain),
        ("hostname", is_dns1123_label),
        ("subdomain", is_dns1123_label),
        ("priorityClassName", is_dns1123_subdomain),
    ):
        if spec.get(field_):
            errs += [_invalid(f"{sp}.{field_}", spec[field_], m) for m in check(str(spec[field_]))]
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not (isinstance(deadline, int) and 1 <= deadline <= 2**31 - 1):
        errs.append(
            _invalid(
                f"{sp}.activeDeadlineSeconds",
                deadline,
                "must be between 1 and 2147483647, inclusive",
            )
        )
    return errs


# ---------------------------------------------------------------------------- apps/v1


def _validate_int_or_percent(value: Any, path: str) -> list[FieldError]:
    """``ValidatePositiveIntOrPercent``."""
    if isinstance(value, str):
        return [_invalid(path, value, m) for m in is_valid_percent(value)]
    return _nonnegative(value, path)


def _int_or_percent(value: Any) -> int:
    """``getIntOrPercentValue``."""
    if isinstance(value, str):
        return int(value[:-1]) if _PERCENT.match(value) else 0
    return value if isinstance(value, int) else 0


def _over_100(value: Any, path: str) -> list[FieldError]:
    """``IsNotMoreThan100Percent``."""
    if isinstance(value, str) and _PERCENT.match(value) and int(value[:-1]) > 100:
        return [_invalid(path, value, "must not be greater than 100%")]
    return []


def _validate_template_for_selector(
    spec: Mapping[str, Any], path: str, kind_word: str
) -> list[FieldError]:
    """The selector rules of ``ValidateDeploymentSpec`` (required, strict, not empty, matching the
    template's labels: ``ValidatePodTemplateSpecForReplicaSet``) and the template itself, which
    must restart Always and set no activeDeadlineSeconds."""
    errs: list[FieldError] = []
    selector = spec.get("selector")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if selector is None:
        errs.append(_required(f"{path}.selector"))
    else:
        errs += validate_label_selector(selector, f"{path}.selector")
        if _selector_empty(selector):
            errs.append(
                _invalid(f"{path}.selector", selector, f"empty selector is invalid for {kind_word}")
            )
    if selector is not None and not _selector_parses(selector):
        errs.append(_invalid(f"{path}.selector", selector, "invalid label selector"))
    elif selector is not None and not _selector_empty(selector):
        if not selector_matches(selector, labels):
            errs.append(
                _invalid(
                    f"{path}.template.metadata.labels",
                    labels,
                    "`selector` does not match template `labels`",
                )
            )
    errs += _template_rules(template, f"{path}.template", "ReplicaSet")
    return errs


def _template_rules(template: Any, path: str, owner: str) -> list[FieldError]:
    errs = validate_pod_template(template, path)
    spec = (template or {}).get("spec") or {}
    if spec.get("restartPolicy") != "Always":
        errs.append(
            _not_supported(f"{path}.spec.restartPolicy", spec.get("restartPolicy"), ("Always",))
        )
    if spec.get("activeDeadlineSeconds") is not None:
        errs.append(
            _forbidden(
                f"{path}.spec.activeDeadlineSeconds",
                f"activeDeadlineSeconds in {owner} is not Supported",
            )
        )
    return errs


def validate_deployment_spec(spec: Mapping[str, Any]) -> list[FieldError]:
    """``ValidateDeploymentSpec`` (apps/v1, defaulted)."""
    errs = _nonnegative(spec.get("replicas"), "spec.replicas")
    errs += _validate_template_for_selector(spec, "spec", "deployment")
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type")
    if kind == "Recreate":  # ValidateDeploymentStrategy
        if strategy.get("rollingUpdate") is not None:
            errs.append(
                _forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                )
            )
    elif kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate") or {}
        at = "spec.strategy.rollingUpdate"
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        errs += _validate_int_or_percent(unavailable, f"{at}.maxUnavailable")
        errs += _validate_int_or_percent(surge, f"{at}.maxSurge")
        if _int_or_percent(unavailable) == 0 and _int_or_percent(surge) == 0:
            errs.append(
                _invalid(f"{at}.maxUnavailable", unavailable, "may not be 0 when `maxSurge` is 0")
            )
        errs += _over_100(unavailable, f"{at}.maxUnavailable")
    else:
        errs.append(_not_supported("spec.strategy", strategy, ("Recreate", "RollingUpdate")))
    min_ready = spec.get("minReadySeconds") or 0
    errs += _nonnegative(min_ready, "spec.minReadySeconds")
    errs += _nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        errs += _nonnegative(deadline, "spec.progressDeadlineSeconds")
        if isinstance(deadline, int) and isinstance(min_ready, int) and deadline <= min_ready:
            errs.append(
                _invalid(
                    "spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"
                )
            )
    return errs


def validate_daemonset_spec(spec: Mapping[str, Any]) -> list[FieldError]:
    """``ValidateDaemonSetSpec`` (apps/v1, defaulted): a nil selector matches no template."""
    errs: list[FieldError] = []
    selector = spec.get("selector")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    errs += validate_label_selector(selector, "spec.selector")
    if _selector_parses(selector) and not selector_matches(selector, labels):
        errs.append(
            _invalid(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        )
    if isinstance(selector, Mapping) and _selector_empty(selector):
        errs.append(_invalid("spec.selector", selector, "empty selector is invalid for daemonset"))
    errs += _template_rules(template, "spec.template", "DaemonSet")
    errs += _nonnegative(spec.get("minReadySeconds") or 0, "spec.minReadySeconds")
    strategy = spec.get("updateStrategy") or {}
    kind = strategy.get("type")
    if kind == "RollingUpdate":  # ValidateDaemonSetUpdateStrategy / ValidateRollingUpdateDaemonSet
        rolling = strategy.get("rollingUpdate")
        at = "spec.updateStrategy.rollingUpdate"
        if rolling is None:
            errs.append(_required(at))
        else:
            unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
            errs += _validate_int_or_percent(unavailable, f"{at}.maxUnavailable")
            errs += _validate_int_or_percent(surge, f"{at}.maxSurge")
            errs += _over_100(unavailable, f"{at}.maxUnavailable")
            errs += _over_100(surge, f"{at}.maxSurge")
            has_unavailable = _int_or_percent(unavailable) != 0
            has_surge = _int_or_percent(surge) != 0
            if has_unavailable and has_surge:
                errs.append(
                    _invalid(
                        f"{at}.maxSurge", surge, "may not be set when maxUnavailable is non-zero"
                    )
                )
            elif not has_unavailable and not has_surge:
                errs.append(_required(f"{at}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    elif kind != "OnDelete":
        errs.append(_not_supported("spec.updateStrategy", strategy, ("RollingUpdate", "OnDelete")))
    errs += _nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    return errs


# ---------------------------------------------------------------------------- core/v1 Service


def _headless(spec: Mapping[str, Any]) -> bool:
    ips = spec.get("clusterIPs") or []
    return bool(ips) and ips[0] == "None"


def validate_service(body: Mapping[str, Any]) -> list[FieldError]:
    """``ValidateService`` (defaulted, after ``normalizeClusterIPs``)."""
    spec = body.get("spec") or {}
    kind = spec.get("type")
    ports = spec.get("ports") or []
    headless = _headless(spec)
    errs: list[FieldError] = []
    if not ports and not headless and kind != "ExternalName":
        errs.append(_required("spec.ports"))
    if kind == "LoadBalancer":
        for i, port in enumerate(ports):
            if port.get("port") == 10250:
                errs.append(
                    _invalid(
                        f"spec.ports[{i}]",
                        10250,
                        "may not expose port 10250 externally since it is used by kubelet",
                    )
                )
        if headless:
            errs.append(
                _invalid(
                    "spec.clusterIPs[0]",
                    "None",
                    "may not be set to 'None' for LoadBalancer services",
                )
            )
    elif kind == "NodePort" and headless:
        errs.append(
            _invalid("spec.clusterIPs[0]", "None", "may not be set to 'None' for NodePort services")
        )
    elif kind == "ExternalName":
        if spec.get("clusterIPs"):
            errs.append(_forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            errs.append(_forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(
                _forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services")
            )
        cname = str(spec.get("externalName") or "").removesuffix(".")
        if cname:
            errs += [_invalid("spec.externalName", cname, m) for m in is_dns1123_subdomain(cname)]
        else:
            errs.append(_required("spec.externalName"))
    names: set[str] = set()
    for i, port in enumerate(ports):  # validateServicePort
        at = f"spec.ports[{i}]"
        name = str(port.get("name") or "")
        if len(ports) > 1 and not name:
            errs.append(_required(f"{at}.name"))
        elif name:
            errs += [_invalid(f"{at}.name", name, m) for m in is_dns1123_label(name)]
            if name in names:
                errs.append(_duplicate(f"{at}.name", name))
            else:
                names.add(name)
        errs += [
            _invalid(f"{at}.port", port.get("port"), m) for m in is_valid_port_num(port.get("port"))
        ]
        if port.get("protocol") not in _PROTOCOLS:
            errs.append(_not_supported(f"{at}.protocol", port.get("protocol"), _PROTOCOLS))
        errs += _validate_port_num_or_name(port.get("targetPort"), f"{at}.targetPort")
        if port.get("appProtocol") is not None:
            errs += [
                _invalid(f"{at}.appProtocol", port["appProtocol"], m)
                for m in is_qualified_name(str(port["appProtocol"]))
            ]
    if spec.get("selector") is not None:
        errs += validate_labels(spec["selector"], "spec.selector")
    affinity = spec.get("sessionAffinity")
    if not affinity:
        errs.append(_required("spec.sessionAffinity"))
    elif affinity not in ("ClientIP", "None"):
        errs.append(_not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    if affinity == "ClientIP":  # validateClientIPAffinityConfig
        timeout = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get(
            "timeoutSeconds"
        )
        if isinstance(timeout, int) and not 0 < timeout <= 86400:
            errs.append(
                _invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    timeout,
                    "must be greater than 0 and less than 86400",
                )
            )
    elif affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        errs.append(
            _forbidden(
                "spec.sessionAffinityConfig", "must not be set when session affinity is None"
            )
        )
    errs += _validate_cluster_ips(spec)
    for i, ip in enumerate(spec.get("externalIPs") or ()):
        if not _is_valid_ip(str(ip)):
            errs.append(
                _invalid(
                    f"spec.externalIPs[{i}]", ip, "must be a valid IP address, (e.g. 10.9.8.7)"
                )
            )
    types = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
    if not kind:
        errs.append(_required("spec.type"))
    elif kind not in types:
        errs.append(_not_supported("spec.type", kind, types))
    if kind == "ClusterIP":
        for i, port in enumerate(ports):
            if port.get("nodePort"):
                errs.append(
                    _forbidden(
                        f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"
                    )
                )
    node_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        if port.get("nodePort"):
            key = (port.get("protocol"), port["nodePort"])
            if key in node_ports:
                errs.append(_duplicate(f"spec.ports[{i}].nodePort", port["nodePort"]))
            node_ports.add(key)
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):  # duplicate (protocol, port) pairs
        key = (port.get("protocol"), port.get("port"))
        if key in seen:
            errs.append(_duplicate(f"spec.ports[{i}]", {"port": key[1], "protocol": key[0]}))
        seen.add(key)
    if spec.get("loadBalancerSourceRanges") and kind != "LoadBalancer":
        errs.append(
            _forbidden(
                "spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"
            )
        )
    if spec.get("allocateLoadBalancerNodePorts") is not None and kind != "LoadBalancer":
        errs.append(
            _forbidden(
                "spec.allocateLoadBalancerNodePorts",
                "may only be used when `type` is 'LoadBalancer'",
            )
        )
    externally = kind in ("NodePort", "LoadBalancer") or (
        kind == "ClusterIP" and bool(spec.get("externalIPs"))
    )  # apiservice.ExternallyAccessible
    policy = spec.get("externalTrafficPolicy")
    if not externally:
        if policy:
            errs.append(
                _invalid(
                    "spec.externalTrafficPolicy",
                    policy,
                    "may only be set for externally-accessible services",
                )
            )
    elif not policy:
        errs.append(_required("spec.externalTrafficPolicy"))
    elif policy not in ("Cluster", "Local"):
        errs.append(_not_supported("spec.externalTrafficPolicy", policy, ("Cluster", "Local")))
    # validateServiceExternalTrafficPolicy, the health check port (the fake allocates none, so
    # its absence where one is needed is not refused here)
    needs_health_check = kind == "LoadBalancer" and policy == "Local"
    if not needs_health_check and spec.get("healthCheckNodePort"):
        errs.append(
            _invalid(
                "spec.healthCheckNodePort",
                spec["healthCheckNodePort"],
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is "
                "'Local'",
            )
        )
    internal = spec.get("internalTrafficPolicy")
    if internal is None and kind in ("NodePort", "LoadBalancer", "ClusterIP"):
        errs.append(_required("spec.internalTrafficPolicy"))
    elif internal is not None and internal not in ("Cluster", "Local"):
        errs.append(_not_supported("spec.internalTrafficPolicy", internal, ("Cluster", "Local")))
    distribution = spec.get("trafficDistribution")
    # validateServiceTrafficDistribution: PreferClose; PreferSameZone and PreferSameNode are
    # accepted too (newer servers with PreferSameTrafficDistribution; which one the real
    # cluster runs is not known here, so only what no version accepts is refused).
    allowed = ("PreferClose", "PreferSameZone", "PreferSameNode")
    if distribution is not None and distribution not in allowed:
        errs.append(_not_supported("spec.trafficDistribution", distribution, ("PreferClose",)))
    return errs


def _validate_cluster_ips(spec: Mapping[str, Any]) -> list[FieldError]:
    """``ValidateServiceClusterIPsRelatedFields``."""
    if spec.get("type") == "ExternalName":
        return []
    errs: list[FieldError] = []
    cluster_ip = spec.get("clusterIP") or ""
    ips = list(spec.get("clusterIPs") or [])
    if cluster_ip:
        if not ips:
            errs.append(_required("spec.clusterIPs"))
        elif ips[0] != cluster_ip:
            errs.append(_invalid("spec.clusterIPs", ips, "first value must match `clusterIP`"))
    elif ips:
        errs.append(
            _invalid("spec.clusterIPs", ips, "must be empty when `clusterIP` is not specified")
        )
    families = list(spec.get("ipFamilies") or [])
    for i, family in enumerate(families):
        if family not in ("IPv4", "IPv6"):
            errs.append(_not_supported(f"spec.ipFamilies[{i}]", family, ("IPv4", "IPv6")))
        if family in families[:i]:
            errs.append(_duplicate(f"spec.ipFamilies[{i}]", family))
    policies = ("PreferDualStack", "RequireDualStack", "SingleStack")
    if spec.get("ipFamilyPolicy") is not None and spec["ipFamilyPolicy"] not in policies:
        errs.append(_not_supported("spec.ipFamilyPolicy", spec["ipFamilyPolicy"], policies))
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                errs.append(
                    _invalid("spec.clusterIPs", ips, "'None' must be the first and only value")
                )
            continue
        if not _is_valid_ip(str(ip)):
            errs.append(
                _invalid(f"spec.clusterIPs[{i}]", ip, "must be a valid IP address, (e.g. 10.9.8.7)")
            )
    if len(ips) > 2:
        errs.append(_invalid("spec.clusterIPs", ips, "may only hold up to 2 values"))
    return errs


def _validate_cluster_ips_update(
    new: Mapping[str, Any], old: Mapping[str, Any]
) -> list[FieldError]:
    """``validateUpgradeDowngradeClusterIPs``: a primary clusterIP cannot change or be unset."""
    if "ExternalName" in (new.get("type"), old.get("type")):
        return []
    if _headless(new) and _headless(old):
        return []
    before, after = list(old.get("clusterIPs") or []), list(new.get("clusterIPs") or [])
    errs: list[FieldError] = []
    if len(before) == len(after):
        for i, ip in enumerate(before):
            if ip != after[i]:
                errs.append(_invalid(f"spec.clusterIPs[{i}]", after, "may not change once set"))
    elif len(before) > len(after):
        if not after:
            errs.append(_invalid("spec.clusterIPs[0]", after, "primary clusterIP can not be unset"))
        elif before[0] != after[0]:
            errs.append(_invalid("spec.clusterIPs[0]", after, "may not change once set"))
    elif before and after[0] != before[0]:
        errs.append(_invalid("spec.clusterIPs[0]", after, "may not change once set"))
    return errs


def normalize_service(new: Body, old: Mapping[str, Any] | None) -> None:
    """What the Service REST storage does before validating, in place: ``patchAllocatedValues``
    (an update that leaves out the allocated clusterIP(s), or a node port, keeps the old ones)
    then ``normalizeClusterIPs`` (clusterIPs follows clusterIP)."""
    spec = new.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    if old is None:
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        return
    before = copy.deepcopy(dict(old.get("spec") or {}))
    if before.get("clusterIP") and not before.get("clusterIPs"):
        # defaultOnReadService: a Service stored before clusterIP became plural reads as if it
        # had clusterIPs (normalizeClusterIPs on read), and so does the object a patch is made on
        before["clusterIPs"] = [before["clusterIP"]]
    kind_new = spec.get("type") or "ClusterIP"
    kind_old = before.get("type") or "ClusterIP"
    if kind_new != "ExternalName" and kind_old != "ExternalName":  # needsClusterIP
        if not spec.get("clusterIP") and before.get("clusterIP"):
            spec["clusterIP"] = before["clusterIP"]
        if not spec.get("clusterIPs") and before.get("clusterIPs"):
            spec["clusterIPs"] = list(before["clusterIPs"])
    if kind_new in ("NodePort", "LoadBalancer") and kind_old in ("NodePort", "LoadBalancer"):
        used = {p.get("nodePort") for p in before.get("ports") or () if p.get("nodePort")} & {
            p.get("nodePort") for p in spec.get("ports") or () if p.get("nodePort")
        }
        by_name = {p.get("name", ""): p.get("nodePort") for p in before.get("ports") or ()}
        for port in spec.get("ports") or ():
            if isinstance(port, dict) and not port.get("nodePort"):
                old_port = by_name.get(port.get("name", ""))
                if old_port and old_port not in used:
                    port["nodePort"] = old_port
    _drop_type_dependent_fields(spec, before)
    # normalizeClusterIPs (update)
    if before.get("clusterIPs") and not spec.get("clusterIPs"):
        if (before.get("clusterIP") or "") == (spec.get("clusterIP") or ""):
            spec["clusterIPs"] = list(before["clusterIPs"])
    if (before.get("clusterIP") or "") != (spec.get("clusterIP") or ""):
        same = list(before.get("clusterIPs") or []) == list(spec.get("clusterIPs") or [])
        if before.get("clusterIP") and not spec.get("clusterIP"):
            if same:
                spec.pop("clusterIPs", None)
        elif same:
            spec["clusterIPs"] = [spec["clusterIP"]]


def _drop_type_dependent_fields(spec: Body, before: Mapping[str, Any]) -> None:
    """The Service strategy's ``dropTypeDependentFields`` (PrepareForUpdate): switching to a type
    that does not use them wipes the node ports, health check node port and cluster IPs the
    update left as they were (changed ones are left for validation to refuse)."""
    kind_new, kind_old = spec.get("type") or "ClusterIP", before.get("type") or "ClusterIP"
    if kind_old != "ExternalName" and kind_new == "ExternalName":
        same_ips = (spec.get("clusterIP") or "") == (before.get("clusterIP") or "") and list(
            spec.get("clusterIPs") or []
        ) == list(before.get("clusterIPs") or [])
        if same_ips:
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if spec.get("ipFamilies") == before.get("ipFamilies"):
            spec.pop("ipFamilies", None)
        if spec.get("ipFamilyPolicy") == before.get("ipFamilyPolicy"):
            spec.pop("ipFamilyPolicy", None)
    node_types = ("NodePort", "LoadBalancer")
    if kind_old in node_types and kind_new not in node_types:
        old_ports = {p.get("nodePort") for p in before.get("ports") or () if p.get("nodePort")}
        new_ports = {p.get("nodePort") for p in spec.get("ports") or () if p.get("nodePort")}
        if new_ports <= old_ports:  # sameNodePorts: no net-new node port
            for port in spec.get("ports") or ():
                if isinstance(port, dict):
                    port.pop("nodePort", None)

    def needs_health_check(s: Mapping[str, Any]) -> bool:
        return s.get("type") == "LoadBalancer" and s.get("externalTrafficPolicy") == "Local"

    if needs_health_check(before) and not needs_health_check(spec):
        if spec.get("healthCheckNodePort") == before.get("healthCheckNodePort"):
            spec.pop("healthCheckNodePort", None)


# ---------------------------------------------------------------------------- other kinds

_MAX_SECRET_SIZE = 1024 * 1024


def _decoded_size(value: Any) -> int:
    try:
        return len(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return len(str(value))


def validate_config_map(body: Mapping[str, Any]) -> list[FieldError]:
    """``ValidateConfigMap``: keys ``IsConfigMapKey``, none in both data and binaryData, the total
    at most 1 MiB."""
    errs: list[FieldError] = []
    data = body.get("data") or {}
    binary = body.get("binaryData") or {}
    total = 0
    for key, value in data.items():
        errs += [_invalid(f"data[{key}]", key, m) for m in is_config_map_key(str(key))]
        if key in binary:
            errs.append(_invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        total += len(str(value).encode())
    for key, value in binary.items():
        errs += [_invalid(f"binaryData[{key}]", key, m) for m in is_config_map_key(str(key))]
        total += _decoded_size(value)
    if total > _MAX_SECRET_SIZE:
        errs.append(_too_long("", _MAX_SECRET_SIZE))
    return errs


_SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def validate_secret(body: Mapping[str, Any]) -> list[FieldError]:
    """``ValidateSecret``: keys, total size at most 1 MiB, each type's required keys."""
    errs: list[FieldError] = []
    data = dict(body.get("data") or {})
    for key, value in (body.get("stringData") or {}).items():  # converted into data
        data[key] = base64.b64encode(str(value).encode()).decode()
    total = 0
    for key, value in data.items():
        errs += [_invalid(f"data[{key}]", key, m) for m in is_config_map_key(str(key))]
        total += _decoded_size(value)
    if total > _MAX_SECRET_SIZE:
        errs.append(_too_long("data", _MAX_SECRET_SIZE))
    kind = body.get("type")
    if kind == "kubernetes.io/service-account-token":
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        if not annotations.get("kubernetes.io/service-account.name"):
            errs.append(_required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs += [_required("data[username]"), _required("data[password]")]
    elif kind == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            errs.append(_required("data[ssh-privatekey]"))
    elif kind in _SECRET_KEYS:
        errs += [_required(f"data[{k}]") for k in _SECRET_KEYS[kind] if k not in data]
    return errs


def _immutable_data(
    new: Mapping[str, Any], old: Mapping[str, Any], fields: tuple[str, ...]
) -> list[FieldError]:
    """``ValidateConfigMapUpdate`` / ``ValidateSecretUpdate``: an ``immutable: true`` object
    stays immutable and keeps its data."""
    if old.get("immutable") is not True:
        return []
    errs: list[FieldError] = []
    if new.get("immutable") is not True:
        errs.append(_forbidden("immutable", "field is immutable when `immutable` is set"))
    errs += [
        _forbidden(field_, "field is immutable when `immutable` is set")
        for field_ in fields
        if (new.get(field_) or {}) != (old.get(field_) or {})
    ]
    return errs


def _quantity_positive(value: Any) -> bool:
    """Whether a resource.Quantity is positive (its ``Sign() == 1``)."""
    match = re.match(r"^\s*([+-]?)(\d*\.?\d*)", str(value))
    if not match or not match.group(2).strip("."):
        return False
    return match.group(1) != "-" and float(match.group(2)) > 0


def _validate_metric_target(target: Any, path: str) -> list[FieldError]:
    """``validateMetricTarget``."""
    target = target or {}
    errs: list[FieldError] = []
    if not target.get("type"):
        errs.append(_required(f"{path}.type", "must specify a metric target type"))
    if target.get("type") not in ("Utilization", "Value", "AverageValue"):
        errs.append(
            _invalid(
                f"{path}.type",
                target.get("type") or "",
                "must be either Utilization, Value, or AverageValue",
            )
        )
    errs += [
        _invalid(f"{path}.{key}", target[key], "must be positive")
        for key in ("value", "averageValue")
        if target.get(key) is not None and not _quantity_positive(target[key])
    ]
    utilization = target.get("averageUtilization")
    if utilization is not None and (not isinstance(utilization, int) or utilization < 1):
        errs.append(_invalid(f"{path}.averageUtilization", utilization, "must be greater than 0"))
    return errs


def _validate_metric_name(metric: Any, path: str) -> list[FieldError]:
    """``validateMetricIdentifier``."""
    name = str((metric or {}).get("name") or "")
    if not name:
        return [_required(f"{path}.name", "must specify a metric name")]
    return [_invalid(f"{path}.name", name, m) for m in is_valid_path_segment_name(name)]


def _validate_cross_version_ref(ref: Any, path: str) -> list[FieldError]:
    """``ValidateCrossVersionObjectReference``: kind and name required, path segment names."""
    ref = ref or {}
    errs: list[FieldError] = []
    for key in ("kind", "name"):
        value = str(ref.get(key) or "")
        if not value:
            errs.append(_required(f"{path}.{key}"))
        else:
            errs += [_invalid(f"{path}.{key}", value, m) for m in is_valid_path_segment_name(value)]
    return errs


_METRIC_SOURCES = {
    "Object": "object",
    "Pods": "pods",
    "Resource": "resource",
    "External": "external",
    "ContainerResource": "containerResource",
}


def _validate_metric_spec(metric: Mapping[str, Any], path: str) -> list[FieldError]:
    """``validateMetricSpec`` and the per-source validators."""
    errs: list[FieldError] = []
    kind = metric.get("type")
    valid = sorted(_METRIC_SOURCES)
    if not kind:
        errs.append(_required(f"{path}.type", "must specify a metric source type"))
    if kind not in _METRIC_SOURCES:
        errs.append(_not_supported(f"{path}.type", kind or "", valid))
    present = [
        f
        for f in ("object", "external", "pods", "resource", "containerResource")
        if metric.get(f) is not None
    ]
    if present:
        first = present[0]
        source = metric[first]
        at = f"{path}.{first}"
        target = source.get("target") or {}
        if first == "object":
            errs += _validate_cross_version_ref(
                source.get("describedObject"), f"{at}.describedObject"
            )
            errs += _validate_metric_name(source.get("metric"), f"{at}.metric")
            errs += _validate_metric_target(target, f"{at}.target")
            if target.get("value") is None and target.get("averageValue") is None:
                errs.append(
                    _required(
                        f"{at}.target.averageValue",
                        "must set either a target value or averageValue",
                    )
                )
        elif first == "external":
            errs += _validate_metric_name(source.get("metric"), f"{at}.metric")
            errs += _validate_metric_target(target, f"{at}.target")
            if target.get("value") is None and target.get("averageValue") is None:
                errs.append(
                    _required(
                        f"{at}.target.averageValue",
                        "must set either a target value for metric or a per-pod target",
                    )
                )
            if target.get("value") is not None and target.get("averageValue") is not None:
                errs.append(
                    _forbidden(
                        f"{at}.target.value",
                        "may not set both a target value for metric and a per-pod target",
                    )
                )
        elif first == "pods":
            errs += _validate_metric_name(source.get("metric"), f"{at}.metric")
            errs += _validate_metric_target(target, f"{at}.target")
            if target.get("averageValue") is None:
                errs.append(
                    _required(
                        f"{at}.target.averageValue", "must specify a positive target averageValue"
                    )
                )
        else:  # resource, containerResource
            if not source.get("name"):
                errs.append(_required(f"{at}.name", "must specify a resource name"))
            if first == "containerResource":
                container = str(source.get("container") or "")
                if not container:
                    errs.append(_required(f"{at}.container", "must specify a container"))
                else:
                    errs += [
                        _invalid(f"{at}.container", container, m)
                        for m in is_dns1123_label(container)
                    ]
            errs += _validate_metric_target(target, f"{at}.target")
            if target.get("averageUtilization") is None and target.get("averageValue") is None:
                errs.append(
                    _required(
                        f"{at}.target.averageUtilization",
                        "must set either a target raw value or a target utilization",
                    )
                )
            if (
                target.get("averageUtilization") is not None
                and target.get("averageValue") is not None
            ):
                errs.append(
                    _forbidden(
                        f"{at}.target.averageValue",
                        "may not set both a target raw value and a target utilization",
                    )
                )
    expected = _METRIC_SOURCES.get(str(kind))
    if expected and metric.get(expected) is None:
        errs.append(
            _required(f"{path}.{expected}", "must populate information for the given metric source")
        )
    if len(present) != 1:
        errs += [
            _forbidden(f"{path}.{f}", "must populate the given metric source only")
            for f in present
            if f != expected
        ]
    return errs


def validate_hpa_spec(spec: Mapping[str, Any], min_bound: int) -> list[FieldError]:
    """``validateHorizontalPodAutoscalerSpec`` (autoscaling/v2, defaulted; ``min_bound`` 1, or 0
    where HPAScaleToZero applies: an old object already at 0)."""
    errs: list[FieldError] = []
    low, high = spec.get("minReplicas"), spec.get("maxReplicas") or 0
    if isinstance(low, int) and low < min_bound:
        errs.append(
            _invalid("spec.minReplicas", low, f"must be greater than or equal to {min_bound}")
        )
    if not isinstance(high, int) or high < 1:
        errs.append(_invalid("spec.maxReplicas", high, "must be greater than 0"))
    if isinstance(low, int) and isinstance(high, int) and high < low:
        errs.append(
            _invalid("spec.maxReplicas", high, "must be greater than or equal to `minReplicas`")
        )
    errs += _validate_cross_version_ref(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
    metrics = spec.get("metrics") or []
    for i, metric in enumerate(metrics):  # validateMetrics
        errs += _validate_metric_spec(metric, f"spec.metrics[{i}]")
    if low == 0 and not any(m.get("type") in ("Object", "External") for m in metrics):
        errs.append(
            _forbidden(
                "spec.metrics",
                "must specify at least one Object or External metric to support scaling to zero "
                "replicas",
            )
        )
    behavior = spec.get("behavior") or {}
    for direction in ("scaleUp", "scaleDown"):  # validateBehavior / validateScalingRules
        rules = behavior.get(direction)
        if not isinstance(rules, Mapping):
            continue
        at = f"spec.behavior.{direction}"
        window = rules.get("stabilizationWindowSeconds")
        if isinstance(window, int) and window < 0:
            errs.append(
                _invalid(
                    f"{at}.stabilizationWindowSeconds",
                    window,
                    "must be greater than or equal to zero",
                )
            )
        if isinstance(window, int) and window > 3600:
            errs.append(
                _invalid(
                    f"{at}.stabilizationWindowSeconds", window, "must be less than or equal to 3600"
                )
            )
        select = rules.get("selectPolicy")
        if select is not None and select not in ("Disabled", "Max", "Min"):
            errs.append(_not_supported(f"{at}.selectPolicy", select, ("Disabled", "Max", "Min")))
        for i, policy in enumerate(rules.get("policies") or ()):  # validateScalingPolicy
            pat = f"{at}.policies[{i}]"
            if policy.get("type") not in ("Pods", "Percent"):
                errs.append(
                    _not_supported(f"{pat}.type", policy.get("type") or "", ("Percent", "Pods"))
                )
            value, period = policy.get("value") or 0, policy.get("periodSeconds") or 0
            if value <= 0:
                errs.append(_invalid(f"{pat}.value", value, "must be greater than zero"))
            if period <= 0:
                errs.append(_invalid(f"{pat}.periodSeconds", period, "must be greater than zero"))
            if period > 1800:
                errs.append(
                    _invalid(f"{pat}.periodSeconds", period, "must be less than or equal to 1800")
                )
    return errs


def validate_event(body: Mapping[str, Any]) -> list[FieldError]:
    """``legacyValidateEvent`` for a core/v1 request (``ValidateEventCreate`` stops there for
    core/v1, as ``ValidateEventUpdate`` does)."""
    errs: list[FieldError] = []
    namespace = str((body.get("metadata") or {}).get("namespace") or "")
    involved = body.get("involvedObject") or {}
    involved_ns = str(involved.get("namespace") or "")
    if not body.get("eventTime"):
        if not involved_ns:
            if namespace not in ("", "default"):
                errs.append(
                    _invalid(
                        "involvedObject.namespace", involved_ns, "does not match event.namespace"
                    )
                )
        elif namespace != involved_ns:
            errs.append(
                _invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
            )
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            errs.append(
                _invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
            )
        controller = str(body.get("reportingComponent") or "")
        if not controller:
            errs.append(_required("reportingComponent"))
        errs += [
            _invalid("reportingComponent", controller, m) for m in is_qualified_name(controller)
        ]
        instance = str(body.get("reportingInstance") or "")
        if not instance:
            errs.append(_required("reportingInstance"))
        if len(instance) > 128:
            errs.append(_invalid("reportingInstance", "", "can have at most 128 characters"))
        for key, limit in (("action", 128), ("reason", 128)):
            value = str(body.get(key) or "")
            if not value:
                errs.append(_required(key))
            if len(value) > limit:
                errs.append(_invalid(key, "", f"can have at most {limit} characters"))
        if len(str(body.get("message") or "")) > 1024:
            errs.append(_invalid("message", "", "can have at most 1024 characters"))
    errs += [_invalid("namespace", namespace, m) for m in is_dns1123_subdomain(namespace)]
    return errs


def validate_lease_spec(spec: Mapping[str, Any]) -> list[FieldError]:
    """``ValidateLeaseSpec``."""
    errs: list[FieldError] = []
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        errs.append(_invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        errs.append(
            _invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
        )
    return errs


_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")


def _validate_ingress_backend(backend: Mapping[str, Any], path: str) -> list[FieldError]:
    """``validateIngressBackend`` (networking.k8s.io/v1)."""
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        return [_invalid(path, "", "cannot set both resource and service backends")]
    if resource is not None:
        errs: list[FieldError] = []
        for key in ("kind", "name"):
            value = str(resource.get(key) or "")
            if not value:
                errs.append(_required(f"{path}.resource.{key}", f"{key} is required"))
            else:
                errs += [
                    _invalid(f"{path}.resource.{key}", value, m)
                    for m in is_valid_path_segment_name(value)
                ]
        return errs
    if service is None:
        return [_invalid(path, "", "resource or service backend is required")]
    errs = []
    name = str(service.get("name") or "")
    if not name:
        errs.append(_required(f"{path}.service.name"))
    else:
        errs += [_invalid(f"{path}.service.name", name, m) for m in is_dns1035_label(name)]
    port = service.get("port") or {}
    port_name, number = str(port.get("name") or ""), port.get("number") or 0
    if port_name and number:
        errs.append(_invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        errs += [
            _invalid(f"{path}.service.port.name", port_name, m)
            for m in is_valid_port_name(port_name)
        ]
    elif number:
        errs += [
            _invalid(f"{path}.service.port.number", number, m) for m in is_valid_port_num(number)
        ]
    else:
        errs.append(_required(path, "port name or number is required"))
    return errs


def validate_ingress(body: Mapping[str, Any], *, create: bool) -> list[FieldError]:
    """``ValidateIngressSpec`` (+ the create-only ingress class annotation rule of
    ``ValidateIngressCreate``)."""
    spec = body.get("spec") or {}
    rules = spec.get("rules") or []
    errs: list[FieldError] = []
    if not rules and spec.get("defaultBackend") is None:
        errs.append(_invalid("spec", rules, "either `defaultBackend` or `rules` must be specified"))
    if isinstance(spec.get("defaultBackend"), Mapping):
        errs += _validate_ingress_backend(spec["defaultBackend"], "spec.defaultBackend")
    for i, rule in enumerate(rules):  # validateIngressRules
        at = f"spec.rules[{i}]"
        host = str(rule.get("host") or "")
        if host:
            if _is_valid_ip(host):
                errs.append(_invalid(f"{at}.host", host, "must be a DNS name, not an IP address"))
            checks = is_wildcard_dns1123_subdomain if "*" in host else is_dns1123_subdomain
            errs += [_invalid(f"{at}.host", host, m) for m in checks(host)]
        http = rule.get("http")
        if http is None:
            continue
        paths = http.get("paths") or []
        if not paths:
            errs.append(_required(f"{at}.http.paths"))
        for j, item in enumerate(paths):  # validateHTTPIngressPath
            pat = f"{at}.http.paths[{j}]"
            kind, value = item.get("pathType"), str(item.get("path") or "")
            if kind is None:
                errs.append(_required(f"{pat}.pathType", "pathType must be specified"))
                continue
            if kind in ("Exact", "Prefix"):
                if not value.startswith("/"):
                    errs.append(_invalid(f"{pat}.path", value, "must be an absolute path"))
                for seq in ("//", "/./", "/../", "%2f", "%2F"):
                    if seq in value:
                        errs.append(_invalid(f"{pat}.path", value, f"must not contain '{seq}'"))
                for suffix in ("/..", "/."):
                    if value.endswith(suffix):
                        errs.append(_invalid(f"{pat}.path", value, f"cannot end with '{suffix}'"))
            elif kind == "ImplementationSpecific":
                if value and not value.startswith("/"):
                    errs.append(_invalid(f"{pat}.path", value, "must be an absolute path"))
            else:
                errs.append(_not_supported(f"{pat}.pathType", kind, _PATH_TYPES))
            errs += _validate_ingress_backend(item.get("backend") or {}, f"{pat}.backend")
    for i, tls in enumerate(spec.get("tls") or ()):  # validateIngressTLS
        for j, host in enumerate(tls.get("hosts") or ()):
            checks = is_wildcard_dns1123_subdomain if "*" in str(host) else is_dns1123_subdomain
            errs += [_invalid(f"spec.tls[{i}].hosts[{j}]", host, m) for m in checks(str(host))]
        if tls.get("secretName"):
            errs += [
                _invalid(f"spec.tls[{i}].secretName", tls["secretName"], m)
                for m in is_dns1123_subdomain(str(tls["secretName"]))
            ]
    if spec.get("ingressClassName") is not None:
        errs += [
            _invalid("spec.ingressClassName", spec["ingressClassName"], m)
            for m in is_dns1123_subdomain(str(spec["ingressClassName"]))
        ]
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    class_annotation = annotations.get("kubernetes.io/ingress.class")
    if create and class_annotation is not None and spec.get("ingressClassName") is not None:
        if class_annotation != spec["ingressClassName"]:
            errs.append(
                _invalid(
                    "annotations.kubernetes.io/ingress.class",
                    class_annotation,
                    "must match `ingressClassName` when both are specified",
                )
            )
    return errs


# ---------------------------------------------------------------------------- decoding

#: Where a built-in kind has a ``map[string]string``: a value of another JSON type does not
#: decode into the typed object, so the server answers 400 before any validation runs.
_STRING_MAPS: dict[str, tuple[tuple[str, ...], ...]] = {
    "deployments": (("spec", "template", "metadata", "labels"),
                    ("spec", "template", "metadata", "annotations"),
                    ("spec", "selector", "matchLabels")),
    "daemonsets": (("spec", "template", "metadata", "labels"),
                   ("spec", "template", "metadata", "annotations"),
                   ("spec", "selector", "matchLabels")),
    "services": (("spec", "selector"),),
    "configmaps": (("data",),),
}  # fmt: skip


def decode_error(plural: str, body: Mapping[str, Any]) -> str | None:
    """The JSON decoding error of a string map holding a non-string (a label, an annotation, a
    selector or ConfigMap value written as a number, a bool or null), as encoding/json words it;
    None when every such map decodes."""
    paths = (("metadata", "labels"), ("metadata", "annotations"), *_STRING_MAPS.get(plural, ()))
    for path in paths:
        node: Any = body
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping):
            continue
        for value in node.values():
            if not isinstance(value, str):
                kind = {bool: "bool", int: "number", float: "number"}.get(type(value), "object")
                if value is None:
                    continue  # null decodes as "" in a map[string]string
                if isinstance(value, list):
                    kind = "array"
                where = ".".join(path)  # Go names the struct too: approximated
                return f"json: cannot unmarshal {kind} into Go struct field {where} of type string"
    return None


# ---------------------------------------------------------------------------- dispatch

#: (group, plural) -> (kind, name rule, kube finalizer rule)
KINDS: dict[tuple[str, str], tuple[str, NameFn, bool]] = {
    ("apps", "deployments"): ("Deployment", name_is_dns_subdomain, True),
    ("apps", "daemonsets"): ("DaemonSet", name_is_dns_subdomain, True),
    ("", "services"): ("Service", name_is_dns1035_label, True),
    ("", "configmaps"): ("ConfigMap", name_is_dns_subdomain, True),
    ("", "secrets"): ("Secret", name_is_dns_subdomain, True),
    ("", "events"): ("Event", name_is_path_segment, False),
    ("autoscaling", "horizontalpodautoscalers"): (
        "HorizontalPodAutoscaler",
        name_is_dns_subdomain,
        True,
    ),
    ("coordination.k8s.io", "leases"): ("Lease", name_is_dns_subdomain, False),
    ("networking.k8s.io", "ingresses"): ("Ingress", name_is_dns_subdomain, True),
}


def validates(group: str, plural: str) -> bool:
    """Whether writes of this resource are validated here."""
    return (group, plural) in KINDS


def validate(
    group: str, plural: str, body: Mapping[str, Any], old: Mapping[str, Any] | None = None
) -> list[FieldError]:
    """What kube-apiserver refuses in a create (``old`` None) or update of ``body``; empty when
    it would store it. ``body`` is the whole object as the server sees it after a patch; for a
    Service it must already be normalized (``normalize_service``)."""
    found = KINDS.get((group, plural))
    if found is None:
        return []
    _, name_fn, kube = found
    update = old is not None
    obj = _defaulted(plural, body)
    meta = obj.get("metadata") or {}
    errs = validate_object_meta(meta, name_fn, update=update, kube=kube)
    spec = obj.get("spec") or {}
    if plural == "deployments":
        errs += validate_deployment_spec(spec)
    elif plural == "daemonsets":
        errs += validate_daemonset_spec(spec)
    elif plural == "services":
        errs += validate_service(obj)
    elif plural == "configmaps":
        errs += validate_config_map(obj)
    elif plural == "secrets":
        errs += validate_secret(obj)
    elif plural == "events":
        errs += validate_event(obj)
    elif plural == "horizontalpodautoscalers":
        old_min = ((old or {}).get("spec") or {}).get("minReplicas")
        errs += validate_hpa_spec(spec, 0 if old_min == 0 else 1)
    elif plural == "leases":
        errs += validate_lease_spec(spec)
    elif plural == "ingresses":
        errs += validate_ingress(obj, create=not update)
    if old is not None:
        before = _defaulted(plural, old)
        if plural == "services":
            normalize_service(before, None)  # defaultOnReadService
        errs += _validate_update(plural, obj, before)
    return errs


def _validate_update(
    plural: str, new: Mapping[str, Any], old: Mapping[str, Any]
) -> list[FieldError]:
    spec, before = new.get("spec") or {}, old.get("spec") or {}
    if plural in ("deployments", "daemonsets"):
        # deploymentStrategy / daemonSetStrategy ValidateUpdate: apps/v1 selectors are immutable
        return _immutable(spec.get("selector"), before.get("selector"), "spec.selector")
    if plural == "services":  # ValidateServiceUpdate
        return _validate_cluster_ips_update(spec, before)
    if plural == "secrets":  # ValidateSecretUpdate
        return _immutable(new.get("type"), old.get("type"), "type") + _immutable_data(
            new, old, ("data",)
        )
    if plural == "configmaps":  # ValidateConfigMapUpdate
        return _immutable_data(new, old, ("data", "binaryData"))
    return []


class ClusterIPs:
    """Allocates Services' cluster IPs (from 10.96.0.0/12, as kubeadm's default range), as the
    Service REST storage does on create: headless (``None``) and ExternalName Services get none,
    a requested free address is kept."""

    def __init__(self) -> None:
        self._next = int(ipaddress.ip_address("10.96.0.10"))
        self._used: set[str] = set()

    def allocate(self, body: Body) -> FieldError | None:
        spec = body.get("spec")
        if not isinstance(spec, dict) or (spec.get("type") or "ClusterIP") == "ExternalName":
            return None
        requested = spec.get("clusterIP")
        if requested == "None":
            spec["clusterIPs"] = ["None"]
            return None
        if requested:
            if requested in self._used:
                return _invalid(
                    "spec.clusterIPs",
                    [requested],
                    f"failed to allocate IP {requested}: provided IP is already allocated",
                )
            self._used.add(str(requested))
            spec["clusterIPs"] = [requested]
            return None
        while str(ipaddress.ip_address(self._next)) in self._used:
            self._next += 1
        address = str(ipaddress.ip_address(self._next))
        self._used.add(address)
        spec["clusterIP"], spec["clusterIPs"] = address, [address]
        return None

    def release(self, body: Mapping[str, Any]) -> None:
        for address in (body.get("spec") or {}).get("clusterIPs") or ():
            self._used.discard(str(address))


__all__ = [
    "KINDS",
    "ClusterIPs",
    "FieldError",
    "decode_error",
    "invalid_message",
    "normalize_service",
    "validate",
    "validates",
]
