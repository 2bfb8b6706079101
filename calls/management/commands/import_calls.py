import json
from datetime import datetime
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from calls.services import call_ingest
from clinics.models import Clinic

AUDIO_SUFFIXES = {".mp3", ".wav", ".ogg", ".opus", ".m4a", ".mp4", ".flac", ".webm"}


class Command(BaseCommand):
    help = (
        "Import calls into a clinic from files: audio files, or JSON files holding a transcript "
        "(the demo schema, a list of utterances, or an ElevenLabs response with 'words')."
    )

    def add_arguments(self, parser):
        parser.add_argument("clinic", help="Clinic slug")
        parser.add_argument("paths", nargs="+", help="Files or folders")
        parser.add_argument("--direction", default="inbound", choices=["inbound", "outbound"])
        parser.add_argument("--started-at", help="ISO datetime with offset for files that carry none (default: file mtime)")

    def handle(self, *args, clinic, paths, direction, started_at=None, **options):
        clinic_obj = Clinic.objects.filter(slug=clinic).first()
        if clinic_obj is None:
            raise CommandError(f"No clinic with slug {clinic!r}")
        default_start = parse_datetime(started_at) if started_at else None
        if started_at and (default_start is None or default_start.tzinfo is None):
            raise CommandError("--started-at must be an ISO datetime with an offset, e.g. 2026-11-20T10:00:00+03:00")
        files = []
        for raw in paths:
            path = Path(raw)
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
        created = existing = 0
        errors: list[str] = []
        for path in tqdm(files, desc="Importing", unit="file", disable=options["verbosity"] == 0):
            start = default_start or datetime.fromtimestamp(path.stat().st_mtime).astimezone(clinic_obj.tz)
            try:
                if path.suffix.lower() == ".json":
                    payload = json.loads(path.read_text(encoding="utf-8"))
                    meta = payload if isinstance(payload, dict) and "utterances" in payload and "started_at" in payload else {}
                    result = call_ingest(
                        clinic=clinic_obj,
                        external_id=meta.get("external_id", ""),
                        direction=meta.get("direction", direction),
                        status=meta.get("status", "answered"),
                        started_at=parse_datetime(meta["started_at"]) if meta else start,
                        duration_seconds=meta.get("duration_seconds"),
                        phone=meta.get("phone") or "",
                        administrator_name=meta.get("administrator") or "",
                        transcript=(meta["utterances"] or None) if meta else payload,
                    )
                elif path.suffix.lower() in AUDIO_SUFFIXES:
                    result = call_ingest(
                        clinic=clinic_obj, direction=direction, started_at=start, audio=path.read_bytes(), audio_filename=path.name
                    )
                else:
                    errors.append(f"{path}: not an audio or JSON file")
                    continue
            except (ValidationError, ValueError, KeyError) as exc:
                message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                errors.append(f"{path}: {message}")
                continue
            created += result.created
            existing += not result.created
        for error in errors:
            self.stderr.write(self.style.ERROR(error))
        self.stdout.write(self.style.SUCCESS(f"{created} imported, {existing} already present, {len(errors)} rejected."))
        if errors and not created and not existing:
            raise CommandError("Nothing was imported.")
