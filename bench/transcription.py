"""Throughput of the transcription pipeline against a slow provider.

500 calls through the pipeline's transcription half — recording download → validation → quota
reservation → ElevenLabs Scribe (fake, 300 ms latency) → utterances/roles → settle — processed by
N concurrent workers, each running the real ``fetch_audio`` and ``transcribe`` steps (claims,
events, stage changes included). Analysis is not part of this figure.
The provider's latency bounds the ideal rate at N / latency calls per second; efficiency is the
achieved rate against that ideal, i.e. how much our own overhead (database, audio checks,
analysis) costs.

    DEBUG=1 .venv/bin/python bench/transcription.py [--calls 500] [--concurrency 10] [--latency 0.3]
"""

from __future__ import annotations

import argparse
import io
import queue
import threading
import time
import wave
from datetime import UTC, datetime, timedelta

from _setup import result, setup_django


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x10\x00" * int(seconds * rate))
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()
    db_url = setup_django(name="transcription")

    from django.conf import settings
    from django.db import connection

    from calls import pipeline
    from calls.models import Call
    from calls.services import call_ingest
    from clinics.models import Clinic
    from tests.fakes.base import FakeServer, Response
    from tests.fakes.elevenlabs import FakeElevenLabs

    audio = wav_bytes(20)

    class Telephony(FakeServer):
        def setup_routes(self):
            self.route("GET", "/rec/{name}", lambda r: Response(200, audio, {"Content-Type": "audio/wav"}))

    with Telephony() as telephony, FakeElevenLabs() as scribe:
        scribe.latency = args.latency
        settings.ELEVENLABS_API_KEY = scribe.api_key
        settings.ELEVENLABS_BASE_URL = scribe.url
        clinic = Clinic.objects.create(name="Bench clinic", slug=f"bench-{time.time_ns()}", transcription_provider="elevenlabs")
        started = datetime(2026, 11, 16, 9, tzinfo=UTC)
        ids = [
            call_ingest(
                clinic=clinic,
                external_id=f"bench-{n}",
                started_at=started + timedelta(minutes=n),
                recording_url=f"{telephony.url}/rec/{n}.wav",
                enqueue=False,
            ).call.pk
            for n in range(args.calls)
        ]
        work: queue.Queue[int] = queue.Queue()
        for call_id in ids:
            work.put(call_id)

        def worker() -> None:
            try:
                while True:
                    try:
                        call_id = work.get_nowait()
                    except queue.Empty:
                        return
                    for step in ("fetch_audio", "transcribe"):
                        if pipeline.run_step(call_id, step) != "succeeded":
                            break
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
        with pipeline.inline_mode():  # the workers here drive the steps; nothing goes to the queue
            begin = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - begin

    done = Call.objects.filter(pk__in=ids, stage="transcribed").count()
    achieved = done / wall
    ideal = args.concurrency / args.latency
    print(f"database: {db_url.split('@')[-1]}")
    print(f"calls: {args.calls}, done: {done}, concurrency: {args.concurrency}, provider latency: {args.latency * 1000:.0f} ms")
    print(f"provider requests: {len(scribe.requests)}, recording downloads: {len(telephony.requests)}")
    print(f"wall time: {wall:.2f} s, achieved: {achieved:.2f} calls/s, ideal: {ideal:.2f} calls/s")
    result("transcription_calls_per_s", round(achieved, 2))
    result("efficiency_pct", round(100 * achieved / ideal, 1))
    if done != args.calls:
        raise SystemExit(f"only {done} of {args.calls} calls finished")


if __name__ == "__main__":
    main()
