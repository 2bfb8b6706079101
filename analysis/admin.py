from django import forms
from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

from analysis import services
from analysis.models import Analysis, ClinicAnalysisSettings, Criterion, PeriodSummary, Scorecard, ScorecardVersion
from medai.admin import ClinicScopedAdmin


@admin.register(Analysis)
class AnalysisAdmin(ClinicScopedAdmin):
    clinic_field = "call__clinic"
    list_display = ["call", "call_type", "overall_score", "booked", "engine", "scorecard_version", "cost", "created_at"]
    list_filter = ["call_type", "engine", "interest", "disposition"]
    search_fields = ["summary"]
    list_select_related = ["call"]
    readonly_fields = [f.name for f in Analysis._meta.fields]

    def has_add_permission(self, request):
        return False


class CriterionInline(admin.StackedInline):
    model = Criterion
    extra = 0
    fields = [("position", "key", "weight"), ("title_ru", "title_en"), ("binary", "applies_if"), "rubric", "rule_phrases"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name in {"rubric", "rule_phrases"}:
            kwargs["widget"] = forms.Textarea(attrs={"rows": 3, "cols": 90})
        return super().formfield_for_dbfield(db_field, request, **kwargs)


class ScorecardVersionInline(admin.TabularInline):
    model = ScorecardVersion
    extra = 0
    can_delete = False
    fields = ["version", "created_at", "created_by", "criteria_count"]
    readonly_fields = fields
    ordering = ["-version"]
    verbose_name_plural = _("version history")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("criteria"))
    def criteria_count(self, version):
        return len(version.criteria)


@admin.register(Scorecard)
class ScorecardAdmin(ClinicScopedAdmin):
    """Editing criteria here creates a new scorecard version (recorded on every later analysis)."""

    list_display = ["clinic", "call_type", "version", "criteria_count", "updated_at", "updated_by"]
    list_filter = ["clinic", "call_type"]
    readonly_fields = ["version", "updated_at", "updated_by"]
    fields = ["clinic", "call_type", "version", "updated_at", "updated_by"]
    inlines = [CriterionInline, ScorecardVersionInline]
    actions = ["reset_to_default"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("criteria")

    def get_readonly_fields(self, request, obj=None):
        # The clinic and type of an existing scorecard never change: analyses refer to them.
        return [*self.readonly_fields, "clinic", "call_type"] if obj else self.readonly_fields

    def changelist_view(self, request, extra_context=None):
        # A clinic's scorecard is the default until edited: make sure there is one to edit.
        services.scorecards_ensure_for_clinics(self._clinic_ids(request))
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("criteria"))
    def criteria_count(self, scorecard):
        return len(scorecard.criteria.all())

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        actor = request.user.get_username()
        if not change:
            services.scorecard_record_version(scorecard=form.instance, actor=actor)
        elif any(formset.has_changed() for formset in formsets if formset.model is Criterion):
            services.scorecard_bump_version(scorecard=form.instance, actor=actor)

    @admin.action(description=_("Reset to the default criteria (new version)"))
    def reset_to_default(self, request, queryset):
        for scorecard in queryset:
            services.scorecard_reset_to_default(scorecard=scorecard, actor=request.user.get_username())
        self.message_user(request, _("%(n)d scorecard(s) reset.") % {"n": queryset.count()}, messages.SUCCESS)


class ClinicAnalysisSettingsForm(forms.ModelForm):
    # The stored key is never echoed back into the page: an empty field keeps it.
    llm_api_key = forms.CharField(
        label=_("LLM API key"), required=False, widget=forms.PasswordInput(render_value=False),
        help_text=_("Empty: keep the stored key (or use OPENAI_API_KEY when none is stored). Stored encrypted."),
    )
    clear_llm_api_key = forms.BooleanField(label=_("remove the stored LLM API key"), required=False)
    llm_base_url = forms.URLField(
        label=_("LLM base URL"), required=False, max_length=300, assume_scheme="https",
        help_text=_("Empty: OPENAI_BASE_URL. E.g. http://vllm:8000/v1"),
    )

    class Meta:
        model = ClinicAnalysisSettings
        fields = ["clinic", "engine", "llm_model", "llm_base_url", "llm_api_key", "context"]

    def clean(self):
        data = super().clean()
        if data.get("clear_llm_api_key"):
            data["llm_api_key"] = ""
        elif not data.get("llm_api_key") and self.instance.pk:
            data["llm_api_key"] = ClinicAnalysisSettings.objects.get(pk=self.instance.pk).llm_api_key
        self.instance.llm_api_key = data.get("llm_api_key", "")
        return data


@admin.register(ClinicAnalysisSettings)
class ClinicAnalysisSettingsAdmin(ClinicScopedAdmin):
    form = ClinicAnalysisSettingsForm
    list_display = ["clinic", "engine", "llm_model", "llm_base_url", "has_key", "updated_at"]
    list_filter = ["engine"]
    fields = ["clinic", "engine", "llm_model", "llm_base_url", "llm_api_key", "clear_llm_api_key", "context"]

    @admin.display(description=_("own API key"), boolean=True)
    def has_key(self, settings_row):
        return bool(settings_row.llm_api_key)


@admin.register(PeriodSummary)
class PeriodSummaryAdmin(ClinicScopedAdmin):
    list_display = ["clinic", "administrator", "kind", "start", "end", "calls_scored", "average_score", "recommendations_source", "generated_at"]
    list_filter = ["kind", "clinic", "recommendations_source", "complete"]
    list_select_related = ["clinic", "administrator"]
    date_hierarchy = "start"
    readonly_fields = ["report", *[f.name for f in PeriodSummary._meta.fields]]
    fields = ["report", "clinic", "administrator", "kind", "start", "end", "complete", "generated_at", "cost"]
    actions = ["regenerate"]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("summary"))
    def report(self, summary):
        return render_to_string("analysis/period_summary.html", {"summary": summary, "data": summary.data})

    @admin.action(description=_("Regenerate"))
    def regenerate(self, request, queryset):
        for summary in queryset.select_related("clinic", "administrator"):
            services.period_summary_generate(
                clinic=summary.clinic, kind=summary.kind, day=summary.start, administrator=summary.administrator
            )
        self.message_user(request, _("%(n)d summary(ies) regenerated.") % {"n": queryset.count()}, messages.SUCCESS)
