"""awdlstm data: load a corpus (or generate the synthetic one) and print its counts."""

from __future__ import annotations

from typing import Annotated

from ..commandline import Arg, command
from ..data.config import DataConfig
from ..data.summary import data_summary, synthetic_summary
from ..data.synthetic import SyntheticSpec

SYNTHETIC = "synthetic corpus"
_SPEC = SyntheticSpec()  # the synthetic corpus's defaults, written once in SyntheticSpec
_DATA = DataConfig()  # the [data] section's defaults


@command("data", help="load a corpus and print its counts")
def data_cmd(corpus: Annotated[str, Arg("known name (ptb, wikitext-2, ptb-char, wikitext-103, text8, enwik8), "
                                        "'synthetic', a folder with train/valid/test files, or raw text: a .txt or "
                                        ".jsonl file or a folder of them", positional=True)],
             data_dir: Annotated[str | None, Arg("folder holding corpora by name (default: $AWDLSTM_DATA)")] = None,
             level: Annotated[str | None, Arg("metric unit for a folder corpus", choices=("word", "char"))] = None,
             tokenizer: Annotated[str | None, Arg("split on whitespace, every character a token, or subword "
                                                  "units trained by SentencePiece (data.tokenizer)",
                                                  choices=("split", "chars", "bpe", "unigram"))] = None,
             vocab_size: Annotated[int, Arg("bpe / unigram: the number of pieces (data.vocab_size)")] = _DATA.vocab_size,
             tokenizer_model: Annotated[str, Arg("a SentencePiece .model or tokenizer.json to read the text with "
                                                 "(data.tokenizer_model)")] = _DATA.tokenizer_model,
             no_download: Annotated[bool, Arg("never download a known corpus")] = False,
             max_vocab: Annotated[int, Arg("vocabulary entries at most, <eos> and <unk> included (data.max_vocab; "
                                           "0: every training token)")] = _DATA.max_vocab,
             min_freq: Annotated[int, Arg("keep training tokens seen this often (data.min_freq)")] = _DATA.min_freq,
             valid_fraction: Annotated[float, Arg("raw text: the share of lines for validation "
                                                  "(data.valid_fraction)")] = _DATA.valid_fraction,
             test_fraction: Annotated[float, Arg("raw text: the share of lines for test "
                                                 "(data.test_fraction)")] = _DATA.test_fraction,
             text_field: Annotated[str, Arg("JSON lines: the text's field (data.text_field)")] = _DATA.text_field,
             out: Annotated[str | None, Arg("write the synthetic corpus to this folder (default: the cache)",
                                            group=SYNTHETIC)] = None,
             seed: Annotated[int, Arg("seed of the synthetic corpus", group=SYNTHETIC)] = _SPEC.seed,
             openers: Annotated[int, Arg("opener words", group=SYNTHETIC)] = _SPEC.openers,
             fillers: Annotated[int, Arg("filler words", group=SYNTHETIC)] = _SPEC.fillers,
             stop: Annotated[float, Arg("probability that the position after the opener or a filler is the closer",
                                        group=SYNTHETIC)] = _SPEC.stop,
             train_lines: Annotated[int, Arg("training lines", group=SYNTHETIC)] = _SPEC.train_lines,
             eval_lines: Annotated[int, Arg("validation and test lines each", group=SYNTHETIC)] = _SPEC.eval_lines,
             labelled: Annotated[bool, Arg("write train/valid/test.tsv of label<TAB>line for `classify` (label: "
                                           "does w0 occur in the line); needs --out", group=SYNTHETIC)] = False,
             log=print) -> None:
    if corpus == "synthetic":
        spec = SyntheticSpec(openers=openers, fillers=fillers, stop=stop, train_lines=train_lines,
                             eval_lines=eval_lines, seed=seed)
        log(synthetic_summary(spec, out, labelled))
    else:
        DataConfig(corpus=corpus, level=level or "", tokenizer=tokenizer or "", vocab_size=vocab_size,
                   tokenizer_model=tokenizer_model, max_vocab=max_vocab, min_freq=min_freq,
                   valid_fraction=valid_fraction, test_fraction=test_fraction,
                   text_field=text_field)  # the config's checks, one-line errors
        log(data_summary(corpus, data_dir, level, tokenizer, download=not no_download, max_vocab=max_vocab,
                         min_freq=min_freq, valid_fraction=valid_fraction, test_fraction=test_fraction,
                         text_field=text_field, vocab_size=vocab_size, tokenizer_model=tokenizer_model))
