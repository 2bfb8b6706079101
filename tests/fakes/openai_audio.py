"""A fake OpenAI(-compatible) audio transcription API.

``POST /v1/audio/transcriptions`` (multipart) with ``Authorization: Bearer <key>``. Answers
``json``, ``text``, ``verbose_json`` (Whisper: ``words`` and/or ``segments`` by
``timestamp_granularities[]``) and ``diarized_json`` (segments with speakers ``A``, ``B``, ...), built
from ``script`` like :class:`tests.fakes.elevenlabs.FakeElevenLabs`. Errors use the documented shape
``{"error": {"message", "type", "param", "code"}}``; every answer has an ``x-request-id`` header.

Rules mirrored from the API: ``diarized_json`` only for diarizing models and vice versa
``verbose_json`` not for them; a diarizing model needs ``chunking_strategy`` for audio over 30 s.
"""

from __future__ import annotations

import uuid
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from tests.fakes.base import FakeRequest, FakeServer, Response

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"


def multipart_fields(request: FakeRequest) -> dict[str, list[str]]:
    """All values of every non-file field (``timestamp_granularities[]`` repeats)."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + request.headers.get("content-type", "").encode() + b"\r\n\r\n" + request.body
    )
    fields: dict[str, list[str]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        if part.get_filename() is None:
            name = part.get_param("name", header="content-disposition")
            fields.setdefault(name, []).append((part.get_payload(decode=True) or b"").decode())
    return fields


def openai_error(
    status: int, message: str, *, kind: str, code: str | None = None, param: str | None = None
) -> Response:
    return Response(status, {"error": {"message": message, "type": kind, "param": param, "code": code}})


class FakeOpenAIAudio(FakeServer):
    api_key = "sk-test-fake-openai-key-0000"
    language = "russian"
    turn_pause = 0.6
    start_offset = 0.2
    # Some self-hosted Whisper servers put words inside segments instead of at the top level.
    nest_words_in_segments = False

    def __init__(self) -> None:
        self.script: list[tuple[str, str]] = [
            ("speaker_0", "Клиника Улыбка, здравствуйте!"),
            ("speaker_1", "Здравствуйте, сколько стоит чистка?"),
        ]
        self.request_ids: list[str] = []
        super().__init__()

    def setup_routes(self) -> None:
        self.route("POST", TRANSCRIPTIONS_PATH, self._with_request_id(self.transcriptions))

    def _with_request_id(self, handler: Any) -> Any:
        def wrapped(request: FakeRequest) -> Response:
            response = handler(request)
            request_id = f"req_{uuid.uuid4().hex}"
            self.request_ids.append(request_id)
            response.headers.setdefault("x-request-id", request_id)
            return response

        return wrapped

    @property
    def last_request_id(self) -> str | None:
        return self.request_ids[-1] if self.request_ids else None

    # -- the endpoint ------------------------------------------------------------------------
    def transcriptions(self, request: FakeRequest) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return openai_error(
                401, "Incorrect API key provided.", kind="invalid_request_error", code="invalid_api_key"
            )
        fields = multipart_fields(request)
        _, files = request.form()
        model = (fields.get("model") or [""])[-1]
        if not model:
            return openai_error(400, "you must provide a model parameter", kind="invalid_request_error", param="model")
        if "file" not in files or not files["file"][1]:
            return openai_error(400, "No file was uploaded.", kind="invalid_request_error", param="file")
        diarizing = "diarize" in model
        response_format = (fields.get("response_format") or ["json"])[-1]
        if (response_format == "diarized_json") != diarizing and response_format in {"diarized_json", "verbose_json"}:
            return openai_error(
                400,
                f"response_format '{response_format}' is not compatible with model '{model}'.",
                kind="invalid_request_error",
                param="response_format",
                code="unsupported_value",
            )
        turns = self.timed_turns()
        duration = round(turns[-1]["end"] + 0.5, 3) if turns else 0.0
        if diarizing and duration > 30 and not fields.get("chunking_strategy"):
            return openai_error(
                400,
                "chunking_strategy is required for diarization models when the input is longer than 30 seconds.",
                kind="invalid_request_error",
                param="chunking_strategy",
            )
        text = " ".join(turn["text"] for turn in turns)
        if response_format == "text":
            return Response(200, text)
        if response_format == "json":
            return Response(200, {"text": text})
        if response_format == "diarized_json":
            return Response(200, self.diarized(turns, text, duration))
        granularities = fields.get("timestamp_granularities[]") or ["segment"]
        return Response(200, self.verbose(turns, text, duration, granularities, fields))

    # -- bodies ------------------------------------------------------------------------------
    def timed_turns(self) -> list[dict[str, Any]]:
        """The script with per-word timestamps (words carry Whisper's leading space)."""
        turns, clock = [], self.start_offset
        for index, (speaker, line) in enumerate(self.script):
            if index:
                clock = round(clock + self.turn_pause, 3)
            words = []
            for token in line.split():
                end = round(clock + 0.12 + 0.06 * len(token), 3)
                words.append({"word": f" {token}", "start": clock, "end": end})
                clock = end
            turns.append({"speaker": speaker, "text": line, "start": words[0]["start"], "end": clock, "words": words})
        return turns

    def diarized(self, turns: list[dict[str, Any]], text: str, duration: float) -> dict[str, Any]:
        labels: dict[str, str] = {}
        segments = []
        for index, turn in enumerate(turns):
            label = labels.setdefault(turn["speaker"], chr(ord("A") + len(labels)))
            segments.append(
                {
                    "type": "transcript.text.segment",
                    "id": f"seg_{index:03d}",
                    "start": turn["start"],
                    "end": turn["end"],
                    "speaker": label,
                    "text": turn["text"],
                }
            )
        return {
            "task": "transcribe",
            "duration": duration,
            "text": text,
            "segments": segments,
            "usage": {"type": "duration", "seconds": round(duration)},
        }

    def verbose(
        self,
        turns: list[dict[str, Any]],
        text: str,
        duration: float,
        granularities: list[str],
        fields: dict[str, list[str]],
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "task": "transcribe",
            "language": (fields.get("language") or [self.language])[-1],
            "duration": duration,
            "text": text,
        }
        if "segment" in granularities or self.nest_words_in_segments:
            body["segments"] = [
                {
                    "id": index,
                    "seek": 0,
                    "start": turn["start"],
                    "end": turn["end"],
                    "text": f" {turn['text']}",
                    "tokens": [50364 + index],
                    "temperature": 0.0,
                    "avg_logprob": -0.2,
                    "compression_ratio": 1.1,
                    "no_speech_prob": 0.01,
                    **({"words": turn["words"]} if self.nest_words_in_segments else {}),
                }
                for index, turn in enumerate(turns)
            ]
        if "word" in granularities and not self.nest_words_in_segments:
            body["words"] = [word for turn in turns for word in turn["words"]]
        return body
