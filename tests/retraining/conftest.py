"""The retraining tests share the monitoring tests' bike helpers."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "monitoring"))
