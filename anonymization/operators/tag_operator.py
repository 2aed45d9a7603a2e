"""Replace an entity by its typed tag, e.g. <NOM>, <NIR>, <TELEPHONE>."""

from __future__ import annotations

from typing import Any

from presidio_anonymizer.operators import Operator, OperatorType


class TagOperator(Operator):
    """Typed tag: keeps the sentence readable and says what was removed, nothing more."""

    NAME = "tag"

    def operate(self, text: str, params: dict[str, Any] | None = None) -> str:
        return f"<{(params or {})['tag']}>"

    def validate(self, params: dict[str, Any] | None = None) -> None:
        if not params or not params.get("tag"):
            raise ValueError("the tag operator needs a 'tag' parameter")

    def operator_name(self) -> str:
        return self.NAME

    def operator_type(self) -> OperatorType:
        return OperatorType.Anonymize
