"""Conversation metrics from timestamps alone — no model, no cost, same for every engine.

Definitions (seconds from the start of the recording):

* ``talk_seconds[role]`` — time the role speaks (overlapping speech of one role counted once). From
  word timestamps when the transcript has them, else from utterances.
* ``talk_share[role]`` — the role's part of all talk time (shares add up to 1).
* ``talk_listen_ratio`` — administrator talk / patient talk.
* ``silence_share`` — part of the call (``max(duration, end of the last speech)``) when nobody speaks.
* ``longest_monologue`` — the longest run of one speaker's consecutive utterances that nobody else
  starts speaking into: ``{"role", "seconds"}``; per role in ``longest_monologue_by_role``.
* ``interruptions[role]`` — utterances of that role that start while another speaker is still
  talking (overlap above ``OVERLAP_TOLERANCE`` — shorter overlaps are timestamp jitter).
* ``admin_questions`` — sentences of the administrator ending with "?".
* ``first_response_seconds`` — when the administrator first speaks (after any IVR greeting).
* ``admin_response_avg_seconds`` — mean pause between the end of a patient's utterance and the
  administrator's next one (only when the administrator speaks next, overlaps count as 0).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping

ADMIN = "administrator"
PATIENT = "patient"
OVERLAP_TOLERANCE = 0.2
_SENTENCE_SPLIT = re.compile(r"(?<=[.?!…])\s+")


def _union_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    total = 0.0
    current_start = current_end = None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def _speech_intervals(
    utterances: list[dict], words: list[dict] | None, roles: Mapping[str, str] | None
) -> dict[str, list[tuple[float, float]]]:
    by_role: dict[str, list[tuple[float, float]]] = defaultdict(list)
    timed_words = [
        w for w in (words or []) if w.get("kind", "word") == "word" and w.get("start") is not None and w.get("end") is not None
    ]
    if timed_words and roles:
        for word in timed_words:
            role = roles.get(str(word.get("speaker")), "other")
            by_role[role].append((float(word["start"]), float(word["end"])))
        return by_role
    for utterance in utterances:
        by_role[utterance.get("role") or "other"].append((float(utterance["start"]), float(utterance["end"])))
    return by_role


def _questions(text: str) -> int:
    return sum(1 for sentence in _SENTENCE_SPLIT.split(text.strip()) if sentence.rstrip().endswith("?"))


def conversation_metrics(
    utterances: list[dict],
    *,
    words: list[dict] | None = None,
    roles: Mapping[str, str] | None = None,
    duration_seconds: float = 0,
) -> dict:
    """The metrics of one call (see the module docstring). Empty dict for an empty transcript."""
    turns = sorted(
        (u for u in utterances if u.get("text") is not None and u.get("start") is not None and u.get("end") is not None),
        key=lambda u: (float(u["start"]), float(u["end"])),
    )
    if not turns:
        return {}
    intervals = _speech_intervals(turns, words, roles)
    talk = {role: _union_seconds(spans) for role, spans in intervals.items()}
    all_talk = sum(talk.values())
    last_end = max(end for spans in intervals.values() for _, end in spans)
    span = max(float(duration_seconds or 0), last_end)
    spoken = _union_seconds(span_ for spans in intervals.values() for span_ in spans)

    # Monologues: runs of one speaker's consecutive utterances.
    longest_by_role: dict[str, float] = defaultdict(float)
    run_speaker, run_role, run_start, run_end = None, None, 0.0, 0.0
    for turn in [*turns, None]:
        speaker = turn.get("speaker") if turn else None
        if turn is not None and speaker == run_speaker:
            run_end = max(run_end, float(turn["end"]))
            continue
        if run_speaker is not None:
            longest_by_role[run_role] = max(longest_by_role[run_role], run_end - run_start)
        if turn is not None:
            run_speaker, run_role = speaker, turn.get("role") or "other"
            run_start, run_end = float(turn["start"]), float(turn["end"])
    longest_role = max(longest_by_role, key=longest_by_role.get) if longest_by_role else None

    # Interruptions: someone else is still talking when this utterance starts.
    interruptions: dict[str, int] = defaultdict(int)
    speaking_until: dict[str, float] = {}
    for turn in turns:
        speaker, start = turn.get("speaker"), float(turn["start"])
        if any(until - start > OVERLAP_TOLERANCE for other, until in speaking_until.items() if other != speaker):
            interruptions[turn.get("role") or "other"] += 1
        speaking_until[speaker] = max(speaking_until.get(speaker, 0.0), float(turn["end"]))

    # Responsiveness.
    admin_turns = [t for t in turns if t.get("role") == ADMIN]
    gaps = [
        max(0.0, float(after["start"]) - float(before["end"]))
        for before, after in zip(turns, turns[1:], strict=False)
        if before.get("role") == PATIENT and after.get("role") == ADMIN
    ]

    def share(value: float, whole: float) -> float | None:
        return round(value / whole, 3) if whole else None

    return {
        "duration_seconds": round(span, 1),
        "talk_seconds": {role: round(seconds, 1) for role, seconds in sorted(talk.items())},
        "talk_share": {role: share(seconds, all_talk) for role, seconds in sorted(talk.items())},
        "talk_listen_ratio": round(talk[ADMIN] / talk[PATIENT], 2) if talk.get(ADMIN) and talk.get(PATIENT) else None,
        "silence_seconds": round(max(0.0, span - spoken), 1),
        "silence_share": share(max(0.0, span - spoken), span),
        "longest_monologue": {"role": longest_role, "seconds": round(longest_by_role[longest_role], 1)}
        if longest_role
        else None,
        "longest_monologue_by_role": {role: round(seconds, 1) for role, seconds in sorted(longest_by_role.items())},
        "interruptions": dict(sorted(interruptions.items())),
        "interruptions_total": sum(interruptions.values()),
        "admin_questions": sum(_questions(t["text"]) for t in admin_turns),
        "first_response_seconds": round(float(admin_turns[0]["start"]), 1) if admin_turns else None,
        "admin_response_avg_seconds": round(sum(gaps) / len(gaps), 1) if gaps else None,
        "utterances": len(turns),
        "speakers": len({t.get("speaker") for t in turns}),
    }
