"""Makes tests/support.py importable from every Python test suite below this folder."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
