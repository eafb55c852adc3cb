"""End to end: a run cleans its data, the bundle carries the rules and the contract, and a
prediction request written the messy way is cleaned exactly like the training data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpipe import api
from tabpipe.config import build_spec
from tabpipe.data.contract import load_contract
from tabpipe.errors import RequestError
from tabpipe.packaging.bundle import read_manifest
from tabpipe.workspace import Workspace

DATA = Path(__file__).parent


@pytest.mark.slow
def test_run_bundle_replays_cleaning_on_requests(tmp_path: Path) -> None:
    spec = build_spec(
        {
            "source": {"path": str(DATA / "telco_churn.csv")},
            "target": "Churn",
            "time_budget": 5,
            "models": ["linear"],
            "columns": {"gender": {"categories": ["Female", "Male"]}},
        }
    )
    with Workspace(tmp_path / "ws", None) as ws:
        summary = api.run(spec, ws, show_progress=False)
        bundle = ws.bundle_path(summary.version.bundle_id)
    manifest = read_manifest(bundle)
    contract = load_contract(bundle / "contract.json")
    assert contract.column("gender").declared == ["categories"]  # type: ignore[union-attr]
    partner = next(c for c in manifest.signature.columns if c.name == "Partner")
    assert partner.rules is not None and partner.rules.boolean_map["yes"] == "true"

    rows = pd.read_csv(DATA / "telco_churn.csv").head(20)
    messy = rows.copy()
    messy["Partner"] = messy["Partner"].str.upper() + " "  # 'YES ' / 'NO '
    messy["gender"] = " " + messy["gender"].str.lower()
    messy["TotalCharges"] = messy["TotalCharges"].map(lambda v: f"  {v} " if v.strip() else "?")
    clean_scores = api.score(rows, bundle)
    messy_scores = api.score(messy, bundle)
    proba = [c for c in clean_scores.columns if c.startswith("proba_")]
    np.testing.assert_allclose(messy_scores[proba].to_numpy(), clean_scores[proba].to_numpy())
    assert json.loads((bundle / "manifest.json").read_text())["files"]["contract.json"]
    unseen = rows.assign(TotalCharges="$29.85")  # training never wrote '$': refused, by name
    with pytest.raises(RequestError, match="TotalCharges"):
        api.score(unseen, bundle)
