"""Production settings are strict: start-up fails without secrets, and the deploy check is clean."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "MEDAI_", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "FIELD_ENCRYPTION_KEY"))}
    base.update(env)
    base["DJANGO_SETTINGS_MODULE"] = "medai.settings"
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


def production_env(**overrides):
    env = {
        "DEBUG": "0",
        "SECRET_KEY": "x" * 20 + "-production-secret-key-0123456789-abcdefghij",
        "ALLOWED_HOSTS": "medai.example.com",
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": "sqlite:////tmp/medai-settings-test.sqlite3",
    }
    env.update(overrides)
    return env


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "FIELD_ENCRYPTION_KEY"])
def test_production_refuses_to_start_without_a_secret(missing):
    env = production_env()
    del env[missing]
    result = run_manage("check", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


def test_production_refuses_the_development_keys():
    from medai import settings as dev

    result = run_manage("check", **production_env(FIELD_ENCRYPTION_KEY=dev._DEV_FIELD_KEY))
    assert result.returncode != 0
    assert "development" in result.stderr


def test_malformed_values_are_rejected():
    result = run_manage("check", **production_env(Q_WORKERS="many"))
    assert result.returncode != 0
    assert "Q_WORKERS must be an integer" in result.stderr


def test_deploy_check_is_clean():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_queue_timeout_is_shorter_than_retry(settings):
    assert settings.Q_CLUSTER["timeout"] < settings.Q_CLUSTER["retry"]
    assert settings.Q_CLUSTER["max_attempts"] >= 1


def test_sqlite_runs_in_wal_with_immediate_transactions(settings):
    if settings.DB_IS_POSTGRES:
        pytest.skip("SQLite only")
    options = settings.DATABASES["default"]["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in options["init_command"]


@pytest.mark.django_db
def test_encrypted_field_is_ciphertext_in_the_database():
    from django.db import connection

    from clinics.models import CrmConnection
    from tests.factories import ClinicFactory

    crm = CrmConnection.objects.create(
        clinic=ClinicFactory(),
        base_url="https://x.amocrm.ru",
        client_id="id",
        client_secret="top-secret-value",
        redirect_uri="https://medai.example.com/cb",
        access_token="access-token-value",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_secret, access_token FROM clinics_crmconnection WHERE id = %s", [crm.pk])
        raw = cursor.fetchone()
    assert "top-secret-value" not in raw[0] and "access-token-value" not in raw[1]
    crm.refresh_from_db()
    assert crm.client_secret == "top-secret-value"


def test_log_redaction_hides_tokens_and_phones():
    from medai.logging import redact

    line = redact(
        "GET https://api.telegram.org/bot1234567:fake-token-for-tests-only-1111111111/sendMessage "
        "patient +7 916 123-45-67 api_key=abc123 Authorization: Bearer eyJhbGciOi.x.y"
    )
    assert "fake-token-for-tests-only-1111111111" not in line
    assert "916 123-45-67" not in line
    assert "abc123" not in line
    assert "eyJhbGciOi" not in line
