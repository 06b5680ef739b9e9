"""Gateways (pure): card checks, the sandbox card gateway, ECPay CheckMacValue, form and notice."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateways.cards import (
    CardDetails,
    CardError,
    ValidCard,
    brand,
    check_cvv,
    check_expiry,
    luhn_check_digit,
    luhn_valid,
    normalize_number,
    validate_card,
)
from gateways.ecpay import (
    TEST_MERCHANT,
    ECPayConfig,
    NoticeRejected,
    check_mac_value,
    checkout_form,
    code_expiry,
    mac_source,
    net_url_encode,
    parse_notice,
    render_form_page,
    verify_mac,
)
from gateways.sandbox import SandboxGateway

TODAY = date(2026, 5, 20)
digit_strings = st.text(alphabet="0123456789", min_size=11, max_size=18)
KNOWN_VALID = ["4242424242424242", "5555555555554444", "4000000000000002", "378282246310005"]


def with_check_digit(partial: str) -> str:
    return partial + luhn_check_digit(partial)


# --- Luhn -----------------------------------------------------------------------------------
@given(digit_strings)
def test_appending_the_check_digit_makes_any_11_to_18_digit_string_valid(partial: str) -> None:
    number = with_check_digit(partial)
    assert luhn_valid(number)
    assert normalize_number(number) == number


@given(digit_strings, st.data())
def test_changing_any_single_digit_of_a_valid_number_makes_it_invalid(
    partial: str, data: st.DataObject
) -> None:
    number = with_check_digit(partial)
    i = data.draw(st.integers(0, len(number) - 1), label="position")
    other = data.draw(st.sampled_from([d for d in "0123456789" if d != number[i]]), label="digit")
    assert not luhn_valid(number[:i] + other + number[i + 1 :])


@pytest.mark.parametrize("number", KNOWN_VALID)
def test_well_known_test_numbers_pass_luhn(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize(
    "raw", ["4242 4242 4242 4242", "4242-4242-4242-4242", " 4242-4242 4242 4242 "]
)
def test_spaces_and_dashes_are_accepted_and_removed(raw: str) -> None:
    assert normalize_number(raw) == "4242424242424242"


@pytest.mark.parametrize(
    "raw",
    [
        "4242a24242424242",  # a letter
        "\uff14\uff12" * 8,  # full-width digits: str.isdigit() says yes, but they are not ASCII
        "4242.4242.4242.4242",
        with_check_digit("1234567890"),  # 11 digits, checksum fine
        with_check_digit("1234567890123456789"),  # 20 digits, checksum fine
        "4242424242424241",  # checksum wrong
        "",
    ],
)
def test_malformed_numbers_are_rejected_on_the_number_field(raw: str) -> None:
    with pytest.raises(CardError) as err:
        normalize_number(raw)
    assert err.value.field == "cardDetails.number"
    assert isinstance(err.value, ValueError)


# --- brands ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("4", "VISA"),
        ("50", "UNKNOWN"),
        ("51", "MASTERCARD"),
        ("55", "MASTERCARD"),
        ("56", "UNKNOWN"),
        ("2220", "UNKNOWN"),
        ("2221", "MASTERCARD"),
        ("2720", "MASTERCARD"),
        ("2721", "UNKNOWN"),
        ("33", "UNKNOWN"),
        ("34", "AMEX"),
        ("37", "AMEX"),
        ("38", "UNKNOWN"),
        ("3527", "UNKNOWN"),
        ("3528", "JCB"),
        ("3589", "JCB"),
        ("3590", "UNKNOWN"),
        ("6010", "UNKNOWN"),
        ("6011", "DISCOVER"),
        ("6012", "UNKNOWN"),
        ("643", "UNKNOWN"),
        ("644", "DISCOVER"),
        ("649", "DISCOVER"),
        ("65", "DISCOVER"),
        ("62", "UNIONPAY"),
        ("61", "UNKNOWN"),
        ("66", "UNKNOWN"),
    ],
)
def test_brand_follows_each_prefix_range_boundary(prefix: str, expected: str) -> None:
    assert brand(prefix.ljust(16, "0")) == expected


# --- expiry ---------------------------------------------------------------------------------
expiry_months = st.tuples(st.integers(2001, 2080), st.integers(1, 12))


@given(expiry_months)
def test_a_card_is_valid_through_the_last_day_of_its_month_and_not_a_day_longer(
    expiry: tuple[int, int],
) -> None:
    year, month = expiry
    last_day = date(year, month, calendar.monthrange(year, month)[1])
    check_expiry(month, year, last_day)
    with pytest.raises(CardError, match="expired"):
        check_expiry(month, year, last_day + timedelta(days=1))


@given(st.dates(date(2000, 1, 1), date(2100, 12, 31)), st.integers(0, 20 * 12))
def test_any_month_from_now_up_to_twenty_years_ahead_is_accepted(
    today: date, months_ahead: int
) -> None:
    index = today.year * 12 + today.month - 1 + months_ahead
    year, month = divmod(index, 12)
    assume(year <= today.year + 20)
    check_expiry(month + 1, year, today)


@given(st.dates(date(2000, 1, 1), date(2100, 12, 31)), st.integers(1, 24))
def test_any_month_before_the_current_one_is_expired(today: date, months_back: int) -> None:
    index = today.year * 12 + today.month - 1 - months_back
    year, month = divmod(index, 12)
    with pytest.raises(CardError) as err:
        check_expiry(month + 1, year, today)
    expected_field = "cardDetails.expiryYear" if year < today.year else "cardDetails.expiryMonth"
    assert err.value.field == expected_field


@pytest.mark.parametrize(
    ("month", "year", "field"),
    [
        (0, 2030, "cardDetails.expiryMonth"),
        (13, 2030, "cardDetails.expiryMonth"),
        (True, 2030, "cardDetails.expiryMonth"),  # bool is an int, but not a month
        ("12", 2030, "cardDetails.expiryMonth"),
        (12, 30, "cardDetails.expiryYear"),  # two-digit year
        (12, 930, "cardDetails.expiryYear"),
        (12, True, "cardDetails.expiryYear"),
        (12, 2030.0, "cardDetails.expiryYear"),
        (12, TODAY.year + 21, "cardDetails.expiryYear"),
    ],
)
def test_malformed_expiry_is_rejected_on_its_field(month: object, year: object, field: str) -> None:
    with pytest.raises(CardError) as err:
        check_expiry(month, year, TODAY)  # type: ignore[arg-type]
    assert err.value.field == field
    assert err.value.message


def test_a_card_twenty_years_ahead_is_still_accepted() -> None:
    check_expiry(12, TODAY.year + 20, TODAY)


# --- CVV ------------------------------------------------------------------------------------
def test_cvv_has_three_digits_or_four_for_amex() -> None:
    check_cvv("123", "VISA")
    check_cvv("1234", "AMEX")
    for cvv, card_brand in [("1234", "VISA"), ("123", "AMEX"), ("12a", "VISA"), ("", "JCB")]:
        with pytest.raises(CardError) as err:
            check_cvv(cvv, card_brand)
        assert err.value.field == "cardDetails.cvv"


# --- validated cards never show their secrets -----------------------------------------------
def test_validate_card_normalises_and_reports_only_public_info() -> None:
    card = validate_card("4242 4242 4242 4242", 12, 2030, "987", " Lin Mei ", today=TODAY)
    assert card.number == "4242424242424242"
    assert (card.brand, card.last4, card.holder_name) == ("VISA", "4242", "Lin Mei")
    assert card.public_info() == {
        "brand": "VISA",
        "last4": "4242",
        "expiryMonth": 12,
        "expiryYear": 2030,
    }
    assert repr(card) == str(card) == "ValidCard(brand='VISA', last4='4242', expiry='12/2030')"


@given(
    st.sampled_from(["4", "51", "2221", "3530", "6011", "62"]),
    st.text(alphabet="0123456789", min_size=10, max_size=14),
    st.text(alphabet="0123456789", min_size=3, max_size=3),
)
def test_repr_of_card_details_and_valid_card_depends_only_on_public_info(
    prefix: str, middle: str, cvv: str
) -> None:
    number = with_check_digit(prefix + middle)
    details = CardDetails(number, 7, 2031, cvv, "Chen Wei")
    card = details.validate(TODAY)
    for text in (repr(details), str(details), repr(card), str(card), f"{card}"):
        assert number not in text
        assert "Chen Wei" not in text
    public = f"brand={card.brand!r}, last4={card.last4!r}"
    assert repr(card) == f"ValidCard({public}, expiry='07/2031')"
    assert repr(details) == f"CardDetails({public}, expiry=7/2031)"


def test_card_details_repr_hides_a_short_number_entirely() -> None:
    assert "1234" not in repr(CardDetails("1234", 1, 2030, "555"))


def test_card_details_from_json_names_the_missing_field() -> None:
    with pytest.raises(CardError) as err:
        CardDetails.from_json({"number": "4242424242424242", "expiryMonth": 12, "cvv": "123"})
    assert err.value.field == "cardDetails.expiryYear"
    card = CardDetails.from_json(
        {
            "number": "4242424242424242",
            "expiryMonth": 12,
            "expiryYear": 2030,
            "cvv": "123",
            "holderName": "Lin",
        }
    ).validate(TODAY)
    assert card.public_info()["last4"] == "4242"


# --- sandbox gateway ------------------------------------------------------------------------
def card(number: str, cvv: str = "123") -> ValidCard:
    return validate_card(number, 12, 2030, cvv, today=TODAY)


@pytest.mark.parametrize("number", ["4242424242424242", "5555555555554444", "378282246310005"])
def test_sandbox_approves_good_test_cards(number: str) -> None:
    cvv = "1234" if number.startswith("37") else "123"
    result = SandboxGateway().charge("pay-1", card(number, cvv), Decimal("846.98"), "TWD")
    assert result.approved and result.decline_code is None


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("4000000000000002", "card_declined"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
    ],
)
def test_sandbox_declines_its_declining_test_cards(number: str, code: str) -> None:
    result = SandboxGateway().charge("pay-2", card(number), Decimal(100), "TWD")
    assert not result.approved
    assert result.decline_code == code
    assert result.message


@given(st.text(min_size=1, max_size=40))
def test_same_payment_id_gives_the_same_transaction_id(payment_id: str) -> None:
    visa = card("4242424242424242")
    first = SandboxGateway().charge(payment_id, visa, Decimal(10), "TWD")
    again = SandboxGateway().charge(payment_id, visa, Decimal(10), "TWD")
    assert first == again
    assert first.transaction_id.startswith("tx_") and len(first.transaction_id) == 27
    other = SandboxGateway().charge(payment_id + "x", visa, Decimal(10), "TWD")
    assert other.transaction_id != first.transaction_id


def test_sandbox_refund_ids_are_derived_from_the_refund_key() -> None:
    gw = SandboxGateway()
    tx = gw.charge("pay-3", card("4242424242424242"), Decimal(500), "TWD").transaction_id
    assert gw.refund(tx, "ref-1", Decimal(200)) == gw.refund(tx, "ref-1", Decimal(200))
    assert gw.refund(tx, "ref-1", Decimal(200)) != gw.refund(tx, "ref-2", Decimal(200))
    assert gw.refund(tx, "ref-1", Decimal(200)).startswith("re_")
    with pytest.raises(ValueError):
        gw.refund("not-a-tx", "ref-1", Decimal(200))
    with pytest.raises(ValueError):
        gw.charge("pay-4", card("4242424242424242"), Decimal(0), "TWD")


# --- ECPay CheckMacValue --------------------------------------------------------------------
# ECPay's worked example, appendix "檢查碼機制" (https://developers.ecpay.com.tw/?p=2902),
# for the public stage merchant 3002607. Steps (2) and (3) are copied from that page.
OFFICIAL_PARAMS = {
    "TradeDesc": "促銷方案",
    "PaymentType": "aio",
    "MerchantTradeDate": "2023/03/12 15:30:23",
    "MerchantTradeNo": "ecpay20230312153023",
    "MerchantID": "3002607",
    "ReturnURL": "https://www.ecpay.com.tw/receive.php",
    "ItemName": "Apple iphone 15",
    "TotalAmount": "30000",
    "ChoosePayment": "ALL",
    "EncryptType": "1",
}
OFFICIAL_STEP2 = (
    "HashKey=pwFHCqoQZGmho4w6&ChoosePayment=ALL&EncryptType=1&ItemName=Apple iphone 15"
    "&MerchantID=3002607&MerchantTradeDate=2023/03/12 15:30:23"
    "&MerchantTradeNo=ecpay20230312153023&PaymentType=aio"
    "&ReturnURL=https://www.ecpay.com.tw/receive.php&TotalAmount=30000&TradeDesc=促銷方案"
    "&HashIV=EkRm7iFT261dpevs"
)
OFFICIAL_STEP3 = (
    "HashKey%3dpwFHCqoQZGmho4w6%26ChoosePayment%3dALL%26EncryptType%3d1%26ItemName%3dApple+"
    "iphone+15%26MerchantID%3d3002607%26MerchantTradeDate%3d2023%2f03%2f12+15%3a30%3a23%26"
    "MerchantTradeNo%3decpay20230312153023%26PaymentType%3daio%26ReturnURL%3dhttps%3a%2f%2f"
    "www.ecpay.com.tw%2freceive.php%26TotalAmount%3d30000%26TradeDesc%3d%e4%bf%83%e9%8a%b7%e6"
    "%96%b9%e6%a1%88%26HashIV%3dEkRm7iFT261dpevs"
)
OFFICIAL_CHECK_MAC_VALUE = "6C51C9E6888DE861FD62FB1DD17029FC742634498FD813DC43D4243B5685B840"
KEY, IV = TEST_MERCHANT.hash_key, TEST_MERCHANT.hash_iv


def test_check_mac_value_matches_ecpays_published_example_step_by_step() -> None:
    assert mac_source(OFFICIAL_PARAMS, KEY, IV) == OFFICIAL_STEP2
    assert net_url_encode(OFFICIAL_STEP2) == OFFICIAL_STEP3
    assert check_mac_value(OFFICIAL_PARAMS, KEY, IV) == OFFICIAL_CHECK_MAC_VALUE
    assert verify_mac({**OFFICIAL_PARAMS, "CheckMacValue": OFFICIAL_CHECK_MAC_VALUE}, KEY, IV)


def test_test_merchant_is_ecpays_public_stage_merchant() -> None:
    assert TEST_MERCHANT.merchant_id == "3002607"
    assert (KEY, IV) == ("pwFHCqoQZGmho4w6", "EkRm7iFT261dpevs")
    assert TEST_MERCHANT.action_url == "https://payment-stage.ecpay.com.tw/Cashier/AioCheckOut/V5"
    assert KEY not in repr(TEST_MERCHANT) and IV not in repr(TEST_MERCHANT)


def test_url_encoding_follows_dotnet_not_python() -> None:
    # .NET keeps -_.!*() and escapes ~ and '; space becomes +; hex is lowercase.
    assert net_url_encode("a b-_.!*()~'/") == "a+b-_.!*()%7e%27%2f"


def test_existing_check_mac_value_is_left_out_of_its_own_computation() -> None:
    signed = {**OFFICIAL_PARAMS, "CheckMacValue": "anything"}
    assert check_mac_value(signed, KEY, IV) == OFFICIAL_CHECK_MAC_VALUE


@given(st.permutations(sorted(OFFICIAL_PARAMS)))
def test_field_order_does_not_change_the_mac(order: list[str]) -> None:
    shuffled = {k: OFFICIAL_PARAMS[k] for k in order}
    assert check_mac_value(shuffled, KEY, IV) == OFFICIAL_CHECK_MAC_VALUE


def test_names_are_sorted_case_insensitively() -> None:
    # ASCII order would put "C" before "b"; ECPay compares letters regardless of case.
    assert mac_source({"C": "3", "b": "2", "A": "1"}, "k", "v") == "HashKey=k&A=1&b=2&C=3&HashIV=v"


@pytest.mark.parametrize(
    "change",
    [
        {"TotalAmount": "1"},
        {"CheckMacValue": "0" * 64},
        {"CheckMacValue": ""},
        {"CheckMacValue": "\uff16C51"},  # non-ASCII must not raise, just fail
        {"Extra": "field"},
    ],
)
def test_forged_or_tampered_mac_is_rejected(change: dict[str, str]) -> None:
    signed = {**OFFICIAL_PARAMS, "CheckMacValue": OFFICIAL_CHECK_MAC_VALUE}
    assert not verify_mac({**signed, **change}, KEY, IV)
    assert not verify_mac(OFFICIAL_PARAMS, KEY, IV)  # no MAC at all
    assert not verify_mac(signed, KEY, "wrong-iv")


# --- checkout form --------------------------------------------------------------------------
NOW = datetime(2026, 3, 1, 17, 5, 9, tzinfo=UTC)  # 2026/03/02 01:05:09 in Taipei


def form(**overrides: object) -> dict[str, str]:
    values: dict[str, object] = {
        "merchant_trade_no": "SL2026030212345678",
        "trade_date": NOW,
        "total_amount": 847,
        "trade_desc": "shopledger order",
        "item_names": ["Tea x 2", "Cup x 1"],
        "return_url": "https://shop.example.tw/api/sales/payments/ecpay/notify",
    }
    values.update(overrides)
    return checkout_form(TEST_MERCHANT, **values)  # type: ignore[arg-type]


def test_checkout_form_uses_ecpays_field_names_with_the_mac_last() -> None:
    fields = form(client_back_url="https://shop.example.tw/orders/1", choose_payment="ATM")
    assert list(fields) == [
        "MerchantID",
        "MerchantTradeNo",
        "MerchantTradeDate",
        "PaymentType",
        "TotalAmount",
        "TradeDesc",
        "ItemName",
        "ReturnURL",
        "ChoosePayment",
        "EncryptType",
        "ClientBackURL",
        "CheckMacValue",
    ]
    assert fields["MerchantID"] == "3002607"
    assert fields["MerchantTradeDate"] == "2026/03/02 01:05:09"
    assert (fields["PaymentType"], fields["EncryptType"]) == ("aio", "1")
    assert fields["TotalAmount"] == "847"
    assert fields["ItemName"] == "Tea x 2#Cup x 1"
    assert fields["ChoosePayment"] == "ATM"
    assert verify_mac(fields, KEY, IV)
    assert "ClientBackURL" not in form()


def test_item_name_is_capped_at_400_characters_and_hash_signs_cannot_split_names() -> None:
    fields = form(item_names=["茶" * 300, "杯" * 300])
    assert len(fields["ItemName"]) == 400
    assert form(item_names=["C# book"])["ItemName"] == "C\uff03 book"


@pytest.mark.parametrize(
    "bad",
    [
        {"merchant_trade_no": "A" * 21},
        {"merchant_trade_no": "SL-2026"},
        {"merchant_trade_no": ""},
        {"trade_date": datetime(2026, 3, 1, 12, 0)},  # naive
        {"total_amount": 0},
        {"total_amount": True},
        {"total_amount": Decimal("10.5")},
        {"trade_desc": ""},
        {"trade_desc": "line\nbreak"},
        {"item_names": []},
        {"item_names": "Tea"},
        {"return_url": "ftp://shop.example.tw/notify"},
        {"return_url": "/relative/notify"},
        {"client_back_url": "javascript:alert(1)"},
        {"choose_payment": "BITCOIN"},
    ],
)
def test_checkout_form_refuses_invalid_input(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        form(**bad)


printable = st.text(
    st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=60
).filter(str.strip)


@settings(max_examples=200)
@given(printable, st.lists(printable, min_size=1, max_size=5))
def test_any_printable_text_survives_form_post_and_verifies(desc: str, names: list[str]) -> None:
    fields = form(trade_desc=desc, item_names=names)
    received = dict(parse_qsl(urlencode(fields), keep_blank_values=True))  # the browser's POST
    assert received == fields
    assert verify_mac(received, KEY, IV)


def test_spaces_chinese_and_special_characters_round_trip() -> None:
    fields = form(
        trade_desc="綠界 測試 !*()~'\"<>&=+%", item_names=["珍珠奶茶 (大) 50% 糖", "a+b=c & d"]
    )
    assert verify_mac(dict(parse_qsl(urlencode(fields))), KEY, IV)


# --- the form page --------------------------------------------------------------------------
class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.scripts = 0
        self.external = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"] or ""] = a["value"] or ""
        self.scripts += tag == "script"
        self.external += any(name in ("src", "href") for name in a)


def test_form_page_escapes_a_malicious_item_name_and_posts_every_field() -> None:
    fields = form(item_names=['"><script>alert(1)</script>', "<img src=x onerror=alert(1)>"])
    page = render_form_page(TEST_MERCHANT.action_url, fields)
    assert "<script>alert" not in page and "<img" not in page
    assert "&quot;&gt;&lt;script&gt;" in page
    parser = _Inputs()
    parser.feed(page)
    assert parser.fields == fields  # unescaped by the browser, the values are exactly the fields
    assert parser.scripts == 1  # only our own auto-submit
    assert page.startswith("<!DOCTYPE html>") and '<html lang="zh-Hant">' in page
    assert '<meta charset="utf-8">' in page and "<noscript>" in page
    assert "前往綠界付款 / Pay with ECPay" in page
    assert f'action="{TEST_MERCHANT.action_url}"' in page and 'method="post"' in page
    assert parser.external == 0  # no external resources


# --- payment notice -------------------------------------------------------------------------
def notice_form(config: ECPayConfig = TEST_MERCHANT, /, **overrides: str) -> dict[str, str]:
    values = {
        "MerchantID": config.merchant_id,
        "MerchantTradeNo": "SL2026030212345678",
        "StoreID": "",
        "RtnCode": "1",
        "RtnMsg": "交易成功",
        "TradeNo": "2603020105091234",
        "TradeAmt": "847",
        "PaymentDate": "2026/03/02 01:07:40",
        "PaymentType": "ATM_TAISHIN",
        "PaymentTypeChargeFee": "10",
        "TradeDate": "2026/03/02 01:05:09",
        "SimulatePaid": "0",
        "CustomField1": "",
    }
    values.update(overrides)
    values["CheckMacValue"] = check_mac_value(values, config.hash_key, config.hash_iv)
    return values


def test_a_genuine_notice_is_read() -> None:
    notice = parse_notice(notice_form(), TEST_MERCHANT, allow_simulated=False)
    assert (notice.merchant_trade_no, notice.trade_no) == ("SL2026030212345678", "2603020105091234")
    assert (notice.rtn_code, notice.trade_amt, notice.simulated) == (1, 847, False)
    assert notice.paid and notice.payment_type == "ATM_TAISHIN"
    failed = parse_notice(notice_form(RtnCode="10300066"), TEST_MERCHANT, allow_simulated=False)
    assert not failed.paid


def rejection(form_data: dict[str, str], *, allow_simulated: bool = False) -> str:
    with pytest.raises(NoticeRejected) as err:
        parse_notice(form_data, TEST_MERCHANT, allow_simulated=allow_simulated)
    return err.value.reason


def test_a_tampered_notice_is_rejected_for_its_mac() -> None:
    assert rejection({**notice_form(), "TradeAmt": "1"}) == "CheckMacValue error"
    assert rejection({k: v for k, v in notice_form().items() if k != "CheckMacValue"}) == (
        "CheckMacValue error"
    )


def test_a_notice_for_another_merchant_is_rejected() -> None:
    other = ECPayConfig("2000132", TEST_MERCHANT.hash_key, TEST_MERCHANT.hash_iv)
    assert rejection(notice_form(other)) == "MerchantID mismatch"


def test_simulated_payments_are_refused_unless_allowed() -> None:
    simulated = notice_form(SimulatePaid="1")
    assert rejection(simulated) == "SimulatePaid not accepted"
    assert parse_notice(simulated, TEST_MERCHANT, allow_simulated=True).simulated


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"TradeNo": ""}, "missing TradeNo"),
        ({"MerchantTradeNo": ""}, "missing MerchantTradeNo"),
        ({"TradeAmt": "847.0"}, "TradeAmt is not an integer"),
        ({"RtnCode": "ok"}, "RtnCode is not an integer"),
    ],
)
def test_a_signed_notice_missing_required_fields_is_rejected(
    change: dict[str, str], reason: str
) -> None:
    assert rejection(notice_form(**change)) == reason


@pytest.mark.parametrize(
    ("pay_within", "choose", "expected"),
    [
        (timedelta(minutes=30), "ATM", {"ExpireDate": "1"}),
        (timedelta(days=2, seconds=1), "ATM", {"ExpireDate": "3"}),
        (timedelta(days=90), "ATM", {"ExpireDate": "60"}),
        (timedelta(seconds=61), "CVS", {"StoreExpireDate": "2"}),
        (timedelta(seconds=-5), "CVS", {"StoreExpireDate": "1"}),
        (
            timedelta(hours=1),
            "ALL",
            {"ExpireDate": "1", "StoreExpireDate": "60", "IgnorePayment": "BARCODE"},
        ),
        (timedelta(hours=1), "Credit", {}),
    ],
)
def test_atm_and_store_codes_lapse_no_later_than_ecpay_allows(
    pay_within: timedelta, choose: str, expected: dict[str, str]
) -> None:
    assert code_expiry(pay_within, choose) == expected
