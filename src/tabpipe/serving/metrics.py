"""Prometheus metrics of one app, in the app's own registry (no global state).

Several worker processes (``tabpipe serve --workers N``) share their metrics
through prometheus_client's multiprocess mode: with ``PROMETHEUS_MULTIPROC_DIR``
set before prometheus_client is imported, every worker writes its values to
files in that folder and :meth:`Metrics.exposition` sums them over the workers
(the model-version gauge is given per worker, with a ``pid`` label).
"""

from __future__ import annotations

import collections
import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, values

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
            "tabpipe_model_version",
            "Version of the model being served",
            ["model"],
            registry=r,
            multiprocess_mode="liveall",  # one value per live worker (several workers)
        )
        self.swaps = Counter("tabpipe_model_swaps", "Hot swaps to a new model version", registry=r)
        self.model = model
        # label children are looked up once (``labels()`` takes a lock and builds keys)
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._class_children: dict[str, Any] = {}
        self._rows_children: dict[int, Any] = {}

    @property
    def shared_folder(self) -> str | None:
        """The folder the workers' values are shared through (multiprocess mode), or None."""
        return multiprocess_folder()

    def exposition(self) -> bytes:
        """The text the ``/metrics`` endpoint answers: this process's, or every worker's."""
        from prometheus_client import generate_latest

        folder = self.shared_folder
        if folder is None:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def close(self) -> None:
        """At a worker's shutdown: its per-process gauge files go (multiprocess mode)."""
        folder = self.shared_folder
        if folder is not None:
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(os.getpid(), folder)  # type: ignore[no-untyped-call]

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


def multiprocess_folder() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` when prometheus_client runs in multiprocess mode."""
    if values.ValueClass is values.MutexValue:  # the variable was not set at import
        return None
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")
