"""tabpipe: clean, search, ensemble, select, convert to ONNX; predict through onnxruntime.

The fit time covers everything up to a servable ONNX model. Selection uses validation
scores only; its ONNX parity and latency checks run on a sample of the training split,
so the test split is seen only for the final predictions.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import onnxruntime as ort
import pandas as pd
from _common import latency_ms, parse_args, write

from tabpipe.config import build_spec
from tabpipe.data.cleaning import clean
from tabpipe.features.builder import plan_features
from tabpipe.modeling.decision import CalibratedModel
from tabpipe.modeling.select import evaluate
from tabpipe.modeling.train import train_candidates
from tabpipe.packaging.build import signature_of
from tabpipe.packaging.onnx import to_onnx


def main() -> None:
    args = parse_args()
    warnings.simplefilter("ignore")
    train = pd.read_csv(args.train)
    test = pd.read_csv(args.test)
    started = time.perf_counter()
    cleaned, _, report = clean(train, args.target, args.task)
    plan = plan_features(report)
    spec = build_spec(
        {
            "source": {"path": args.train},
            "target": args.target,
            "task": args.task,
            "time_budget": args.budget,
            "metric": args.metric,
            "n_jobs": args.cores,
        }
    )
    cleaned_at = time.perf_counter()
    models, training, oof = train_candidates(cleaned, plan, report, spec)
    trained_at = time.perf_counter()
    sample = cleaned.sample(min(len(cleaned), 300), random_state=0)
    cache: dict[int, object] = {}
    board = evaluate(
        models,
        sample,
        plan,
        report,
        training,
        spec.selection,
        oof,
        measure_all=False,
        diagnose_selected=False,
        cache=cache,
    )
    signature = signature_of(report, plan)
    classify = report.task != "regression"
    selected_at = time.perf_counter()
    packaged = models[board.selected]
    decision = board.decision
    if decision is not None and (decision.calibration or decision.threshold is not None):
        # as the bundle packages it (tabpipe.packaging.build): calibration inside the graph
        packaged = CalibratedModel.from_fitted(packaged, decision)
    model = to_onnx(packaged, signature, classifier=classify, cache=cache)
    fit_seconds = time.perf_counter() - started
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    output = "probabilities" if classify else "variable"

    def predict(frame: pd.DataFrame) -> np.ndarray:
        feeds = signature.to_feeds({c: frame[c].tolist() for c in signature.names})
        (out,) = session.run([output], feeds)
        return np.asarray(out)

    if classify:
        pred = pd.DataFrame(predict(test), columns=[str(c) for c in report.classes or []])
    else:
        pred = pd.DataFrame({"prediction": predict(test).reshape(-1)})
    one = test.iloc[:1]
    lat = latency_ms(lambda: predict(one))
    write(
        args.out,
        pred,
        fit_seconds,
        lat,
        model=board.selected,
        calibration=decision.calibration.method if decision and decision.calibration else None,
        trials=len(training.trials),
        search_seconds=training.elapsed_seconds,
        stopped_by=training.stopped_by,
        phases={
            "clean": cleaned_at - started,
            "train": trained_at - cleaned_at,
            "select": selected_at - trained_at,
            "onnx": time.perf_counter() - selected_at,
        },
    )


if __name__ == "__main__":
    main()
