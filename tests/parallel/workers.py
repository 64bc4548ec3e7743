"""Bodies of the multi-device / multi-process tests, run in fresh processes (the device count
must be set before JAX starts): `python -m tests.parallel.workers NAME JSON_ARGS`.

Every worker writes its results to `args["out"]` (an .npz) for the test to compare.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_STEPS = 2
GLOBAL_BATCH = 4


def tiny_config(data_dir: str, mesh: tuple[int, int, int] = (-1, 1, 1)):
    """The tiny T2I config every parallel test trains (2 steps, global batch 4)."""
    from lumiere_jax import config as config_lib

    config = config_lib.load_config_file(os.path.join(ROOT, "configs", "tiny.py"), "t2i")
    config.data.data_dir = data_dir
    config.data.global_batch = GLOBAL_BATCH
    config.train.num_steps = NUM_STEPS
    config.train.checkpoint_every = NUM_STEPS  # one save: the tests restore the last checkpoint
    config.train.log_every = 1
    config.train.async_checkpoints = False
    # Adam divides by sqrt(v) + eps: with the default 1e-8 a gradient of ~1e-8 (layers behind the
    # zero-initialised output convolution, step 2) becomes an update of +-lr whose sign is float
    # noise of the reduction order. A larger eps keeps updates proportional to gradients here.
    config.optim.eps = 1e-4
    # One U-Net level (attention there): an 8-device SPMD compile of half the ops.
    config.model.unet.channel_mult, config.model.unet.attention_resolutions = (1,), (1,)
    config.model.temporal.num_temporal_downsamples = 0
    config.mesh.ici_data, config.mesh.ici_fsdp, config.mesh.ici_tensor = mesh
    return config


def flat(tree) -> dict[str, np.ndarray]:
    import jax

    return {jax.tree_util.keystr(p): np.asarray(x) for p, x in jax.tree_util.tree_leaves_with_path(tree)}


def specs(tree) -> dict[str, str]:
    import jax

    return {jax.tree_util.keystr(p): str(tuple(x.sharding.spec)) for p, x in jax.tree_util.tree_leaves_with_path(tree)}


def _setup(config, mesh_devices=None):
    """The model, the trainer's optimizer and unjitted step (`trainer.train_step_fn`), the mesh, its
    rules, and the state's abstract value and shardings."""
    from lumiere_jax.models.diffusion_model import DiffusionModel
    from lumiere_jax.parallel import mesh as mesh_lib, sharding
    from lumiere_jax.train import state as state_lib, trainer, validation

    model = DiffusionModel(validation.validate(config))
    tx, step_fn = trainer.train_step_fn(config, model)
    mesh = mesh_lib.make_mesh(config.mesh, mesh_devices)
    rules = mesh_lib.rules(config.mesh)
    abstract, shardings = sharding.state_shardings(model, tx, mesh, rules, state_lib.create)
    return model, tx, step_fn, mesh, rules, abstract, shardings


def sharded_parity(args: dict) -> None:
    """Two steps on one device (plain jit, no mesh) and on a data x fsdp x tensor mesh from the same
    initial state and batches; losses, parameters and shardings saved; the sharded state checkpointed."""
    import jax
    import jax.numpy as jnp
    from lumiere_jax.data import input_pipeline, sources
    from lumiere_jax.parallel import sharding
    from lumiere_jax.train import checkpoint, state as state_lib, trainer

    config = tiny_config(args["data_dir"], tuple(args["mesh"]))
    model, tx, step_fn, mesh, rules, _, shardings = _setup(config)
    pipe = sources.make_pipeline(config, model.config)
    batches = [{k: v for k, v in pipe.get_batch(s).items() if k in trainer.BATCH_KEYS} for s in range(NUM_STEPS)]
    rng = jax.random.PRNGKey(config.train.seed)

    ref = jax.jit(lambda r: state_lib.create(model.init(r), tx))(rng)  # one program, not an eager op per leaf
    ref_step, ref_losses = jax.jit(step_fn), []
    for b in batches:
        ref, m = jax.block_until_ready(ref_step(ref, {k: jnp.asarray(v) for k, v in b.items()}))
        ref_losses.append(float(m["loss"]))

    state = sharding.init_state(model, tx, rng, shardings, state_lib.create)
    init_specs = specs(state)
    step, losses = sharding.jit_train_step(step_fn, mesh, rules, shardings), []
    spec = sharding.batch_sharding(mesh).spec
    for b in batches:
        state, m = jax.block_until_ready(step(state, input_pipeline.to_global(b, mesh, spec)))
        losses.append(float(m["loss"]))

    from tests.helpers import compiles_of

    ckpt = checkpoint.Checkpointer(args["workdir"], async_save=False)
    with compiles_of("jit(slice)") as save_slices:  # orbax's replica-parallel save cuts on the devices
        ckpt.save(NUM_STEPS, state, json.loads(config.to_json()))
    ckpt.close()
    np.savez(
        args["out"],
        save_compiles=len(save_slices),
        ref_losses=np.asarray(ref_losses),
        losses=np.asarray(losses),
        **{"ref" + k: v for k, v in flat(ref).items()},
        **{"sharded" + k: v for k, v in flat(state).items()},
        init_specs=json.dumps(init_specs),
        final_specs=json.dumps(specs(state)),
        target_specs=json.dumps({k: str(tuple(s.spec)) for k, s in zip(specs(state), jax.tree.leaves(shardings))}),
    )


