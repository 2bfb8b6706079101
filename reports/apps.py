from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

# Steps after which a call's figures change: its analysis is stored, or it is done.
ROLLUP_STEPS = frozenset({"analyse", "finish"})


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = _("Reports")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from calls import pipeline
        from calls.models import Call, CallEvent

        pipeline.on_step_completed(mark_after_step)
        # The pipeline runs hooks only after a step succeeds; a skipped or failed call is recorded
        # by its CallEvent, written in the same transaction as the stage change.
        post_save.connect(mark_after_event, sender=CallEvent, dispatch_uid="reports-mark-after-event")
        post_delete.connect(mark_after_delete, sender=Call, dispatch_uid="reports-mark-after-delete")


def mark_after_step(call, step) -> None:
    if step.name in ROLLUP_STEPS:
        from reports.rollups import rollup_mark_dirty

        rollup_mark_dirty(clinic_id=call.clinic_id, day=call.local_date)


def mark_after_event(sender, instance, created, **kwargs) -> None:
    from calls.models import CallEvent

    if created and instance.status in {CallEvent.Status.SKIPPED, CallEvent.Status.FAILED}:
        from reports.rollups import rollup_mark_dirty

        call = instance.call
        rollup_mark_dirty(clinic_id=call.clinic_id, day=call.local_date)


def mark_after_delete(sender, instance, origin=None, **kwargs) -> None:
    from clinics.models import Clinic

    # A clinic being deleted takes its roll-ups with it (CASCADE): nothing to recompute.
    origin_model = getattr(origin, "model", None) or type(origin)
    if origin_model is Clinic:
        return
    from reports.rollups import rollup_mark_dirty

    rollup_mark_dirty(clinic_id=instance.clinic_id, day=instance.local_date)
