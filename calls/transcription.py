"""The paid transcription step: provider choice, quota reservation, utterances and roles."""

from __future__ import annotations

import functools
import logging
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from calls.diarization import build_utterances
from calls.models import Call, Recording, SkipReason, Transcript
from calls.pipeline import SkipCall, StageError, StepResult
from clinics.models import Clinic
from clinics.quotas import quota_release, quota_reserve, quota_settle
from medai.integrations.transcription_types import Transcriber, TranscriptionResult

logger = logging.getLogger("medai.transcription")


def provider_name_for(clinic: Clinic) -> str | None:
    """"elevenlabs", "openai" or None (no paid transcription configured)."""
    choice = clinic.transcription_provider
    if choice == Clinic.TranscriptionProvider.NONE:
        return None
    if choice == Clinic.TranscriptionProvider.AUTO:
        choice = settings.TRANSCRIPTION_PROVIDER
    if choice in ("auto", ""):
        if settings.ELEVENLABS_API_KEY:
            return "elevenlabs"
        if settings.OPENAI_API_KEY:
            return "openai"
        return None
    if choice == "elevenlabs":
        return "elevenlabs" if settings.ELEVENLABS_API_KEY else None
    if choice == "openai":
        return "openai" if settings.OPENAI_API_KEY or settings.OPENAI_BASE_URL != "https://api.openai.com/v1" else None
    return None


def transcriber_for(clinic: Clinic) -> Transcriber | None:
    """The clinic's transcriber, shared per process (its HTTP client keeps connections alive)."""
    name = provider_name_for(clinic)
    if name == "elevenlabs":
        return _transcriber(name, settings.ELEVENLABS_API_KEY, settings.ELEVENLABS_BASE_URL, settings.ELEVENLABS_MODEL)
    if name == "openai":
        return _transcriber(name, settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, settings.OPENAI_TRANSCRIBE_MODEL)
    return None


@functools.lru_cache(maxsize=8)
def _transcriber(name: str, api_key: str, base_url: str, model: str) -> Transcriber:
    # Keyed by the settings that define it, so a changed key or URL gets a new client.
    if name == "elevenlabs":
        from medai.integrations.elevenlabs import ElevenLabsTranscriber

        return ElevenLabsTranscriber(api_key=api_key, base_url=base_url, model=model)
    from medai.integrations.openai_compat.transcription import OpenAITranscriber

    return OpenAITranscriber(api_key=api_key, base_url=base_url, model=model)


def transcription_cost(billed_seconds: float) -> Decimal:
    price = Decimal(str(settings.TRANSCRIPTION_PRICE_PER_HOUR))
    return (price * Decimal(str(billed_seconds)) / 3600).quantize(Decimal("0.0001"))


def call_transcribe(call: Call, *, transcriber: Transcriber | None = None) -> StepResult:
    """Reserve minutes, transcribe, store words/utterances/roles, settle. Nothing is paid twice."""
    transcriber = transcriber or transcriber_for(call.clinic)
    if transcriber is None:
        raise SkipCall(SkipReason.NO_TRANSCRIBER)
    return _transcribe_with(call, transcriber)


def _transcribe_with(call: Call, transcriber: Transcriber) -> StepResult:
    recording = Recording.objects.filter(call=call).first()
    if recording is None or not recording.file:
        raise StageError("No stored audio to transcribe; reprocess from fetch_audio.")
    estimate = recording.duration_seconds or call.duration_seconds
    reservation = quota_reserve(clinic=call.clinic, call_id=call.pk, seconds=estimate)
    if reservation is None:
        raise SkipCall(SkipReason.QUOTA, "Minute quota exhausted; the call resumes after a top-up or a new period.")
    try:
        with recording.file.open("rb") as handle:
            audio = handle.read()
        result = transcriber.transcribe(
            audio,
            filename=recording.file.name.rsplit("/", 1)[-1],
            content_type=recording.mime or "application/octet-stream",
            language=call.clinic.language or None,
            num_speakers=call.clinic.num_speakers,
        )
        if not result.words:
            raise StageError("The provider returned no speech for this recording.")
    except BaseException as exc:
        quota_release(reservation=reservation, note=f"{type(exc).__name__}")
        raise
    billed = result.duration_seconds or estimate
    with transaction.atomic():
        transcript_save(call=call, result=result, billed_seconds=billed)
        quota_settle(reservation=reservation, billed_seconds=billed)
    return StepResult(
        request_id=result.request_id or "",
        detail={"provider": result.provider, "billed_seconds": round(billed, 1), "speakers": len(result.speakers)},
    )


def transcript_save(*, call: Call, result: TranscriptionResult, billed_seconds: float) -> Transcript:
    """Store the provider's words and utterances; roles as for any transcript (a manual override stays)."""
    from calls.services import transcript_assign_roles, utterances_as_dicts, words_as_dicts

    transcript = Transcript.objects.filter(call=call).first() or Transcript(call=call)
    transcript.words = words_as_dicts(result.words)
    transcript.utterances = utterances_as_dicts(build_utterances(result.words))
    transcript_assign_roles(transcript, call=call)
    transcript.text = result.text
    transcript.language = result.language or ""
    transcript.provider = result.provider
    transcript.model = result.model
    transcript.billed_seconds = billed_seconds
    transcript.cost = transcription_cost(billed_seconds)
    transcript.request_id = result.request_id or ""
    transcript.save()
    return transcript
