"""Helpers for values clinics keep in amoCRM custom fields."""

from __future__ import annotations

import re

_INSTANT = re.compile(r"мгновенн|сразу|instant|immediate")
_BELOW = re.compile(r"(^|\s)(до|менее|меньше|less than|under|up to|within)\s|<")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_UNIT = re.compile(
    r"(?P<sec>сек|sec|\bс\b|\bs\b)"
    r"|(?P<min>мин|min|\bм\b|\bm\b)"
    r"|(?P<hour>час|\bч\b|hour|\bhrs?\b|\bh\b)"
    r"|(?P<day>дн|день|дня|сут|day|\bд\b|\bd\b)"
    r"|(?P<week>нед|week|\bw\b)"
)
_MINUTES = {"sec": 1 / 60, "min": 1, "hour": 60, "day": 24 * 60, "week": 7 * 24 * 60}


def parse_processing_speed(value: str | None) -> int | None:
    """Minutes for a "lead processing speed" range, by its lower bound.

    ``"0 мин"`` → 0, ``"5-10 мин"`` → 5, ``"1-3 часа"`` → 60, ``"1-3 дня"`` → 1440, ``"до 5 мин"`` → 0,
    ``"более 3 дней"`` / ``"more than 3 days"`` → 4320. Unknown text → None.
    """
    if not value:
        return None
    text = str(value).strip().lower().replace("ё", "е")
    text = re.sub(r"[‐-―−]", "-", text)
    if _INSTANT.search(text):
        return 0
    number = _NUMBER.search(text)
    if number is None:
        return None
    unit = _UNIT.search(text, number.end()) or _UNIT.search(text)
    if unit is None:
        return None
    if _BELOW.search(text[: number.start()]):
        return 0  # "up to 5 min" starts at zero
    lower = float(number.group().replace(",", "."))
    return int(lower * _MINUTES[unit.lastgroup or "min"])
