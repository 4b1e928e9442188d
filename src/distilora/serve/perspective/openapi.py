"""The request schemas of the Perspective methods in the app's OpenAPI document, narrowed to this server: the
attribute names it serves and the languages their models take, so a schema-valid request is one it scores."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from distilora.serve.perspective.attributes import AttributeTable
from distilora.serve.perspective.schemas import AnalyzeCommentRequest, SuggestCommentScoreRequest

REF = "#/components/schemas/{model}"


def request_schemas(table: AttributeTable) -> dict[str, Any]:
    """Component schemas of both request messages (and the messages they hold)."""
    components: dict[str, Any] = {}
    for message in (AnalyzeCommentRequest, SuggestCommentScoreRequest):
        schema = message.model_json_schema(by_alias=True, ref_template=REF)
        components.update(schema.pop("$defs", {}))
        components[message.__name__] = schema
    names = table.names
    languages = sorted({code for attribute in table.attributes.values() for code in attribute.languages})
    for message, field in (("AnalyzeCommentRequest", "requestedAttributes"),
                           ("SuggestCommentScoreRequest", "attributeScores")):
        properties = components[message]["properties"]
        if names:
            properties[field]["propertyNames"] = {"enum": names}
        if languages and all(a.languages for a in table.attributes.values()):
            properties["languages"] = {"anyOf": [{"type": "array", "items": {"enum": languages}}, {"type": "null"}],
                                       "description": properties["languages"].get("description", "")}
    return components


def add_request_schemas(app: FastAPI, table: AttributeTable) -> None:
    """Wrap ``app.openapi`` so that its document holds the request schemas the routes refer to."""
    original = app.openapi
    added: list[bool] = []

    def openapi() -> dict[str, Any]:
        schema = original()
        if not added:
            schema.setdefault("components", {}).setdefault("schemas", {}).update(request_schemas(table))
            added.append(True)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
