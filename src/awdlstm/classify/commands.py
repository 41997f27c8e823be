"""What `awdlstm classify train|eval|predict` do."""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from pathlib import Path
from typing import Annotated

import torch

from ..checkpoints.checkpoint import read_checkpoint, save_checkpoint
from ..checkpoints.run_folder import model_from_checkpoint
from ..commandline import Arg, Device, command, command_group
from ..data.lines import input_lines
from ..data.tokenizers import Tokenizer
from ..errors import AwdlstmError
from ..model import build_model
from ..runtime.machine import resolve_device
from .config import ClassifierConfig, classifier_config
from .data import Document, evaluation_set, require_labels, training_sets
from .model import Classifier
from .train import Encoded, confusion_table, evaluate_classifier, predict, train_classifier

FILE = "classifier.safetensors"


class TextCodec:
    """Documents to token ids the way the language model's corpus was tokenized. A token
    outside the vocabulary becomes <unk> where the vocabulary has one, else it is left out."""

    def __init__(self, vocab, tokenizer: Tokenizer, max_tokens: int):
        self.vocab, self.tokenizer, self.max_tokens = vocab, tokenizer, max_tokens
        self.unknown = self.total = 0

    def ids(self, text: str, where: str) -> list[int]:
        found = self.vocab.lookup(self.tokenizer.tokens(text))
        ids = [i for i in found if i is not None]  # the vocabulary's rule; what it cannot read is left out
        self.total += len(found)
        self.unknown += len(found) - len(ids)
        if not ids:
            raise AwdlstmError(f"{where}: no token of the document is in the language model's vocabulary")
        return ids[: self.max_tokens]

    def encode(self, docs: list[Document], labels: list[str]) -> Encoded:
        index = {x: i for i, x in enumerate(labels)}
        return Encoded([self.ids(d.text, d.where) for d in docs], [index[d.label] for d in docs])

    def note(self, log) -> None:
        if self.unknown:
            log(f"{self.unknown:,} of {self.total:,} tokens ({self.unknown / self.total:.1%}) are not in the "
                f"language model's vocabulary, which has no <unk>: they were left out")


def _report(name: str, result: dict, labels: list[str], log) -> None:
    log(f"{name}: accuracy {result['accuracy']:.2%} | loss {result['loss']:.4f}")
    log(confusion_table(result["confusion"], labels))


command_group("classify", "a text classifier on a language model's encoder (ULMFiT): train, eval, predict")


@command("classify train", help="train on label<TAB>text lines; prints accuracy and a confusion table",
         description="DATA: a file of label<TAB>text lines (.tsv or .txt; .csv: label,text columns), or a folder "
                     "with train and optionally valid/test files in that format. Without a validation file, 10%% "
                     "of the training lines are held out.")
def classify_train(lm: Annotated[str, Arg("the language model (run, checkpoint or model folder), best fine-tuned "
                                          "on the texts to classify", positional=True, metavar="LM")],
                   data: Annotated[str, Arg(positional=True, metavar="DATA")],
                   out: Annotated[str | None, Arg("the classifier's folder", required=True)] = None,
                   sets: Annotated[list[str], Arg("classifier settings, e.g. --set epochs=6 --set unfreeze=all (see "
                                                  "awdlstm/classify/config.py)", flag="--set",
                                                  metavar="KEY=VALUE")] = (),
                   log=print, device: Device = None) -> dict:
    cfg = classifier_config(list(sets))
    dev = resolve_device(device)
    model, vocab, lm_cfg, ckpt = model_from_checkpoint(Path(lm), dev)
    tokenizer = ckpt.tokenizer()
    train_docs, valid_docs, test_docs = training_sets(Path(data))
    labels = sorted({d.label for d in train_docs})
    if len(labels) < 2:
        raise AwdlstmError(f"{data}: the training lines have one label ({labels[0]!r}); a classifier needs two or more")
    if valid_docs is None:  # hold out a seeded share of the training lines
        if cfg.valid_fraction == 0:
            raise AwdlstmError(f"{data}: no validation file and classify.valid_fraction=0; give a folder with a "
                               f"valid file or a fraction above 0")
        random.Random(cfg.seed).shuffle(train_docs)
        k = max(1, round(len(train_docs) * cfg.valid_fraction))
        valid_docs, train_docs = train_docs[:k], train_docs[k:]
    for docs in (valid_docs, test_docs or []):
        require_labels(docs, labels)
    codec = TextCodec(vocab, tokenizer, cfg.max_tokens)
    train_set, valid_set = codec.encode(train_docs, labels), codec.encode(valid_docs, labels)
    test_set = codec.encode(test_docs, labels) if test_docs else None
    codec.note(log)
    torch.manual_seed(cfg.seed)
    clf = Classifier(model, len(labels), cfg).to(dev)
    log(f"classifier: {len(labels)} labels, {len(train_set.ids):,} training and {len(valid_set.ids):,} validation "
        f"documents, on {lm} ({dev})")
    history = train_classifier(clf, train_set, valid_set, cfg, vocab.eos_id, dev, log, True)  # bar or log lines
    results = {"labels": labels, "history": history}
    for name, part in (("valid", valid_set), ("test", test_set)):
        if part is not None:
            r = evaluate_classifier(clf, part, vocab.eos_id, dev)
            _report(name, r, labels, log)
            results[name] = r
    folder = Path(out)
    meta = {"kind": "classifier", "config": lm_cfg.to_dict(), "vocab": vocab.itos, "level": tokenizer.level,
            **tokenizer.meta(), "labels": labels, "classify": dataclasses.asdict(cfg), "language_model": str(lm)}
    save_checkpoint(folder / FILE, {"model.": clf.state_dict()}, meta)
    (folder / "results.json").write_text(json.dumps(results, indent=1))
    log(f"saved {folder / FILE}")
    return results


