"""Perspective's request and response messages (``commentanalyzer`` v1alpha1), field for field, in JSON's camelCase.

Types are checked here (strictly: a number is not a string); what a value may be (length, blank text, score type,
languages) is checked by the service, which answers Perspective's 400 INVALID_ARGUMENT with a one-line message.
The ``json_schema_extra`` limits document those checks in the OpenAPI and discovery documents.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from distilora.serve.parsing import VISIBLE

MAX_COMMENT_CHARS = 20_480
PROBABILITY = "PROBABILITY"
SCORE_TYPES = ("PROBABILITY", "SCORE_TYPE_UNSPECIFIED")
"""Score types this server answers (unspecified means PROBABILITY); Perspective's others are refused."""
TEXT_TYPES = ("PLAIN_TEXT", "TEXT_TYPE_UNSPECIFIED")


class Message(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=True)


class TextEntry(Message):
    """A body of text: the comment, or a piece of its context."""

    text: str | None = Field(None, description="The text (UTF-8). A comment must have a visible character and at "
                                               f"most {MAX_COMMENT_CHARS:,} characters.",
                             json_schema_extra={"maxLength": MAX_COMMENT_CHARS, "pattern": VISIBLE})
    type: str | None = Field(None, description="PLAIN_TEXT (the default); HTML is not supported.",
                             json_schema_extra={"enum": list(TEXT_TYPES)})


class ArticleAndParentComment(Message):
    article: TextEntry | None = None
    parent_comment: TextEntry | None = None


class Context(Message):
    """What the comment replies to. Accepted and ignored, as Perspective's own models do."""

    entries: list[TextEntry] | None = None
    article_and_parent_comment: ArticleAndParentComment | None = None


class AttributeParameters(Message):
    score_type: str | None = Field(None, description="PROBABILITY (the default); other score types are refused.",
                                   json_schema_extra={"enum": list(SCORE_TYPES)})
    score_threshold: float | None = Field(None, description="Leave the attribute (and its spans) out when its score "
                                                            "is below this.",
                                          json_schema_extra={"minimum": 0, "maximum": 1})


class AnalyzeCommentRequest(Message):
    """POST /v1alpha1/comments:analyze: a comment and the attributes to score it on."""

    comment: TextEntry = Field(description="The comment to score (required).")
    requested_attributes: dict[str, AttributeParameters] = Field(
        description="Attribute name → parameters ({} for the defaults); see GET /v1alpha1/attributes.",
        json_schema_extra={"minProperties": 1})
    context: Context | None = None
    languages: list[str] | None = Field(None, description="ISO 639-1 codes of the comment's languages; omitted: "
                                                          "detected.")
    span_annotations: bool | None = Field(None, description="Also score each sentence (spanScores).")
    do_not_store: bool | None = Field(None, description="Accepted; this server never stores an analysed comment.")
    client_token: str | None = Field(None, description="Echoed in the response.")
    session_id: str | None = None
    community_id: str | None = None
    drop_unsupported_attributes: bool | None = Field(
        None, description="Leave out attributes whose model does not support the comment's language instead of "
                          "answering 400.")


class Score(Message):
    value: float = Field(description="The calibrated probability of the attribute's label.")
    type: Literal["PROBABILITY"] = PROBABILITY


class SpanScore(Message):
    begin: int = Field(description="Start of the span in the comment, in UTF-16 code units (as Perspective).")
    end: int = Field(description="End of the span (exclusive), in UTF-16 code units.")
    score: Score


class AttributeScores(Message):
    summary_score: Score | None = None
    span_scores: list[SpanScore] | None = Field(None, description="Per sentence; only with spanAnnotations.")


class AnalyzeCommentResponse(Message):
    attribute_scores: dict[str, AttributeScores]
    languages: list[str] = Field(description="The languages the comment was scored as: the request's, else the "
                                             "detected one, else the models' own.")
    detected_languages: list[str] | None = None
    client_token: str | None = None


class SuggestedScore(Message):
    value: float = Field(json_schema_extra={"minimum": 0, "maximum": 1})
    type: str | None = Field(None, json_schema_extra={"enum": list(SCORE_TYPES)})


class SuggestedSpanScore(Message):
    begin: int = Field(json_schema_extra={"minimum": 0})
    end: int = Field(json_schema_extra={"minimum": 0})
    score: SuggestedScore


class SuggestedAttributeScores(Message):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    summary_score: SuggestedScore | None = None
    span_scores: list[SuggestedSpanScore] | None = None


class SuggestCommentScoreRequest(Message):
    """POST /v1alpha1/comments:suggestscore: the scores a client believes a comment should have."""

    comment: TextEntry
    attribute_scores: dict[str, SuggestedAttributeScores] = Field(json_schema_extra={"minProperties": 1})
    context: Context | None = None
    languages: list[str] | None = None
    community_id: str | None = None
    client_token: str | None = None
    session_id: str | None = None


class SuggestCommentScoreResponse(Message):
    client_token: str | None = None


class AttributeInfo(Message):
    """One served attribute and the model behind it."""

    name: str
    run: str = Field(description="The run directory's name.")
    model: str = Field(description="The model's name in its run.")
    served_as: str = Field(description="The model's name in this server (POST /api/v1/classify takes it).")
    label: str = Field(description="The label whose calibrated probability is the score (of a multi-label model: "
                                   "that label's own sigmoid probability; its other labels may serve other "
                                   "attributes, all from one pass over the comment).")
    languages: list[str] = Field(description="From the model card; empty: not stated, any language accepted.")
    version: str | None = Field(None, description="The stage fingerprint of the model's manifest.")
    manifest_sha256: str | None = Field(None, description="SHA-256 of the model's manifest.json (checksums of every "
                                                          "file of the model).")
    distilora_version: str
    card: str | None = Field(None, description="Where this server shows the model card (README.md).")


class AttributesResponse(Message):
    attributes: list[AttributeInfo]


class GoogleErrorBody(Message):
    code: int
    message: str
    status: str


class GoogleError(Message):
    """Every error of the Perspective methods, as Google's APIs answer them."""

    error: GoogleErrorBody
