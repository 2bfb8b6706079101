from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalysisConfig(AppConfig):
    name = "analysis"
    verbose_name = _("Analysis")

    def ready(self) -> None:
        from analysis import checks, services  # noqa: F401 (checks registers itself)
        from analysis.engines import outbound_chat_config
        from calls import pipeline
        from calls.outbound import conversation

        pipeline.register_step("analyse", services.step_analyse)
        # The outbound AI call's replies use the clinic's LLM; calls never imports analysis.
        conversation.register_chat_config(outbound_chat_config)
