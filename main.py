r"""lumiere_jax command line: train, sample, evaluate, export.

  python main.py --config=configs/moving_shapes.py:t2i --workdir=runs/ms_t2i
  python main.py --config=configs/moving_shapes.py:video --workdir=runs/ms_video \
      --config.train.init_from=runs/ms_t2i
  python main.py --config=configs/moving_shapes.py:video --mode=sample --checkpoint=runs/ms_video \
      --prompt="a red square moving left" --num_samples=2 --output_dir=out/
  python main.py --config=configs/moving_shapes.py:video --mode=eval --workdir=runs/ms_video
  python main.py --config=configs/moving_shapes.py:video --mode=export --workdir=runs/ms_video \
      --export_dir=exports/ms_video --export_dtype=bfloat16

`--config.a.b=value` overrides any config value; unknown keys fail.
"""
from absl import app, flags, logging
from ml_collections import config_flags

from lumiere_jax import cli, runtime

config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py[:arg]).", lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory: checkpoints, TensorBoard, samples.")
flags.DEFINE_enum("mode", "train", cli.MODES, "What to do.")
flags.DEFINE_multi_string("prompt", [], "Prompt to sample (repeatable).")
flags.DEFINE_string("prompts_file", None, "File with one prompt per line.")
flags.DEFINE_integer("num_samples", None, "Samples per prompt (default: config.sample.num_samples).")
flags.DEFINE_integer("seed", None, "Sampling seed; sample i uses seed + i (default: config.sample.seed).")
flags.DEFINE_integer("num_steps", None, "Denoising steps (default: config.sample.num_steps).")
flags.DEFINE_float("guidance_scale", None, "Classifier-free guidance scale (default: config).")
flags.DEFINE_string("sampler", None, "ddim | dpmpp_2m | ddpm (default: config.sample.sampler).")
flags.DEFINE_string("output_dir", None, "Where sampling writes videos (default: <workdir>/samples/cli).")
flags.DEFINE_string("checkpoint", None, "Export directory or workdir to sample/evaluate (default: --workdir).")
flags.DEFINE_string("export_dir", None, "Where --mode=export writes (default: <workdir>/export).")
flags.DEFINE_enum("export_dtype", "float32", ["float32", "bfloat16"], "Parameter dtype of the export.")
flags.DEFINE_string("eval_split", "held_out", "Split(s) whose captions --mode=eval prompts with (comma-separated).")
flags.DEFINE_integer("eval_num_prompts", 32, "Number of (distinct-seed) eval samples.")
flags.DEFINE_multi_string("input_video", [], "Super-resolution model: low-resolution video(s) to up-sample "
                          "(.npy uint8 [T,H,W,3], .mp4/.webm/.gif or a folder of frames; repeatable).")
flags.DEFINE_boolean("multidiffusion", True, "Super-resolution: combine overlapping windows (False: "
                     "non-overlapping windows denoised independently, the Fig. 14 baseline).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.INFO)
    runtime.setup()
    cli.run(flags.FLAGS.config, flags.FLAGS)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
