r"""Paper-scale conditional STUNet (Lumiere §4.2): the base STUNet of `configs/base.py` with 7 input
channels <noisy video, masked video, mask>, fine-tuned from a base checkpoint on a mixture of masks
(image-to-video, inpainting boxes and strokes, outpainting, cinemagraphs, nothing known).

  python main.py --config=configs/conditional.py --workdir=gs://.../conditional \
      --config.train.init_from=gs://.../base \
      --config.data.dataset=video_folder --config.data.video_folder=... --config.data.captions=...

The conversion zero-initialises the new input channels, so step 0 computes the base model exactly.
Everything trains (`train.train_spatial`); `--config.train.trainable='("denoiser/temporal/",
"denoiser/spatial/conv_in/")'` trains only the temporal layers and the input convolution instead.
Builds and validates on any machine (tests/test_configs.py traces it abstractly).
"""

from configs import base


def get_config(arg: str = ""):
    del arg
    c = base.get_config()
    c.unlock()
    c.stage = "conditional"
    c.model.unet.in_channels = 7
    c.train.train_spatial = True
    c.optim.lr = 2e-5
    c.optim.warmup_steps = 1_000
    c.train.num_steps = 100_000
    c.train.init_from = "REQUIRED: a base (stage 'video') workdir or export"
    c.lock()
    return c
