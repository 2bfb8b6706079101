"""Redaction of secrets and phone numbers from log records.

Installed as a filter on every handler (settings.LOGGING) so a careless ``logger.info(url)``
cannot leak a bot token, an API key or a patient's phone number.
"""

import logging
import re

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Telegram bot tokens, bare or inside /bot<token>/ URLs.
    (re.compile(r"(?<!\d)\d{6,12}:[A-Za-z0-9_-]{30,}"), "[bot-token]"),
    # Authorization headers and bearer tokens.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    # key=value secrets in query strings, headers and reprs.
    (
        re.compile(
            r"(?i)\b(api[_-]?key|xi-api-key|x-api-key|access_token|refresh_token|client_secret|"
            r"secret|password|token|code)(\"?\s*[:=]\s*\"?)[^\s\"'&,}]+"
        ),
        r"\1\2[redacted]",
    ),
    # OpenAI-style keys.
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}\b"), "[api-key]"),
    # Phone numbers: 10+ digits, optionally with +, spaces, dashes or brackets.
    (re.compile(r"(?<![\w/])\+?\d[\d\s()-]{8,}\d\b"), "[phone]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not kill logging
            return True
        redacted = redact(message)
        if redacted != message or record.args:
            record.msg = redacted
            record.args = None
        return True
