from django.apps import AppConfig


class MedaiConfig(AppConfig):
    name = "medai"
    verbose_name = "MedAI"

    def ready(self) -> None:
        from medai import schema  # noqa: F401  (registers the OpenAPI auth extension)
