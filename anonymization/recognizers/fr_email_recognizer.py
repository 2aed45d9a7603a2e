"""EMAIL_ADDRESS: anything shaped like an address (local part @ domain), whatever its suffix.

A mistyped suffix (gmail.con) or none at all (ahmed.b@gmail) still names a person's mailbox: the
public suffix list (the snapshot bundled with tldextract, never fetched) only raises the score.
"""

from __future__ import annotations

import tldextract
from presidio_analyzer import Pattern, PatternRecognizer

OFFLINE_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


class FrEmailRecognizer(PatternRecognizer):
    """E-mail addresses in French text, with French context words."""

    PATTERNS = [
        Pattern(
            "e-mail",
            r"(?<![\w.+\-@])[\w+\-'](?:[\w.+\-']*[\w+\-'])?@[\w\-]+(?:\.[\w\-]+)*(?<![.\-])",
            0.7,
        )
    ]
    CONTEXT = ["mail", "courriel", "mél", "électronique", "écrire"]

    def __init__(self, supported_language: str = "fr", supported_entity: str = "EMAIL_ADDRESS") -> None:
        super().__init__(
            supported_entity=supported_entity,
            patterns=list(self.PATTERNS),
            context=self.CONTEXT,
            supported_language=supported_language,
            name="FrEmailRecognizer",
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        """A known public suffix makes it certain; otherwise the shape's score (still removed)."""
        return True if OFFLINE_EXTRACTOR(pattern_text.rsplit("@", 1)[-1]).suffix else None
