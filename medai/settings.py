"""MedAI settings, read from the environment (see .env.example for every variable).

Development defaults are safe only with DEBUG on. With DEBUG off the process refuses to start
unless SECRET_KEY, ALLOWED_HOSTS and FIELD_ENCRYPTION_KEY are set: nothing fails open.
"""

import re
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = BASE_DIR / ".env"
if _env_file.exists():
    environ.Env.read_env(str(_env_file))


def _strict_bool(name: str, default: bool) -> bool:
    raw = env.str(name, default="1" if default else "0").strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _strict_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.str(name, default=str(default)).strip()
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def _strict_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.str(name, default=str(default)).strip()
    try:
        value = float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


DEBUG = _strict_bool("DEBUG", False)
TESTING = _strict_bool("MEDAI_TESTING", False)

# --- secrets: required unless DEBUG ------------------------------------------------------
_DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789abcdefghijklmnop"  # noqa: S105 (DEBUG only)
# A valid Fernet key used only with DEBUG on, so `make run` works with no configuration.
_DEV_FIELD_KEY = "ZGV2LW9ubHktZmllbGQta2V5LWRvLW5vdC11c2UtISE="

SECRET_KEY = env.str("SECRET_KEY", default="")
FIELD_ENCRYPTION_KEYS = [k.strip() for k in env.str("FIELD_ENCRYPTION_KEY", default="").split(",") if k.strip()]
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])

if DEBUG:
    SECRET_KEY = SECRET_KEY or _DEV_SECRET_KEY
    FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or [_DEV_FIELD_KEY]
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]", "testserver"]
else:
    _missing = [
        name
        for name, value in (
            ("SECRET_KEY", SECRET_KEY),
            ("ALLOWED_HOSTS", ALLOWED_HOSTS),
            ("FIELD_ENCRYPTION_KEY", FIELD_ENCRYPTION_KEYS),
        )
        if not value
    ]
    if _missing:
        raise ImproperlyConfigured("DEBUG is off and these required settings are missing: " + ", ".join(_missing))
    if SECRET_KEY == _DEV_SECRET_KEY or _DEV_FIELD_KEY in FIELD_ENCRYPTION_KEYS:
        raise ImproperlyConfigured("The development SECRET_KEY/FIELD_ENCRYPTION_KEY must not be used with DEBUG off")

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Public base URL used to build absolute links (signed file links, OAuth redirect, webhooks).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "django_q",
    "medai",
    "clinics",
    "calls",
    "analysis",
    "reports",
    "telegrambot",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "medai.urls"
WSGI_APPLICATION = "medai.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "medai" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- database ------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'medai.sqlite3'}"),
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web process write concurrently: WAL + IMMEDIATE transactions avoid
    # "database is locked" errors under django-q2's ORM broker.
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        }
    )
    _db.setdefault("TEST", {})["NAME"] = env.str("SQLITE_TEST_NAME", default=None)
    if _db["NAME"] != ":memory:":
        Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
elif _db["ENGINE"] in {"django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2"}:
    _db["ENGINE"] = "django.db.backends.postgresql"
    _db["CONN_MAX_AGE"] = _strict_int("DB_CONN_MAX_AGE", 60)
    _db["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DB_IS_POSTGRES = _db["ENGINE"] == "django.db.backends.postgresql"

# --- cache ---------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- task queue (django-q2) ----------------------------------------------------------------
# timeout < retry: a task that runs past `timeout` is killed before the broker would hand the
# same task to a second worker. max_attempts bounds re-deliveries of a task whose worker died.
Q_TIMEOUT = _strict_int("Q_TIMEOUT", 600, minimum=10)
Q_CLUSTER = {
    "name": "medai",
    "workers": _strict_int("Q_WORKERS", 2, minimum=1),
    "timeout": Q_TIMEOUT,
    "retry": Q_TIMEOUT + 120,
    "max_attempts": 3,
    "queue_limit": 50,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 2000,
    "label": "Task queue",
    "sync": _strict_bool("Q_SYNC", False),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 1

# --- auth ----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "medai.auth.ApiKeyAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["medai.auth.IsClinicMember"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "medai.api.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "medai.errors.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"anon": "30/min"},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=_strict_int("JWT_ACCESS_MINUTES", 30, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=_strict_int("JWT_REFRESH_DAYS", 7, minimum=1)),
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MedAI API",
    "DESCRIPTION": "Call intelligence for clinics: calls, transcripts, analyses, quotas, reports.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "CallStageEnum": "calls.models.Stage",
        "CallStatusEnum": "calls.models.CallStatus",
        "CallEventStatusEnum": "calls.models.CallEventStatus",
        "ReprocessStepEnum": "calls.pipeline.REPROCESS_STEPS",
    },
}

