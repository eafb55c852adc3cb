"""The floor: LightGBM with default parameters on pandas categories."""

from __future__ import annotations

import time

import pandas as pd
from _common import latency_ms, parse_args, write
from lightgbm import LGBMClassifier, LGBMRegressor


def main() -> None:
    args = parse_args()
    train = pd.read_csv(args.train)
    test = pd.read_csv(args.test)
    started = time.perf_counter()
    x, y = train.drop(columns=[args.target]), train[args.target]
    cats = {
        c: pd.CategoricalDtype(sorted(x[c].dropna().unique()))
        for c in x
        if x[c].dtype == object or pd.api.types.is_string_dtype(x[c])
    }

    def frame(df: pd.DataFrame) -> pd.DataFrame:
        df = df.drop(columns=[args.target], errors="ignore").copy()
        for c, dtype in cats.items():
            df[c] = df[c].astype(dtype)
        return df

    classify = args.task != "regression"
    model = (LGBMClassifier if classify else LGBMRegressor)(n_jobs=args.cores, verbose=-1)
    model.fit(frame(train), y)
    fit_seconds = time.perf_counter() - started
    xt = frame(test)
    if classify:
        pred = pd.DataFrame(model.predict_proba(xt), columns=[str(c) for c in model.classes_])
        one = xt.iloc[:1]
        lat = latency_ms(lambda: model.predict_proba(frame(test.iloc[:1])))
    else:
        pred = pd.DataFrame({"prediction": model.predict(xt)})
        one = xt.iloc[:1]
        lat = latency_ms(lambda: model.predict(frame(test.iloc[:1])))
    del one
    write(args.out, pred, fit_seconds, lat, model="LGBM defaults")


if __name__ == "__main__":
    main()
