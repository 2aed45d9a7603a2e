"""Check digits of French identifiers: Luhn (SIREN/SIRET), NIR key mod 97, IBAN mod 97."""

from __future__ import annotations

# SIRETs of La Poste's establishments do not follow Luhn: their digits must sum to a multiple of 5.
LA_POSTE_SIREN = "356000000"


def luhn_valid(digits: str) -> bool:
    """Return True when a string of decimal digits passes the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def siret_valid(digits: str) -> bool:
    """Luhn on 14 digits, with La Poste's documented exception."""
    if len(digits) != 14 or not digits.isdigit():
        return False
    if digits.startswith(LA_POSTE_SIREN) and digits != LA_POSTE_SIREN + "00001":
        return sum(ord(c) - 48 for c in digits) % 5 == 0
    return luhn_valid(digits)


def siren_valid(digits: str) -> bool:
    """Luhn on 9 digits."""
    return len(digits) == 9 and digits.isdigit() and luhn_valid(digits)


def nir_key(first13: str) -> int:
    """Key of a NIR: 97 - (N mod 97), Corsica's 2A/2B read as 19/18 as the INSEE rule says."""
    department = first13[5:7].upper()
    if department == "2A":
        first13 = first13[:5] + "19" + first13[7:]
    elif department == "2B":
        first13 = first13[:5] + "18" + first13[7:]
    return 97 - int(first13) % 97


def iban_valid(iban: str) -> bool:
    """ISO 13616 mod-97 check on a compact, upper-case IBAN."""
    if len(iban) < 15 or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:
        return False
    return number % 97 == 1
