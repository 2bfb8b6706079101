"""Time helpers: periods and days are always computed in the clinic's time zone."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone


def local_now(tz_name: str) -> datetime:
    return timezone.now().astimezone(ZoneInfo(tz_name))


def local_date(moment: datetime, tz_name: str) -> date:
    return moment.astimezone(ZoneInfo(tz_name)).date()


def day_bounds(day: date, tz_name: str) -> tuple[datetime, datetime]:
    """Start (inclusive) and end (exclusive) of a calendar day in the given zone, as aware datetimes."""
    tz = ZoneInfo(tz_name)
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


def range_bounds(first: date, last: date, tz_name: str) -> tuple[datetime, datetime]:
    """[first 00:00, last+1 00:00) in the clinic's zone."""
    return day_bounds(first, tz_name)[0], day_bounds(last, tz_name)[1]


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def month_start(day: date) -> date:
    return day.replace(day=1)
