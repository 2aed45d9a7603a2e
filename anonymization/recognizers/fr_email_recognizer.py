"""EMAIL_ADDRESS validated against the public suffix list bundled with tldextract, never fetched.

Presidio's EmailRecognizer calls `tldextract.extract`, whose default extractor downloads the public
suffix list on first use: on a partner's node that is a network call at run time. This one uses the
snapshot shipped inside the tldextract wheel.
"""

from __future__ import annotations

import tldextract
from presidio_analyzer.predefined_recognizers import EmailRecognizer

OFFLINE_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


class FrEmailRecognizer(EmailRecognizer):
    """E-mail addresses in French text, with French context words."""

    CONTEXT = ["mail", "courriel", "mél", "électronique", "écrire"]

    def __init__(self, supported_language: str = "fr") -> None:
        super().__init__(
            context=self.CONTEXT, supported_language=supported_language, name="FrEmailRecognizer"
        )

    def validate_result(self, pattern_text: str) -> bool:
        """A known public suffix after the @, from the offline snapshot."""
        return OFFLINE_EXTRACTOR(pattern_text.rsplit("@", 1)[-1]).suffix != ""
