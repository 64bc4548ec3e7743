r"""lumiere_jax command line: train, sample, evaluate, export.

  python main.py --config=configs/moving_shapes.py:t2i --workdir=runs/ms_t2i
  python main.py --config=configs/moving_shapes.py:video --workdir=runs/ms_video \
      --config.train.init_from=runs/ms_t2i
  python main.py --config=configs/moving_shapes.py:video --mode=sample --checkpoint=runs/ms_video \
      --prompt="a red square moving left" --num_samples=2 --output_dir=out/
  python main.py --config=configs/moving_shapes.py:video --mode=eval --workdir=runs/ms_video
  python main.py --config=configs/moving_shapes.py:video --mode=export --workdir=runs/ms_video \
      --export_dir=exports/ms_video --export_dtype=bfloat16
  python main.py --config=configs/moving_shapes.py:conditional --mode=sample \
      --checkpoint=assets/moving_shapes_conditional --task=i2v --image=frame.png --prompt="a red square moving up"
  python main.py --config=configs/moving_shapes.py:video --mode=sample --checkpoint=assets/moving_shapes_base \
      --task=sdedit --input_video=clip.mp4 --strength=0.6 --prompt="a blue square moving left"

`--config.a.b=value` overrides any config value; unknown keys fail. Precedence (lumiere_jax/settings.py):
library defaults < stored run config < the --config file < --config.* overrides < explicit flags
(--num_steps, --guidance_scale, --sampler); sampling from a checkpoint prints the settings it uses.
An override of an architecture key (model.*) that differs from the checkpoint's raises.
"""

from absl import app, flags, logging
from ml_collections import config_flags

from lumiere_jax import cli, runtime
from lumiere_jax import config as config_lib
from lumiere_jax.parallel import distributed

