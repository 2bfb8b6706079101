import pytest
from django.conf import settings


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords and not settings.DB_IS_POSTGRES:
            item.add_marker(skip_pg)


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**settings.STORAGES["default"], "OPTIONS": {"location": str(tmp_path / "media")}},
    }


@pytest.fixture
def clinic(db):
    from tests.factories import ClinicFactory

    return ClinicFactory()


@pytest.fixture
def api_key(clinic):
    from clinics.services import api_key_create

    _key, raw = api_key_create(clinic=clinic, name="test")
    return raw


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def key_client(api_client, api_key):
    api_client.credentials(HTTP_X_API_KEY=api_key)
    return api_client


@pytest.fixture(autouse=True)
def _english_by_default(settings):
    """Assertions read English messages; tests/test_i18n.py checks the Russian catalogue itself."""
    settings.LANGUAGE_CODE = "en"
