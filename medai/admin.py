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
        return is_clinic_staff(request) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return is_clinic_staff(request) or super().has_view_permission(request, obj)


def is_clinic_staff(request) -> bool:
    """Staff members of at least one clinic may view (never delete) their clinics' rows."""
    user = request.user
    return bool(user.is_active and user.is_staff and (user.is_superuser or clinic_ids_for(user)))


class ClinicScopedInline:
    """Inlines inside a scoped admin page are visible to the clinic's staff too."""

    def has_view_permission(self, request, obj=None):
        return is_clinic_staff(request) or super().has_view_permission(request, obj)
