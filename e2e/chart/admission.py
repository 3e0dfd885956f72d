"""ValidatingAdmissionPolicies, offline, as far as the chart's own policy needs them: a request is
matched by a policy's resourceRules (group, resource with subresource, operation) and its
matchConditions, then refused when a validation expression is false — and only if a
ValidatingAdmissionPolicyBinding binds the policy with the `Deny` action (no paramKind, no
matchResources: the chart uses neither, and a policy that does is reported instead of guessed).
CEL is evaluated by cel-python (PyPI), the standard language Kubernetes extends; check.py's `rbac`
check asks it which agent requests the API server would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import celpy

import render


@dataclass
class Request:
    """One API request as admission sees it."""

    username: str
    operation: str  # CREATE, UPDATE, DELETE
    group: str
    resource: str
    subresource: str
    obj: dict[str, Any] | None
    extra: dict[str, list[str]] = field(default_factory=dict)

    def describe(self) -> str:
        node = self.extra.get("authentication.kubernetes.io/node-name")
        target = (self.obj or {}).get("metadata", {}).get("name", "?")
        resource = self.resource + (f"/{self.subresource}" if self.subresource else "")
        return (f"{self.username}{f' on {node[0]}' if node else ''}: {self.operation} "
                f"{resource} {target}")

    def variables(self) -> dict[str, Any]:
        request = {
            "operation": self.operation,
            "subResource": self.subresource,
            "name": (self.obj or {}).get("metadata", {}).get("name", ""),
            "resource": {"group": self.group, "resource": self.resource},
            "userInfo": {"username": self.username, "extra": self.extra},
        }
        return {"request": celpy.json_to_cel(request),
                "object": celpy.json_to_cel(self.obj) if self.obj is not None else None}


class Unsupported(Exception):
    """A policy uses something this evaluator does not model."""


def evaluate(expression: str, request: Request) -> Any:
    environment = celpy.Environment()
    program = environment.program(environment.compile(expression))
    return program.evaluate(request.variables())


def rule_matches(rule: dict[str, Any], request: Request) -> bool:
    resource = request.resource + (f"/{request.subresource}" if request.subresource else "")
    return (request.group in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", [])) \
        and (resource in rule.get("resources", []) or "*" in rule.get("resources", [])) \
        and (request.operation in rule.get("operations", []) or "*" in rule.get("operations", []))


def refusal(documents: list[render.Document], request: Request) -> str | None:
    """The message of the first bound Deny policy that refuses `request`, or None if none does."""
    bound = {d.object["spec"]["policyName"] for d in documents
             if d.kind == "ValidatingAdmissionPolicyBinding" and "Deny" in d.object["spec"].get("validationActions", [])}
    for policy in (d for d in documents if d.kind == "ValidatingAdmissionPolicy" and d.name in bound):
        spec = policy.object["spec"]
        if spec.get("paramKind") or any("matchResources" in d.object["spec"] for d in documents
                                        if d.kind == "ValidatingAdmissionPolicyBinding"):
            raise Unsupported(f"{policy.name}: paramKind or matchResources")
        if not any(rule_matches(rule, request) for rule in spec["matchConstraints"]["resourceRules"]):
            continue
        if not all(evaluate(c["expression"], request) for c in spec.get("matchConditions", [])):
            continue
        for validation in spec["validations"]:
            if not evaluate(validation["expression"], request):
                message = validation.get("messageExpression")
                return str(evaluate(message, request)) if message else validation.get("message", "refused")
    return None