# --- i18n ----------------------------------------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="ru")
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_CLINIC_TIME_ZONE = env.str("DEFAULT_CLINIC_TIME_ZONE", default="Europe/Moscow")

# --- static / media ------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
MEDIA_URL = None  # files are never served publicly: only through authorised or signed views
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(MEDIA_ROOT)}},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
SIGNED_URL_MAX_AGE = _strict_int("SIGNED_URL_MAX_AGE", 3600, minimum=60)

# --- uploads and audio ----------------------------------------------------------------------
MAX_AUDIO_BYTES = _strict_int("MAX_AUDIO_BYTES", 100 * 1024 * 1024, minimum=1024)
MAX_AUDIO_SECONDS = _strict_int("MAX_AUDIO_SECONDS", 3 * 3600, minimum=10)
# Recording URLs pointing at loopback/private addresses are refused (SSRF) unless this is on.
RECORDING_URL_ALLOW_PRIVATE = _strict_bool("RECORDING_URL_ALLOW_PRIVATE", DEBUG)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- HTTP chokepoint defaults ---------------------------------------------------------------
HTTP_TIMEOUT = _strict_float("HTTP_TIMEOUT", 30.0, minimum=0.1)
HTTP_RETRIES = _strict_int("HTTP_RETRIES", 3)
HTTP_MAX_RETRY_AFTER = _strict_float("HTTP_MAX_RETRY_AFTER", 30.0)
HTTP_BACKOFF_BASE = _strict_float("HTTP_BACKOFF_BASE", 0.5)

# --- pipeline ------------------------------------------------------------------------------
PIPELINE_MAX_ATTEMPTS = _strict_int("PIPELINE_MAX_ATTEMPTS", 5, minimum=1)
PIPELINE_RETRY_BASE_SECONDS = _strict_int("PIPELINE_RETRY_BASE_SECONDS", 30, minimum=1)
PIPELINE_STAGE_TIMEOUT_SECONDS = _strict_int("PIPELINE_STAGE_TIMEOUT_SECONDS", Q_TIMEOUT + 300, minimum=60)
if PIPELINE_STAGE_TIMEOUT_SECONDS <= Q_TIMEOUT:
    raise ImproperlyConfigured("PIPELINE_STAGE_TIMEOUT_SECONDS must be longer than Q_TIMEOUT")

# --- providers: a provider is on when its key is present --------------------------------------
ELEVENLABS_API_KEY = env.str("ELEVENLABS_API_KEY", default="")
ELEVENLABS_BASE_URL = env.str("ELEVENLABS_BASE_URL", default="https://api.elevenlabs.io")
ELEVENLABS_MODEL = env.str("ELEVENLABS_MODEL", default="scribe_v1")
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="https://api.openai.com/v1")
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_TRANSCRIBE_MODEL = env.str("OPENAI_TRANSCRIBE_MODEL", default="gpt-4o-transcribe-diarize")
# "auto" picks ElevenLabs when its key is set, else OpenAI-compatible when its key is set, else
# the offline transcript import.
TRANSCRIPTION_PROVIDER = env.str("TRANSCRIPTION_PROVIDER", default="auto")
ANALYSIS_ENGINE = env.str("ANALYSIS_ENGINE", default="auto")
TRANSCRIPTION_PRICE_PER_HOUR = _strict_float("TRANSCRIPTION_PRICE_PER_HOUR", 0.40)
# LLM analysis (any OpenAI-compatible endpoint; prices are USD per 1M tokens)
LLM_PRICE_INPUT_PER_1M = _strict_float("LLM_PRICE_INPUT_PER_1M", 0.15)
LLM_PRICE_OUTPUT_PER_1M = _strict_float("LLM_PRICE_OUTPUT_PER_1M", 0.60)
LLM_MAX_OUTPUT_TOKENS = _strict_int("LLM_MAX_OUTPUT_TOKENS", 4000, minimum=256)
LLM_MAX_TRANSCRIPT_CHARS = _strict_int("LLM_MAX_TRANSCRIPT_CHARS", 60000, minimum=1000)
# Empty leaves the temperature out of the request (reasoning models accept only their default).
LLM_TEMPERATURE = None if env.str("LLM_TEMPERATURE", default="0").strip() == "" else _strict_float("LLM_TEMPERATURE", 0.0)
PERIOD_SUMMARY_DELAY_HOURS = _strict_int("PERIOD_SUMMARY_DELAY_HOURS", 2)

# Reports and BI roll-ups
REPORT_LINK_MAX_AGE = _strict_int("REPORT_LINK_MAX_AGE", 30 * 24 * 3600, minimum=60)
ROLLUP_REBUILD_DAYS = _strict_int("ROLLUP_REBUILD_DAYS", 35, minimum=1)
REPORT_PDF_MAX_CALLS = _strict_int("REPORT_PDF_MAX_CALLS", 200, minimum=1)

