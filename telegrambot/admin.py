"""Admin: link codes (the deep link is shown once, right after saving), linked chats, clinic settings."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from medai.admin import ClinicScopedAdmin
from telegrambot import conf, services
from telegrambot.models import ChatLink, LinkCode, TelegramSettings


class LinkCodeForm(forms.ModelForm):
    valid_hours = forms.IntegerField(
        label=_("valid for, hours"),
        min_value=1,
        max_value=24 * 30,
        initial=conf.link_code_ttl_hours,
        help_text=_("The link works once, until it expires."),
    )

    class Meta:
        model = LinkCode
        fields = ["clinic", "role", "label"]


@admin.register(LinkCode)
class LinkCodeAdmin(ClinicScopedAdmin):
    list_display = ["clinic", "role", "label", "state_label", "created_at", "expires_at", "used_at"]
    list_filter = ["role", "clinic"]
    search_fields = ["label", "clinic__name"]
    readonly_fields = ["clinic", "role", "label", "created_by", "created_at", "expires_at", "used_at", "used_by_chat_id"]
    actions = ["revoke"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = LinkCodeForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["clinic", "role", "label", "valid_hours"]
        return self.readonly_fields

    def has_change_permission(self, request, obj=None):
        return False  # a code is immutable: revoke it and make a new one

    @admin.display(description=_("state"))
    def state_label(self, obj: LinkCode) -> str:
        return {"used": _("used"), "expired": _("expired"), "active": _("active")}[obj.state]

    def save_model(self, request, obj, form, change):
        link_code, code = services.link_code_create(
            clinic=form.cleaned_data["clinic"],
            role=form.cleaned_data["role"],
            label=form.cleaned_data.get("label") or "",
            created_by=request.user,
            ttl_hours=form.cleaned_data["valid_hours"],
        )
        obj.pk = link_code.pk  # the admin's redirect and log entry use the saved row
        obj.code_hash, obj.expires_at, obj.created_at = link_code.code_hash, link_code.expires_at, link_code.created_at
        link = services.deep_link(code)
        if link:
            text = _(
                "Send this link to the person it is for. It works once, until %(expires)s, and is shown only now: %(link)s"
            ) % {"expires": link_code.expires_at.strftime("%d.%m.%Y %H:%M UTC"), "link": link}
        else:
            text = _(
                "The bot's name is unknown (set TELEGRAM_BOT_USERNAME), so here is the code instead. In the bot, "
                "send: /start %(code)s — it works once, until %(expires)s, and is shown only now."
            ) % {"code": code, "expires": link_code.expires_at.strftime("%d.%m.%Y %H:%M UTC")}
        self.message_user(request, text, level=messages.SUCCESS)

    @admin.action(description=_("Revoke selected unused codes"))
    def revoke(self, request, queryset):
        count = sum(services.link_code_revoke(link_code=code) for code in queryset)
        self.message_user(request, _("%(n)d code(s) revoked.") % {"n": count})


@admin.register(ChatLink)
class ChatLinkAdmin(ClinicScopedAdmin):
    list_display = [
        "title",
        "clinic",
        "role",
        "chat_type",
        "language",
        "digest_enabled",
        "alerts_enabled",
        "linked_at",
        "last_seen_at",
        "unlinked_at",
    ]
    list_filter = ["role", "chat_type", "digest_enabled", "alerts_enabled", ("unlinked_at", admin.EmptyFieldListFilter)]
    search_fields = ["title", "clinic__name"]
    fields = [
        "clinic",
        "title",
        "chat_type",
        "role",
        "language",
        "digest_enabled",
        "alerts_enabled",
        "linked_at",
        "last_seen_at",
        "last_digest_on",
        "unlinked_at",
        "unlink_reason",
    ]
    readonly_fields = [
        "clinic",
        "title",
        "chat_type",
        "linked_at",
        "last_seen_at",
        "last_digest_on",
        "unlinked_at",
        "unlink_reason",
    ]
    actions = ["unlink"]

    def has_add_permission(self, request):
        return False  # chats are linked only by redeeming a link code in Telegram

    @admin.action(description=_("Unlink selected chats"))
    def unlink(self, request, queryset):
        count = sum(
            services.chat_unlink(link=link, reason=ChatLink.UnlinkReason.OPERATOR)
            for link in queryset.filter(unlinked_at__isnull=True)
        )
        self.message_user(request, _("%(n)d chat(s) unlinked.") % {"n": count})


@admin.register(TelegramSettings)
class TelegramSettingsAdmin(ClinicScopedAdmin):
    list_display = ["clinic", "digest_enabled", "digest_time"]
    fields = ["clinic", "digest_enabled", "digest_time"]
