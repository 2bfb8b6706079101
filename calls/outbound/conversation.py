"""What the VoxEngine scenario is told: the call's settings, and the AI's reply to each customer turn.

Replies: when the clinic has an LLM (the analysis app registers how to find its OpenAI-compatible
settings, :func:`register_chat_config`, so ``calls`` never imports ``analysis``) and the call has a
prompt, the model answers with strict JSON ``{"reply", "end"}`` within ``VOXIMPLANT_TURN_LLM_TIMEOUT``
seconds and no retries (the scenario itself times out at 10 s). Otherwise — or when the model fails —
the **script** answers: the call's script lines in order, one per customer turn (the n-th thing the
customer says gets line n), then the goodbye with ``end: true``. A call with neither says goodbye
after the customer's first answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from calls.models import OutboundCall

logger = logging.getLogger("medai.outbound")

MAX_REPLY_CHARS = 1000
MAX_CONTEXT_SEGMENTS = 40
VOICE_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9_]+)+$")


@dataclass(frozen=True)
class LanguageProfile:
    name: str  # in English, for the LLM instructions
    asr_profile: str  # ASRProfileList path
    voices: dict[str, str]  # "female"/"male" → VoiceList path
    amd_model: str | None  # AMD.Model value
    reprompt: str
    goodbye: str


LANGUAGES: dict[str, LanguageProfile] = {
    "ru": LanguageProfile(
        name="Russian",
        asr_profile="Google.ru_RU",
        voices={"female": "Google.ru_RU_Wavenet_A", "male": "Google.ru_RU_Wavenet_B"},
        amd_model="ru",
        reprompt="Вы меня слышите?",
        goodbye="Спасибо, до свидания!",
    ),
    "en": LanguageProfile(
        name="English",
        asr_profile="Google.en_US",
        voices={"female": "Google.en_US_Wavenet_F", "male": "Google.en_US_Wavenet_D"},
        amd_model="us",
        reprompt="Can you hear me?",
        goodbye="Thank you, goodbye!",
    ),
}
LANGUAGE_CHOICES = [(code, profile.name) for code, profile in LANGUAGES.items()]


def validate_voice(language: str, voice: str) -> str | None:
    """An error message, or None when ``voice`` is "female", "male" or a VoiceList path."""
    if language not in LANGUAGES:
        return f"unsupported language {language!r}; choose one of {', '.join(LANGUAGES)}"
    if voice in LANGUAGES[language].voices or VOICE_PATH.match(voice or ""):
        return None
    return "voice must be 'female', 'male' or a VoxEngine VoiceList path such as Google.ru_RU_Wavenet_A"


def scenario_settings(call: OutboundCall, *, caller_id: str) -> dict[str, Any]:
    """The body of ``GET /api/outbound/scenario/<token>/`` (calls/voxengine/README.md)."""
    profile = LANGUAGES.get(call.language, LANGUAGES["ru"])
    return {
        "phone": call.phone,
        "caller_id": caller_id,
        "voice": profile.voices.get(call.voice, call.voice),
        "asr_profile": profile.asr_profile,
        "greeting": call.greeting,
        "amd_model": profile.amd_model,
        "ring_timeout_seconds": 40,
        "max_duration_seconds": 300,
        "silence_timeout_seconds": 8,
        "max_turns": 12,
        "record": True,
        "voicemail_message": None,
        "reprompt": profile.reprompt,
        "goodbye": profile.goodbye,
    }


# --- the LLM, found through the analysis app ------------------------------------------------------
@dataclass(frozen=True)
class ChatConfig:
    api_key: str
    base_url: str
    model: str


_chat_config: Callable[[Any], ChatConfig | None] | None = None


def register_chat_config(resolver: Callable[[Any], ChatConfig | None]) -> None:
    """Installed by the analysis app: a clinic → its LLM settings, or None when it has no LLM."""
    global _chat_config
    _chat_config = resolver


def chat_config_for(clinic) -> ChatConfig | None:
    return _chat_config(clinic) if _chat_config is not None else None


REPLY_SCHEMA = {
    "type": "object",
    "properties": {
        "reply": {"type": "string", "description": "What the assistant says next, 1-2 short sentences."},
        "end": {"type": "boolean", "description": "true when this reply ends the call."},
    },
}

SYSTEM_TEMPLATE = """You are the voice assistant of the clinic "{clinic}" on a phone call that you placed.
Speak {language}. Each reply is read aloud by text-to-speech: one or two short sentences, no lists, no emoji.
Follow the operator's instructions. Never invent prices, dates, names or medical advice that the
instructions do not give; offer that a person from the clinic will call back instead.
Set "end" to true when the conversation is over (the goal is reached, the person refuses, or asks to
end the call); the reply is then your goodbye.

