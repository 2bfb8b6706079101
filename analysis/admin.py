from django.contrib import admin

from analysis.models import Analysis
from medai.admin import ClinicScopedAdmin


@admin.register(Analysis)
class AnalysisAdmin(ClinicScopedAdmin):
    clinic_field = "call__clinic"
    list_display = ["call", "call_type", "overall_score", "booked", "engine", "created_at"]
    list_filter = ["call_type", "engine", "interest"]
    search_fields = ["summary"]
    readonly_fields = [f.name for f in Analysis._meta.fields]
