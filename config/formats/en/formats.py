"""The admin's date formats (Django's format file for English, FORMAT_MODULE_PATH): ISO dates,
24-hour times with seconds, and the time zone's name, the same on every page."""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
TIME_FORMAT = "H:i:s"
