"""An independent leak detector for scrubbed notes: plain regular expressions, written apart from the
scrubber's recognizers and sharing no code with them, that flag anything still looking like an
identifier. It is deliberately blunt (it over-reports rather than misses): every hit is printed so a
person can judge it.

Flags: any run of 8+ digits (spaces, dots, dashes, slashes between them) that is not a dd/mm/yyyy
date, any '@' between word characters, IBAN-like strings, a civility followed by a word that is not a
tag, a street number followed by a street word, a 5-digit postcode followed by a word, a date after a
birth cue, and the note's own person's first name or surname (passed in) still readable.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

TAG = r"<[A-Z_]+>"
RULES = {
    "digits": re.compile(r"(?<![\w])\d(?:[ .\-/]?\d){7,}"),
    "at_sign": re.compile(r"\w@\w|\w\s?\(at\)\s?\w"),
    "iban": re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]{4}){3,}"),
    "civility_word": re.compile(
        r"(?i)\b(?:m\.|mr|mme|mlle|madame|monsieur|mademoiselle)\s+(?!"
        + TAG
        + r")(?!le\b|la\b|les\b)[a-zà-ÿ]{2,}"
    ),
    "street": re.compile(
        r"(?i)\b\d{1,4}\s*(?:bis|ter)?,?\s+(?:rue|avenue|av|bd|boulevard|chemin|impasse|allée|place|route|"
        r"traverse|cours|quai)\b"
    ),
    "postcode_word": re.compile(r"(?<![\w])(?:0[1-9]|[1-8]\d|9[0-8])\d{3}\s+[A-Za-zÀ-ÿ]"),
    "birth_date": re.compile(r"(?i)\bn[ée]e?\s+le\s+\d"),
}


DATE = re.compile(r"\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}")


def leaks(text: str, names: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(rule, matched text) for everything in `text` that still looks like an identifier."""
    found = [
        (rule, m.group())
        for rule, pattern in RULES.items()
        for m in pattern.finditer(text)
        if not (rule == "digits" and DATE.fullmatch(m.group()))
    ]
    words = set(re.findall(r"[^\W\d_]+(?:-[^\W\d_]+)*", text.casefold()))
    found.extend(("name", w) for w in words & set(names))
    return found


def count(texts: Iterable[str], names: Iterable[str] = ()) -> tuple[Counter[str], list[tuple[int, str, str]]]:
    """Hits per rule over many texts, and every hit with its text index."""
    names = {n.casefold() for n in names}
    per_rule: Counter[str] = Counter()
    hits: list[tuple[int, str, str]] = []
    for index, text in enumerate(texts):
        for rule, value in leaks(text, names):
            per_rule[rule] += 1
            hits.append((index, rule, value))
    return per_rule, hits
