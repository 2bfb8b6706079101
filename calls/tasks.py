"""django-q2 entry points: thin, take ids, call a service."""

from calls import pipeline


def run_step(call_id: int, step_name: str) -> str:
    return pipeline.run_step(call_id, step_name)


def sweep() -> dict[str, int]:
    return pipeline.sweep()