ARGS = cli.RunArgs  # the flags' defaults are the typed run arguments' defaults
config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py[:arg]).", lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory: checkpoints, TensorBoard, samples.")
flags.DEFINE_enum("mode", ARGS.mode, cli.MODES, "What to do.")
flags.DEFINE_multi_string("prompt", [], "Prompt to sample (repeatable).")
flags.DEFINE_string("prompts_file", None, "File with one prompt per line.")
flags.DEFINE_string(
    "negative_prompt",
    None,
    "Text-to-video: the unconditional branch of classifier-free guidance (default: the learned null embedding).",
)
flags.DEFINE_string("latents", None, "Text-to-video: .npy of the initial noise of every sample [N, T, H, W, C].")
flags.DEFINE_integer("num_samples", None, "Samples per prompt (default: config.sample.num_samples).")
flags.DEFINE_integer("seed", None, "Sampling seed; sample i uses seed + i (default: config.sample.seed).")
flags.DEFINE_integer("num_steps", None, "Denoising steps (default: config.sample.num_steps).")
flags.DEFINE_float("guidance_scale", None, "Classifier-free guidance scale (default: config).")
flags.DEFINE_string("sampler", None, "ddim | dpmpp_2m | ddpm (default: config.sample.sampler).")
flags.DEFINE_string("output_dir", None, "Where sampling writes videos (default: <workdir>/samples/cli).")
flags.DEFINE_enum(
    "output_exists",
    ARGS.output_exists,
    ["error", "overwrite", "append"],
    "If --output_dir already holds files: error (refuse), overwrite (replace earlier samples), append "
    "(keep them; a rerun skips the samples already there).",
)
flags.DEFINE_string("checkpoint", None, "Export directory or workdir to sample/evaluate (default: --workdir).")
flags.DEFINE_string("export_dir", None, "Where --mode=export writes (default: <workdir>/export).")
flags.DEFINE_enum("export_dtype", ARGS.export_dtype, ["float32", "bfloat16"], "Parameter dtype of the export.")
flags.DEFINE_string(
    "eval_split",
    None,
    "Split(s) whose captions --mode=eval prompts with, comma-separated (default: config.eval.splits).",
)
flags.DEFINE_integer(
    "eval_num_prompts", None, "Number of (distinct-seed) eval samples (default: config.eval.num_prompts)."
)
flags.DEFINE_string(
    "eval_tasks",
    None,
    "--mode=eval: comma-separated tasks scored on real clips (i2v, i2v_pil, cinemagraph, inpaint, "
    "outpaint, sdedit; default: config.eval.tasks, '' = all a conditional model does).",
)
flags.DEFINE_multi_string(
    "input_video",
    [],
    "Super-resolution model: low-resolution video(s) to up-sample "
    "(.npy uint8 [T,H,W,3], .mp4/.webm/.gif or a folder of frames; repeatable).",
)
flags.DEFINE_enum(
    "task",
    None,
    cli.TASKS,
    "--mode=sample with a conditional model (i2v, inpaint, outpaint, "
    "cinemagraph) or a video model (sdedit: video-to-video); default: config.task.name.",
)
flags.DEFINE_string("image", None, "i2v / cinemagraph: the input image (.png/.jpg/.npy, or a video's first frame).")
flags.DEFINE_string(
    "mask",
    None,
    "inpaint / cinemagraph: mask image or video, white (>= "
    "config.conditional.mask_threshold) = region to generate / animate.",
)
# Below: None = the config's task / ssr section (cli.FROM_CONFIG), e.g. config.task.strength.
flags.DEFINE_list("outpaint_padding", None, "outpaint: border pixels to generate, N or top,bottom,left,right.")
flags.DEFINE_enum("outpaint_direction", None, list(config_lib.OUTPAINT_DIRECTIONS), "outpaint: the side to extend.")
flags.DEFINE_float("outpaint_amount", None, "outpaint with --outpaint_direction: fraction of the frame generated.")
flags.DEFINE_float("strength", None, "sdedit: noise level the input video is taken to (0 = unchanged, 1 = pure noise).")
flags.DEFINE_boolean(
    "resize_inputs",
    None,
    "Resize (and centre-crop) task inputs to the model's size; False rejects inputs of another size.",
)
flags.DEFINE_boolean("paste_known", None, "Conditional tasks: copy the known pixels into the output.")
flags.DEFINE_string(
    "style_checkpoint",
    None,
    "Stylized generation: a style-fine-tuned T2I checkpoint whose "
    "spatial weights are interpolated into the video model's (Lumiere §4.1).",
)
flags.DEFINE_float("style_alpha", None, "Stylized generation: alpha * W_style + (1 - alpha) * W_orig.")
flags.DEFINE_boolean(
    "multidiffusion",
    None,
    "Super-resolution: combine overlapping windows (False: "
    "non-overlapping windows denoised independently, the Fig. 14 baseline).",
)
flags.DEFINE_string(
    "coordinator_address",
    None,
    "Multi-process: HOST:PORT of process 0's coordinator (with --num_processes and --process_id; see launch/).",
)
flags.DEFINE_integer("num_processes", None, "Multi-process: number of processes.")
flags.DEFINE_integer("process_id", None, "Multi-process: this process's index in [0, num_processes).")
flags.DEFINE_enum(
    "distributed",
    "auto",
    ["auto", "on", "off"],
    "jax.distributed.initialize: auto = with the "
    "flags above, or detected on a Cloud TPU VM / in a multi-task SLURM step; on = always; off = never.",
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.INFO)
    # A CPU run splits the host into devices: training one per core that divides the batch, sampling
    # and evaluation one per core (runtime.py).
    single_process = flags.FLAGS.num_processes is None and flags.FLAGS.coordinator_address is None
    split = {
        "train": runtime.cpu_devices_for_training,
        "sample": runtime.cpu_devices_for_sampling,
        "eval": runtime.cpu_devices_for_sampling,
    }.get(flags.FLAGS.mode)
    runtime.setup(cpu_devices=split(flags.FLAGS.config) if split and single_process else None)
    distributed.initialize(
        flags.FLAGS.coordinator_address, flags.FLAGS.num_processes, flags.FLAGS.process_id, flags.FLAGS.distributed
    )
    # The explicit --config.* overrides alone: an architecture key a checkpoint fixes is refused, not ignored.
    overrides = config_flags.get_override_values(flags.FLAGS["config"])
    cli.run(flags.FLAGS.config, ARGS.of(flags.FLAGS), config_overrides=overrides)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
