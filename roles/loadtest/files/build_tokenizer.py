#!/usr/bin/env python3
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build a small local tokenizer for inference-perf, offline.

inference-perf always loads a Hugging Face tokenizer (to size prompts and count output tokens). The models the
walkthrough serves are gated on the Hub, and the local environment has no Hub at all, so this trains a byte-level
BPE tokenizer (2,000 tokens) on the Shakespeare corpus inference-perf itself ships and saves it as a Hugging Face
tokenizer directory. Token counts then differ from the served model's tokenizer: prompt and output lengths are
"tokens of this tokenizer", which is what the benchmark's sizes and the simulator's dummy tokenizer care about.

Run it with the inference-perf virtualenv's Python (it uses the tokenizers and transformers inference-perf brings):

    <venv>/bin/python build_tokenizer.py <output directory>

The result is deterministic for a given corpus and library versions; an existing complete directory is kept.
"""

import os
import shutil
import sys
import tempfile

VOCAB_SIZE = 2000
MARKER = ".complete"


def corpus_path():
    import inference_perf

    path = os.path.join(os.path.dirname(inference_perf.__file__), "assets", "shakespeare.txt")
    if not os.path.isfile(path):
        raise SystemExit("inference-perf's corpus %s is missing; is this inference-perf's Python?" % path)
    return path


def build(out_dir):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    trainer = ByteLevelBPETokenizer()
    trainer.train(files=[corpus_path()], vocab_size=VOCAB_SIZE, min_frequency=2,
                  special_tokens=["<|endoftext|>"], show_progress=False)
    fast = PreTrainedTokenizerFast(tokenizer_object=trainer._tokenizer,  # pylint: disable=protected-access
                                   eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.save_pretrained(out_dir)


def main(argv):
    if len(argv) != 2:
        raise SystemExit("usage: %s <output directory>" % argv[0])
    out_dir = os.path.abspath(argv[1])
    if os.path.isfile(os.path.join(out_dir, MARKER)):
        print("tokenizer: %s (kept)" % out_dir)
        return 0
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tokenizer-", dir=parent)
    os.chmod(tmp, 0o755)
    try:
        build(tmp)
        with open(os.path.join(tmp, MARKER), "w"):
            pass
        shutil.rmtree(out_dir, ignore_errors=True)
        os.rename(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("tokenizer: %s (built, %d tokens)" % (out_dir, VOCAB_SIZE))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
