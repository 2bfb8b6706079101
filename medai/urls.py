from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from medai import views

admin.site.site_header = "MedAI"
admin.site.site_title = "MedAI"
admin.site.index_title = _("Call intelligence for clinics")

api_patterns = [
    path("health/", views.health, name="health"),
    path("auth/token/", TokenObtainPairView.as_view(), name="token-obtain"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include("calls.api.urls")),
    path("", include("analysis.api.urls")),
    path("", include("clinics.api.urls")),
    path("", include("reports.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include(api_patterns)),
    path("files/<str:kind>/<str:token>/", views.signed_file, name="signed-file"),
    path("amocrm/", include("calls.amocrm.urls")),
    path("telegram/", include("telegrambot.urls")),
    path("", include("reports.urls")),
]

handler404 = "medai.errors.json_404"
handler500 = "medai.errors.json_500"
