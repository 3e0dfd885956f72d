"""The chart's checks, each printing what it verified and each able to fail:

  lint               helm lint --strict (Helm's library) for Kubernetes 1.33, default and all-features values
  values-schema      values.yaml against values.schema.json (check-jsonschema and Helm), and bad values rejected
  deploy-current     deploy/ is what the chart renders now (`cargo xtask generate` rewrites it)
  kubernetes-schema  every rendered built-in object passes `kubernetes-validate --strict -k 1.33.0`
  pod-security       the controller and agent pods' privileges (host access, capabilities, users, probes)
  rbac               each component's requests (api-requests.json) granted, and nothing else
  user-roles         view/edit/admin aggregation: tenants write VirtualServers and RealServers, no status, no pools
  address-pools      no AddressPool by default; the ones --set addressPools=... lists, valid against the CRD
  examples           examples/**/*.yaml, the samples and README.md's yaml blocks against the CRD schemas
  printer-columns    `kubectl get vs` columns resolve to the expected values on a sample with a status

Usage: e2e/chart/check [CHECK...]   (default: all). Exits 1 when any check failed.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import helm_python as helm
import yaml
from jsonpath_ng.ext import parse as parse_jsonpath

sys.path.insert(0, str(Path(__file__).resolve().parent))
import admission  # noqa: E402
import render  # noqa: E402  (the renderer beside this file)
import user_roles  # noqa: E402

ROOT = render.ROOT
CHART = render.CHART
HERE = Path(__file__).resolve().parent
WORK = ROOT / "target" / "chart-check"
BIN = Path(sys.executable).parent
KUBERNETES_VERSION = "1.33.0"
ALL_FEATURES = HERE / "values" / "all-features.yaml"
CUSTOM_GROUPS = {"lvs.operator.io", "monitoring.coreos.com"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


class Failure(Exception):
    """A check's verdict: what did not hold."""


def note(message: str) -> None:
    print(f"    {message}")


def require(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT)


def tool(name: str) -> str:
    return str(BIN / name)


def all_features_values() -> dict[str, Any]:
    return yaml.safe_load(ALL_FEATURES.read_text())


def variants() -> dict[str, dict[str, Any] | None]:
    """The value sets every render-based check covers."""
    return {"default values": None, str(ALL_FEATURES.relative_to(ROOT)): all_features_values()}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# ---------------------------------------------------------------------------------------------
# lint


def check_lint() -> None:
    for label, values in variants().items():
        report = helm.lint(
            str(CHART), values, strict=True, namespace=render.NAMESPACE,
            kube_version=f"v{KUBERNETES_VERSION}",
        )
        problems = [m for m in report["messages"] if m["severity"] >= 2] + [
            {"severity": 3, "path": "", "error": error} for error in report["errors"]
        ]
        for message in report["messages"]:
            if message["severity"] < 2:
                note(f"{label}: info: {message['path']}: {message['error']}")
        require(report["total_charts_linted"] == 1, f"{label}: lint saw no chart")
        require(not problems, f"{label}: lint: " + "; ".join(f"{m['path']}: {m['error']}" for m in problems))
        note(f"{label}: helm lint --strict --kube-version v{KUBERNETES_VERSION}: no warnings or errors")


# ---------------------------------------------------------------------------------------------
# values-schema

# Values that must be rejected: each breaks one rule of values.schema.json.
BAD_VALUES = {
    "an unknown top-level key": {"replicaCount": 2},
    "an unknown agent key (privileged)": {"agent": {"privileged": True}},
    "a pull policy Kubernetes does not know": {"image": {"pullPolicy": "Sometimes"}},
    "a port above 65535": {"agent": {"metricsPort": 70000}},
    "a log format the binaries do not know": {"controller": {"logFormat": "xml"}},
    "a string where a boolean belongs": {"serviceMonitor": {"enabled": "yes"}},
    "a Service CIDR without a prefix length": {"serviceCIDRs": ["10.96.0.0"]},
    "a fwmark mask that is not a number": {"fwmarkMask": "0xgg"},
    "a fwmark mask of zero": {"fwmarkMask": 0},
    "an AddressPool without spec": {"addressPools": [{"name": "team-a"}]},
    "an AddressPool name that is no DNS name": {"addressPools": [{"name": "Team_A", "spec": {}}]},
    "an aggregation switch that is a string": {"rbac": {"aggregateToDefaultRoles": "true"}},
    "an AddressPool reader without a kind": {"rbac": {"addressPoolReaders": [{"name": "tenants"}]}},
}


def check_values_schema() -> None:
    schema = CHART / "values.schema.json"
    result = run([tool("check-jsonschema"), "--check-metaschema", str(schema)])
    require(result.returncode == 0, f"values.schema.json is not a valid JSON schema:\n{result.stdout}{result.stderr}")
    require(json.loads(schema.read_text()).get("$schema", "").endswith("draft-07/schema#"), "values.schema.json is not draft-07")
    note("values.schema.json is a valid draft-07 schema (check-jsonschema --check-metaschema)")
    for values_file in [CHART / "values.yaml", ALL_FEATURES]:
        relative = values_file.relative_to(ROOT)
        if values_file != CHART / "values.yaml":
            merged = deep_merge(yaml.safe_load((CHART / "values.yaml").read_text()), yaml.safe_load(values_file.read_text()))
            values_file = WORK / "merged-all-features.yaml"
            values_file.write_text(yaml.safe_dump(merged))
        result = run([tool("check-jsonschema"), "--schemafile", str(schema), str(values_file)])
        require(result.returncode == 0, f"{relative} does not match values.schema.json:\n{result.stdout}{result.stderr}")
        note(f"{relative}: matches values.schema.json (check-jsonschema)")
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(None)
        chart.validate_schema(all_features_values())
        note("default and all-features values: accepted by Helm's own schema validation")
        defaults = yaml.safe_load((CHART / "values.yaml").read_text())
        for label, override in BAD_VALUES.items():
            bad_file = WORK / "bad-values.yaml"
            bad_file.write_text(yaml.safe_dump(deep_merge(defaults, override)))
            result = run([tool("check-jsonschema"), "--schemafile", str(schema), str(bad_file)])
            require(result.returncode != 0, f"check-jsonschema accepted values with {label}: {override}")
            try:
                chart.validate_schema(override)
            except helm.HelmValuesError:
                pass
            else:
                raise Failure(f"Helm accepted values with {label}: {override}")
            note(f"rejected by both: {label} {json.dumps(override)}")


# ---------------------------------------------------------------------------------------------
# deploy-current


def check_deploy_current() -> None:
    stale = render.stale_deploy_files()
    require(not stale, f"out of date: {', '.join(map(str, stale))}: run `cargo xtask generate` and commit")
    for path in render.deploy_files():
        note(f"{path}: identical to a fresh render (release {render.RELEASE}, namespace {render.NAMESPACE})")


# ---------------------------------------------------------------------------------------------
# kubernetes-schema


