"""A fake ElevenLabs speech-to-text API speaking the documented wire format.

``POST /v1/speech-to-text`` (multipart): checks ``xi-api-key`` (401 with
``{"detail": {"status": "invalid_api_key", "message": ...}}``), requires ``model_id`` and one of
``file``/``cloud_storage_url``/``source_url`` (422 with ``{"detail": [{"loc", "msg", "type"}]}``), and
answers with a diarized transcript generated from ``script``:

    fake.script = [("speaker_0", "Клиника Улыбка, здравствуйте"), ("speaker_1", "(смех) Добрый день")]

Words get timestamps at a steady pace, with ``spacing`` entries between them; a token in brackets,
like ``(смех)``, becomes an ``audio_event``. Each answer carries a ``request-id`` header.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.fakes.base import FakeRequest, FakeServer, Response

STT_PATH = "/v1/speech-to-text"


def _token_seconds(token: str) -> float:
    return round(0.12 + 0.06 * len(token), 3)


class FakeElevenLabs(FakeServer):
    api_key = "test-xi-key"
    language_code = "rus"
    turn_pause = 0.6  # seconds of silence between turns
    start_offset = 0.3

    def __init__(self) -> None:
        self.script: list[tuple[str, str]] = [
            ("speaker_0", "Клиника Улыбка, администратор Анна, здравствуйте!"),
            ("speaker_1", "Здравствуйте, хочу записаться к стоматологу."),
        ]
        self.request_ids: list[str] = []
        super().__init__()

    def setup_routes(self) -> None:
        self.route("POST", STT_PATH, self.speech_to_text)

    @property
    def last_request_id(self) -> str | None:
        return self.request_ids[-1] if self.request_ids else None

    # -- the endpoint ------------------------------------------------------------------------
    def speech_to_text(self, request: FakeRequest) -> Response:
        request_id = uuid.uuid4().hex
        self.request_ids.append(request_id)
        headers = {"request-id": request_id}
        if request.headers.get("xi-api-key") != self.api_key:
            return Response(
                401,
                {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}},
                headers,
            )
        fields, files = request.form()
        problems = []
        if not fields.get("model_id"):
            problems.append({"loc": ["body", "model_id"], "msg": "Field required", "type": "missing"})
        if "file" not in files and not fields.get("cloud_storage_url") and not fields.get("source_url"):
            problems.append(
                {
                    "loc": ["body", "file"],
                    "msg": "Exactly one of the file or cloud_storage_url parameters must be provided.",
                    "type": "value_error",
                }
            )
        elif "file" in files and not files["file"][1]:
            problems.append({"loc": ["body", "file"], "msg": "The uploaded file is empty.", "type": "value_error"})
        if problems:
            return Response(422, {"detail": problems}, headers)
        return Response(200, self.transcript(fields), headers)

    # -- the response body -------------------------------------------------------------------
    def transcript(self, fields: dict[str, str]) -> dict[str, Any]:
        diarize = fields.get("diarize") == "true"
        tag_events = fields.get("tag_audio_events", "true") == "true"
        words: list[dict[str, Any]] = []
        clock = self.start_offset
        for turn, (speaker, line) in enumerate(self.script):
            if turn:
                clock = round(clock + self.turn_pause, 3)
            for token in line.split():
                is_event = token.startswith("(") and token.endswith(")")
                if is_event and not tag_events:
                    continue
                if words:  # the API puts a spacing entry between any two tokens, spanning the gap
                    words.append(self._entry(" ", words[-1]["end"], clock, "spacing", speaker if diarize else None))
                end = round(clock + _token_seconds(token), 3)
                words.append(
                    self._entry(token, clock, end, "audio_event" if is_event else "word", speaker if diarize else None)
                )
                clock = end
        spoken = " ".join(
            token for _, line in self.script for token in line.split() if tag_events or not token.startswith("(")
        )
        return {
            "language_code": fields.get("language_code") or self.language_code,
            "language_probability": 0.98,
            "text": spoken,
            "words": words,
            "transcription_id": uuid.uuid4().hex[:20],
            "audio_duration_secs": round(clock + 0.5, 3),
        }

    @staticmethod
    def _entry(text: str, start: float, end: float, kind: str, speaker: str | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"text": text, "start": start, "end": end, "type": kind, "logprob": -0.05}
        if speaker is not None:
            entry["speaker_id"] = speaker
        return entry