# amoCRM (credentials are per clinic, in the admin; these tune the sync)
AMOCRM_RATE_PER_SECOND = _strict_float("AMOCRM_RATE_PER_SECOND", 7.0, minimum=0.1)
AMOCRM_SYNC_INTERVAL_MINUTES = _strict_int("AMOCRM_SYNC_INTERVAL_MINUTES", 5, minimum=1)
AMOCRM_SYNC_OVERLAP_MINUTES = _strict_int("AMOCRM_SYNC_OVERLAP_MINUTES", 10)
AMOCRM_SYNC_INITIAL_DAYS = _strict_int("AMOCRM_SYNC_INITIAL_DAYS", 1)
AMOCRM_TOKEN_REFRESH_MARGIN_SECONDS = _strict_int("AMOCRM_TOKEN_REFRESH_MARGIN_SECONDS", 3600)
# Telegram bot (on when TELEGRAM_BOT_TOKEN is set)
TELEGRAM_BOT_TOKEN = env.str("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_WEBHOOK_SECRET = env.str("TELEGRAM_WEBHOOK_SECRET", default="")
if TELEGRAM_WEBHOOK_SECRET and not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", TELEGRAM_WEBHOOK_SECRET):
    raise ImproperlyConfigured("TELEGRAM_WEBHOOK_SECRET must be 16-256 characters of A-Z, a-z, 0-9, _ and -")
TELEGRAM_BOT_USERNAME = env.str("TELEGRAM_BOT_USERNAME", default="").lstrip("@")
TELEGRAM_API_BASE_URL = env.str("TELEGRAM_API_BASE_URL", default="https://api.telegram.org/bot")
TELEGRAM_API_FILE_URL = env.str("TELEGRAM_API_FILE_URL", default="https://api.telegram.org/file/bot")
TELEGRAM_PROXY_URL = env.str("TELEGRAM_PROXY_URL", default="")
TELEGRAM_LINK_CODE_TTL_HOURS = _strict_int("TELEGRAM_LINK_CODE_TTL_HOURS", 72, minimum=1)
TELEGRAM_LINK_MAX_FAILURES = _strict_int("TELEGRAM_LINK_MAX_FAILURES", 5, minimum=1)
TELEGRAM_LINK_FAILURE_WINDOW_MINUTES = _strict_int("TELEGRAM_LINK_FAILURE_WINDOW_MINUTES", 60, minimum=1)
TELEGRAM_DIGEST_TIME = env.str("TELEGRAM_DIGEST_TIME", default="09:00")
if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", TELEGRAM_DIGEST_TIME):
    raise ImproperlyConfigured("TELEGRAM_DIGEST_TIME must be HH:MM (24 h), e.g. 09:00")
TELEGRAM_FAILURE_BATCH_MINUTES = _strict_int("TELEGRAM_FAILURE_BATCH_MINUTES", 15, minimum=1)
TELEGRAM_OUTBOX_MAX_AGE_HOURS = _strict_int("TELEGRAM_OUTBOX_MAX_AGE_HOURS", 24, minimum=1)
TELEGRAM_RATE_OVERALL = _strict_float("TELEGRAM_RATE_OVERALL", 30, minimum=0.1)
TELEGRAM_RATE_PER_CHAT = _strict_float("TELEGRAM_RATE_PER_CHAT", 1, minimum=0.01)
TELEGRAM_RATE_PER_CHAT_BURST = _strict_int("TELEGRAM_RATE_PER_CHAT_BURST", 1, minimum=1)
TELEGRAM_RATE_PER_GROUP_MINUTE = _strict_int("TELEGRAM_RATE_PER_GROUP_MINUTE", 20, minimum=1)
TELEGRAM_MAX_RETRY_AFTER = _strict_int("TELEGRAM_MAX_RETRY_AFTER", 30)
TELEGRAM_CONNECT_TIMEOUT = _strict_float("TELEGRAM_CONNECT_TIMEOUT", 10, minimum=0.1)
TELEGRAM_READ_TIMEOUT = _strict_float("TELEGRAM_READ_TIMEOUT", 15, minimum=0.1)
TELEGRAM_WRITE_TIMEOUT = _strict_float("TELEGRAM_WRITE_TIMEOUT", 30, minimum=0.1)
TELEGRAM_POLL_TIMEOUT = _strict_int("TELEGRAM_POLL_TIMEOUT", 25, minimum=1)
# Voximplant outbound AI calls (on when VOXIMPLANT_ACCOUNT_ID is set; a clinic may have its own
# account in the admin, which wins). See calls/voxengine/README.md for the deployment steps.
VOXIMPLANT_ACCOUNT_ID = env.str("VOXIMPLANT_ACCOUNT_ID", default="").strip()
if VOXIMPLANT_ACCOUNT_ID and not VOXIMPLANT_ACCOUNT_ID.isdigit():
    raise ImproperlyConfigured(f"VOXIMPLANT_ACCOUNT_ID must be the numeric account id, got {VOXIMPLANT_ACCOUNT_ID!r}")
VOXIMPLANT_API_KEY = env.str("VOXIMPLANT_API_KEY", default="").strip()
VOXIMPLANT_SERVICE_ACCOUNT_FILE = env.str("VOXIMPLANT_SERVICE_ACCOUNT_FILE", default="").strip()
VOXIMPLANT_RULE_ID = _strict_int("VOXIMPLANT_RULE_ID", 0)
VOXIMPLANT_BASE_URL = env.str("VOXIMPLANT_BASE_URL", default="https://api.voximplant.com/platform_api").rstrip("/")
if not VOXIMPLANT_BASE_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured("VOXIMPLANT_BASE_URL must be an http(s) URL")
# Comma-separated: the first is current, the others are still accepted (rotation without downtime).
VOXIMPLANT_WEBHOOK_SECRETS = [s.strip() for s in env.str("VOXIMPLANT_WEBHOOK_SECRET", default="").split(",") if s.strip()]
for _secret in VOXIMPLANT_WEBHOOK_SECRETS:
    if len(_secret) < 16 or not _secret.isascii() or not _secret.isprintable():
        raise ImproperlyConfigured("VOXIMPLANT_WEBHOOK_SECRET must be printable ASCII, at least 16 characters each")
VOXIMPLANT_CALLER_ID = env.str("VOXIMPLANT_CALLER_ID", default="").strip()
if VOXIMPLANT_CALLER_ID and not re.fullmatch(r"\+[1-9]\d{6,14}", VOXIMPLANT_CALLER_ID):
    raise ImproperlyConfigured("VOXIMPLANT_CALLER_ID must be an E.164 number, e.g. +74950000000")
if VOXIMPLANT_ACCOUNT_ID:
    _vox_missing = [
        name
        for name, value in (
            ("VOXIMPLANT_API_KEY or VOXIMPLANT_SERVICE_ACCOUNT_FILE", VOXIMPLANT_API_KEY or VOXIMPLANT_SERVICE_ACCOUNT_FILE),
            ("VOXIMPLANT_RULE_ID", VOXIMPLANT_RULE_ID),
            ("VOXIMPLANT_WEBHOOK_SECRET", VOXIMPLANT_WEBHOOK_SECRETS),
        )
        if not value
    ]
    if _vox_missing:
        raise ImproperlyConfigured("VOXIMPLANT_ACCOUNT_ID is set but these are missing: " + ", ".join(_vox_missing))
# A call still dialling or talking this long after it started is looked up in the call history.
VOXIMPLANT_STUCK_MINUTES = _strict_int("VOXIMPLANT_STUCK_MINUTES", 15, minimum=2)
# StartScenarios attempts per call (each retry only after the call history shows nothing started).
VOXIMPLANT_START_MAX_ATTEMPTS = _strict_int("VOXIMPLANT_START_MAX_ATTEMPTS", 3, minimum=1)
# The scenario's settings/turn endpoints accept a call's token this long after the call was created.
VOXIMPLANT_TOKEN_TTL_HOURS = _strict_int("VOXIMPLANT_TOKEN_TTL_HOURS", 24, minimum=1)
# The turn endpoint must answer within the scenario's 10 s request timeout.
VOXIMPLANT_TURN_LLM_TIMEOUT = _strict_float("VOXIMPLANT_TURN_LLM_TIMEOUT", 7.0, minimum=1.0)

# --- security ------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = _strict_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = _strict_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = _strict_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = ["security.W021"] if not DEBUG and not env.bool("SECURE_HSTS_PRELOAD", False) else []

# --- logging: secrets and phone numbers are redacted from every record -------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "medai.logging.RedactingFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # httpx logs full URLs at INFO, which would print the Telegram bot token.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "httpcore2": {"level": "WARNING"},
        "django_q": {"level": env.str("Q_LOG_LEVEL", default="INFO")},
        # python-telegram-bot logs message texts at DEBUG.
        "telegram": {"level": "INFO"},
    },
}

if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    MEDIA_ROOT = Path(env.str("TEST_MEDIA_ROOT", default=str(BASE_DIR / "var" / "test-media")))
    STORAGES["default"]["OPTIONS"]["location"] = str(MEDIA_ROOT)
