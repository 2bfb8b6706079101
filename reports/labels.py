"""Human labels of the codes reports show, in the reports' own words (and translations)."""

from django.utils.translation import gettext_lazy as _

CALL_TYPES = {
    "first_contact": _("First contact"),
    "repeat": _("Repeat patient"),
    "callback": _("Call-back"),
    "confirmation": _("Visit confirmation"),
    "other": _("Other"),
    "outbound": _("Outbound AI call"),
}
DIRECTIONS = {"inbound": _("Inbound"), "outbound": _("Outbound")}
STATUSES = {"answered": _("Answered"), "missed": _("Not answered"), "busy": _("Busy"), "unknown": _("Unknown")}
INTERESTS = {"high": _("High"), "medium": _("Medium"), "low": _("Low"), "none": _("None"), "unknown": _("Unknown")}
