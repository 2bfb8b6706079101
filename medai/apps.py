from django.apps import AppConfig


class MedaiConfig(AppConfig):
    name = "medai"
    verbose_name = "MedAI"
