"""End-to-end tests share their tiny budgets (``tiny_budget.py``): importable by name from here
(tests are collected in importlib mode, which does not put test folders on ``sys.path``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
