"""One date style for every page (Django's own admin included): "1 Dec 2026" and "1 Dec 2026, 14:05".

Times are shown in the active time zone, which the staff middleware sets to the tenant's.
Used through FORMAT_MODULE_PATH for English (en, en-us, en-gb).
"""

DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i"
TIME_FORMAT = "H:i"
SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
MONTH_DAY_FORMAT = "j M"
YEAR_MONTH_FORMAT = "M Y"
FIRST_DAY_OF_WEEK = 1
