"""Everything the bot says, in the active language (callers wrap in ``translation.override``).

Plain text only (no parse mode): transcripts and names never need escaping. Phone numbers are
shown masked — a chat is a place people forward and screenshot.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from calls.models import Call
from clinics.models import Clinic
from telegrambot.selectors import CallCard


# --- formatting ------------------------------------------------------------------------------------
def fmt_day(day: date) -> str:
    return f"{day:%d.%m.%Y}"


def fmt_range(first: date, last: date) -> str:
    return fmt_day(first) if first == last else f"{first:%d.%m}–{last:%d.%m.%Y}"


def fmt_duration(seconds: float | int | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} %".replace(".0 %", " %")


def fmt_number(value: float | int | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def mask_phone(phone: str) -> str:
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    return f"…{digits[-4:-2]} {digits[-2:]}" if len(digits) >= 4 else ""


# --- linking and help ------------------------------------------------------------------------------
def help_unlinked() -> str:
    return "\n".join(
        [
            _("This is the MedAI bot for clinic owners and managers."),
            _("To connect this chat, open the link your MedAI operator sent you, or send /start with the code."),
            "",
            _("/start <code> — connect this chat to your clinic"),
            _("/help — this message"),
        ]
    )


def help_linked(clinic: Clinic) -> str:
    return "\n".join(
        [
            _("This chat is connected to %(clinic)s.") % {"clinic": clinic.name},
            "",
            _("/stats — calls and quality: today, this week, this month"),
            _("/report — PDF and Excel report for a period"),
            _("/limits — minutes used and left"),
            _("/calls — latest calls with scores"),
            _("/find <phone or phrase> — search calls"),
            _("/unlink — disconnect this chat"),
            _("/help — this message"),
        ]
    )


def link_result(status: str, clinic: Clinic | None = None, role_label: str = "") -> str:
    if status == "linked" and clinic is not None:
        return (
            _("Done: this chat is connected to %(clinic)s as %(role)s.") % {"clinic": clinic.name, "role": role_label}
            + "\n"
            + _("You will get the daily digest and alerts here. /help lists the commands.")
        )
    if status == "already_linked" and clinic is not None:
        return _("This chat is already connected to %(clinic)s. Send /unlink first to connect another clinic.") % {
            "clinic": clinic.name
        }
    if status == "throttled":
        return _("Too many wrong codes. Try again in an hour.")
    if status == "expired":
        return _("This link has expired. Ask your MedAI operator for a new one.")
    if status == "used":
        return _("This link has already been used. Ask your MedAI operator for a new one.")
    return _("This code is not valid. Check the link or ask your MedAI operator for a new one.")


def not_linked() -> str:
    return _("This chat is not connected to a clinic. Open the link from your MedAI operator, or see /help.")


def unlinked(clinic: Clinic) -> str:
    return _("This chat is disconnected from %(clinic)s. You will get no more messages from it.") % {"clinic": clinic.name}


def unknown_command() -> str:
    return _("I don't know this command. /help lists what I can do.")


def error() -> str:
    return _("Something went wrong. Please try again in a minute.")


def expired_button() -> str:
    return _("This button is no longer valid.")


# --- /stats ----------------------------------------------------------------------------------------
def period_label(period: str) -> str:
    return {
        "today": _("Today"),
        "week": _("This week"),
        "month": _("This month"),
        "this_week": _("This week"),
        "last_week": _("Last week"),
        "this_month": _("This month"),
        "last_month": _("Last month"),
        "yesterday": _("Yesterday"),
    }.get(period, period)


def figures_lines(figures: dict[str, Any]) -> list[str]:
    if not figures.get("calls"):
        return [_("No calls.")]
    missed = figures["calls"] - figures["answered"]
    return [
        _("Calls: %(calls)s (answered %(answered)s, not answered %(missed)s)")
        % {"calls": figures["calls"], "answered": figures["answered"], "missed": missed},
        _("Analysed: %(analysed)s · quality %(quality)s · good calls %(good)s")
        % {
            "analysed": figures["analysed"],
            "quality": fmt_pct(figures.get("quality_pct")),
            "good": fmt_pct(figures.get("good_calls_pct")),
        },
        _("Booked: %(booked)s · conversion %(conversion)s")
        % {"booked": figures["booked"], "conversion": fmt_pct(figures.get("conversion_pct"))},
        _("Average answered call: %(duration)s") % {"duration": fmt_duration(figures.get("duration_avg_s"))},
    ]


def stats(clinic: Clinic, period: str, first: date, last: date, figures: dict[str, Any]) -> str:
    header = f"📊 {clinic.name} — {period_label(period)}, {fmt_range(first, last)}"
    return "\n".join([header, *figures_lines(figures)])


# --- /limits ---------------------------------------------------------------------------------------
def limits(clinic: Clinic, usage: dict[str, Any]) -> str:
    lines = [_("⏱ Minutes of %(clinic)s") % {"clinic": clinic.name}]
    for kind, label in (("month", _("Month")), ("week", _("Week"))):
        row = usage.get(kind)
        if not row:
            continue
        total = row["limit_minutes"] + row["topped_up_minutes"]
        lines.append(
            _("%(period)s from %(start)s: used %(used)s of %(total)s min (%(pct)s), left %(left)s min")
            % {
                "period": label,
                "start": fmt_day(date.fromisoformat(row["start"])),
                "used": fmt_number(row["used_minutes"] + row["reserved_minutes"]),
                "total": fmt_number(total),
                "pct": fmt_pct(row["usage_pct"]),
                "left": fmt_number(row["available_minutes"]),
            }
        )
    return "\n".join(lines)


# --- /calls, /find ---------------------------------------------------------------------------------
def call_line(call: Call, number: int, tz) -> str:
    started = call.started_at.astimezone(tz)
    arrow = "⬅" if call.direction == Call.Direction.INBOUND else "➡"
    parts = [f"{number}. {started:%d.%m %H:%M} {arrow}"]
    if call.administrator_id and call.administrator:
        parts.append(call.administrator.name)
    phone = mask_phone(call.phone)
    if phone:
        parts.append(phone)
    if call.status != Call.Status.ANSWERED:
        parts.append(str(call.get_status_display()).lower())
    else:
        parts.append(fmt_duration(call.duration_seconds))
    analysis = getattr(call, "analysis", None) if hasattr(call, "analysis") else None
    if analysis is not None and analysis.overall_score is not None:
        parts.append(_("score %(score)s") % {"score": fmt_number(float(analysis.overall_score))})
    if call.booked:
        parts.append(_("booked"))
    if call.stage == "failed":
        parts.append(_("processing failed"))
    return " · ".join(parts)


def calls_list(clinic: Clinic, calls: list[Call], *, title: str) -> str:
    if not calls:
        return title + "\n" + _("No calls.")
    lines = [title] + [call_line(call, i, clinic.tz) for i, call in enumerate(calls, 1)]
    lines.append(_("Tap a number for the summary and the start of the conversation."))
    return "\n".join(lines)


def latest_calls_title(clinic: Clinic) -> str:
    return _("📞 Latest calls of %(clinic)s") % {"clinic": clinic.name}


def found_title(query: str) -> str:
    return _("🔎 Calls matching “%(query)s”") % {"query": query}


def find_usage() -> str:
    return _("Send /find with a phone number or a phrase, e.g. /find 8 916 123-45-67 or /find implant price")


def call_not_found() -> str:
    return _("Call not found.")


def role_name(role: str) -> str:
    return {"administrator": _("Administrator"), "patient": _("Patient")}.get(role, _("Speaker"))


def call_card(card: CallCard, tz, *, link: str = "") -> str:
    call, analysis = card.call, card.analysis
    started = call.started_at.astimezone(tz)
    lines = [
        _("Call #%(id)s · %(when)s · %(direction)s · %(duration)s")
        % {
            "id": call.pk,
            "when": f"{started:%d.%m.%Y %H:%M}",
            "direction": str(call.get_direction_display()).lower(),
            "duration": fmt_duration(call.duration_seconds),
        }
    ]
    if call.administrator_id and call.administrator:
        lines.append(_("Administrator: %(name)s") % {"name": call.administrator.name})
    if analysis is not None:
        score = fmt_number(float(analysis.overall_score)) if analysis.overall_score is not None else "—"
        lines.append(
            _("Type: %(type)s · score %(score)s") % {"type": analysis.get_call_type_display(), "score": score}
        )
    if call.booked is not None:
        lines.append(_("Booked: yes") if call.booked else _("Booked: no"))
    if analysis is not None and analysis.summary:
        lines += ["", _("Summary:"), analysis.summary.strip()]
    recommendations = [str(r).strip() for r in (analysis.recommendations or [])] if analysis is not None else []
    if recommendations := [r for r in recommendations if r]:
        lines += ["", _("Recommendations:")] + [f"• {r}" for r in recommendations[:3]]
    if card.utterances:
        lines += ["", _("Conversation (start):")]
        for utterance in card.utterances:
            text = " ".join(str(utterance.get("text", "")).split())
            if len(text) > 300:
                text = text[:297] + "…"
            lines.append(f"{role_name(str(utterance.get('role', '')))}: {text}")
        if card.more_utterances > 0:
            lines.append(
                ngettext("… and %(n)d more line", "… and %(n)d more lines", card.more_utterances)
                % {"n": card.more_utterances}
            )
    elif analysis is None:
        lines += ["", _("Not analysed yet.")]
    if link:
        lines += ["", _("Full transcript and recording: %(url)s") % {"url": link}]
    return "\n".join(lines)


# --- /report ---------------------------------------------------------------------------------------
def report_choose() -> str:
    return _("Which period? I will send the report as PDF and Excel.")


def report_queued(first: date, last: date) -> str:
    return _("Preparing the report for %(period)s. I will send the files here when they are ready.") % {
        "period": fmt_range(first, last)
    }


def report_failed(first: date, last: date) -> str:
    return _("The report for %(period)s could not be built. Please try again later.") % {
        "period": fmt_range(first, last)
    }


def report_caption(clinic: Clinic, first: date, last: date) -> str:
    return _("Report of %(clinic)s for %(period)s") % {"clinic": clinic.name, "period": fmt_range(first, last)}


def report_too_large(url: str) -> str:
    return _("The report is too large for Telegram. Download it here (the link works for a limited time): %(url)s") % {
        "url": url
    }


# --- notifications ---------------------------------------------------------------------------------
def digest(clinic: Clinic, day: date, figures: dict[str, Any], usage: dict[str, Any], failed: int) -> str:
    lines = [_("☀️ Daily digest of %(clinic)s for %(day)s") % {"clinic": clinic.name, "day": fmt_day(day)}]
    lines += figures_lines(figures)
    month, week = usage.get("month"), usage.get("week")
    if month and week:
        lines.append(
            _("Minutes used: month %(month)s, week %(week)s")
            % {"month": fmt_pct(month["usage_pct"]), "week": fmt_pct(week["usage_pct"])}
        )
    if failed:
        lines.append(
            ngettext(
                "⚠️ %(n)d call failed processing that day.", "⚠️ %(n)d calls failed processing that day.", failed
            )
            % {"n": failed}
        )
    lines.append(_("/stats · /calls · /report"))
    return "\n".join(lines)


def quota_alert(clinic: Clinic, payload: dict[str, Any]) -> str:
    period = _("monthly") if payload.get("period") == "month" else _("weekly")
    values = {
        "clinic": clinic.name,
        "period": period,
        "used": fmt_number(payload.get("used_minutes")),
        "limit": fmt_number(payload.get("limit_minutes")),
    }
    if int(payload.get("percent") or 0) >= 100:
        return (
            _("⛔ %(clinic)s has used up its %(period)s minutes (%(used)s of %(limit)s).") % values
            + "\n"
            + _("New calls wait untranscribed until minutes are added or the period ends.")
        )
    return _("⚠️ %(clinic)s has used %(percent)s%% of its %(period)s minutes (%(used)s of %(limit)s).") % {
        **values,
        "percent": payload.get("percent"),
    }


def crm_alert(clinic: Clinic, payload: dict[str, Any]) -> str:
    error = " ".join(str(payload.get("error") or "").split())[:300]
    text = _("🔌 The amoCRM connection of %(clinic)s is broken. Calls are not synced until it is reconnected in the admin.") % {
        "clinic": clinic.name
    }
    return f"{text}\n{error}" if error else text


def failures_alert(clinic: Clinic, payloads: list[dict[str, Any]]) -> str:
    count = len(payloads)
    lines = [
        ngettext(
            "❗ %(n)d call of %(clinic)s failed processing.",
            "❗ %(n)d calls of %(clinic)s failed processing.",
            count,
        )
        % {"n": count, "clinic": clinic.name}
    ]
    by_step: dict[str, int] = {}
    for payload in payloads:
        step = str(payload.get("step") or "?")
        by_step[step] = by_step.get(step, 0) + 1
    lines.append(", ".join(f"{step}: {n}" for step, n in sorted(by_step.items(), key=lambda item: -item[1])))
    for payload in payloads[:3]:
        error = " ".join(str(payload.get("error") or "").split())[:160]
        lines.append(f"#{payload.get('call_id')} {payload.get('step')}: {error}")
    lines.append(_("An operator can reprocess them in the admin."))
    return "\n".join(lines)


def report_ready(clinic: Clinic, payload: dict[str, Any]) -> str:
    first, last = date.fromisoformat(payload["date_from"]), date.fromisoformat(payload["date_to"])
    text = _("📄 The %(format)s report of %(clinic)s for %(period)s is ready.") % {
        "format": str(payload.get("kind", "")).upper(),
        "clinic": clinic.name,
        "period": fmt_range(first, last),
    }
    if payload.get("url"):
        text += "\n" + _("Download (the link works for a limited time): %(url)s") % {"url": payload["url"]}
    return text


# --- buttons ---------------------------------------------------------------------------------------
def button_details(number: int) -> str:
    return str(number)
