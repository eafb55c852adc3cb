"""Prometheus metrics of one app, in the app's own registry (no global state)."""

from __future__ import annotations

import collections
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

from tabpipe.packaging.signature import Checked
from tabpipe.serving.runtime import Prediction

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Per request, at most this many rows feed the prediction histograms (counts stay exact).
SAMPLED_ROWS = 1000


class Metrics:
    def __init__(self, model: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tabpipe_requests",
            "HTTP requests by endpoint, method and status",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "tabpipe_request_seconds",
            "Request latency in seconds, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rows = Counter("tabpipe_predicted_rows", "Rows predicted", ["version"], registry=r)
        self.classes = Counter(
            "tabpipe_predicted_class", "Predicted classes (classifiers)", ["label"], registry=r
        )
        self.scores = Histogram(
            "tabpipe_prediction_confidence",
            "Probability of the predicted class (sampled)",
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.values = Summary(
            "tabpipe_prediction_value", "Predicted values (regression, sampled)", registry=r
        )
        self.unseen = Counter(
            "tabpipe_unseen_categories",
            "Category values not seen in training",
            ["column"],
            registry=r,
        )
        self.out_of_range = Counter(
            "tabpipe_out_of_range_values",
            "Numeric values outside the training range",
            ["column"],
            registry=r,
        )
        self.version = Gauge(
            "tabpipe_model_version", "Version of the model being served", ["model"], registry=r
        )
        self.swaps = Counter("tabpipe_model_swaps", "Hot swaps to a new model version", registry=r)
        self.model = model
        # label children are looked up once (``labels()`` takes a lock and builds keys)
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._class_children: dict[str, Any] = {}
        self._rows_children: dict[int, Any] = {}

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(endpoint, method, str(status)),
                self.latency.labels(endpoint),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def _rows(self, version: int) -> Any:
        child = self._rows_children.get(version)
        if child is None:
            child = self._rows_children[version] = self.rows.labels(str(version))
        return child

    def _class(self, label: str) -> Any:
        child = self._class_children.get(label)
        if child is None:
            child = self._class_children[label] = self.classes.labels(label)
        return child

    def observe_checked(self, checked: Checked) -> None:
        for column, n in checked.unseen.items():
            self.unseen.labels(column).inc(n)
        for column, n in checked.out_of_range.items():
            self.out_of_range.labels(column).inc(n)

    def observe_prediction(self, prediction: Prediction, version: int) -> None:
        n = len(prediction.values)
        self._rows(version).inc(n)
        if prediction.proba is None:
            for value in prediction.values[:SAMPLED_ROWS]:
                self.values.observe(float(value))
            return
        if n == 1:  # the common case, without a counter nor a numpy reduction
            self._class(str(prediction.values[0])).inc()
            self.scores.observe(max(prediction.proba[0].tolist()))
            return
        for label, count in collections.Counter(map(str, prediction.values)).items():
            self._class(label).inc(count)
        for p in prediction.proba[:SAMPLED_ROWS].max(axis=1).tolist():
            self.scores.observe(p)
