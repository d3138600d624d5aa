"""Money conversion: the fast integer path agrees exactly with Decimal's half-even rounding."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordersync.values import fits_int64, record_key, to_minor

CURRENCIES = st.sampled_from(["EUR", "NOK", "JPY", "KWD", None, "chf"])
EXACT = Context(prec=100000)


def reference(amount: object, currency: str | None) -> int | None:
    """The conversion as ``Decimal`` does it, with enough precision to be exact."""
    if amount is None or isinstance(amount, bool):
        return None
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    places = {"JPY": 0, "KWD": 3}.get((currency or "").upper(), 2)
    return int(EXACT.multiply(value, Decimal(10) ** places).quantize(Decimal(1), rounding=ROUND_HALF_EVEN,
                                                                      context=EXACT))


decimal_texts = st.builds(
    lambda sign, whole, fraction, pad: f"{pad}{sign}{whole}{'.' + fraction if fraction is not None else ''}{pad}",
    st.sampled_from(["", "-", "+"]), st.from_regex(r"[0-9]{0,25}", fullmatch=True),
    st.none() | st.from_regex(r"[0-9]{0,12}", fullmatch=True), st.sampled_from(["", " "]))


@given(decimal_texts, CURRENCIES)
def test_decimal_strings_convert_exactly_half_even(text: str, currency: str | None) -> None:
    assert to_minor(text, currency) == reference(text, currency)


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.decimals().map(str)
       | st.text(max_size=12), CURRENCIES)
def test_every_other_input_converts_like_decimal(amount: object, currency: str | None) -> None:
    assert to_minor(amount, currency) == reference(amount, currency)


def test_known_amounts() -> None:
    assert to_minor("2.50", "EUR") == 250
    assert to_minor(1500, "NOK") == 150000
    assert to_minor("0.125", "EUR") == 12  # half-even: a tie goes to the even neighbour
    assert to_minor("0.135", "EUR") == 14
    assert to_minor("-0.125", "EUR") == -12
    assert to_minor("0.1250001", "EUR") == 13
    assert to_minor("12.3455", "KWD") == 12346
    assert to_minor("abc", "EUR") is None and to_minor("", "EUR") is None and to_minor(True, "EUR") is None


def test_huge_amounts_are_exact_not_errors_so_the_engine_can_reject_them() -> None:
    assert to_minor("1e30", "EUR") == 10**32
    assert to_minor("123456789012345678901234567890", "EUR") == 123456789012345678901234567890 * 100
    assert not fits_int64(to_minor("1e30", "EUR") or 0)
    assert not fits_int64(to_minor("1e99999", "EUR") or 0)
    assert fits_int64(to_minor("92233720368547758.07", "EUR") or 0)
    assert not fits_int64(to_minor("92233720368547758.08", "EUR") or 0)


def test_a_record_without_an_id_has_no_key() -> None:
    assert record_key(12) == "12" and record_key(" A-1 ") == "A-1"
    for missing in (None, "", " ", True, {}, []):
        with pytest.raises(ValueError):
            record_key(missing)
