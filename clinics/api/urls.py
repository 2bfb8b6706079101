from django.urls import path

from clinics.api import views

urlpatterns = [
    path("quota/", views.QuotaListView.as_view(), name="quota-list"),
    path("quota/<int:clinic_id>/limits/", views.QuotaLimitsView.as_view(), name="quota-limits"),
    path("quota/<int:clinic_id>/top-up/", views.QuotaTopUpView.as_view(), name="quota-top-up"),
    path("quota/<int:clinic_id>/reset/", views.QuotaResetView.as_view(), name="quota-reset"),
    path("quota/<int:clinic_id>/ledger/", views.QuotaLedgerView.as_view(), name="quota-ledger"),
]
