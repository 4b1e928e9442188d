"""The two Perspective methods: ``comments:analyze`` and ``comments:suggestscore``, over the served attributes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.to_thread
from fastapi import Request

from distilora.config import PerspectiveConfig
from distilora.serve.parsing import BodyParser
from distilora.serve.perspective.access import AccessControl
from distilora.serve.perspective.attributes import AttributeTable, ServedAttribute
from distilora.serve.perspective.errors import PerspectiveError, invalid
from distilora.serve.perspective.feedback import FeedbackRecord, FeedbackStore
from distilora.serve.perspective.languages import LanguageDetector
from distilora.serve.perspective.reading import (
    checked_attributes,
    checked_comment,
    checked_languages,
    checked_score,
    read_message,
    shown,
)
from distilora.serve.perspective.schemas import (
    AnalyzeCommentRequest,
    AnalyzeCommentResponse,
    AttributeParameters,
    AttributeScores,
    Message,
    Score,
    SpanScore,
    SuggestCommentScoreRequest,
    SuggestCommentScoreResponse,
    SuggestedAttributeScores,
)
from distilora.serve.perspective.scoring import Scored, Scorer
from distilora.serve.perspective.spans import Sentence, Utf16Offsets, sentences

M = TypeVar("M", bound=Message)


@dataclass
class LanguageChoice:
    scored_as: list[str]
    """The languages the comment is taken to be in: the request's, or a confident detection; empty: not known."""
    detected: list[str]


def scores_of(scored: Scored, parameters: AttributeParameters, spans: list[Sentence]) -> AttributeScores | None:
    """The response's scores of one attribute; None when its summary is below the requested threshold."""
    threshold = parameters.score_threshold
    if threshold is not None and scored.summary < threshold:
        return None
    span_scores = [SpanScore(begin=s.begin, end=s.end, score=Score(value=value))
                   for s, value in zip(spans, scored.spans, strict=True) if threshold is None or value >= threshold]
    return AttributeScores(summary_score=Score(value=scored.summary), span_scores=span_scores if spans else None)


class PerspectiveService:
    """Checks access, reads and checks the request, picks the languages, scores and answers."""

    def __init__(self, table: AttributeTable, scorer: Scorer, config: PerspectiveConfig, access: AccessControl,
                 detector: LanguageDetector, feedback: FeedbackStore | None, max_parsers: int):
        self.table, self.scorer, self.config, self.access = table, scorer, config, access
        self.detector, self.feedback = detector, feedback
        self.parser = BodyParser(max_parsers)

    async def read(self, request: Request, message: type[M]) -> M:
        return await self.parser.parse(read_message, await request.body(), request.headers.get("content-type", ""),
                                       message)

    def choose_languages(self, comment: str, requested: list[str] | None) -> LanguageChoice:
        languages = checked_languages(requested)
        if languages:
            return LanguageChoice(languages, [])
        detection = self.detector.detect(comment)
        sure = detection.confidence >= self.config.language_confidence
        return LanguageChoice([detection.language] if sure else [], [detection.language])

    def supported(self, requested: list[tuple[ServedAttribute, AttributeParameters]], languages: list[str],
                  drop: bool) -> list[tuple[ServedAttribute, AttributeParameters]]:
        """The attributes whose models take ``languages``; Perspective's 400 for the first that does not, unless
        ``drop`` (dropUnsupportedAttributes) leaves those out."""
        kept = []
        for attribute, parameters in requested:
            if attribute.supports(languages):
                kept.append((attribute, parameters))
            elif not drop:
                raise invalid(f"Attribute {attribute.name} does not support request languages: {','.join(languages)}")
        return kept

    async def analyze(self, request: Request) -> AnalyzeCommentResponse:
        self.access.check(request)
        parsed = await self.read(request, AnalyzeCommentRequest)
        comment = checked_comment(parsed.comment, self.config.max_comment_chars)
        requested = checked_attributes(parsed.requested_attributes, self.table)
        choice = self.choose_languages(comment, parsed.languages)
        requested = self.supported(requested, choice.scored_as, bool(parsed.drop_unsupported_attributes))
        scored_as = choice.scored_as or [code for a, _ in requested[:1] for code in a.languages[:1]] or choice.detected
        spans = sentences(comment, scored_as[0] if scored_as else "en") if parsed.span_annotations else []
        scored = await self.scorer.score(request, comment, [attribute for attribute, _ in requested], spans)
        answers = {attribute.name: scores_of(scored[attribute.name], parameters, spans)
                   for attribute, parameters in requested}
        return AnalyzeCommentResponse(attribute_scores={k: v for k, v in answers.items() if v is not None},
                                      languages=scored_as, detected_languages=choice.detected or None,
                                      client_token=parsed.client_token)

    async def suggest(self, request: Request) -> SuggestCommentScoreResponse:
        self.access.check(request)
        if self.feedback is None:
            raise PerspectiveError(400, "This server keeps no feedback; start it with --feedback-dir DIR to accept "
                                        "comments:suggestscore.", "FAILED_PRECONDITION")
        parsed = await self.read(request, SuggestCommentScoreRequest)
        comment = checked_comment(parsed.comment, self.config.max_comment_chars)
        attributes = self._suggested(parsed.attribute_scores, Utf16Offsets(comment)(len(comment)))
        languages = checked_languages(parsed.languages)
        scored = await self.scorer.score(request, comment, attributes)
        record = FeedbackRecord(
            comment=comment, languages=languages, client_token=parsed.client_token,
            community_id=parsed.community_id, session_id=parsed.session_id,
            suggested={name: s.model_dump(by_alias=True, exclude_none=True)
                       for name, s in parsed.attribute_scores.items()},
            served={a.name: {"summaryScore": scored[a.name].summary, "model": a.identity()} for a in attributes})
        await anyio.to_thread.run_sync(self.feedback.append, record)
        return SuggestCommentScoreResponse(client_token=parsed.client_token)

    def _suggested(self, suggested: dict[str, SuggestedAttributeScores], length: int) -> list[ServedAttribute]:
        """The served attributes a suggestion names, its scores checked; a 400 for the first problem."""
        if not suggested:
            raise invalid("attributeScores must name at least one attribute.")
        attributes = []
        for name, scores in suggested.items():
            attribute = self.table.get(name)
            if attribute is None:
                raise invalid(f"Unknown attribute {shown(name)}; this server serves: {', '.join(self.table.names)}.")
            if scores.summary_score is None and not scores.span_scores:
                raise invalid(f"attributeScores.{name} must hold a summaryScore or spanScores.")
            if scores.summary_score is not None:
                checked_score(scores.summary_score, f"attributeScores.{name}.summaryScore")
            for i, span in enumerate(scores.span_scores or ()):
                where = f"attributeScores.{name}.spanScores[{i}]"
                if not 0 <= span.begin < span.end <= length:
                    raise invalid(f"{where}: begin and end must satisfy 0 <= begin < end <= {length} (the comment's "
                                  "length in UTF-16 code units).")
                checked_score(span.score, f"{where}.score")
            attributes.append(attribute)
        return attributes
