"""Kubernetes RBAC for people, offline, as far as the chart's user-facing roles need it: the default
ClusterRoles view, edit and admin as the union of every ClusterRole labelled
`rbac.authorization.k8s.io/aggregate-to-<role>: "true"` (Kubernetes' own contributions to them
grant nothing in lvs.operator.io), a RoleBinding reaching only its namespace's namespaced
resources, a ClusterRoleBinding reaching everything its role grants, and the chart's own bindings
matched by user and group. check.py's `user-roles` check asks it what a tenant, a namespace admin
and cluster-wide users may do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import render

GROUP = "lvs.operator.io"
DEFAULT_ROLES = ("view", "edit", "admin")


@dataclass
class User:
    """Someone asking: a name, groups, and the bindings the cluster admin gave them outside the
    chart, as (ClusterRole name, namespace of a RoleBinding or None for a ClusterRoleBinding)."""

    name: str
    groups: list[str] = field(default_factory=list)
    bindings: list[tuple[str, str | None]] = field(default_factory=list)

    def describe(self) -> str:
        bound = ", ".join(f"{role} in {namespace}" if namespace else f"{role} cluster-wide"
                          for role, namespace in self.bindings)
        groups = f", groups {', '.join(self.groups)}" if self.groups else ""
        return f"{self.name} ({bound or 'no binding'}{groups})"


@dataclass(frozen=True)
class Ask:
    """One request: verb, resource (`virtualservers/status` for a subresource), namespace (None for
    a cluster-scoped resource, or a list across all namespaces)."""

    verb: str
    resource: str
    namespace: str | None = None

    def describe(self) -> str:
        return f"{self.verb} {self.resource}" + (f" in {self.namespace}" if self.namespace else "")


def cluster_scoped_resources() -> set[str]:
    """Our cluster-scoped kinds' plurals, from the chart's CRDs."""
    return {d.object["spec"]["names"]["plural"] for d in render.chart_crds() if d.object["spec"]["scope"] == "Cluster"}


def aggregated_rules(documents: list[render.Document], role: str) -> list[dict[str, Any]]:
    """The rules a default user-facing ClusterRole (view, edit, admin) gets from the chart."""
    label = f"rbac.authorization.k8s.io/aggregate-to-{role}"
    return [rule for d in documents if d.kind == "ClusterRole"
            and d.object["metadata"].get("labels", {}).get(label) == "true"
            for rule in d.object.get("rules", [])]


def role_rules(documents: list[render.Document], kind: str, name: str, namespace: str | None) -> list[dict[str, Any]]:
    if kind == "ClusterRole" and name in DEFAULT_ROLES:
        return aggregated_rules(documents, name)
    for d in documents:
        if d.kind == kind and d.name == name and (kind == "ClusterRole" or d.object["metadata"].get("namespace") == namespace):
            return d.object.get("rules", [])
    return []


def subject_matches(subject: dict[str, Any], user: User) -> bool:
    return (subject.get("kind") == "User" and subject.get("name") == user.name) or \
        (subject.get("kind") == "Group" and subject.get("name") in user.groups)


def bound(documents: list[render.Document], user: User) -> list[tuple[str | None, dict[str, Any]]]:
    """(namespace the rule applies in, or None for the whole cluster; rule) for everything the
    user is bound to: their own bindings and the chart's bindings naming them or their groups."""
    granted = [(namespace, rule) for role, namespace in user.bindings
               for rule in role_rules(documents, "ClusterRole", role, None)]
    for binding in (d.object for d in documents if d.kind in ("RoleBinding", "ClusterRoleBinding")):
        if not any(subject_matches(s, user) for s in binding.get("subjects", [])):
            continue
        namespace = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        reference = binding["roleRef"]
        for rule in role_rules(documents, reference["kind"], reference["name"], namespace):
            granted.append((namespace, rule))
    return granted


def rule_allows(rule: dict[str, Any], verb: str, resource: str) -> bool:
    return (verb in rule.get("verbs", []) or "*" in rule.get("verbs", [])) \
        and (GROUP in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", [])) \
        and (resource in rule.get("resources", []) or "*" in rule.get("resources", [])) \
        and not rule.get("resourceNames")


def allowed(documents: list[render.Document], user: User, ask: Ask, cluster_scoped: set[str]) -> bool:
    """Whether RBAC lets `user` make `ask` (lvs.operator.io only)."""
    is_cluster_scoped = ask.resource.split("/")[0] in cluster_scoped
    for namespace, rule in bound(documents, user):
        if namespace is not None and (is_cluster_scoped or namespace != ask.namespace):
            continue
        if rule_allows(rule, ask.verb, ask.resource):
            return True
    return False


def problems(documents: list[render.Document], user: User, may: list[Ask], may_not: list[Ask]) -> list[str]:
    """What `user` may do that they must not, and may not do that they must."""
    cluster_scoped = cluster_scoped_resources()
    found = [f"{user.name} may not {a.describe()}" for a in may if not allowed(documents, user, a, cluster_scoped)]
    found += [f"{user.name} may {a.describe()}" for a in may_not if allowed(documents, user, a, cluster_scoped)]
    return found
