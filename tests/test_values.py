"""Money conversion: the fast integer path agrees exactly with Decimal's half-even rounding."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordersync.values import cents, fits_int64, record_key, to_minor

CURRENCIES = st.sampled_from(["EUR", "NOK", "JPY", "KWD", None, "chf"])
EXACT = Context(prec=100000)


REFUSED = "refused"  # to_minor raises ValueError: not a number, or more digits than any amount (issue 24, point 9)


def reference(amount: object, currency: str | None) -> int | str | None:
    """The conversion as ``Decimal`` does it, with enough precision to be exact."""
    if amount is None:
        return None
    if isinstance(amount, bool):
        return REFUSED
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        return REFUSED
    if not value.is_finite() or value.adjusted() > 30:
        return REFUSED
    places = {"JPY": 0, "KWD": 3}.get((currency or "").upper(), 2)
    return int(EXACT.multiply(value, Decimal(10) ** places).quantize(Decimal(1), rounding=ROUND_HALF_EVEN,
                                                                      context=EXACT))


decimal_texts = st.builds(
    lambda sign, whole, fraction, pad: f"{pad}{sign}{whole}{'.' + fraction if fraction is not None else ''}{pad}",
    st.sampled_from(["", "-", "+"]), st.from_regex(r"[0-9]{0,25}", fullmatch=True),
    st.none() | st.from_regex(r"[0-9]{0,12}", fullmatch=True), st.sampled_from(["", " "]))


@given(decimal_texts, CURRENCIES)
def test_decimal_strings_convert_exactly_half_even(text: str, currency: str | None) -> None:
    assert converted(text, currency) == reference(text, currency)


def converted(amount: object, currency: str | None) -> int | str | None:
    try:
        return to_minor(amount, currency)
    except ValueError as exc:
        assert "\n" not in str(exc) and "set_int_max_str_digits" not in str(exc)
        return REFUSED


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.decimals().map(str)
       | st.text(max_size=12), CURRENCIES)
def test_every_other_input_converts_like_decimal(amount: object, currency: str | None) -> None:
    assert converted(amount, currency) == reference(amount, currency)


def test_known_amounts() -> None:
    assert to_minor("2.50", "EUR") == 250
    assert to_minor(1500, "NOK") == 150000
    assert to_minor("0.125", "EUR") == 12  # half-even: a tie goes to the even neighbour
    assert to_minor("0.135", "EUR") == 14
    assert to_minor("-0.125", "EUR") == -12
    assert to_minor("0.1250001", "EUR") == 13
    assert to_minor("12.3455", "KWD") == 12346
    assert to_minor(None, "EUR") is None
    for bad in ("abc", "", True, "12,50", "lots", {"amount": 1}, float("nan"), "9" * 5000, 10**5000):
        with pytest.raises(ValueError, match="amount") as err:
            to_minor(bad, "EUR")
        assert "set_int_max_str_digits" not in str(err.value)
    with pytest.raises(ValueError, match="decimal comma"):
        to_minor("12,50", "NOK")


def test_huge_amounts_are_exact_not_errors_so_the_engine_can_reject_them() -> None:
    assert to_minor("1e30", "EUR") == 10**32
    assert to_minor("123456789012345678901234567890", "EUR") == 123456789012345678901234567890 * 100
    assert not fits_int64(to_minor("1e30", "EUR") or 0)
    with pytest.raises(ValueError, match="no currency amount is that large"):
        to_minor("1e99999", "EUR")
    assert fits_int64(to_minor("92233720368547758.07", "EUR") or 0)
    assert not fits_int64(to_minor("92233720368547758.08", "EUR") or 0)


def test_documented_cents_are_whole_numbers_or_refused() -> None:
    assert cents(5719, "total") == 5719 and cents("5719", "total") == 5719 and cents(None, "total") is None
    for bad in ("57.19", 57.19, "lots", True, "9" * 5000):
        with pytest.raises(ValueError, match="total") as err:
            cents(bad, "total")
        assert "set_int_max_str_digits" not in str(err.value)


def test_a_record_without_an_id_has_no_key() -> None:
    assert record_key(12) == "12" and record_key(" A-1 ") == "A-1"
    for missing in (None, "", " ", True, {}, []):
        with pytest.raises(ValueError):
            record_key(missing)
