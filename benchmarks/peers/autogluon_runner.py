"""AutoGluon tabular, preset medium_quality, with the same budget, metric and cores."""

from __future__ import annotations

import tempfile
import time

import pandas as pd
from _common import latency_ms, parse_args, write
from autogluon.tabular import TabularPredictor

METRICS = {"roc_auc": "roc_auc", "log_loss": "log_loss", "rmse": "root_mean_squared_error"}


def main() -> None:
    args = parse_args()
    train = pd.read_csv(args.train)
    test = pd.read_csv(args.test)
    xt = test.drop(columns=[args.target])
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        predictor = TabularPredictor(
            label=args.target,
            problem_type=args.task,
            eval_metric=METRICS[args.metric],
            path=tmp,
            verbosity=0,
        ).fit(train, time_limit=args.budget, presets="medium_quality", num_cpus=args.cores)
        fit_seconds = time.perf_counter() - started
        predictor.persist()
        one = xt.iloc[:1]
        if args.task != "regression":
            proba = predictor.predict_proba(xt)
            pred = pd.DataFrame(proba.to_numpy(), columns=[str(c) for c in proba.columns])
            lat = latency_ms(lambda: predictor.predict_proba(one), repeats=50)
        else:
            pred = pd.DataFrame({"prediction": predictor.predict(xt).to_numpy()})
            lat = latency_ms(lambda: predictor.predict(one), repeats=50)
        write(args.out, pred, fit_seconds, lat, model=str(predictor.model_best))


if __name__ == "__main__":
    main()