def load_classifier(path: str, device):
    """(classifier in eval mode, codec, labels) from a classifier folder or its file."""
    p = Path(path)
    ckpt = read_checkpoint(p / FILE if p.is_dir() else p)
    if ckpt.kind() != "classifier":
        raise AwdlstmError(f"{ckpt.path}: not a classifier (a language model checkpoint?); train one with "
                           f"`awdlstm classify train`")
    labels, itos = ckpt.labels(), ckpt.vocab()
    tokenizer = ckpt.tokenizer()
    cfg = ClassifierConfig(**ckpt.section("classify", "classifier settings"))
    from ..data.vocab import Vocabulary
    clf = Classifier(build_model(ckpt.config().model, len(itos)), len(labels), cfg)
    try:
        clf.load_state_dict(ckpt.tensors.get("model.", {}))
    except RuntimeError as e:
        raise AwdlstmError(f"{ckpt.path}: weights do not fit the stored settings ({str(e).splitlines()[0]})") from None
    return clf.to(device).eval(), TextCodec(Vocabulary(itos), tokenizer, cfg.max_tokens), labels


@command("classify eval", help="accuracy and confusion table on labelled lines")
def classify_eval(path: Annotated[str, Arg("the folder `classify train --out` wrote", positional=True,
                                           metavar="CLASSIFIER")],
                  data: Annotated[str, Arg("a labelled file, or a folder (its test file, else valid)",
                                           positional=True, metavar="DATA")],
                  log=print, device: Device = None) -> dict:
    dev = resolve_device(device)
    clf, codec, labels = load_classifier(path, dev)
    docs = evaluation_set(Path(data), labels)
    encoded = codec.encode(docs, labels)
    codec.note(log)
    result = evaluate_classifier(clf, encoded, codec.vocab.eos_id, dev)
    _report(f"{data} ({len(docs):,} documents)", result, labels, log)
    return result


@command("classify predict", help="label each line of a file (- reads standard input)")
def classify_predict(path: Annotated[str, Arg(positional=True, metavar="CLASSIFIER")],
                     file: Annotated[str, Arg("one document per line; - reads standard input", positional=True)],
                     log=print, device: Device = None) -> list[tuple[str, float]]:
    """One line out per line in: label<TAB>probability<TAB>text."""
    dev = resolve_device(device)
    clf, codec, labels = load_classifier(path, dev)
    lines, name = input_lines(file)
    if not lines:
        raise AwdlstmError(f"{name}: no lines to label")
    ids = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            raise AwdlstmError(f"{name}:{i}: the document is empty")
        ids.append(codec.ids(line, f"{name}:{i}"))
    probs = predict(clf, Encoded(ids, [0] * len(ids)), codec.vocab.eos_id, dev)
    out = []
    for line, p in zip(lines, probs):
        k = int(p.argmax())
        out.append((labels[k], float(p[k])))
        log(f"{labels[k]}\t{float(p[k]):.3f}\t{line}")
    codec.note(lambda m: print(m, file=sys.stderr))
    return out
