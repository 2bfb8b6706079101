"""Outbound AI voice calls through Voximplant: single calls, campaigns, the scenario's endpoints.

* :mod:`.accounts` — which Voximplant account, rule, caller ID and webhook secret a clinic uses;
* :mod:`.conversation` — what the scenario is told: its settings and each reply (LLM or script);
* :mod:`.services` — single calls: create, start (StartScenarios, never blindly retried), record a
  result, reconcile missed results from the call history;
* :mod:`.campaigns` — campaigns: create, import contacts, dispatch within windows and concurrency,
  pause / resume / cancel, the do-not-call list;
* :mod:`.imports` — reading CSV/XLSX contact files (pure, no database);
* :mod:`.selectors` — progress and listings; :mod:`.tasks` — django-q2 entry points;
* :mod:`.webhooks` — the signed HTTP contract of ``calls/voxengine/outbound_scenario.js``;
* :mod:`.serializers`, :mod:`.api` — ``/api/outbound/…``.
"""
