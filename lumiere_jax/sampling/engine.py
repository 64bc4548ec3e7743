"""A loaded model ready to sample: parameters, run config, settings, compiled steps.

`Engine` holds what every front-end (text-to-video, super-resolution, the conditional tasks,
SDEdit) shares: the model and its parameters (placed on a mesh when given one), the settings
precedence (`settings`), the text context of prompts, and the two denoising drivers over
`loop.run`: `denoise` (whole videos, optionally with a conditional model's extra channels, a
partly noised start for SDEdit and the replacement method) and `denoise_low_res` (a
super-resolution model on MultiDiffusion windows). Compiled steps are cached per Engine.

Keys: sample i of a call uses seed `seed + i`; its initial noise is `normal(PRNGKey(seed + i))`
and its step-k noise `normal(fold_in(PRNGKey(seed + i), k))`, so a sample is reproducible on its
own, whatever else was in the batch. The super-resolution stage draws from
`fold_in(PRNGKey(seed + i), 1)`.
"""

from __future__ import annotations

import collections
import functools
import math
import warnings
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lumiere_jax import config as config_lib
from lumiere_jax.data.input_pipeline import uint8_to_float
from lumiere_jax.diffusion import guidance, noising, samplers, schedules
from lumiere_jax.diffusion import multidiffusion as md
from lumiere_jax.diffusion.conditioning import LowResolution
from lumiere_jax.models import build
from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.models.tokenizer import make_tokenizer
from lumiere_jax.sampling import loop
from lumiere_jax.sampling import settings as settings_lib
from lumiere_jax.train import checkpoint, validation


def per_input(prompts: str | Sequence[str], n: int, what: str) -> list[str]:
    """One prompt per input: a single prompt is repeated `n` times; another count raises, naming
    `what` the inputs are ("videos", "inputs")."""
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if len(prompts) == 1 and n > 1:
        prompts = prompts * n
    if len(prompts) != n:
        raise ValueError(f"{len(prompts)} prompts for {n} {what}: give one per {what.rstrip('s')} or one for all")
    return prompts


