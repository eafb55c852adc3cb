"""FLAML AutoML with the same budget, metric and cores."""

from __future__ import annotations

import time

import pandas as pd
from _common import latency_ms, parse_args, write
from flaml import AutoML

METRICS = {"roc_auc": "roc_auc", "log_loss": "log_loss", "rmse": "rmse"}


def main() -> None:
    args = parse_args()
    train = pd.read_csv(args.train)
    test = pd.read_csv(args.test)
    x, y = train.drop(columns=[args.target]), train[args.target]
    xt = test.drop(columns=[args.target])
    started = time.perf_counter()
    automl = AutoML()
    automl.fit(
        x,
        y,
        task="classification" if args.task != "regression" else "regression",
        time_budget=args.budget,
        metric=METRICS[args.metric],
        n_jobs=args.cores,
        seed=0,
        verbose=0,
    )
    fit_seconds = time.perf_counter() - started
    one = xt.iloc[:1]
    if args.task != "regression":
        pred = pd.DataFrame(automl.predict_proba(xt), columns=[str(c) for c in automl.classes_])
        lat = latency_ms(lambda: automl.predict_proba(one))
    else:
        pred = pd.DataFrame({"prediction": automl.predict(xt)})
        lat = latency_ms(lambda: automl.predict(one))
    write(args.out, pred, fit_seconds, lat, model=str(automl.best_estimator))


if __name__ == "__main__":
    main()
