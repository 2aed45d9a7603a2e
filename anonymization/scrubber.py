"""FrenchScrubber: find personal data in French free text and replace it by typed tags or pseudonyms.

Built once per process (loading spaCy and Presidio costs seconds) and reused for every batch. Notes go
through spaCy's `nlp.pipe` in batches (optionally in several processes), then through Presidio's
AnalyzerEngine with the French-only registry and the precomputed NLP artifacts.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from presidio_analyzer import AnalyzerEngine, RecognizerResult
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

from anonymization.errors import AnonymizationError
from anonymization.nlp_engine import DEFAULT_MODEL, LANGUAGE, FrenchSpacyNlpEngine
from anonymization.operators import OPERATORS
from anonymization.pseudonyms import StudyPseudonymizer
from anonymization.recognizers.registry import ENTITY_TAGS, build_french_registry

# Presidio logs the words around each match at DEBUG level; on a node those words are personal data.
logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)
logging.getLogger("presidio-anonymizer").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Span:
    """One entity to replace: [start, end) of the text, its type and score."""

    start: int
    end: int
    entity_type: str
    score: float


def resolve_overlaps(results: Sequence[RecognizerResult]) -> list[Span]:
    """Merge overlapping results into their union, labelled by the best-scored (then longest) result
    among those that span the whole union, if any.

    Replacing the union, not one of the pieces, guarantees that no character any recognizer flagged
    survives (a phone number inside a longer NIR match, a name inside an address). A piece that spans
    the union names it: "Jean Jaurès" in "12 avenue Jean Jaurès 06300 Nice" is part of an address.
    """
    ordered = sorted(results, key=lambda r: (r.start, -r.end))
    spans: list[Span] = []
    cluster: list[RecognizerResult] = []
    end = -1
    for result in [*ordered, None]:
        if result is not None and cluster and result.start < end:
            cluster.append(result)
            end = max(end, result.end)
            continue
        if cluster:
            whole = [r for r in cluster if r.start == cluster[0].start and r.end == end] or cluster
            best = max(whole, key=lambda r: (r.score, r.end - r.start))
            spans.append(Span(cluster[0].start, end, best.entity_type, best.score))
        if result is not None:
            cluster, end = [result], result.end
    return spans


class FrenchScrubber:
    """French PII detection and replacement, reusable across batches and tables."""

    def __init__(
        self,
        *,
        operator: str = "tag",
        study: StudyPseudonymizer | None = None,
        entities: Sequence[str] | None = None,
        score_threshold: float = 0.5,
        batch_size: int = 32,
        n_process: int = 1,
        model: str = DEFAULT_MODEL,
        data_dir: Path | None = None,
        with_ner: bool = True,
    ) -> None:
        if operator not in OPERATORS:
            raise ValueError(f"unknown operator {operator!r}; known: {', '.join(sorted(OPERATORS))}")
        if operator == "pseudonym" and study is None:
            raise ValueError("the pseudonym operator needs a StudyPseudonymizer (study=...)")
        self.operator = OPERATORS[operator]()
        self.study = study
        self.entities = list(entities) if entities else list(ENTITY_TAGS)
        unknown = set(self.entities) - set(ENTITY_TAGS)
        if unknown:
            raise ValueError(f"unknown entity type(s) {sorted(unknown)}; known: {sorted(ENTITY_TAGS)}")
        self.score_threshold = score_threshold
        self.batch_size = batch_size
        self.n_process = n_process
        self.nlp_engine = FrenchSpacyNlpEngine(model)
        self.nlp_engine.load()
        self.analyzer = AnalyzerEngine(
            registry=build_french_registry(data_dir, with_ner=with_ner),
            nlp_engine=self.nlp_engine,
            supported_languages=[LANGUAGE],
            context_aware_enhancer=LemmaContextAwareEnhancer(context_prefix_count=6, context_suffix_count=2),
        )

    def analyze_batch(self, texts: Sequence[str]) -> list[list[Span]]:
        """Entities found in each text, overlaps merged (for evaluation and for counting)."""
        found: list[list[Span]] = [[] for _ in texts]
        todo = [(i, text) for i, text in enumerate(texts) if text and not text.isspace()]
        batch: list[tuple[str, object]] = [(text, i) for i, text in todo]
        artifacts = self.nlp_engine.process_batch(
            batch,
            LANGUAGE,
            batch_size=self.batch_size,
            n_process=self.n_process,
            as_tuples=True,
        )
        # Presidio types each item as a pair or a triple; with as_tuples=True it is (text, artifacts, i).
        for text, nlp_artifacts, position in artifacts:  # type: ignore[misc]
            try:
                results = self.analyzer.analyze(
                    text=text,
                    language=LANGUAGE,
                    entities=self.entities,
                    nlp_artifacts=nlp_artifacts,
                    score_threshold=self.score_threshold,
                )
            except Exception as exc:  # Presidio's messages may quote the text: keep only the type.
                raise AnonymizationError(
                    f"analysis failed on text {position} of the batch ({type(exc).__name__})"
                ) from None
            found[position] = resolve_overlaps(results)
        return found

    def replace(self, text: str, spans: Sequence[Span]) -> str:
        """Apply the operator to each span, right to left so offsets stay valid."""
        for span in sorted(spans, key=lambda s: s.start, reverse=True):
            params = {
                "tag": ENTITY_TAGS[span.entity_type],
                "entity_type": span.entity_type,
                "study": self.study,
            }
            text = (
                text[: span.start]
                + self.operator.operate(text[span.start : span.end], params)
                + text[span.end :]
            )
        return text

    def scrub_batch_with_counts(self, texts: Sequence[str]) -> tuple[list[str], Counter[str]]:
        """Scrubbed texts and the number of entities replaced, per entity type."""
        counts: Counter[str] = Counter()
        out: list[str] = []
        for text, spans in zip(texts, self.analyze_batch(texts), strict=True):
            counts.update(span.entity_type for span in spans)
            out.append(self.replace(text, spans) if spans else text)
        return out, counts

    def scrub_batch(self, texts: Sequence[str]) -> list[str]:
        """Scrubbed texts, one per input text, in order."""
        return self.scrub_batch_with_counts(texts)[0]

    def scrub(self, text: str) -> str:
        """Scrub one text (prefer scrub_batch: the model is much faster on batches)."""
        return self.scrub_batch([text])[0]
