"""Operators applied to entities found in free text (Presidio's Operator interface), by name."""

from anonymization.operators.pseudonym_operator import PseudonymOperator
from anonymization.operators.tag_operator import TagOperator

OPERATORS = {TagOperator.NAME: TagOperator, PseudonymOperator.NAME: PseudonymOperator}

__all__ = ["OPERATORS", "PseudonymOperator", "TagOperator"]
