"""django-q2 entry points: thin, call a service."""

from analysis import services


def generate_due_summaries() -> int:
    """Hourly: the week/month that just closed in each clinic's time zone (idempotent)."""
    return services.period_summaries_generate_due()
