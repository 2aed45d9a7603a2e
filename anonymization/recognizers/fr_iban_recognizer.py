"""IBAN_CODE with French context words: Presidio's own IBAN recognizer (mod-97 checked) for French text."""

from __future__ import annotations

from presidio_analyzer.predefined_recognizers import IbanRecognizer


class FrIbanRecognizer(IbanRecognizer):
    """Presidio's IbanRecognizer registered for French, with French context words."""

    CONTEXT = ["iban", "rib", "bancaire", "banque", "compte", "virement", "coordonnées"]

    def __init__(self, supported_language: str = "fr") -> None:
        super().__init__(context=self.CONTEXT, supported_language=supported_language, name="FrIbanRecognizer")
