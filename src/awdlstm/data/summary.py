"""What ``awdlstm data`` prints: per-split counts, vocabulary, and where the cache is."""

from __future__ import annotations

from pathlib import Path

from ..errors import AwdlstmError
from .corpus import Corpus, load_corpus
from .metrics import perplexity
from .sources import SPLITS
from .synthetic import LABEL_WORD, SyntheticSpec, ensure_synthetic, write_labelled_synthetic, write_synthetic


def format_summary(corpus: Corpus) -> str:
    rows = [f"corpus {corpus.name} ({corpus.level} level, {corpus.tokenizer!r}) from {corpus.folder}",
            f"{'split':<6} {'lines':>11} {'tokens':>12} {'words':>12} {'chars':>13} {'oov':>9} {'oov rate':>9}"]
    for split in SPLITS:
        st = corpus.stats[split]
        rows.append(f"{split:<6} {st.lines:>11,} {st.tokens:>12,} {st.words:>12,} {st.chars:>13,} {st.oov:>9,} "
                    f"{st.oov / max(st.tokens, 1):>9.2%}")
    source = "the tokenizer's" if corpus.tokenizer.vocabulary() is not None else "train split"
    rows.append(f"vocabulary {len(corpus.vocab):,} ({source}, <eos> included"
                f"{', <unk> present' if corpus.vocab.unk_id is not None else ''})")
    rows.append(f"cache {corpus.cache_path}")
    return "\n".join(rows)


def data_summary(name_or_path: str, data_dir: str | None = None, level: str | None = None,
                 tokenizer: str | None = None, download: bool = True, **cuts) -> str:
    """``cuts``: max_vocab, min_freq, valid_fraction, test_fraction, text_field (load_corpus)."""
    return format_summary(load_corpus(name_or_path, data_dir=data_dir, level=level, tokenizer=tokenizer,
                                      download=download, **cuts))


def synthetic_summary(spec: SyntheticSpec, out: str | None, labelled: bool = False) -> str:
    """Generate the synthetic corpus (into ``out`` or the cache) and summarise it; with
    ``labelled``, write the labelled set for `classify` into ``out`` instead."""
    if labelled:
        if out is None:
            raise AwdlstmError("--labelled writes train/valid/test.tsv into a folder: give --out DIR")
        write_labelled_synthetic(spec, Path(out))
        return (f"wrote {out}/train.tsv ({spec.train_lines:,} lines), valid.tsv and test.tsv ({spec.eval_lines:,} "
                f"each): label<TAB>line, label 'yes' when {LABEL_WORD} occurs in the line, half of each")
    if out is not None:
        write_synthetic(spec, Path(out))
        folder = Path(out)
    else:
        folder = ensure_synthetic(spec)
    corpus = load_corpus(str(folder))
    corpus.name = f"synthetic ({spec.key()})"
    return (format_summary(corpus) + f"\nentropy {spec.entropy_per_token():.4f} nats/token "
            f"(perplexity {perplexity(spec.entropy_per_token()):.3f}); without memory of "
            f"the opener at best {spec.memoryless_entropy_per_token():.4f}")
