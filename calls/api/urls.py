from rest_framework.routers import SimpleRouter

from calls.api.sync import SyncViewSet
from calls.api.views import CallViewSet

router = SimpleRouter()
router.register("calls", CallViewSet, basename="call")
router.register("sync", SyncViewSet, basename="amocrm-sync")
urlpatterns = router.urls
