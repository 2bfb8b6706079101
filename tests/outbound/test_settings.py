"""VOXIMPLANT_* settings are parsed strictly: a half-configured account is a start-up error."""

import pytest

from tests.test_settings import production_env, run_manage

SECRET = "s" * 32


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VOXIMPLANT_RULE_ID": "abc"}, "VOXIMPLANT_RULE_ID must be an integer"),
        ({"VOXIMPLANT_ACCOUNT_ID": "acc-1"}, "VOXIMPLANT_ACCOUNT_ID must be the numeric account id"),
        ({"VOXIMPLANT_ACCOUNT_ID": "123", "VOXIMPLANT_API_KEY": "k", "VOXIMPLANT_RULE_ID": "5"}, "VOXIMPLANT_WEBHOOK_SECRET"),
        ({"VOXIMPLANT_ACCOUNT_ID": "123", "VOXIMPLANT_WEBHOOK_SECRET": SECRET, "VOXIMPLANT_RULE_ID": "5"}, "VOXIMPLANT_API_KEY or"),
        ({"VOXIMPLANT_WEBHOOK_SECRET": "short"}, "at least 16 characters"),
        ({"VOXIMPLANT_CALLER_ID": "84950000000"}, "E.164"),
        ({"VOXIMPLANT_STUCK_MINUTES": "1"}, "VOXIMPLANT_STUCK_MINUTES must be >= 2"),
    ],
)
def test_malformed_voximplant_settings_refuse_to_start(env, message):
    result = run_manage("check", **production_env(**env))
    assert result.returncode != 0
    assert message in result.stderr


def test_a_complete_voximplant_configuration_passes_and_a_missing_credentials_file_is_reported(tmp_path):
    env = {
        "VOXIMPLANT_ACCOUNT_ID": "123",
        "VOXIMPLANT_API_KEY": "key",
        "VOXIMPLANT_RULE_ID": "5",
        "VOXIMPLANT_WEBHOOK_SECRET": f"{SECRET},{'o' * 20}",
        "VOXIMPLANT_CALLER_ID": "+74950000000",
        "PUBLIC_BASE_URL": "https://medai.example.com",
    }
    assert run_manage("check", **production_env(**env)).returncode == 0
    missing = run_manage("check", **production_env(**env, VOXIMPLANT_SERVICE_ACCOUNT_FILE=str(tmp_path / "none.json")))
    assert missing.returncode != 0 and "outbound.E001" in missing.stderr
