"""The admin's date formats (Django's format file for English, FORMAT_MODULE_PATH): ISO dates,
24-hour times with seconds, and the time zone's name, the same on every page. A narrow column
breaks the line between the date and the time only (a no-break space before the zone)."""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i:s\u00a0T"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s\u00a0T"
TIME_FORMAT = "H:i:s"
