from datetime import UTC, datetime

import factory
from django.contrib.auth import get_user_model

from calls.models import Call
from clinics.models import Administrator, Clinic, WorkSchedule
from medai.timeutils import local_date


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic

    name = factory.Sequence(lambda n: f"Клиника {n}")
    slug = factory.Sequence(lambda n: f"clinic-{n}")
    time_zone = "Europe/Moscow"


class AdministratorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Administrator

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Администратор {n}")


class WorkScheduleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkSchedule

    administrator = factory.SubFactory(AdministratorFactory)
    clinic = factory.SelfAttribute("administrator.clinic")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "pass-1234-word")

    @factory.post_generation
    def save_after(self, create, extracted, **kwargs):
        if create:
            self.save()


class CallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Call

    clinic = factory.SubFactory(ClinicFactory)
    external_id = factory.Sequence(lambda n: f"ext-{n}")
    started_at = factory.LazyFunction(lambda: datetime(2026, 11, 16, 9, 0, tzinfo=UTC))
    local_date = factory.LazyAttribute(lambda o: local_date(o.started_at, o.clinic.time_zone))
    duration_seconds = 120


# --- analysis (appended) ---------------------------------------------------------------------------
class TranscriptFactory(factory.django.DjangoModelFactory):
    """A diarized transcript with roles already assigned (pass ``utterances`` with "role" keys)."""

    class Meta:
        model = "calls.Transcript"

    call = factory.SubFactory(CallFactory, stage="transcribed")
    utterances = factory.LazyFunction(
        lambda: [
            {"speaker": "A", "role": "administrator", "start": 0.0, "end": 3.0, "text": "Клиника, здравствуйте!"},
            {"speaker": "B", "role": "patient", "start": 3.5, "end": 6.0, "text": "Здравствуйте, хочу записаться."},
        ]
    )
    roles = factory.LazyAttribute(lambda o: {u["speaker"]: u.get("role", "other") for u in o.utterances})
    text = factory.LazyAttribute(lambda o: "\n".join(u["text"] for u in o.utterances))
    provider = "import"


class AnalysisFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "analysis.Analysis"

    call = factory.SubFactory(CallFactory, stage="done")
    engine = "rules"
    call_type = "first_contact"
    criteria = factory.LazyFunction(list)
    overall_score = None


class PeriodSummaryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "analysis.PeriodSummary"

    clinic = factory.SubFactory(ClinicFactory)
    kind = "week"
    start = factory.LazyFunction(lambda: datetime(2026, 11, 9, tzinfo=UTC).date())
    end = factory.LazyFunction(lambda: datetime(2026, 11, 15, tzinfo=UTC).date())
