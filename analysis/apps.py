from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalysisConfig(AppConfig):
    name = "analysis"
    verbose_name = _("Analysis")

    def ready(self) -> None:
        from analysis import checks, services  # noqa: F401 (checks registers itself)
        from calls import pipeline

        pipeline.register_step("analyse", services.step_analyse)