def restore(args: dict) -> None:
    """Restore the checkpoint of `workdir` onto this process's mesh; save values and shardings."""
    import jax
    from lumiere_jax.train import checkpoint

    config = tiny_config(args["data_dir"], tuple(args["mesh"]))
    *_, mesh, _, abstract, shardings = _setup(config)
    ckpt = checkpoint.Checkpointer(args["workdir"], async_save=False)
    state, _ = ckpt.restore(ckpt.latest_step(), abstract)
    ckpt.close()
    same = all(x.sharding == s for x, s in zip(jax.tree.leaves(state), jax.tree.leaves(shardings)))
    np.savez(
        args["out"],
        shardings_match=same,
        num_devices=mesh.size,
        mesh=json.dumps(dict(mesh.shape)),
        specs=json.dumps(specs(state)),
        **{"restored" + k: v for k, v in flat(state).items()},
    )


def multiprocess_train(args: dict) -> None:
    """One of several processes (jax.distributed on localhost): `trainer.train` on the global mesh,
    then every process reads the last checkpoint back onto the same shardings."""
    import jax
    from lumiere_jax.parallel import distributed

    distributed.initialize(args["coordinator"], args["num_processes"], args["process_id"])
    from lumiere_jax.train import checkpoint, trainer

    config = tiny_config(args["data_dir"])
    state = trainer.train(config, args["workdir"])
    *_, abstract, _ = _setup(config)
    ckpt = checkpoint.Checkpointer(args["workdir"], async_save=False)
    restored, _ = ckpt.restore(ckpt.latest_step(), abstract)
    ckpt.close()
    same = all(
        np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored))
    )
    np.savez(
        args["out"],
        process_count=jax.process_count(),
        device_count=jax.device_count(),
        restored_equal=same,
        **{"params" + k: v for k, v in flat(state.params).items()},
    )


def sharded_sampling(args: dict) -> None:
    """Super-resolution with MultiDiffusion (tiny SSR, random weights) on one device and on a
    data-parallel mesh; the outputs, and the per-device FLOPs of one compiled step on each."""
    from lumiere_jax import config as config_lib, sampling
    from lumiere_jax.models.diffusion_model import DiffusionModel
    from lumiere_jax.train import validation
    from tests.helpers import compiles_of, perturbed_params

    config = config_lib.load_config_file(os.path.join(ROOT, "configs", "tiny.py"), "ssr")
    config.mesh.ici_data, config.mesh.ici_fsdp, config.mesh.ici_tensor = tuple(args["mesh"])
    model = DiffusionModel(validation.validate(config))
    # random parameters (numpy, no init compile): init's zero output convolution would make every
    # sample the same
    params = perturbed_params(model)
    low = np.random.default_rng(0).integers(0, 256, (args["videos"], 4, 4, 4, 3), dtype=np.uint8)
    out, flops, programs = {}, {}, {}
    for name, mesh_config in (("single", None), ("sharded", config.mesh)):
        calls = []

        class Recording(sampling.Generator):
            def _jit(self, fn):
                call = super()._jit(fn)

                def record(*a):
                    calls.append((call, a))
                    return call(*a)

                return record

        gen = Recording(model, params, config.to_dict(), mesh_config)
        with compiles_of("jit(step)") as programs[name]:
            out[name] = gen.upsample(low, "a red square", progress=False, guidance_scale=args["guidance"]).videos
        call, a = calls[-1]  # the last super-resolution step
        jitted = getattr(call, "jitted", call)
        if mesh_config is None:
            compiled = jitted.lower(*a).compile()
        else:
            from lumiere_jax.parallel import mesh as mesh_lib

            with mesh_lib.activate(gen.mesh, gen.rules):
                compiled = jitted.lower(*a).compile()
        cost = compiled.cost_analysis()
        flops[name] = float((cost[0] if isinstance(cost, (list, tuple)) else cost)["flops"])
    np.savez(
        args["out"],
        single=out["single"],
        sharded=out["sharded"],
        single_flops=flops["single"],
        sharded_flops=flops["sharded"],
        single_programs=json.dumps(programs["single"]),
        sharded_programs=json.dumps(programs["sharded"]),
    )


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    from lumiere_jax import runtime

    runtime.setup(os.environ.get("LUMIERE_JAX_CACHE"))  # caches programs of >= 0.1 s, as the tests do
    {
        "sharded_parity": sharded_parity,
        "restore": restore,
        "multiprocess_train": multiprocess_train,
        "sharded_sampling": sharded_sampling,
    }[sys.argv[1]](json.loads(sys.argv[2]))
