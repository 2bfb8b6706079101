"""amoCRM on the Django side: connecting an account, syncing calls, conversion, write-back.

The wire protocol lives in :mod:`medai.integrations.amocrm`; this package decides *what* to ask
for and stores the answers:

* :mod:`.connection` — OAuth (signed ``state``), tokens refreshed under a row lock, broken
  connections and their alert, :class:`~.connection.AmoSession` (refresh once and retry once on 401);
* :mod:`.sync` — batched, incremental and range call sync, with a lease per connection;
* :mod:`.conversion` — the clinic's "booked" statuses (detected, or set by an operator) and
  booking attribution from lead status changes;
* :mod:`.administrators` — amoCRM users → :class:`clinics.models.Administrator`;
* :mod:`.writeback` — the pipeline's ``write_back`` step (one note per call, never twice).

Rate limit: amoCRM allows 7 requests/s per account. The client paces requests with a token bucket
per account *per process*; the sync lease keeps one sync per account at a time, but write-back
notes posted by other worker processes share the account's budget unpaced. Those overflows get
429 + Retry-After, which the HTTP chokepoint honours with bounded retries.
"""
