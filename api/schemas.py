"""Base classes for request and response bodies: camelCase on the wire, unknown fields refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class RequestBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=False, str_strip_whitespace=True
    )


class ResponseBody(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Address(RequestBody):
    """The shippingAddress / billingAddress shape of seeds/003."""

    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(min_length=6, max_length=30, pattern=r"^\+?[0-9 ()-]{6,30}$")
    street: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    district: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=3, max_length=20, pattern=r"^[0-9A-Za-z -]{3,20}$")
    country: str = Field(min_length=2, max_length=100)
