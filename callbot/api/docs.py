"""The API's docs page: every endpoint of the OpenAPI schema, rendered here.

drf-spectacular's Swagger UI and Redoc pages load their scripts from a CDN and
start them with an inline script; the Content-Security-Policy allows neither. This
page is plain HTML from the same schema (``/api/schema/``), with one stylesheet
of our own: it works under the CSP, offline and without JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import View

from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    description: str
    parameters: list[dict[str, Any]] = field(default_factory=list)
    body: str = ""
    responses: list[tuple[str, str]] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return f"{self.method}-{self.path}".replace("/", "-").strip("-")


def _ref_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref") or schema.get("items", {}).get("$ref", "")
    name = ref.rsplit("/", 1)[-1] if ref else schema.get("type", "")
    return f"list of {name}" if schema.get("type") == "array" else str(name)


def _body(operation: dict[str, Any]) -> str:
    content = operation.get("requestBody", {}).get("content", {})
    for media, spec in content.items():
        return f"{media}: {_ref_name(spec.get('schema', {}))}"
    return ""


def _responses(operation: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for code, spec in operation.get("responses", {}).items():
        content = spec.get("content", {})
        kinds = ", ".join(
            f"{media} {_ref_name(c.get('schema', {}))}".strip()
            for media, c in content.items()
        )
        out.append((code, kinds or spec.get("description", "")))
    return out


@cache
def schema() -> dict[str, Any]:
    """The OpenAPI document, generated once per process."""
    generator = SchemaGenerator()  # type: ignore[no-untyped-call]
    document: dict[str, Any] = generator.get_schema(  # type: ignore[no-untyped-call]
        request=None, public=True
    )
    return document


def operations(document: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            description = op.get("description", "")
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    summary=description.split("\n", 1)[0],
                    description=description,
                    parameters=[
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "type": p.get("schema", {}).get("type", ""),
                            "enum": p.get("schema", {}).get("enum", []),
                            "description": p.get("description", ""),
                        }
                        for p in op.get("parameters", [])
                    ],
                    body=_body(op),
                    responses=_responses(op),
                )
            )
    return found


class DocsPage(View):
    """``/api/docs/``: open to all, like the schema; the data needs a token."""

    def get(self, request: HttpRequest) -> HttpResponse:
        document = schema()
        return render(
            request,
            "api/docs.html",
            {
                "info": document.get("info", {}),
                "operations": operations(document),
                "components": sorted(document.get("components", {}).get("schemas", {})),
            },
        )
