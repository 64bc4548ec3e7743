r"""Encode a dataset's captions once with the configured T5 (config.model.t5) and store the
embeddings (bfloat16) + masks next to the data, for training with
config.model.text_source="precomputed" (lumiere_jax/data/text_embeddings.py, docs/pretrained.md).

  python tools/precompute_text.py --config=configs/t2i_base.py \
      --config.model.t5.checkpoint=/weights/IF-I-XL-v1.0/text_encoder \
      --config.model.t5.tokenizer=/weights/IF-I-XL-v1.0/tokenizer/spiece.model --split=train

Writes <data_dir>/text_embeddings/<dataset>_<config_name>_<split>/ (or --output, or
config.data.text_embeddings), where the training pipeline looks for them.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lumiere_jax.data import text_precompute  # noqa: E402

config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py[:arg]).", lock_config=True)
flags.DEFINE_string("split", None, "Dataset split (default: config.data.split).")
flags.DEFINE_string("output", None, "Output directory (default: where training reads them).")
flags.DEFINE_integer("batch_size", 16, "Captions per encoder call.")


def main(argv):
    del argv
    out = text_precompute.precompute(flags.FLAGS.config, flags.FLAGS.split, flags.FLAGS.output, flags.FLAGS.batch_size)
    logging.info("wrote %s", out)
    print(out)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
