"""Admin helpers: every clinic-owned model admin is scoped to the staff user's clinics."""

from __future__ import annotations

from django.contrib import admin

from medai.auth import clinic_ids_for


class ClinicScopedAdmin(admin.ModelAdmin):
    """Non-superusers see and pick only rows of the clinics they are members of."""

    clinic_field = "clinic"

    def _clinic_ids(self, request):
        return clinic_ids_for(request.user)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        ids = self._clinic_ids(request)
        return queryset if ids is None else queryset.filter(**{f"{self.clinic_field}_id__in": ids})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        ids = self._clinic_ids(request)
        if ids is not None:
            model = db_field.related_model
            if model._meta.label == "clinics.Clinic":
                kwargs["queryset"] = model.objects.filter(pk__in=ids)
            elif any(f.name == "clinic" for f in model._meta.get_fields()):
                kwargs["queryset"] = model.objects.filter(clinic_id__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff and (
            request.user.is_superuser or super().has_view_permission(request, obj) or bool(self._clinic_ids(request))
        )
