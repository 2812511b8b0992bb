"""Vendors' decimal amounts as canonical `Money`: integer minor units, never floats."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from posgate.contracts.common import money, pb

# ISO 4217 minor-unit exponents that differ from the usual 2.
_EXPONENTS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"), 0),
    **dict.fromkeys(("RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4,
    "UYW": 4,
}


def minor_units(amount: Decimal | str, currency_code: str) -> int:
    """Integer minor units of a decimal amount (`"12.50"`, `"EUR"` → 1250), never via floats.

    Raises:
        ValueError: Not a finite decimal, or more decimals than the currency has.
    """
    try:
        value = Decimal(amount)
    except InvalidOperation as error:
        raise ValueError(f"not a decimal amount: {amount!r}") from error
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {amount!r}")
    scaled = value.scaleb(_EXPONENTS.get(currency_code, 2))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount!r} has more decimals than {currency_code} allows")
    return int(scaled)


def decimal_money(amount: Decimal | str, currency_code: str) -> pb.Money:
    """A `Money` from a vendor's decimal amount string and ISO 4217 code."""
    return money(minor_units(amount, currency_code), currency_code)
