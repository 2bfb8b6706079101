"""Public (signed-link) pages of reports: a call's transcript page and its audio."""

from django.urls import path

from reports import links

urlpatterns = [
    path("reports/call/<str:token>/", links.call_page, name="reports-call-link"),
    path("reports/call/<str:token>/audio/", links.call_audio, name="reports-call-audio"),
]
