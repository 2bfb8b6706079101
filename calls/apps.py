from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = _("Calls")

    def ready(self) -> None:
        from calls import pipeline, services
        from calls.amocrm import writeback
        from calls.outbound import checks  # noqa: F401 (registers the Voximplant settings check)

        pipeline.register_step("fetch_audio", services.step_fetch_audio)
        pipeline.register_step("transcribe", services.step_transcribe)
        pipeline.register_step("write_back", writeback.step_write_back)
