from django.urls import path
from rest_framework.routers import SimpleRouter

from reports.api.views import FunnelView, ReportViewSet, SummaryView

router = SimpleRouter()
router.register("reports", ReportViewSet, basename="report")
urlpatterns = [
    path("metrics/funnel/", FunnelView.as_view(), name="metrics-funnel"),
    path("metrics/summary/", SummaryView.as_view(), name="metrics-summary"),
    *router.urls,
]
