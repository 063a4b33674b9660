"""The site's date and time formats (FORMAT_MODULE_PATH): the admin's own pages (read-only
fields, lists) show moments as the tabs and cards do, "2026-11-30 10:51:49", not Django's
"Nov. 30, 2026, 10:51 a.m."; input formats stay Django's."""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i:s"
TIME_FORMAT = "H:i:s"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
