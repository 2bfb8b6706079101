from rest_framework.routers import SimpleRouter

from analysis.api.views import PeriodSummaryViewSet, ScorecardViewSet

router = SimpleRouter()
router.register("scorecards", ScorecardViewSet, basename="scorecard")
router.register("summaries", PeriodSummaryViewSet, basename="period-summary")
urlpatterns = router.urls
