from django.urls import path
from rest_framework.routers import SimpleRouter

from calls.api.sync import SyncViewSet
from calls.api.views import CallViewSet
from calls.outbound import webhooks
from calls.outbound.api import CampaignViewSet, DoNotCallViewSet, OutboundCallViewSet

router = SimpleRouter()
router.register("calls", CallViewSet, basename="call")
router.register("sync", SyncViewSet, basename="amocrm-sync")
router.register("outbound/calls", OutboundCallViewSet, basename="outbound-call")
router.register("outbound/campaigns", CampaignViewSet, basename="outbound-campaign")
router.register("outbound/do-not-call", DoNotCallViewSet, basename="outbound-do-not-call")

# The VoxEngine scenario's signed endpoints (calls/voxengine/README.md): not DRF, no API key.
scenario_patterns = [
    path("outbound/scenario/<str:token>/", webhooks.scenario_settings, name="outbound-scenario-settings"),
    path("outbound/scenario/<str:token>/turn/", webhooks.scenario_turn, name="outbound-scenario-turn"),
    path("outbound/webhook/", webhooks.result_webhook, name="outbound-webhook"),
]
urlpatterns = scenario_patterns + router.urls