def group_of(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def kubernetes_validate(path: Path, objects: list[dict[str, Any]]) -> list[str]:
    """Runs kubernetes-validate --strict on `path`; returns the problems with its verdict."""
    result = run([tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, str(path)])
    lines = result.stdout.splitlines() + result.stderr.splitlines()
    passed = set()
    skipped = set()
    problems = [line for line in lines if line.startswith(("ERROR", "FATAL"))]
    for line in lines:
        if match := re.match(r"^INFO .* passed for resource (\S+) against version", line):
            passed.add(match.group(1))
        elif match := re.match(r"^WARN .*Couldn't find schema for kind (\S+) with api version (\S+)", line):
            skipped.add((match.group(1), match.group(2)))
    for obj in objects:
        key = f"{obj['kind'].lower()}/{obj['metadata']['name']}"
        if group_of(obj["apiVersion"]) in CUSTOM_GROUPS:
            continue
        if key not in passed:
            problems.append(f"{key} ({obj['apiVersion']}) was not validated")
    for kind, api_version in skipped:
        if group_of(api_version) not in CUSTOM_GROUPS:
            problems.append(f"no schema for built-in {kind} {api_version}")
    if result.returncode != 0 and not problems:
        problems.append(f"kubernetes-validate exited {result.returncode}: {result.stdout}{result.stderr}")
    return problems


def rendered_with_crds(values: dict[str, Any] | None) -> list[render.Document]:
    """With default values: deploy/lvs-operator.yaml as it must be (the Namespace, the CRDs, the
    chart); otherwise the CRDs and the chart."""
    if values is None:
        manifest = render.deploy_files()[Path("deploy/lvs-operator.yaml")]
        return render.split_documents("deploy/lvs-operator.yaml", manifest)
    return render.chart_crds() + render.render_chart(values)


def check_kubernetes_schema() -> None:
    for label, values in variants().items():
        documents = rendered_with_crds(values)
        objects = [document.object for document in documents]
        path = WORK / f"{'deploy' if values is None else 'rendered-all-features'}.yaml"
        path.write_text(yaml.safe_dump_all(objects))
        problems = kubernetes_validate(path, objects)
        require(not problems, f"{label}: " + "\n".join(problems))
        built_in = [d for d in documents if group_of(d.object["apiVersion"]) not in CUSTOM_GROUPS]
        custom = [d for d in documents if group_of(d.object["apiVersion"]) in CUSTOM_GROUPS]
        note(f"{label}: {len(built_in)} built-in objects valid for Kubernetes {KUBERNETES_VERSION} (strict): "
             + ", ".join(sorted({d.kind for d in built_in})))
        if custom:
            note(f"{label}: skipped (CRD-backed, no built-in schema): " + ", ".join(d.describe() for d in custom))
    # The negative control: the validator must see a misspelt field and a wrong type.
    objects = [d.object for d in render.render_chart()]
    broken = copy.deepcopy(objects)
    deployment = next(o for o in broken if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["priviledged"] = True
    deployment["spec"]["replicas"] = "one"
    path = WORK / "rendered-broken.yaml"
    path.write_text(yaml.safe_dump_all(broken))
    problems = kubernetes_validate(path, broken)
    require(bool(problems), "kubernetes-validate accepted a Deployment with a misspelt field and a string replica count")
    note("negative control: a misspelt securityContext field and replicas: \"one\" are rejected")


# ---------------------------------------------------------------------------------------------
# pod-security


AGENT_SET = "lvs.operator.io/agent-set"


def pod_specs(documents: list[render.Document]) -> dict[str, dict[str, Any]]:
    """The pod template of each workload, by component label (agents: `agent/<agent set>`)."""
    specs = {}
    for document in documents:
        if document.kind in ("Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob", "Pod"):
            labels = document.object["metadata"]["labels"]
            component = labels.get("app.kubernetes.io/component", "")
            if AGENT_SET in labels:
                component = f"{component}/{labels[AGENT_SET]}"
            require(component not in specs, f"two workloads for component {component!r}")
            specs[component] = document.object["spec"]["template"]["spec"]
            specs[component]["__kind"] = document.kind
    return specs


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return pod.get("initContainers", []) + pod["containers"]


def effective(pod: dict[str, Any], container: dict[str, Any], field: str) -> Any:
    context = container.get("securityContext", {})
    return context[field] if field in context else pod.get("securityContext", {}).get(field)


def check_common(name: str, pod: dict[str, Any]) -> None:
    require(not pod.get("hostPID") and not pod.get("hostIPC"), f"{name}: shares the host's PID or IPC namespace")
    for container in containers(pod):
        where = f"{name} container {container['name']}"
        context = container.get("securityContext", {})
        require(context.get("privileged") is not True, f"{where}: privileged: true")
        require(context.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation is not false")
        require(context.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem is not true")
        require("ALL" in context.get("capabilities", {}).get("drop", []), f"{where}: does not drop ALL capabilities")
        seccomp = effective(pod, container, "seccompProfile") or {}
        require(seccomp.get("type") == "RuntimeDefault", f"{where}: seccomp profile is not RuntimeDefault")
        require(context.get("procMount") in (None, "Default"), f"{where}: procMount {context.get('procMount')}")
        for port in container.get("ports", []):
            require("hostPort" not in port or pod.get("hostNetwork"), f"{where}: hostPort without the host network")


def probes(container: dict[str, Any]) -> tuple[str, str]:
    liveness = container.get("livenessProbe", {}).get("httpGet", {})
    readiness = container.get("readinessProbe", {}).get("httpGet", {})
    require(liveness.get("port") == "metrics" and readiness.get("port") == "metrics", f"{container['name']}: probes not on the metrics port")
    return liveness.get("path", ""), readiness.get("path", "")


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {entry["name"]: entry.get("value", entry.get("valueFrom")) for entry in container.get("env", [])}


def check_controller_pod(pod: dict[str, Any], values: dict[str, Any]) -> None:
    name = "controller"
    check_common(name, pod)
    require(not pod.get("hostNetwork"), "controller: uses the host network")
    require(not any("hostPath" in volume for volume in pod.get("volumes", [])), "controller: mounts a host path")
    for container in containers(pod):
        require(effective(pod, container, "runAsNonRoot") is True, f"controller container {container['name']}: may run as root")
        user = effective(pod, container, "runAsUser")
        require(user is None or user != 0, f"controller container {container['name']}: runAsUser 0")
        require(not container.get("securityContext", {}).get("capabilities", {}).get("add"), f"controller container {container['name']}: adds capabilities")
    main = pod["containers"][0]
    require(probes(main) == ("/healthz", "/readyz"), f"controller: probes are {probes(main)}, not /healthz and /readyz")
    arguments = main.get("args", [])
    if values["controller"]["leaderElection"]["enabled"]:
        require("--leader-election" in arguments, "controller: leader election enabled but not passed")
        require("--leader-election-namespace=$(POD_NAMESPACE)" in arguments, "controller: the lease is not in the release namespace")
    require(env_of(main).get("POD_NAMESPACE") == {"fieldRef": {"fieldPath": "metadata.namespace"}}, "controller: POD_NAMESPACE not from the downward API")
    service_cidrs = [a.removeprefix("--service-cidr=") for a in arguments if a.startswith("--service-cidr=")]
    require(service_cidrs == values["serviceCIDRs"], f"controller: --service-cidr {service_cidrs}, values say {values['serviceCIDRs']}")
    masks = [a.removeprefix("--fwmark-mask=") for a in arguments if a.startswith("--fwmark-mask=")]
    require(len(masks) == 1 and int(masks[0], 0) == int(str(values["fwmarkMask"]), 0),
            f"controller: --fwmark-mask {masks}, values say {values['fwmarkMask']!r}")
    note("controller: non-root, read-only root, ALL capabilities dropped, none added, RuntimeDefault seccomp, "
         "no host network/PID/IPC/paths, probes /healthz and /readyz, leader election "
         + ("on" if values["controller"]["leaderElection"]["enabled"] else "off")
         + f", --service-cidr {service_cidrs or 'none'}, --fwmark-mask={masks[0]}")


def check_agent_pod(pod: dict[str, Any], values: dict[str, Any], name: str) -> None:
    check_common(name, pod)
    require(pod.get("hostNetwork") is True, "agent: not on the host network")
    require(pod.get("dnsPolicy") == "ClusterFirstWithHostNet", "agent: dnsPolicy is not ClusterFirstWithHostNet")
    agent = next(c for c in pod["containers"] if c["name"] == "agent")
    added = set(agent["securityContext"]["capabilities"].get("add", []))
    require(added == {"NET_ADMIN", "NET_RAW"}, f"agent: capabilities added are {sorted(added)}, not exactly NET_ADMIN and NET_RAW")
    for init in pod.get("initContainers", []):
        init_added = set(init["securityContext"]["capabilities"].get("add", []))
        require(init_added <= {"SYS_MODULE"}, f"agent init container {init['name']}: adds {sorted(init_added)}")
    require(bool(pod.get("initContainers")) == values["agent"]["loadKernelModules"]["enabled"],
            "agent: the module-loading init container does not follow agent.loadKernelModules.enabled")
    host_paths = {v["name"]: v["hostPath"]["path"] for v in pod.get("volumes", []) if "hostPath" in v}
    allowed = {"/proc/sys/net", values["agent"]["stateDirectory"], "/lib/modules"}
    require(set(host_paths.values()) <= allowed, f"agent: host paths {sorted(host_paths.values())} beyond {sorted(allowed)}")
    mounts = {m["name"]: m for m in agent.get("volumeMounts", [])}
    sysctl_volume = next((n for n, p in host_paths.items() if p == "/proc/sys/net"), None)
    require(sysctl_volume in mounts and not mounts[sysctl_volume].get("readOnly"), "agent: host /proc/sys/net not mounted writable")
    sysctl_root = env_of(agent).get("LVS_SYSCTL_ROOT")
    require(sysctl_root and mounts[sysctl_volume]["mountPath"] == f"{sysctl_root}/net",
            "agent: LVS_SYSCTL_ROOT does not point at the host /proc/sys/net mount")
    require(not mounts[sysctl_volume]["mountPath"].startswith("/proc/"), "agent: a mount inside /proc (runc refuses it)")
    state_volume = next((n for n, p in host_paths.items() if p == values["agent"]["stateDirectory"]), None)
    require(state_volume in mounts, "agent: the state directory is not mounted")
    for volume, path in host_paths.items():
        if path == "/lib/modules":
            require(volume not in mounts, "agent: /lib/modules mounted in the agent container")
            for init in pod.get("initContainers", []):
                for mount in init.get("volumeMounts", []):
                    require(mount["name"] != volume or mount.get("readOnly") is True, "agent: /lib/modules mounted writable")
    environment = env_of(agent)
    require(environment.get("NODE_NAME") == {"fieldRef": {"fieldPath": "spec.nodeName"}}, "agent: NODE_NAME not from spec.nodeName")
    require(environment.get("NODE_IP") == {"fieldRef": {"fieldPath": "status.hostIP"}}, "agent: NODE_IP not from status.hostIP")
    require(probes(agent) == ("/healthz", "/readyz"), f"agent: probes are {probes(agent)}")
    require(pod.get("tolerations"), "agent: no tolerations")
    # Which nodes each agent set runs on (one agent per labelled node) is checked by failover-keys.
    note(f"{name}: host network + ClusterFirstWithHostNet, not privileged, capabilities exactly NET_ADMIN+NET_RAW"
         f"{' (init: SYS_MODULE)' if pod.get('initContainers') else ''}, read-only root, host paths "
         f"{sorted(host_paths.values())}, /proc/sys/net writable at {mounts[sysctl_volume]['mountPath']}, "
         "NODE_NAME/NODE_IP from the downward API, tolerations")


def check_pod_security() -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    for label, values in variants().items():
        merged = deep_merge(defaults, values or {})
        specs = pod_specs(render.render_chart(values))
        expected = {"controller", "agent/real-servers"} | {f"agent/director-{s['name']}" for s in merged["agent"]["failover"]["directorSets"]}
        require(set(specs) == expected, f"{label}: workloads {sorted(specs)}, expected {sorted(expected)}")
        require(specs["controller"]["__kind"] == "Deployment"
                and all(spec["__kind"] == "DaemonSet" for name, spec in specs.items() if name.startswith("agent/")),
                f"{label}: the controller must be a Deployment and the agents DaemonSets")
        note(f"{label}:")
        check_controller_pod(specs["controller"], merged)
        for name, spec in sorted(specs.items()):
            if name.startswith("agent/"):
                check_agent_pod(spec, merged, name)


# ---------------------------------------------------------------------------------------------
# rbac


def rule_grants(rule: dict[str, Any], request: dict[str, Any]) -> bool:
    resource = request["resource"] + (f"/{request['subresource']}" if request.get("subresource") else "")
    verbs, groups, resources = rule.get("verbs", []), rule.get("apiGroups", []), rule.get("resources", [])
    names = rule.get("resourceNames", [])
    return (
        (request["verb"] in verbs or "*" in verbs)
        and (request["group"] in groups or "*" in groups)
        and (resource in resources or "*" in resources)
        and (not names or request.get("name") in names)
    )


def bound_rules(documents: list[render.Document], account: str, namespace: str) -> list[tuple[str | None, str, dict[str, Any]]]:
    """(namespace the rule applies in, or None for the whole cluster; role; rule) for every rule
    bound to the service account."""
    roles = {(d.kind, d.object["metadata"].get("namespace"), d.name): d.object for d in documents if d.kind in ("Role", "ClusterRole")}
    granted = []
    for binding in (d.object for d in documents if d.kind in ("RoleBinding", "ClusterRoleBinding")):
        subjects = binding.get("subjects", [])
        if not any(s["kind"] == "ServiceAccount" and s["name"] == account and s.get("namespace") == namespace for s in subjects):
            continue
        reference = binding["roleRef"]
        binding_namespace = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        role_namespace = binding_namespace if reference["kind"] == "Role" else None
        role = roles.get((reference["kind"], role_namespace, reference["name"]))
        require(role is not None, f"{binding['kind']} {binding['metadata']['name']} refers to a missing {reference['kind']} {reference['name']}")
        for rule in role.get("rules", []):
            granted.append((binding_namespace, f"{reference['kind']} {reference['name']}", rule))
    return granted


def describe(request: dict[str, Any]) -> str:
    resource = request["resource"] + (f"/{request['subresource']}" if request.get("subresource") else "")
    group = request["group"] or "core"
    where = " in the release namespace" if request.get("scope") == "OwnNamespace" else ""
    name = f" {request['name']}" if request.get("name") else ""
    return f"{request['verb']} {group} {resource}{name}{where}"


def expand(rule: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (verb, group, resource, subresource, name) a rule grants."""
    grants = []
    for verb in rule.get("verbs", []):
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                base, _, subresource = resource.partition("/")
                for name in rule.get("resourceNames") or [None]:
                    grant = {"verb": verb, "group": group, "resource": base, "subresource": subresource}
                    if name:
                        grant["name"] = name
                    grants.append(grant)
    return grants


def same_request(grant: dict[str, Any], request: dict[str, Any]) -> bool:
    keys = ("verb", "group", "resource", "subresource")
    if any((grant.get(k) or "") != (request.get(k) or "") for k in keys):
        return False
    return "name" not in grant or grant["name"] == request.get("name")


def check_component_rbac(documents: list[render.Document], component: str, entry: dict[str, Any]) -> None:
    accounts = [d for d in documents if d.kind == "ServiceAccount"
                and d.object["metadata"]["labels"].get("app.kubernetes.io/component") == component]
    require(len(accounts) == 1, f"{component}: {len(accounts)} ServiceAccounts")
    account = accounts[0]
    workloads = [d for d in documents if d.kind in ("Deployment", "DaemonSet")
                 and d.object["metadata"]["labels"].get("app.kubernetes.io/component") == component]
    require(all(w.object["spec"]["template"]["spec"].get("serviceAccountName") == account.name for w in workloads),
            f"{component}: its pods do not run as ServiceAccount {account.name}")
    namespace = account.object["metadata"]["namespace"]
    rules = bound_rules(documents, account.name, namespace)
    for _, role, rule in rules:
        for field in ("verbs", "apiGroups", "resources"):
            require("*" not in rule.get(field, []), f"{component}: {role} grants {field} '*'")
    missing = []
    for request in entry["requests"]:
        scope_ok = [
            rule for scope, _, rule in rules
            if (scope is None or (request.get("scope") == "OwnNamespace" and scope == namespace)) and rule_grants(rule, request)
        ]
        if not scope_ok:
            missing.append(describe(request))
    require(not missing, f"{component}: not granted: " + "; ".join(missing))
    note(f"{component} (ServiceAccount {account.name}): all {len(entry['requests'])} requests granted: "
         + ", ".join(describe(r) for r in entry["requests"]))
    also = entry.get("alsoGranted", [])
    unjustified = []
    for _, role, rule in rules:
        for grant in expand(rule):
            requested = any(same_request(grant, r) for r in entry["requests"])
            allowed = next((a for a in also if same_request(grant, a)), None)
            if allowed:
                note(f"{component}: also granted, not requested: {describe(grant)} ({allowed['why']})")
            elif not requested:
                unjustified.append(f"{describe(grant)} ({role})")
    require(not unjustified, f"{component}: granted but neither requested nor listed in alsoGranted: " + "; ".join(unjustified))
    grants = [g for _, _, rule in rules for g in expand(rule)]
    stale = [describe(a) for a in also if any(same_request(a, r) and same_request(r, a) for r in entry["requests"])]
    require(not stale, f"{component}: requested now, drop from alsoGranted in api-requests.json: " + "; ".join(stale))
    ungranted = [describe(a) for a in also if not any(same_request(g, a) and same_request(a, g) for g in grants)]
    require(not ungranted, f"{component}: listed in alsoGranted but not granted (stale?): " + "; ".join(ungranted))
    if component == "agent":
        writes = [describe(g) for _, _, rule in rules for g in expand(rule)
                  if g["verb"] in WRITE_VERBS and (g["group"], g["resource"], g["subresource"]) != ("lvs.operator.io", "lvsnodeconfigs", "status")]
        require(not writes, "agent: write access beyond lvsnodeconfigs/status: " + "; ".join(writes))
        note("agent: no write verb on anything but lvsnodeconfigs/status")


# What the controller needs for address pools (#13), whatever api-requests.json says yet.
CONTROLLER_POOL_REQUESTS = [
    {"verb": verb, "group": group, "resource": resource, "subresource": subresource, "scope": "Cluster"}
    for verb, group, resource, subresource in [
        ("list", "lvs.operator.io", "addresspools", ""),
        ("watch", "lvs.operator.io", "addresspools", ""),
        ("list", "", "namespaces", ""),
        ("watch", "", "namespaces", ""),
        ("patch", "lvs.operator.io", "addresspools", "status"),
    ]
]


def controller_pool_problems(documents: list[render.Document]) -> list[str]:
    """The address-pool requests the controller's cluster-wide rules do not grant."""
    accounts = [d for d in documents if d.kind == "ServiceAccount"
                and d.object["metadata"]["labels"].get("app.kubernetes.io/component") == "controller"]
    require(len(accounts) == 1, f"controller: {len(accounts)} ServiceAccounts")
    rules = bound_rules(documents, accounts[0].name, accounts[0].object["metadata"]["namespace"])
    return [describe(request) for request in CONTROLLER_POOL_REQUESTS
            if not any(scope is None and rule_grants(rule, request) for scope, _, rule in rules)]


NODE_NAME_EXTRA = "authentication.kubernetes.io/node-name"


def node_config(name: str, node: str) -> dict[str, Any]:
    return {"apiVersion": "lvs.operator.io/v1alpha1", "kind": "LvsNodeConfig",
            "metadata": {"name": name, "labels": {"lvs.operator.io/node": node}},
            "spec": {"nodeName": node}}


def own_node_scenarios(documents: list[render.Document]) -> list[tuple[admission.Request, bool]]:
    """(request, whether the API server must admit it): RBAC lets every agent patch every
    LvsNodeConfig's status; the chart's admission policy must narrow that to its own node."""
    def username(component: str) -> str:
        account = next(d for d in documents if d.kind == "ServiceAccount"
                       and d.object["metadata"]["labels"].get("app.kubernetes.io/component") == component)
        return f"system:serviceaccount:{account.object['metadata']['namespace']}:{account.name}"
    agent, controller = username("agent"), username("controller")
    on_a = {NODE_NAME_EXTRA: ["node-a"]}

    def status(user: str, extra: dict[str, list[str]], obj: dict[str, Any], subresource: str = "status",
               operation: str = "UPDATE") -> admission.Request:
        return admission.Request(user, operation, "lvs.operator.io", "lvsnodeconfigs", subresource, obj, extra)
    return [
        (status(agent, on_a, node_config("node-a", "node-a")), True),
        (status(agent, on_a, node_config("node-a-shard-1", "node-a")), True),
        (status(agent, on_a, node_config("node-b", "node-b")), False),
        (status(agent, on_a, node_config("node-b-shard-2", "node-b")), False),
        (status(agent, {}, node_config("node-a", "node-a")), False),
        (status(agent, on_a, node_config("node-a", "node-a"), subresource=""), False),
        (status(agent, on_a, node_config("node-c", "node-c"), subresource="", operation="CREATE"), False),
        (status(controller, {}, node_config("node-b", "node-b"), subresource=""), True),
        (status("alice", {}, node_config("node-b", "node-b")), True),
    ]


def own_node_problems(documents: list[render.Document]) -> list[str]:
    problems = []
    for request, admitted in own_node_scenarios(documents):
        refused = admission.refusal(documents, request)
        if admitted and refused is not None:
            problems.append(f"{request.describe()} refused: {refused}")
        if not admitted and refused is None:
            problems.append(f"{request.describe()} admitted")
    return problems


def check_agent_own_node(documents: list[render.Document]) -> None:
    found = own_node_problems(documents)
    require(not found, "agent admission policy: " + "; ".join(found))
    scenarios = own_node_scenarios(documents)
    refused = next(r for r, admitted in scenarios if not admitted)
    note(f"agent admission policy: {len(scenarios)} requests as expected, e.g. {refused.describe()} "
         f"refused: {admission.refusal(documents, refused)}")
    off = render.render_chart({"agent": {"ownNodeStatusOnly": False}})
    require(not any(d.kind.startswith("ValidatingAdmissionPolicy") for d in off),
            "agent.ownNodeStatusOnly=false still renders the policy")
    require(bool(own_node_problems(off)), "without the policy no scenario fails")
    note("agent.ownNodeStatusOnly=false: no policy, and then an agent may write another node's status")

    def mutated(change: Callable[[list[render.Document]], None]) -> list[render.Document]:
        copied = copy.deepcopy(documents)
        change(copied)
        return copied

    def policy(docs: list[render.Document]) -> dict[str, Any]:
        return next(d for d in docs if d.kind == "ValidatingAdmissionPolicy").object

    def binding(docs: list[render.Document]) -> dict[str, Any]:
        return next(d for d in docs if d.kind == "ValidatingAdmissionPolicyBinding").object
    controls = {
        "a validation that always holds": lambda docs: policy(docs)["spec"]["validations"][0].update(expression="true"),
        "any node-bound token passes (the node not compared)":
            lambda docs: policy(docs)["spec"]["validations"][0].update(
                expression=f"'{NODE_NAME_EXTRA}' in request.userInfo.extra"),
        "the binding only warns": lambda docs: binding(docs)["spec"].update(validationActions=["Warn"]),
        "the policy matching the controller": lambda docs: policy(docs)["spec"].update(matchConditions=[]),
    }
    for label, change in controls.items():
        broken = own_node_problems(mutated(change))
        require(bool(broken), f"negative control: {label}: no scenario noticed")
        note(f"negative control: {label}: {broken[0]}" + (f" (+{len(broken) - 1})" if len(broken) > 1 else ""))


def check_rbac() -> None:
    requests = json.loads((HERE / "api-requests.json").read_text())
    documents = render.render_chart()
    for component in ("agent", "controller"):
        check_component_rbac(documents, component, requests[component])
    check_agent_own_node(documents)
    missing = controller_pool_problems(documents)
    require(not missing, "controller: address pools need, cluster-wide: " + "; ".join(missing))
    note("controller: cluster-wide " + ", ".join(describe(r) for r in CONTROLLER_POOL_REQUESTS))
    # The negative control: without its addresspools and namespaces rules the controller must fail.
    stripped = copy.deepcopy(documents)
    for document in stripped:
        if document.kind == "ClusterRole":
            document.object["rules"] = [
                rule for rule in document.object.get("rules", [])
                if not {"addresspools", "namespaces", "addresspools/status"} & set(rule.get("resources", []))
            ]
    require(len(controller_pool_problems(stripped)) == len(CONTROLLER_POOL_REQUESTS),
            "the address-pool check passes without the addresspools and namespaces rules")
    note("negative control: without the addresspools and namespaces rules all of them are missing")


# ---------------------------------------------------------------------------------------------
# user-roles

WRITES = ["create", "update", "patch", "delete", "deletecollection"]
READS = ["get", "list", "watch"]
TENANT = "team-a"
READERS_GROUP = "lvs-tenants"


def asks(verbs: list[str], resources: list[str], namespace: str | None = None) -> list[user_roles.Ask]:
    return [user_roles.Ask(verb, resource, namespace) for resource in resources for verb in verbs]


def nobody_writes_pools_or_status(namespace: str | None) -> list[user_roles.Ask]:
    """What only the controller (status) and cluster-admin (pools) may do."""
    return (asks(WRITES, ["addresspools"]) + asks(["patch", "update"], ["addresspools/status"])
            + asks(["patch", "update"], ["virtualservers/status", "realservers/status"], namespace)
            + asks(WRITES + READS, ["lvsnodeconfigs"]))


def user_role_scenarios() -> list[tuple[user_roles.User, list[user_roles.Ask], list[user_roles.Ask]]]:
    """(user, what they must be allowed, what they must be refused), with rbac.addressPoolReaders
    naming the group READERS_GROUP."""
    tenant = user_roles.User("alice", [READERS_GROUP, "system:authenticated"], [("edit", TENANT)])
    namespace_admin = user_roles.User("bob", ["system:authenticated"], [("admin", TENANT)])
    viewer = user_roles.User("carol", ["system:authenticated"], [("view", None)])
    cluster_admin_role = user_roles.User("dave", ["system:authenticated"], [("admin", None)])
    ours = ["virtualservers", "realservers"]
    return [
        (tenant,
         asks(READS, ["addresspools"]) + asks(READS + WRITES, ours, TENANT),
         nobody_writes_pools_or_status(TENANT) + asks(READS + WRITES, ours, "team-b")),
        (namespace_admin,
         asks(READS + WRITES, ours, TENANT),
         asks(READS, ["addresspools"]) + nobody_writes_pools_or_status(TENANT)),
        (viewer,
         asks(READS, ["addresspools"]) + asks(READS, ours) + asks(READS, ours, "team-b"),
         asks(WRITES, ours, "team-b") + nobody_writes_pools_or_status("team-b")),
        (cluster_admin_role,
         asks(READS, ["addresspools"]) + asks(READS + WRITES, ours, "team-b"),
         nobody_writes_pools_or_status("team-b")),
    ]


def user_role_problems(documents: list[render.Document]) -> list[str]:
    return [problem for user, may, may_not in user_role_scenarios()
            for problem in user_roles.problems(documents, user, may, may_not)]


def check_user_roles() -> None:
    readers = {"rbac": {"addressPoolReaders": [{"kind": "Group", "name": READERS_GROUP}]}}
    documents = render.render_chart(readers)
    found = user_role_problems(documents)
    require(not found, "with rbac.addressPoolReaders: " + "; ".join(found))
    for user, may, may_not in user_role_scenarios():
        examples = [next(a for a in may_not if a.resource == r) for r in ("addresspools", "virtualservers/status") if any(a.resource == r for a in may_not)]
        note(f"{user.describe()}: {len(may)} requests allowed, {len(may_not)} refused, e.g. may "
             + ", ".join(a.describe() for a in may[:4]) + "; may not "
             + ", ".join(a.describe() for a in examples + may_not[-1:]))
    # Without readers (the default), a tenant bound in its namespace cannot reach cluster-scoped pools.
    tenant = user_role_scenarios()[0][0]
    default = render.render_chart()
    require(user_roles.problems(default, tenant, [], asks(["get", "list"], ["addresspools"])) == [],
            "default values: a tenant reads AddressPools without rbac.addressPoolReaders")
    require(not user_roles.problems(default, tenant, asks(WRITES, ["virtualservers"], TENANT), []),
            "default values: a tenant bound to edit cannot write VirtualServers")
    note(f"default values: {tenant.name} may write VirtualServers in {TENANT} but not read AddressPools (no readers)")
    off = render.render_chart({"rbac": {"aggregateToDefaultRoles": False}})
    require(user_roles.problems(off, tenant, [], asks(READS, ["virtualservers"], TENANT)) == [],
            "rbac.aggregateToDefaultRoles=false: edit still reads VirtualServers")
    note("rbac.aggregateToDefaultRoles=false: view, edit and admin get nothing of lvs.operator.io")
    # Negative controls: each breaks one promise; the scenarios must notice.
    def mutated(change: Callable[[dict[str, Any]], None], role_suffix: str) -> list[render.Document]:
        copied = copy.deepcopy(documents)
        target = next(d for d in copied if d.kind == "ClusterRole" and d.name.endswith(role_suffix))
        change(target.object)
        return copied
    controls = {
        "addresspools writable through edit":
            mutated(lambda role: role["rules"][0]["resources"].append("addresspools"), "-edit"),
        "virtualservers/status writable through edit":
            mutated(lambda role: role["rules"][0]["resources"].append("virtualservers/status"), "-edit"),
        "the read role not aggregated into edit":
            mutated(lambda role: role["metadata"]["labels"].pop("rbac.authorization.k8s.io/aggregate-to-edit"), "-view"),
        "the AddressPool reader role without rules":
            mutated(lambda role: role.update(rules=[]), "-addresspool-reader"),
    }
    for label, broken in controls.items():
        found = user_role_problems(broken)
        require(bool(found), f"negative control: {label}: no scenario noticed")
        note(f"negative control: {label}: {found[0]}" + (f" (+{len(found) - 1})" if len(found) > 1 else ""))


# ---------------------------------------------------------------------------------------------
# examples

METADATA_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "generation": {"type": "integer"},
        "creationTimestamp": {"type": "string", "format": "date-time"},
        "resourceVersion": {"type": "string"},
        "uid": {"type": "string"},
        "finalizers": {"type": "array", "items": {"type": "string"}},
    },
}


def kind_schema(api_version: str, kind: str, title: str, required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """A draft-07 schema of one kind: apiVersion, kind and metadata, then `properties`; no other
    top-level field (kubectl's strict field validation)."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": title,
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", *required],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": METADATA_SCHEMA,
            **properties,
        },
    }


NODE_SCHEMA = kind_schema("v1", "Node", "Node (the fields standalone mode reads)", [], {
    "status": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "addresses": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["type", "address"],
                    "properties": {
                        "type": {"enum": ["InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS"]},
                        "address": {"type": "string"},
                    },
                },
            }
        },
    },
})


STRINGS = {"type": "array", "items": {"type": "string"}}
SERVICE_SCHEMA = kind_schema("v1", "Service", "Service (core/v1 ServiceSpec's fields; strict on the names, typed where the controller reads them)", ["spec"], {
    "spec": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]},
            "loadBalancerClass": {"type": "string"},
            "loadBalancerIP": {"type": "string"},
            "loadBalancerSourceRanges": STRINGS,
            "allocateLoadBalancerNodePorts": {"type": "boolean"},
            "externalTrafficPolicy": {"enum": ["Cluster", "Local"]},
            "internalTrafficPolicy": {"enum": ["Cluster", "Local"]},
            "healthCheckNodePort": {"type": "integer", "minimum": 1, "maximum": 65535},
            "ipFamilies": {"type": "array", "items": {"enum": ["IPv4", "IPv6"]}, "maxItems": 2},
            "ipFamilyPolicy": {"enum": ["SingleStack", "PreferDualStack", "RequireDualStack"]},
            "clusterIP": {"type": "string"},
            "clusterIPs": STRINGS,
            "externalIPs": STRINGS,
            "externalName": {"type": "string"},
            "publishNotReadyAddresses": {"type": "boolean"},
            "selector": {"type": "object", "additionalProperties": {"type": "string"}},
            "sessionAffinity": {"enum": ["ClientIP", "None"]},
            "sessionAffinityConfig": {"type": "object"},
            "trafficDistribution": {"type": "string"},
            "ports": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["port"],
                    "properties": {
                        "name": {"type": "string"},
                        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                        "targetPort": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                        "nodePort": {"type": "integer"},
                        "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
                        "appProtocol": {"type": "string"},
                    },
                },
            },
        },
    },
    "status": {"type": "object"},
})


def openapi_to_json_schema(node: Any) -> Any:
    """A structural openAPIV3Schema as a JSON schema: nullable becomes a null type, int-or-string an
    anyOf, and objects with properties reject unknown fields (kubectl's strict field validation).
    CEL rules (x-kubernetes-validations) are not evaluated here; `lvsctl validate` judges those."""
    if isinstance(node, list):
        return [openapi_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: openapi_to_json_schema(schema) for name, schema in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = openapi_to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = openapi_to_json_schema(value)
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = out["enum"] + [None]
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def crd_schemas() -> dict[str, dict[str, Any]]:
    """A JSON schema per kind, from each CRD's served version."""
    schemas = {}
    for document in render.chart_crds():
        spec = document.object["spec"]
        for version in spec["versions"]:
            if not version.get("served"):
                continue
            body = openapi_to_json_schema(version["schema"]["openAPIV3Schema"])
            api_version, kind = f"{spec['group']}/{version['name']}", spec["names"]["kind"]
            schemas[kind] = kind_schema(api_version, kind, f"{kind} {api_version} (from {document.source})",
                                        body.get("required", []), body.get("properties", {}))
    schemas["Node"] = NODE_SCHEMA
    schemas["Service"] = SERVICE_SCHEMA
    return schemas


def validate_by_kind(objects: list[tuple[str, dict[str, Any]]], schemas: dict[str, dict[str, Any]], folder: Path) -> dict[str, str]:
    """check-jsonschema per kind; returns kind -> failure output for the kinds that failed."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.json"):
        old.unlink()
    by_kind: dict[str, list[Path]] = {}
    for index, (origin, obj) in enumerate(objects):
        kind = obj.get("kind", "")
        require(kind in schemas, f"{origin}: no schema for kind {kind!r}")
        safe = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{origin}-{kind}-{obj.get('metadata', {}).get('name', index)}")
        path = folder / f"{index:03d}-{safe}.json"
        path.write_text(json.dumps(obj, default=str))
        by_kind.setdefault(kind, []).append(path)
    failures = {}
    for kind, paths in sorted(by_kind.items()):
        schema_path = folder / f"{kind}.schema"
        schema_path.write_text(json.dumps(schemas[kind], indent=1))
        result = run([tool("check-jsonschema"), "--schemafile", str(schema_path), *map(str, paths)])
        if result.returncode != 0:
            failures[kind] = result.stdout + result.stderr
    return failures


def load_objects(paths: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    objects = []
    for path in paths:
        for index, obj in enumerate(yaml.safe_load_all(path.read_text())):
            if obj is not None:
                objects.append((f"{path.relative_to(ROOT)}#{index}", obj))
    return objects


def readme_objects() -> list[tuple[str, dict[str, Any]]]:
    """The objects in README.md's ```yaml blocks."""
    objects = []
    text = (ROOT / "README.md").read_text()
    for number, block in enumerate(re.findall(r"^```yaml\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)):
        for index, obj in enumerate(yaml.safe_load_all(block)):
            if obj is not None:
                objects.append((f"README.md-yaml{number}#{index}", obj))
    require(any(obj["kind"] == "AddressPool" for _, obj in objects), "README.md: no AddressPool in a yaml block")
    return objects


def check_examples() -> None:
    schemas = crd_schemas()
    schema_folder = WORK / "schemas"
    schema_folder.mkdir(parents=True, exist_ok=True)
    schema_paths = []
    for kind, schema in sorted(schemas.items()):
        schema_paths.append(schema_folder / f"{kind}.json")
        schema_paths[-1].write_text(json.dumps(schema, indent=1))
    result = run([tool("check-jsonschema"), "--check-metaschema", *map(str, schema_paths)])
    require(result.returncode == 0, f"a converted CRD schema is not a valid JSON schema:\n{result.stdout}{result.stderr}")
    note(f"JSON schemas from the CRDs' openAPIV3Schema: {', '.join(sorted(schemas))} (valid draft-07, in {schema_folder.relative_to(ROOT)})")
    paths = sorted((ROOT / "examples").rglob("*.yaml")) + sorted((HERE / "samples").glob("*.yaml"))
    objects = load_objects(paths) + readme_objects()
    require(objects, "no example objects found")
    failures = validate_by_kind(objects, schemas, WORK / "examples")
    require(not failures, "\n".join(f"{kind}:\n{output}" for kind, output in failures.items()))
    counts: dict[str, int] = {}
    for _, obj in objects:
        counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
    note(f"{len(paths)} files and README.md's yaml blocks, {len(objects)} objects valid against the CRD schemas (check-jsonschema): "
         + ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items()))
         + " (Node against a minimal schema of the fields standalone mode reads, Service against core/v1's field names)")
    # The negative control: a wrong type and an unknown field must both be caught.
    virtual_server = next(copy.deepcopy(obj) for _, obj in objects if obj["kind"] == "VirtualServer")
    wrong_type = copy.deepcopy(virtual_server)
    wrong_type["spec"]["port"] = "eighty"
    unknown_field = copy.deepcopy(virtual_server)
    unknown_field["spec"]["weighting"] = "round robin"
    misspelt = next(copy.deepcopy(obj) for _, obj in objects if obj["kind"] == "Service")
    misspelt["spec"]["loadBalancerClas"] = misspelt["spec"].pop("loadBalancerClass")
    for label, broken in (("spec.port: \"eighty\"", wrong_type), ("an unknown field spec.weighting", unknown_field),
                          ("the misspelt spec.loadBalancerClas", misspelt)):
        failures = validate_by_kind([("negative-control", broken)], schemas, WORK / "examples-negative")
        require(broken["kind"] in failures, f"check-jsonschema accepted a {broken['kind']} with {label}")
        note(f"negative control: a {broken['kind']} with {label} is rejected")


# ---------------------------------------------------------------------------------------------
# address-pools

# As a cluster admin would pass them to `helm install`: Helm's own --set and --set-json parsers.
POOL_SET = ("addressPools[0].name=team-a,addressPools[0].spec.addresses[0]=10.100.1.0/28,"
            "addressPools[0].spec.namespaces[0]=team-a,addressPools[0].spec.forwardingMethods[0]=DirectRouting")
POOL_SET_JSON = ('addressPools=[{"name":"lab","labels":{"tier":"shared"},'
                 '"spec":{"addresses":["10.100.0.100-10.100.0.199"],"namespaceSelector":{}}}]')


def rendered_pools(values: dict[str, Any] | None) -> list[render.Document]:
    return [d for d in render.render_chart(values) if d.kind == "AddressPool"]


def check_address_pools() -> None:
    pools = rendered_pools(None)
    require(not pools, f"default values: AddressPools rendered: {[p.name for p in pools]}")
    deployed = render.split_documents("deploy/lvs-operator.yaml", (ROOT / "deploy" / "lvs-operator.yaml").read_text())
    require(not any(d.kind == "AddressPool" for d in deployed), "deploy/ creates an AddressPool")
    note("default values, deploy/: no AddressPool (every VirtualServer waits for the admin's pool)")
    schemas = crd_schemas()
    for flag, values in (("--set", helm.parse_set_string(POOL_SET)), ("--set-json", helm.parse_set_json(POOL_SET_JSON))):
        pools = rendered_pools(values)
        wanted = values["addressPools"]
        require([p.name for p in pools] == [w["name"] for w in wanted],
                f"{flag}: rendered AddressPools {[p.name for p in pools]}, expected {[w['name'] for w in wanted]}")
        for pool, want in zip(pools, wanted):
            require(pool.object["spec"] == want["spec"], f"{flag}: {pool.describe()} spec {pool.object['spec']} is not {want['spec']}")
            labels = pool.object["metadata"]["labels"]
            require(labels.get("app.kubernetes.io/instance") == render.RELEASE and all(labels.get(k) == v for k, v in want.get("labels", {}).items()),
                    f"{flag}: {pool.describe()} labels {labels}")
            require("namespace" not in pool.object["metadata"], f"{flag}: {pool.describe()} has a namespace (pools are cluster-scoped)")
        failures = validate_by_kind([(f"{flag} {p.name}", p.object) for p in pools], schemas, WORK / "pools")
        require(not failures, f"{flag}: rendered AddressPools do not match the CRD schema:\n" + "\n".join(failures.values()))
        note(f"{flag} {json.dumps(values)}: renders {', '.join(p.describe() for p in pools)}, spec as given, valid against the CRD schema")
    # The negative control: a misspelt spec field is copied through, and the CRD schema must catch it.
    broken = helm.parse_set_string(POOL_SET.replace("spec.namespaces", "spec.namespace"))
    failures = validate_by_kind([("broken", p.object) for p in rendered_pools(broken)], schemas, WORK / "pools-negative")
    require("AddressPool" in failures, "a rendered AddressPool with spec.namespace (misspelt) passes the CRD schema")
    note("negative control: a pool with the misspelt spec.namespace is rendered and rejected by the CRD schema")


# ---------------------------------------------------------------------------------------------
# printer-columns


def resolve(jsonpath: str, obj: dict[str, Any]) -> list[Any]:
    """A CRD printer-column JSONPath (`.spec.port`, `.status.conditions[?(@.type=="Ready")].status`)."""
    expression = jsonpath if jsonpath.startswith("$") else "$" + jsonpath
    return [match.value for match in parse_jsonpath(expression).find(obj)]


def column_type_ok(column_type: str, value: Any) -> bool:
    return {
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
        "date": lambda v: isinstance(v, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", v),
    }.get(column_type, lambda v: True)(value)


def check_printer_columns() -> None:
    crd = next(d.object for d in render.chart_crds() if d.object["spec"]["names"]["kind"] == "VirtualServer")
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    columns = version.get("additionalPrinterColumns", [])
    require(columns, "the VirtualServer CRD has no printer columns")
    sample_path = HERE / "samples" / "virtualserver-with-status.yaml"
    sample = yaml.safe_load(sample_path.read_text())
    expected = json.loads((HERE / "samples" / "virtualserver-with-status.columns.json").read_text())
    names = [column["name"] for column in columns]
    require(set(names) == set(expected["columns"]),
            f"printer columns {names} differ from the expected ones {list(expected['columns'])}")
    require(" ".join(n.upper() for n in names) == "VIP PORT PROTO METHOD SCHED DIRECTOR READY AGE",
            f"`kubectl get vs` headers are {' '.join(n.upper() for n in names)}")
    for column in columns:
        values = resolve(column["jsonPath"], sample)
        want = expected["columns"][column["name"]]
        require(values == [want], f"column {column['name']} ({column['jsonPath']}) resolves to {values}, expected [{want!r}]")
        require(column_type_ok(column["type"], values[0]), f"column {column['name']}: {values[0]!r} is not of type {column['type']}")
        note(f"{column['name'].upper():9} {column['jsonPath']:40} -> {values[0]!r} ({column['type']})")
    for path, want in expected.get("extra", {}).items():
        values = resolve(path, sample)
        require(values == [want], f"{path} resolves to {values}, expected [{want!r}]")
        note(f"{'(extra)':9} {path:40} -> {values[0]!r}")
    # The negative control: without a status, the status columns must come out empty.
    without_status = {k: v for k, v in sample.items() if k != "status"}
    empty = [c["name"] for c in columns if c["jsonPath"].startswith(".status") and not resolve(c["jsonPath"], without_status)]
    require(empty == [c["name"] for c in columns if c["jsonPath"].startswith(".status")], "status columns resolve without a status")
    note(f"negative control: without a status, {', '.join(empty)} are empty")


# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# failover-keys

DIRECTOR = "lvs.operator.io/director"
REAL_SERVER = "lvs.operator.io/real-server"
DIRECTOR_SET = "lvs.operator.io/director-set"


def expression_holds(expression: dict[str, Any], labels: dict[str, str]) -> bool:
    key, operator = expression["key"], expression["operator"]
    values = expression.get("values", [])
    return {
        "In": lambda: key in labels and labels[key] in values,
        "NotIn": lambda: key not in labels or labels[key] not in values,
        "Exists": lambda: key in labels,
        "DoesNotExist": lambda: key not in labels,
    }[operator]()


def schedules_on(document: render.Document, labels: dict[str, str]) -> bool:
    """Whether the DaemonSet's required node affinity (terms ORed, expressions ANDed) admits a
    node with `labels` (its nodeSelector aside: the sample nodes carry none of it)."""
    pod = document.object["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    return any(all(expression_holds(e, labels) for e in term["matchExpressions"]) for term in terms)


# Sample nodes: (labels, the agent set that must run there, or None).
SAMPLE_NODES: list[tuple[dict[str, str], str | None]] = [
    ({DIRECTOR: "true"}, "director-default"),
    ({DIRECTOR: "true", DIRECTOR_SET: "default"}, "director-default"),
    ({DIRECTOR: "true", REAL_SERVER: "true"}, "director-default"),
    ({DIRECTOR: "true", DIRECTOR_SET: "edge"}, "director-edge"),
    ({DIRECTOR: "true", DIRECTOR_SET: "edge", REAL_SERVER: "true"}, "director-edge"),
    ({REAL_SERVER: "true"}, "real-servers"),
    ({REAL_SERVER: "true", DIRECTOR: "false"}, "real-servers"),
    ({REAL_SERVER: "false"}, None),
    ({}, None),
]


def daemonsets(documents: list[render.Document]) -> dict[str, render.Document]:
    return {d.object["metadata"]["labels"][AGENT_SET]: d for d in documents if d.kind == "DaemonSet"}


def key_secrets(document: render.Document) -> list[str]:
    pod = document.object["spec"]["template"]["spec"]
    return [v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v]


def failover_key_problems(documents: list[render.Document], sets: list[dict[str, str]]) -> list[str]:
    """Each labelled sample node runs exactly its set's agent; each director set's agent mounts
    its own key and nothing else does; no key is rendered; the controller makes the missing ones."""
    problems = []
    agents = daemonsets(documents)
    names = {s["name"] for s in sets}
    for labels, expected in SAMPLE_NODES:
        if expected and expected.startswith("director-") and expected.removeprefix("director-") not in names:
            expected = None
        running = sorted(name for name, document in agents.items() if schedules_on(document, labels))
        if running != ([expected] if expected else []):
            problems.append(f"a node labelled {labels or 'nothing'} runs {running or 'no agent'}, expected {expected or 'none'}")
    for name, document in agents.items():
        mounted = key_secrets(document)
        if name == "real-servers":
            if mounted:
                problems.append(f"real-servers mounts {mounted}")
            continue
        chosen = next((s for s in sets if f"director-{s['name']}" == name), None)
        want = [(chosen.get("secret") or f"lvs-operator-failover-{chosen['name']}")] if chosen else []
        if mounted != want:
            problems.append(f"{name} mounts {mounted}, expected {want}")
    secrets = [d.name for d in documents if d.kind == "Secret"]
    if secrets:
        problems.append(f"the chart renders Secrets {secrets}")
    controller = next(d for d in documents if d.kind == "Deployment")
    args = [a for c in controller.object["spec"]["template"]["spec"]["containers"] for a in c.get("args", [])]
    made = sorted(a.removeprefix("--failover-key-secret=") for a in args if a.startswith("--failover-key-secret="))
    want_made = sorted(f"lvs-operator-failover-{s['name']}" for s in sets if not s.get("secret"))
    if made != want_made:
        problems.append(f"the controller makes {made}, expected {want_made}")
    return problems


def check_failover_keys() -> None:
    two_sets = [{"name": "default"}, {"name": "edge", "secret": "edge-key"}]
    variants_to_check = {
        "default values": (None, [{"name": "default"}]),
        "two director sets": ({"agent": {"failover": {"directorSets": two_sets}}}, two_sets),
    }
    for label, (values, sets) in variants_to_check.items():
        documents = render.render_chart(values)
        found = failover_key_problems(documents, sets)
        require(not found, f"{label}: " + "; ".join(found))
        agents = daemonsets(documents)
        listed = ", ".join(f"{n} (key {key_secrets(d) or 'none'})" for n, d in sorted(agents.items()))
        note(f"{label}: agents {listed}; "
             f"each of {len(SAMPLE_NODES)} sample nodes runs the right one or none; no Secret rendered")
        require(render.render_chart(values) == documents, f"{label}: two renders differ")
    note("two renders are identical (no random key: `helm template` and GitOps keep the key the controller made)")
    # Negative controls.
    documents = render.render_chart({"agent": {"failover": {"directorSets": two_sets}}})

    def broken(change: Callable[[list[render.Document]], None]) -> list[str]:
        copied = copy.deepcopy(documents)
        change(copied)
        return failover_key_problems(copied, two_sets)

    def agent(docs: list[render.Document], name: str) -> dict[str, Any]:
        return daemonsets(docs)[name].object["spec"]["template"]["spec"]

    def drop_director_exclusion(docs: list[render.Document]) -> None:
        for term in agent(docs, "real-servers")["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]:
            term["matchExpressions"] = [e for e in term["matchExpressions"] if e["key"] != DIRECTOR]

    def default_takes_every_director(docs: list[render.Document]) -> None:
        terms = agent(docs, "director-default")["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        terms[0]["matchExpressions"] = [e for e in terms[0]["matchExpressions"] if e["key"] != DIRECTOR_SET]

    def mount_everywhere(docs: list[render.Document]) -> None:
        agent(docs, "real-servers")["volumes"].append({"name": "failover-key", "secret": {"secretName": "lvs-operator-failover-default"}})

    def render_a_key(docs: list[render.Document]) -> None:
        docs.append(render.Document("test", "", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "lvs-operator-failover-default"}}))
    controls = {
        "real-server agents also on directors": drop_director_exclusion,
        "the default set also on another set's directors": default_takes_every_director,
        "a key mounted on real-server-only nodes": mount_everywhere,
        "a key in the rendered chart": render_a_key,
    }
    for label, change in controls.items():
        found = broken(change)
        require(bool(found), f"negative control: {label}: not noticed")
        note(f"negative control: {label}: {found[0]}")


CHECKS: dict[str, Callable[[], None]] = {
    "lint": check_lint,
    "values-schema": check_values_schema,
    "deploy-current": check_deploy_current,
    "kubernetes-schema": check_kubernetes_schema,
    "pod-security": check_pod_security,
    "rbac": check_rbac,
    "failover-keys": check_failover_keys,
    "user-roles": check_user_roles,
    "address-pools": check_address_pools,
    "examples": check_examples,
    "printer-columns": check_printer_columns,
}


def main(arguments: list[str]) -> int:
    selected = arguments or list(CHECKS)
    unknown = [name for name in selected if name not in CHECKS]
    if unknown:
        print(__doc__, file=sys.stderr)
        print(f"unknown check: {', '.join(unknown)}", file=sys.stderr)
        return 2
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"chart checks with Helm {helm.helm_sdk_version()} (helm-python-sdk {helm.__version__}), "
          f"Kubernetes {KUBERNETES_VERSION}")
    failed = []
    for name in selected:
        print(f"--- {name}")
        try:
            CHECKS[name]()
        except Failure as failure:
            failed.append(name)
            print(f"FAIL {name}: {failure}")
        except Exception:  # a crash is a failure too, with its trace
            failed.append(name)
            print(f"FAIL {name}: crashed")
            traceback.print_exc(file=sys.stdout)
        else:
            print(f"ok   {name}")
    print(f"chart: {len(selected) - len(failed)} passed, {len(failed)} failed")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
