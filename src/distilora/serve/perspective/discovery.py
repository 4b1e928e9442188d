"""The discovery document (``/$discovery/rest?version=v1alpha1``) Google's client libraries build their stubs from:
``commentanalyzer`` v1alpha1 with exactly the methods this server has, its schemas made from the pydantic messages,
and this server as ``rootUrl``."""

from __future__ import annotations

from functools import cache
from typing import Any

from distilora.serve.perspective import schemas
from distilora.versions import __version__

API, VERSION = "commentanalyzer", "v1alpha1"
METHODS = {
    "analyze": ("AnalyzeCommentRequest", "AnalyzeCommentResponse",
                "Analyzes the provided text and returns scores for requested attributes."),
    "suggestscore": ("SuggestCommentScoreRequest", "SuggestCommentScoreResponse",
                     "Suggest comment scores as training data (kept only when the server has --feedback-dir)."),
}
MESSAGES = (schemas.AnalyzeCommentRequest, schemas.AnalyzeCommentResponse, schemas.SuggestCommentScoreRequest,
            schemas.SuggestCommentScoreResponse)
PARAMETERS = {
    "key": {"type": "string", "location": "query",
            "description": "API key (required when the server was started with --api-key-file)."},
    "alt": {"type": "string", "location": "query", "default": "json", "enum": ["json"],
            "description": "Data format for the response."},
}
_FORMATS = {"number": "float", "integer": "int32"}


def _field(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON-schema property (pydantic's) as a discovery property."""
    variants = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    inner = variants[0] if variants else {}
    converted: dict[str, Any]
    if "$ref" in inner:
        converted = {"$ref": inner["$ref"]}
    elif inner.get("type") == "array":
        converted = {"type": "array", "items": _field(inner.get("items", {}))}
    elif inner.get("type") == "object":
        converted = {"type": "object", "additionalProperties": _field(inner.get("additionalProperties", {}))}
    else:
        converted = {"type": inner.get("type", "any")}
        if inner.get("type") in _FORMATS:
            converted["format"] = _FORMATS[inner["type"]]
        enum = schema.get("enum") or inner.get("enum") or ([inner["const"]] if "const" in inner else None)
        if enum:
            converted["enum"] = list(enum)
    description = schema.get("description") or inner.get("description")
    return {**converted, "description": description} if description else converted


@cache
def _schemas() -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    for message in MESSAGES:
        schema = message.model_json_schema(by_alias=True, ref_template="{model}")
        definitions.update(schema.pop("$defs", {}))
        definitions[message.__name__] = schema
    return {name: {"id": name, "type": "object",
                   **({"description": d["description"]} if d.get("description") else {}),
                   "properties": {field: _field(prop) for field, prop in d.get("properties", {}).items()}}
            for name, d in sorted(definitions.items())}


def _method(name: str) -> dict[str, Any]:
    request, response, description = METHODS[name]
    return {"id": f"{API}.comments.{name}", "path": f"{VERSION}/comments:{name}",
            "flatPath": f"{VERSION}/comments:{name}", "httpMethod": "POST", "description": description,
            "parameters": {}, "parameterOrder": [], "request": {"$ref": request}, "response": {"$ref": response}}


def discovery_document(root_url: str) -> dict[str, Any]:
    """The document for a server reached at ``root_url`` (ending in ``/``)."""
    return {
        "kind": "discovery#restDescription", "discoveryVersion": "v1", "id": f"{API}:{VERSION}", "name": API,
        "version": VERSION, "revision": __version__, "protocol": "rest",
        "title": "Perspective Comment Analyzer API (distilora)",
        "description": "Perspective's comments:analyze and comments:suggestscore, answered by distilora models "
                       "(calibrated probabilities; see GET /v1alpha1/attributes for the model behind each attribute).",
        "documentationLink": f"{root_url}docs",
        "rootUrl": root_url, "servicePath": "", "baseUrl": root_url, "batchPath": "batch",
        "parameters": PARAMETERS, "schemas": _schemas(),
        "resources": {"comments": {"methods": {name: _method(name) for name in METHODS}}},
    }
