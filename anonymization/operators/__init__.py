"""Operators applied to entities found in free text (Presidio's Operator interface), by name."""

from anonymization.operators.pseudonym_operator import PseudonymOperator
from anonymization.operators.tag_operator import TagOperator

OPERATORS: dict[str, type[TagOperator] | type[PseudonymOperator]] = {
    TagOperator.NAME: TagOperator,
    PseudonymOperator.NAME: PseudonymOperator,
}

__all__ = ["OPERATORS", "PseudonymOperator", "TagOperator"]
