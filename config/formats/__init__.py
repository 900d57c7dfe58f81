"""Dates and times as the admin shows them: one format, with its zone, everywhere
(`2026-12-01 18:50:20 UTC`). FORMAT_MODULE_PATH points Django's own date display (the admin's
datetime columns and fields) at config/formats/en/formats.py; the pages the admin code draws
itself use human_datetime()."""

from django.utils import formats, timezone


def human_datetime(moment) -> str:
    """`2026-12-01 18:50:20 UTC` in the current timezone (TIME_ZONE); "" for None."""
    if moment is None:
        return ""
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")