Greeting you already said: {greeting}
Goal of the call: {purpose}
Operator's instructions:
{prompt}"""


def _segments(transcript: Sequence[dict]) -> list[tuple[str, str]]:
    lines = []
    for item in transcript[-MAX_CONTEXT_SEGMENTS:]:
        speaker = "Assistant" if item.get("speaker") == "ai" else "Customer"
        lines.append((speaker, str(item.get("text", "")).strip()[:MAX_REPLY_CHARS]))
    return [line for line in lines if line[1]]


def llm_reply(call: OutboundCall, config: ChatConfig, text: str, transcript: Sequence[dict]) -> tuple[str, bool]:
    from medai.http import HttpPolicy
    from medai.integrations.openai_compat.chat import ChatClient

    profile = LANGUAGES.get(call.language, LANGUAGES["ru"])
    system = SYSTEM_TEMPLATE.format(
        clinic=call.clinic.name,
        language=profile.name,
        greeting=call.greeting,
        purpose=call.purpose or "see the instructions",
        prompt=call.prompt,
    )
    history = "\n".join(f"{speaker}: {line}" for speaker, line in _segments(transcript))
    user = f"Conversation so far:\n{history or '(nothing yet)'}\n\nThe customer just said: {text}\nReply as the assistant."
    policy = HttpPolicy.default(timeout=settings.VOXIMPLANT_TURN_LLM_TIMEOUT, connect_timeout=3.0, retries=0)
    with ChatClient(config.api_key, config.base_url, config.model, policy=policy) as client:
        result = client.structured(
            system=system,
            user=user,
            schema_name="call_turn",
            json_schema=REPLY_SCHEMA,
            max_tokens=300,
            temperature=settings.LLM_TEMPERATURE,
        )
    reply = " ".join(str(result.data.get("reply", "")).split())[:MAX_REPLY_CHARS]
    if not reply:
        raise ValueError("the model gave an empty reply")
    return reply, bool(result.data.get("end"))


def script_reply(call: OutboundCall, transcript: Sequence[dict]) -> tuple[str, bool]:
    """The next script line for the n-th customer turn; the goodbye (end) when the script runs out."""
    lines = [line.strip() for line in call.script.splitlines() if line.strip()]
    turn = max(1, sum(1 for item in transcript if item.get("speaker") == "customer"))
    profile = LANGUAGES.get(call.language, LANGUAGES["ru"])
    if turn <= len(lines):
        return lines[turn - 1][:MAX_REPLY_CHARS], turn == len(lines)
    return profile.goodbye, True


def turn_reply(call: OutboundCall, text: str, transcript: Sequence[dict]) -> tuple[str, bool, str]:
    """(reply, end, engine) for the customer's latest utterance ``text``."""
    config = chat_config_for(call.clinic) if call.prompt else None
    if config is not None:
        try:
            reply, end = llm_reply(call, config, text, transcript)
            return reply, end, "llm"
        except Exception as exc:  # any failure: the call goes on with the script rather than going silent
            logger.warning("outbound call %s: LLM turn failed, using the script: %s", call.pk, type(exc).__name__)
    reply, end = script_reply(call, transcript)
    return reply, end, "script"
