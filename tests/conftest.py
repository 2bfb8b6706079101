import os

# Tests run with DEBUG off semantics except for the secrets, which get test values here.
os.environ.setdefault("MEDAI_TESTING", "1")
os.environ.setdefault("DEBUG", "1")
