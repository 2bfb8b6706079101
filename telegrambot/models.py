"""Who may talk to the bot about which clinic, and what the bot has already done.

A chat gets access to exactly one clinic by redeeming a one-time, expiring :class:`LinkCode` that an
operator made in the admin. Only the code's SHA-256 is stored (the code is 192 random bits: a fast
hash is enough, there is nothing to brute-force); the deep link is shown once.
"""

from __future__ import annotations

import hashlib
from datetime import time

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinics.models import Clinic


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    MANAGER = "manager", _("Manager")


def hash_link_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class LinkCode(models.Model):
    clinic = models.ForeignKey(
        Clinic, on_delete=models.CASCADE, related_name="telegram_link_codes", verbose_name=_("clinic")
    )
    role = models.CharField(_("role"), max_length=10, choices=Role, default=Role.MANAGER)
    label = models.CharField(
        _("for whom"), max_length=150, blank=True, help_text=_("Who the link is for, e.g. the owner's name.")
    )
    code_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    used_at = models.DateTimeField(_("used"), null=True, blank=True, editable=False)
    used_by_chat_id = models.BigIntegerField(_("used by chat"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("Telegram link code")
        verbose_name_plural = _("Telegram link codes")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        who = f" · {self.label}" if self.label else ""
        return f"{self.clinic} · {self.get_role_display()}{who}"

    @property
    def is_used(self) -> bool:
        return self.used_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def state(self) -> str:
        if self.is_used:
            return "used"
        return "expired" if self.is_expired else "active"


class ChatLinkQuerySet(models.QuerySet):
    def active(self) -> ChatLinkQuerySet:
        return self.filter(unlinked_at__isnull=True, clinic__is_active=True)


class ChatLink(models.Model):
    """A Telegram chat (private or group) that may see one clinic. Unlinking keeps the row."""

    class UnlinkReason(models.TextChoices):
        USER = "user", _("/unlink in the chat")
        BLOCKED = "blocked", _("The bot was blocked or removed")
        OPERATOR = "operator", _("By an operator")

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="telegram_chats", verbose_name=_("clinic"))
    chat_id = models.BigIntegerField(_("chat id"))
    chat_type = models.CharField(_("chat type"), max_length=16, default="private")
    title = models.CharField(_("chat"), max_length=200, blank=True, help_text=_("Chat title or the person's name."))
    role = models.CharField(_("role"), max_length=10, choices=Role)
    user_id = models.BigIntegerField(_("linked by Telegram user"), null=True, blank=True)
    language = models.CharField(_("language"), max_length=8, default="ru")
    link_code = models.ForeignKey(
        LinkCode, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("link code")
    )
    digest_enabled = models.BooleanField(_("daily digest"), default=True)
    alerts_enabled = models.BooleanField(_("alerts"), default=True)
    last_digest_on = models.DateField(_("last digest for"), null=True, blank=True, editable=False)
    linked_at = models.DateTimeField(_("linked"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last message"), null=True, blank=True, editable=False)
    unlinked_at = models.DateTimeField(_("unlinked"), null=True, blank=True)
    unlink_reason = models.CharField(_("unlink reason"), max_length=10, choices=UnlinkReason, blank=True)

    objects = ChatLinkQuerySet.as_manager()

    class Meta:
        verbose_name = _("Telegram chat")
        verbose_name_plural = _("Telegram chats")
        ordering = ["clinic", "-linked_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["chat_id"], condition=models.Q(unlinked_at__isnull=True), name="chatlink_one_active_per_chat"
            )
        ]
        indexes = [models.Index(fields=["clinic", "unlinked_at"], name="chatlink_clinic_idx")]

    def __str__(self) -> str:
        return f"{self.title or self.chat_id} → {self.clinic}"

    @property
    def is_active(self) -> bool:
        return self.unlinked_at is None


class LinkThrottle(models.Model):
    """Wrong ``/start <code>`` attempts of one chat in the current window (brute-force brake)."""

    chat_id = models.BigIntegerField(unique=True)
    failures = models.PositiveSmallIntegerField(default=0)
    window_started_at = models.DateTimeField()

    class Meta:
        verbose_name = _("link attempt throttle")
        verbose_name_plural = _("link attempt throttles")

    def __str__(self) -> str:
        return f"{self.chat_id}: {self.failures}"


def default_digest_time() -> time:
    from telegrambot import conf

    return conf.default_digest_time()


class TelegramSettings(models.Model):
    """A clinic's bot settings: when its daily digest goes out (clinic time)."""

    clinic = models.OneToOneField(
        Clinic, on_delete=models.CASCADE, related_name="telegram_settings", verbose_name=_("clinic")
    )
    digest_enabled = models.BooleanField(_("send a daily digest"), default=True)
    digest_time = models.TimeField(
        _("digest time"), default=default_digest_time, help_text=_("In the clinic's time zone.")
    )
    # When the last batch of pipeline failures was told: storms become one message per window.
    failures_told_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("Telegram settings")
        verbose_name_plural = _("Telegram settings")

    def __str__(self) -> str:
        return str(self.clinic)


class ProcessedUpdate(models.Model):
    """Update ids already handled: a webhook retry or a re-delivered task is handled once."""

    bot_id = models.BigIntegerField()
    update_id = models.BigIntegerField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("processed update")
        verbose_name_plural = _("processed updates")
        constraints = [models.UniqueConstraint(fields=["bot_id", "update_id"], name="processed_update_unique")]

    def __str__(self) -> str:
        return f"{self.bot_id}/{self.update_id}"


class ReportRequest(models.Model):
    """A report asked for with /report: its file goes back to the chat that asked, once."""

    chat_link = models.ForeignKey(ChatLink, on_delete=models.CASCADE, related_name="report_requests")
    report = models.ForeignKey("reports.Report", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, blank=True)  # sent | failed | gone | too_old

    class Meta:
        verbose_name = _("report requested in Telegram")
        verbose_name_plural = _("reports requested in Telegram")
        indexes = [models.Index(fields=["delivered_at", "created_at"], name="tg_report_pending_idx")]

    def __str__(self) -> str:
        return f"{self.report_id} → {self.chat_link_id}"
