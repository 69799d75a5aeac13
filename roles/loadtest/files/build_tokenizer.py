# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build a small local tokenizer for inference-perf, offline.

inference-perf always loads a Hugging Face tokenizer: it sizes the generated prompts with it, and counts the tokens
of each streamed chunk with it to time every token (a chunk's arrival time goes to each token of its text, so the
inter-token latency it reports depends on the tokenizer). The models the walkthrough serves are gated on the Hub,
and the local environment has no Hub at all, so this builds a word-level tokenizer (4,000 words of the Shakespeare
corpus inference-perf itself ships, split on whitespace and punctuation, anything else one unknown token) and saves
it as a Hugging Face tokenizer directory.

Word-level is what llm-d-inference-sim counts and streams: its dummy tokenizer takes words and punctuation marks as
tokens and sends one per chunk. With this tokenizer one simulator token is one inference-perf token, so prompt and
output lengths agree on both sides and the measured inter-token latency is the simulator's. Against real vLLM, use
the served model's tokenizer instead (the role's default, from the Hub).

Run it with the inference-perf virtualenv's Python (it uses the tokenizers and transformers inference-perf brings):

    <venv>/bin/python build_tokenizer.py <output directory>

The result is deterministic for a given corpus and library versions; an existing complete directory is kept.
"""

import os
import shutil
import sys
import tempfile

VOCAB_SIZE = 4000
MARKER = ".complete"


def corpus_path():
    import inference_perf

    path = os.path.join(os.path.dirname(inference_perf.__file__), "assets", "shakespeare.txt")
    if not os.path.isfile(path):
        raise SystemExit("inference-perf's corpus %s is missing; is this inference-perf's Python?" % path)
    return path


def build(out_dir):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()  # words (\w+) and punctuation marks ([^\w\s]+)
    words.train([corpus_path()], trainers.WordLevelTrainer(vocab_size=VOCAB_SIZE, show_progress=False,
                                                           special_tokens=["[UNK]", "<|endoftext|>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]", eos_token="<|endoftext|>",
                                   bos_token="<|endoftext|>", pad_token="<|endoftext|>")
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
    print("tokenizer: %s (built, word level, %d words)" % (out_dir, VOCAB_SIZE))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
