"""Project-level views: health check and signed file downloads."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core import signing
from django.db import connection
from django.http import FileResponse, Http404, JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from medai.signing import read_file_token

logger = logging.getLogger("medai")


def _check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, connection.vendor
    except Exception as exc:  # the health check reports, never raises
        logger.warning("health: database check failed: %s", type(exc).__name__)
        return False, type(exc).__name__


def _check_queue() -> dict:
    try:
        if settings.REDIS_URL:
            import redis

            redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
            return {"ok": True, "broker": "redis"}
        from django_q.models import OrmQ

        return {"ok": True, "broker": "orm", "pending": OrmQ.objects.count()}
    except Exception as exc:
        logger.warning("health: queue check failed: %s", type(exc).__name__)
        return {"ok": False, "error": type(exc).__name__}


@extend_schema(
    responses={
        200: inline_serializer("Health", {"status": serializers.CharField(), "database": serializers.DictField(), "queue": serializers.DictField()}),
        503: None,
    },
    auth=[],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def health(request):
    """Liveness and readiness: the database answers and the task broker is reachable."""
    db_ok, db_info = _check_database()
    queue = _check_queue()
    healthy = db_ok and queue["ok"]
    body = {"status": "ok" if healthy else "unavailable", "database": {"ok": db_ok, "vendor": db_info}, "queue": queue}
    return Response(body, status=200 if healthy else 503)


def signed_file(request, kind: str, token: str):
    """Serve a recording or report behind a signed, expiring token (no login needed, no guessable URL)."""
    try:
        object_id = read_file_token(token, kind=kind)
    except signing.SignatureExpired:
        return JsonResponse({"error": {"code": "link_expired", "message": "This link has expired."}}, status=410)
    except signing.BadSignature as exc:
        raise Http404 from exc
    file_field, content_type, filename = _resolve_file(kind, object_id)
    response = FileResponse(file_field.open("rb"), content_type=content_type, as_attachment=bool(filename), filename=filename)
    response["Cache-Control"] = "private, no-store"
    return response


def _resolve_file(kind: str, object_id: int):
    if kind == "recording":
        from calls.models import Recording

        recording = Recording.objects.filter(pk=object_id).first()
        if recording and recording.file:
            return recording.file, recording.mime or "application/octet-stream", ""
    elif kind == "report":
        from reports.models import Report

        report = Report.objects.select_related("clinic").filter(pk=object_id, status=Report.Status.DONE).first()
        if report and report.file:
            return report.file, report.content_type, report.filename
    raise Http404
