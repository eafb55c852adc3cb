"""The run report: what the data looked like, what was cleaned, what was tried, what won."""

from __future__ import annotations

from tabpipe.config import PipelineSpec
from tabpipe.data.cleaning import CleaningReport
from tabpipe.eda.profile import Profile
from tabpipe.eda.report import render_html
from tabpipe.modeling.report import modeling_section
from tabpipe.modeling.select import Leaderboard
from tabpipe.modeling.train import TrainReport


def render_run_report(
    spec: PipelineSpec,
    prof: Profile,
    cleaning: CleaningReport,
    training: TrainReport,
    board: Leaderboard,
) -> str:
    # the page inlines plotly.js once; the section's charts draw on DOMContentLoaded
    section = modeling_section(training, board)
    return render_html(prof, cleaning, f"{spec.model_name}: run report", [("Leaderboard", section)])
