"""Late labels: by request id or user key; unmatched kept and reported; wrong types refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from monitoring.bikes import Served, records
from tabpipe.cli import app
from tabpipe.errors import FeedbackError
from tabpipe.monitoring.feedback import FeedbackItem, check_label, items_from_frame
from tabpipe.monitoring.logstore import feedback_folder, read_log
from tabpipe.packaging.bundle import read_manifest
from tabpipe.registry import Registry
from tabpipe.workspace import Workspace


def test_labels_by_request_id_and_by_key_attach_to_predictions(fresh: Served) -> None:
    rows = fresh.frame.iloc[380:390]
    with fresh.client() as client:
        r = client.post("/invocations", json={"dataframe_records": records(rows.iloc[:5])})
        rid = r.headers["x-request-id"]
        for rec in records(rows.iloc[5:]):
            assert client.post("/invocations", json={"dataframe_records": [rec]}).is_success
        labels = [
            {"request_id": rid, "row": i, "label": int(c)} for i, c in enumerate(rows.cnt[:5])
        ]
        labels += [
            {"key": k, "label": float(c)}
            for k, c in zip(rows.dteday[5:], rows.cnt[5:], strict=True)
        ]
        labels += [{"request_id": "never-seen", "label": 1.0}, {"key": "1999-01-01", "label": 2}]
        body = client.post("/feedback", json={"labels": labels}).json()
    assert body["received"] == 12 and body["matched"] == 10 and body["unmatched"] == 2
    assert {i.get("request_id") or i.get("key") for i in body["unmatched_items"]} == {
        "never-seen",
        "1999-01-01",
    }
    frame = read_log(fresh.root, fresh.name).frame
    by_key = dict(zip(frame["key"], frame["label"].astype(float), strict=True))
    assert [by_key[k] for k in rows.dteday] == rows.cnt.astype(float).tolist()
    # unmatched labels were kept, not dropped
    stored = pd.concat(
        pd.read_parquet(p) for p in feedback_folder(fresh.root, "bike").glob("part-*")
    )
    assert "never-seen" in set(stored["request_id"].dropna())


def test_a_later_label_wins(fresh: Served) -> None:
    rec = records(fresh.frame.iloc[[400]])
    with fresh.client() as client:
        client.post("/invocations", json={"dataframe_records": rec})
        key = fresh.frame["dteday"].iloc[400]
        client.post("/feedback", json=[{"key": key, "label": 1}])
        client.post("/feedback", json=[{"key": key, "label": 2}])
    assert read_log(fresh.root, "bike").frame["label"].tolist() == ["2.0"]


def test_wrong_label_types_reject_the_whole_batch(fresh: Served) -> None:
    with fresh.client() as client:
        bad = client.post(
            "/feedback",
            json={"labels": [{"key": "a", "label": 3}, {"key": "b", "label": "many"}]},
        )
        assert bad.status_code == 400
        assert "labels[1]" in bad.json()["error"] and "not a number" in bad.json()["error"]
        boolean = client.post("/feedback", json=[{"key": "a", "label": True}])
        assert boolean.status_code == 400 and "bool" in boolean.json()["error"]
        neither = client.post("/feedback", json=[{"label": 3}])
        assert neither.status_code == 400 and "exactly one of" in neither.json()["error"]
        empty = client.post("/feedback", json={"labels": []})
        assert empty.status_code == 400
    assert not list(feedback_folder(fresh.root, "bike").glob("part-*"))


def test_class_labels_are_checked_against_the_classes(bike_model: Served) -> None:
    with Workspace(bike_model.root) as ws:
        manifest = read_manifest(Registry(ws).resolve("bike").path)
    classifier = manifest.model_copy(update={"task": "binary", "classes": [0, 1]})
    assert check_label(1.0, classifier, "x") == "1"
    assert check_label("0", classifier, "x") == "0"
    with pytest.raises(FeedbackError, match="valid classes: 0, 1"):
        check_label("yes", classifier, "labels[3]")


def test_feedback_file_from_the_command_line(fresh: Served, tmp_path: Path) -> None:
    rows = fresh.frame.iloc[420:430]
    with fresh.client() as client:
        for rec in records(rows):
            client.post("/invocations", json={"dataframe_records": [rec]})
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"key": [*rows.dteday, "2030-01-01"], "cnt": [*rows.cnt, 5]}).to_csv(
        labels, index=False
    )
    result = CliRunner().invoke(
        app, ["feedback", str(labels), "--model", "bike", "--workspace", str(fresh.root)]
    )
    assert result.exit_code == 0, result.output
    assert "11 labels: 10 matched, 1 unmatched" in result.output
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"key": ["x"], "label": ["lots"]}).to_csv(bad, index=False)
    result = CliRunner().invoke(
        app, ["feedback", str(bad), "--model", "bike", "--workspace", str(fresh.root)]
    )
    assert result.exit_code == 1 and "not a number" in result.output


def test_feedback_file_needs_an_id_and_a_label() -> None:
    with pytest.raises(FeedbackError, match="'label' column"):
        items_from_frame(pd.DataFrame({"key": ["a"]}), target="cnt")
    with pytest.raises(FeedbackError, match="'request_id' column"):
        items_from_frame(pd.DataFrame({"label": [1]}))
    items = items_from_frame(pd.DataFrame({"request_id": ["r"], "row": [2.0], "label": [1]}))
    assert items == [FeedbackItem(request_id="r", row=2, label=1)]
