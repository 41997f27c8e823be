"""Every awdlstm command, one typed function each (commandline.py turns a signature into its
command line). Importing this package registers them all in ``commandline.COMMANDS``.

A new command is one function with ``@command(...)`` in one of these modules (or a new
module imported here)."""

# isort: skip_file - the import order is the order of the commands in `awdlstm --help`.
from ..classify.commands import classify_eval, classify_predict, classify_train
from ..pixels.commands import pixels_eval, pixels_train
from .data import data_cmd
from .diagnostics import ablate_cmd, embeddings_cmd, gradflow_cmd, kernels_cmd, report_cmd
from .evaluating import evaluate_cmd, tune_cache_cmd
from .serving import export_cmd, serve_cmd
from .text import generate_cmd, rescore_cmd, score_cmd
from .training import distill, finetune, train

__all__ = ["classify_eval", "classify_predict", "classify_train", "pixels_eval", "pixels_train", "data_cmd", "ablate_cmd", "embeddings_cmd",
           "gradflow_cmd", "kernels_cmd", "report_cmd", "evaluate_cmd", "tune_cache_cmd", "export_cmd",
           "serve_cmd", "generate_cmd", "rescore_cmd", "score_cmd", "distill", "finetune", "train"]
