"""django-q2 entry points: thin, take ids, call a service."""

from calls import pipeline, services


def run_step(call_id: int, step_name: str) -> str:
    return pipeline.run_step(call_id, step_name)


def sweep() -> dict[str, int]:
    """Every minute: due retries, stuck calls, and calls waiting for quota that now fits."""
    counts = pipeline.sweep()
    counts["quota_resumed"] = services.calls_resume_quota_skipped()
    return counts
