"""Path converters: `<bigint:pk>` is a BigAutoField's id, 0..2**63-1. A longer number matches no
route (the API's catch-all then answers 404 problem details), where `<int:pk>` passed it on to a
lookup that overflows on SQLite (`OverflowError`: a 500)."""

from django.urls import register_converter

BIGINT_MAX = 2**63 - 1


class BigIntConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > BIGINT_MAX:
            raise ValueError(f"{value} is past 2**63-1")  # Django: this route does not match
        return number

    def to_url(self, value) -> str:
        return str(value)


register_converter(BigIntConverter, "bigint")
