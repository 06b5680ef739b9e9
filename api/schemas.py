"""Base classes for request and response bodies: camelCase on the wire, unknown fields refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from aggregates.money import CURRENCY
from api.validation import Amount, Text, money_rule


class RequestBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=False, str_strip_whitespace=True
    )


class ResponseBody(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Address(RequestBody):
    """The shippingAddress / billingAddress shape of seeds/003."""

    name: Text = Field(min_length=1, max_length=100)
    phone: str = Field(min_length=6, max_length=30, pattern=r"^\+?[0-9 ()-]{6,30}$")
    street: Text = Field(min_length=1, max_length=200)
    city: Text = Field(min_length=1, max_length=100)
    district: Text = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=3, max_length=20, pattern=r"^[0-9A-Za-z -]{3,20}$")
    country: Text = Field(min_length=2, max_length=100)


class MoneyBody(RequestBody):
    """Money a client sends (docs/API.md "Money in requests"): TWD, a value above 0 with at
    most 2 decimals, given as a JSON number or a decimal string."""

    value: Amount
    currency: str = Field(max_length=10, json_schema_extra={"enum": [CURRENCY]})

    @model_validator(mode="after")
    def _the_money_rule(self) -> MoneyBody:
        money_rule(self.value, self.currency)
        return self