def _finite(x: np.ndarray, prompts: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
    """`x` unchanged, or ValueError naming the samples (prompt, seed) with non-finite values."""
    bad = [i for i in range(len(x)) if not np.isfinite(x[i]).all()]
    if bad:
        named = ", ".join(f"{prompts[i]!r} (seed {seeds[i]})" for i in bad[:4]) + (" ..." if len(bad) > 4 else "")
        raise FloatingPointError(
            f"{len(bad)} sample(s) came out non-finite: {named}; nothing was written. Check the "
            "model (a damaged checkpoint?) and the sampling settings"
        )
    return x


def to_model_range(x: np.ndarray, what: str) -> np.ndarray:
    """uint8 pixels, or floats already in [-1, 1], as float32 in [-1, 1]; anything else raises naming
    `what` (e.g. floats in [0, 255] or [0, 1] would silently give wrong results)."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return uint8_to_float(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{what} must be uint8 (0-255) or float in [-1, 1], got dtype {x.dtype}")
    if x.size and not np.isfinite(x).all():
        raise ValueError(f"{what} holds non-finite values")
    if x.size and (x.min() < -1.001 or x.max() > 1.001):
        raise ValueError(
            f"float {what} must be in [-1, 1] (or pass uint8 0-255), got values in "
            f"[{float(x.min()):.3g}, {float(x.max()):.3g}]"
        )
    return x.astype(np.float32)


class Progress:
    """One bar over a whole sampling job: the denoising steps of every batch, each counted when it has
    finished (`loop.run` updates it), and the videos done so far. Disabled: every method is a no-op."""

    def __init__(self, enabled: bool, num_videos: int, batch_size: int, num_steps: int, desc: str = "sample"):
        self.total, self.done, self.bar = num_videos, 0, None
        if enabled:
            from tqdm import tqdm

            batches = -(-num_videos // batch_size)
            self.bar = tqdm(total=batches * num_steps, desc=desc, unit="step", dynamic_ncols=True)
            self.bar.set_postfix_str(f"videos 0/{num_videos}")

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def videos_done(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.set_postfix_str(f"videos {self.done}/{self.total}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    @property
    def loop_progress(self) -> Any:
        """What `loop.run` takes: this bar, or False when disabled."""
        return self if self.bar is not None else False


def batched(
    n: int,
    batch_size: int,
    fn: Callable[[slice], np.ndarray],
    progress: Progress | None = None,
) -> np.ndarray:
    """`fn(slice)` over consecutive batches of `n` items, concatenated; `progress` counts the videos."""
    outs = []
    try:
        for lo in range(0, n, batch_size):
            outs.append(fn(slice(lo, min(lo + batch_size, n))))
            if progress is not None:
                progress.videos_done(len(outs[-1]))
    finally:
        if progress is not None:
            progress.close()
    return np.concatenate(outs)


def check_settings(s: dict[str, Any]) -> dict[str, Any]:
    """Raise ValueError naming the first sampling setting (SAMPLE_KEYS) of a wrong kind or range."""
    if s["sampler"] not in samplers.SAMPLERS:
        raise ValueError(f"sampling setting sampler must be one of {samplers.SAMPLERS}, got {s['sampler']!r}")
    if s["timestep_spacing"] not in schedules.SPACINGS:
        raise ValueError(
            f"sampling setting timestep_spacing must be one of {schedules.SPACINGS}, got {s['timestep_spacing']!r}"
        )
    bounds = {
        "num_steps": dict(integer=True, low=1),
        "guidance_scale": dict(low=0.0),
        "eta": dict(low=0.0),
        "dynamic_thresholding_ratio": dict(low=0.0, high=1.0, low_open=True),
        "sample_max_value": dict(low=0.0, low_open=True),
    }
    if s["high_noise_guidance_scale"] is not None:
        bounds["high_noise_guidance_scale"] = dict(low=0.0)
    bounds["high_noise_from"] = dict(low=0.0, high=1.0, low_open=True)
    for key, kw in bounds.items():
        validation.check_number(f"sampling setting {key}", s[key], **kw)
    return s


def check_call(num_samples: int = 1, seed: int = 0, batch_size: int = 1, count: int = 1) -> None:
    """A sampling call's counts: `num_samples` and `batch_size` >= 1; seeds seed .. seed + count - 1 must be
    valid PRNG seeds (0 .. 2**31 - 1)."""
    for name, v in (("num_samples", num_samples), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0 or seed + count - 1 > 2**31 - 1:
        raise ValueError(
            f"seed must be an integer with seed .. seed + {count - 1} in [0, 2**31 - 1] (one seed per "
            f"sample), got {seed!r}"
        )


# Jitted steps shared by every Engine of the same model (a model is a pure function of its config):
# loading an export again, or another Generator on the same architecture, reuses the traced and
# compiled steps instead of tracing the network anew. Bounded: the least recently used step goes.
_SHARED_STEPS: collections.OrderedDict = collections.OrderedDict()
_SHARED_STEPS_MAX = 64


class Engine:
    """A model, its parameters and the run config, with the jitted steps that sample it."""

    def __init__(self, model: DiffusionModel, params: Any, config: dict, mesh_config: Any = None):
        """`mesh_config` (a `config.mesh` section; None = one device): sample on a device mesh. The
        parameters are placed by their logical axes, every step runs with the mesh and rules active,
        so the batch (both classifier-free-guidance halves, and the MultiDiffusion windows, which
        are folded into the batch axis) is split over the batch mesh axes."""
        self.model, self.config = model, config
        self.sched = schedules.get_schedule(config["diffusion"]["schedule"])
        self.tokenizer = make_tokenizer(model.config, config.get("model"))
        self._steps: dict[Any, Any] = {}
        self.mesh_config, self.mesh, self.rules = mesh_config, None, None
        if mesh_config is not None:
            from lumiere_jax.parallel import mesh as mesh_lib
            from lumiere_jax.parallel import sharding

            self.mesh, self.rules = mesh_lib.make_mesh(mesh_config), mesh_lib.rules(mesh_config)
            params = jax.device_put(params, sharding.param_shardings(model, self.mesh, self.rules))
        else:
            # One device, the parameters committed to it (`_place` commits step 0's inputs likewise).
            # Parameters on a mesh (a train state's) would carry it in their types, which the step's
            # outputs inherit and step 0's noise lacks. (A `SingleDeviceSharding`: `device_put` to a
            # bare device keeps the mesh in the type.)
            params = jax.device_put(params, jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))
        self.params = params

    @classmethod
    def load(
        cls,
        path: str,
        mesh_config: Any = None,
        *,
        sample: dict | None = None,
        ssr: dict | None = None,
        t5: dict | None = None,
    ):
        """From an export directory or a training workdir (EMA parameters). `sample` (SAMPLE_KEYS) and
        `ssr` (SSR_KEYS): settings that beat the stored run config's (None = the stored value); a
        call's own overrides beat both. `t5`: where the T5 files are here (checkpoint, tokenizer)."""
        params, config = checkpoint.load(path)
        config = settings_lib.with_settings(config, sample=sample, ssr=ssr, t5=t5)
        return cls(DiffusionModel(build.model_config(config)), params, config, mesh_config)

    # -- settings ------------------------------------------------------------------------------
    def settings(self, **overrides) -> dict[str, Any]:
        """Sampling settings: the library defaults, the run config's `sample` section (with what
        `load` was given on top), then `overrides`."""
        s = {k: config_lib.value(self.config, "sample", k) for k in settings_lib.SAMPLE_KEYS}
        return check_settings(settings_lib.merge(s, overrides, "sampling setting"))

    def ssr_settings(self, **overrides) -> dict[str, Any]:
        """Super-resolution settings: the run config's `ssr` section, then `overrides`."""
        s = {k: config_lib.value(self.config, "ssr", k) for k in settings_lib.SSR_KEYS}
        return settings_lib.merge(s, overrides, "super-resolution setting")

    def guidance(self, s: dict) -> tuple:
        """The guidance of the settings `s` as `denoise` takes it: (scale, None) or (scale, (high-noise
        scale, first timestep it applies at))."""
        high = s["high_noise_guidance_scale"]
        if high is None:
            return float(s["guidance_scale"]), None
        t_from = int(math.ceil(float(s["high_noise_from"]) * self.sched.num_train_timesteps))
        return float(s["guidance_scale"]), (float(high), t_from)

    def sampler(self, s: dict) -> samplers.Sampler:
        """The sampler of the settings `s` (from `settings`)."""
        return samplers.get_sampler(
            s["sampler"],
            self.sched,
            int(s["num_steps"]),
            timestep_spacing=s["timestep_spacing"],
            prediction_type=self.config["diffusion"]["prediction_type"],
            eta=float(s["eta"]),
            thresholding=bool(s["thresholding"]),
            dynamic_thresholding_ratio=float(s["dynamic_thresholding_ratio"]),
            sample_max_value=float(s["sample_max_value"]),
            use_clipped_model_output=bool(s["use_clipped_model_output"]),
            # a learned-range model's variance is used by DDPM; the other samplers ignore it
            variance_type=config_lib.value(self.config, "diffusion", "variance_type")
            if s["sampler"] == "ddpm"
            else "fixed_small",
        )

    # -- denoising -----------------------------------------------------------------------------
    def denoise(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        sampler: samplers.Sampler,
        scales: tuple,
        progress: Any,
        cond=None,
        x0=None,
        known=None,
        *,
        context=None,
        latents=None,
        callback=None,
    ) -> np.ndarray:
        """Denoise one batch (float [-1, 1]) guided by `scales` (`guidance(settings)`). `cond`: a
        conditional model's extra channels. `x0`
        (SDEdit): start from this clean batch noised to the sampler's first timestep instead of
        from pure noise. `known` ((content [-1, 1], mask [..., 1] True = known), the
        `known_replacement` setting): after every step but the last the known pixels of the sample
        are replaced by the known content noised to the next timestep with the initial noise (the
        replacement method of Ho et al. 2022, "Video Diffusion Models" §3.1); the last step's
        output is the model's own everywhere. `context`: the text context to use instead of the
        prompts' (`prompt_context`); `latents`: the initial noise instead of the seeds' (the
        per-step noise still comes from the seeds); `callback`: `loop.run`'s."""
        keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
        shape = self.model.config.sample_shape(1)[1:]
        if latents is None:
            x = jax.vmap(lambda k: jax.random.normal(k, shape))(keys)
        else:
            x = jnp.asarray(latents, jnp.float32)
            if x.shape != (len(seeds), *shape):
                raise ValueError(
                    f"latents must be [{len(seeds)}, {', '.join(map(str, shape))}] for this batch, got {tuple(x.shape)}"
                )
        noise0 = x
        if x0 is not None:
            t0 = jnp.full((len(seeds),), sampler.timesteps[0], jnp.int32)
            x = noising.add_noise(self.sched, jnp.asarray(x0, jnp.float32), x, t0)
        step = self._step_fn(guidance.guidance_kind(scales), return_x0=callback is not None)
        context = self.prompt_context(prompts) if context is None else context
        cond = None if cond is None else jnp.asarray(cond, jnp.float32)
        args = (self.params, context, cond, guidance.scale_values(scales))
        after_step = None
        if known is not None:
            content, known_mask = (jnp.asarray(a) for a in known)
            replace = self._replace_fn()
            padded = loop.step_sampler(sampler)  # as `loop.run` gives its step: one compile for any num_steps
            after_step = lambda x, i: replace(padded, x, content, known_mask, noise0, i)  # noqa: E731
        x, _ = loop.run(
            step,
            sampler,
            x,
            args,
            keys=keys,
            after_step=after_step,
            progress=progress,
            callback=callback,
            place=self._place(len(seeds)),
        )
        return _finite(np.asarray(x), prompts, seeds)

    def denoise_low_res(self, prompts, seeds, low, sampler, s, ssr, layout, progress) -> np.ndarray:
        """Super-resolve one batch `low` (float [-1, 1], the model's low resolution) with the
        settings `s` / `ssr`, on MultiDiffusion windows when `layout` is given."""
        cfg = self.model.config
        keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(sd), 1) for sd in seeds])
        shape = (*low.shape[1:-3], cfg.resolution, cfg.resolution, cfg.sample_channels)
        x = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 0), shape))(keys)
        aug = jnp.full((len(seeds),), int(ssr["aug_level"]), jnp.int32)
        cond = jax.vmap(
            lambda k, lr, a: LowResolution.sampling_inputs(
                self.sched, lr[None], cfg.resolution, a[None], jax.random.fold_in(k, 1), ssr["upsample"]
            )[0]
        )(keys, jnp.asarray(low), aug)
        weights = None if layout is None else jnp.asarray(md.window_weights(layout, ssr["weights"]))
        scales = self.guidance(s)
        step = self._ssr_step_fn(guidance.guidance_kind(scales), layout, int(ssr["chunk_size"]) or None)
        noise_keys = jax.vmap(lambda k: jax.random.fold_in(k, 2))(keys)
        x, _ = loop.run(
            step,
            sampler,
            x,
            (self.params, self.prompt_context(prompts), aug, guidance.scale_values(scales)),
            keys=noise_keys,
            conds=(cond,),
            weights=weights,
            layout=layout,
            progress=progress,
            desc="super-resolve",
            place=self._place(len(seeds)),
        )
        return _finite(np.asarray(x), prompts, seeds)

    # -- text ----------------------------------------------------------------------------------
    def prompt_context(self, prompts, negative_prompts=None):
        """((text embeddings, mask), (unconditional embeddings, mask)) of `prompts`: the unconditional
        branch of classifier-free guidance is the learned null embedding, or `negative_prompts`'
        embeddings (one per prompt)."""
        text, null = self._text_and_null(prompts)
        if negative_prompts is not None:
            null, _ = self._text_and_null(negative_prompts)
        return text, null

    def _text_and_null(self, prompts):
        if self.model.text_module is not None:
            long = [p for p in prompts if self.tokenizer.too_long(p)]
            if long:
                warnings.warn(
                    f"{len(long)} prompt(s) are longer than the text encoder's {self.tokenizer.max_length} "
                    f"tokens (config.model.text_encoder.max_length) and are cut, e.g. {long[0]!r}"
                )
            ids, mask = self.tokenizer(list(prompts))
            return self._context(self.params, jnp.asarray(ids), jnp.asarray(mask))
        # Trained on precomputed embeddings: encode the prompts with the T5 they were made with,
        # rounded to bfloat16 as the stored ones were.
        if "t5" not in self._steps:
            t5 = dict(self.config.get("model", {}).get("t5") or {})
            if not t5.get("checkpoint"):
                raise ValueError(
                    "this model was trained on precomputed text embeddings: set "
                    "config.model.t5.checkpoint (and .tokenizer) so prompts can be encoded"
                )
            from lumiere_jax.data.text_embeddings import t5_encoder

            self._steps["t5"] = t5_encoder(t5)
        emb, mask = self._steps["t5"](list(prompts))
        if emb.shape[1:] != (self.model.config.text_length, self.model.config.stunet.unet.text_dim):
            raise ValueError(
                f"the T5 gives [{emb.shape[1]}, {emb.shape[2]}] embeddings per prompt; the model takes "
                f"[{self.model.config.text_length}, {self.model.config.stunet.unet.text_dim}]"
            )
        emb = jnp.asarray(emb, jnp.bfloat16).astype(jnp.float32)
        return (emb, jnp.asarray(mask)), self.model.null_text(self.params, len(prompts))

    # -- compiled pieces -----------------------------------------------------------------------
    def _layout(self, a, batch: int):
        """Where a sample-sized array stays between the steps. Without a mesh: committed to this
        process's first device, as the parameters are. On the mesh: split over the batch mesh axes along
        a leading axis of size `batch` (the axes that divide it), else replicated."""
        if self.mesh is None:
            return jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        from jax.sharding import NamedSharding, PartitionSpec

        from lumiere_jax.parallel import mesh as mesh_lib, sharding

        spec = PartitionSpec(mesh_lib.BATCH_AXES) if a.ndim and a.shape[0] == batch else PartitionSpec()
        return NamedSharding(self.mesh, sharding.fit_spec(spec, a.shape, self.mesh))

    def _place(self, batch: int):
        """`loop.run`'s `place`: step 0's inputs put in `_layout`, where every step leaves its outputs
        (on the mesh `_pinned` keeps them there; on one device they are committed, as the parameters
        are), so that one program serves all steps (otherwise step 0 compiles one of its own: for its
        uncommitted or unsharded noise)."""
        return lambda tree: jax.device_put(tree, jax.tree_util.tree_map(lambda a: self._layout(a, batch), tree))

    def _constrain(self, tree, batch: int):
        """`tree` (traced) constrained to `_layout` on the mesh; as it is without one."""
        if self.mesh is None:
            return tree
        return jax.tree_util.tree_map(lambda a: jax.lax.with_sharding_constraint(a, self._layout(a, batch)), tree)

    def _pinned(self, step):
        """A `loop.make_step` step whose x and solver state leave it in `_layout` (batch = x's)."""
        if self.mesh is None:
            return step

        @functools.wraps(step)
        def pinned(sampler, args, x, *rest):
            out = step(sampler, args, x, *rest)
            return (*self._constrain(tuple(out[:2]), x.shape[0]), *out[2:])

        return pinned

    def _jit(self, fn):
        """`jax.jit(fn)`, called with the mesh and rules active when the Engine has a mesh."""
        jitted = jax.jit(fn)
        if self.mesh is None:
            return jitted
        from lumiere_jax.parallel import mesh as mesh_lib

        def call(*args):
            with mesh_lib.activate(self.mesh, self.rules):
                return jitted(*args)

        call.jitted = jitted
        return call

    def _step(self, key: tuple, build: Callable[[], Callable]):
        """The jitted function `key` of this Engine: `self._jit(build())`, built once per Engine, and
        once per process for every Engine of the same model config without a mesh (`_SHARED_STEPS`)."""
        if key in self._steps:
            return self._steps[key]
        if self.mesh is None:
            shared = (self.model.config, *key)
            if shared in _SHARED_STEPS:
                _SHARED_STEPS.move_to_end(shared)
            else:
                _SHARED_STEPS[shared] = self._jit(build())
                while len(_SHARED_STEPS) > _SHARED_STEPS_MAX:
                    _SHARED_STEPS.popitem(last=False)
            self._steps[key] = _SHARED_STEPS[shared]
        else:
            self._steps[key] = self._jit(build())
        return self._steps[key]

    def _context(self, params, ids, mask):
        model = self.model

        def ctx(params, ids, mask):
            emb = model.encode_text(params, ids, mask)
            return (emb, mask), model.null_text(params, ids.shape[0])

        return self._step(("context",), lambda: ctx)(params, ids, mask)

    def _step_fn(self, kind: str, return_x0: bool = False):
        """The jitted sampling step of guidance `kind` (`guidance.guidance_kind`); its args are
        (params, text context, conditioning channels or None, `guidance.scale_values`): one compiled
        step for every guidance scale, and (`loop.run` pads the sampler) every number of steps."""
        model = self.model

        def model_fn(args, x, t):
            # Classifier-free guidance drops the text only: both branches see the conditioning.
            params, ctx, cond, values = args
            text, null = (*ctx[0], cond), (*ctx[1], cond)
            inner = lambda x, t, c: model.denoise(params, x, t, c[0], c[1], cond=c[2])
            return guidance.guided_model_fn(inner, text, null, guidance.traced_scales(kind, values))(x, t)

        return self._step(
            ("step", kind, return_x0), lambda: self._pinned(loop.make_step(model_fn, return_x0=return_x0))
        )

    def _ssr_step_fn(self, kind: str, layout, chunk):
        """The jitted super-resolution step of guidance `kind` (`guidance.guidance_kind`; the scales
        are traced args, as in `_step_fn`), on the MultiDiffusion windows of `layout` (None: the whole
        video), `chunk` windows at a time."""
        model = self.model

        def model_fn(args, x, t, cond):  # one (window of the) video batch, or all windows folded
            params, ((emb, mask), (null_emb, null_mask)), aug, values = args
            inner = lambda x, t, c: model.denoise(params, x, t, c[0], c[1], cond=c[2], aug_level=c[3])
            reps = x.shape[0] // emb.shape[0]  # windows folded into the batch (window-major)
            tile = lambda a: jnp.tile(a, (reps,) + (1,) * (a.ndim - 1))
            text = (tile(emb), tile(mask), cond, tile(aug))
            null = (tile(null_emb), tile(null_mask), cond, tile(aug))
            return guidance.guided_model_fn(inner, text, null, guidance.traced_scales(kind, values))(x, t)

        return self._step(
            ("ssr", kind, layout, chunk),
            lambda: self._pinned(loop.make_step(model_fn, layout=layout, chunk_size=chunk, fold_windows=True)),
        )

    def _replace_fn(self):
        """Jitted replacement step: the known pixels of x become `content` noised with `noise` to the
        sampler's timestep `i` (`denoise`'s `known`)."""
        sched = self.sched

        def replace(sampler, x, content, mask, noise, i):
            t = jnp.full((x.shape[0],), sampler.timesteps[i], jnp.int32)
            return self._constrain(jnp.where(mask, noising.add_noise(sched, content, noise, t), x), x.shape[0])

        return self._step(("replace", self.config["diffusion"]["schedule"]), lambda: replace)
