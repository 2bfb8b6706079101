"""Settings for the test suite: the production settings with test-only defaults.

Tests run with DEBUG on (so the development secrets are allowed) and fast password hashing;
production strictness is tested separately by starting Django with DEBUG off in a subprocess.
"""

import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("MEDAI_TESTING", "1")
os.environ.setdefault("Q_SYNC", "0")

from medai.settings import *  # noqa: F403
