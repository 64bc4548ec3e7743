"""The web demo's behaviour through gradio_client (no browser): the page's two actions return a
video of the model's frame count, written as `main.py --mode=sample` writes it; bad input is an
error on the page, not a crash."""

import os

import numpy as np
import pytest

pytest.importorskip("gradio", reason="the web demo's tests need the app extra: make test-app")

from gradio_client import Client, handle_file  # noqa: E402

from lumiere_jax import app, sampling  # noqa: E402
from lumiere_jax.data import video_io  # noqa: E402


def test_text_to_video_through_the_client(server, demo, video_run):
    client = Client(server, verbose=False)
    video, sheet, mp4 = client.predict("a red square moving left", "", 3, 2, 3.0, "ddim", api_name="/text_to_video")
    frames = video_io.read_video(mp4)[0]
    num_frames, size = demo.t2v.model.config.num_frames, demo.t2v.model.config.resolution
    assert frames.shape[0] == num_frames and frames.shape[1:3] == (size, size)
    shown = video_io.read_video(video["video"] if isinstance(video, dict) else video)[0]
    assert shown.shape[0] == num_frames and shown.shape[1] == app.DISPLAY_SIZE  # the enlarged copy
    assert os.path.getsize(sheet) > 0
    # The same sample as the Python API with the same seed and settings (the app has no sampling of its own).
    ref = demo.t2v.generate(["a red square moving left"], seed=3, num_steps=2, guidance_scale=3.0, sampler="ddim")
    folder = sorted(os.listdir(demo.out_root))[-1]
    np.testing.assert_array_equal(np.load(os.path.join(demo.out_root, folder, "0000.npy")), ref.videos[0])
    manifest = sampling.outputs.read_manifest(os.path.join(demo.out_root, folder))
    assert manifest[0]["prompt"] == "a red square moving left" and manifest[0]["seed"] == 3


def test_image_to_video_through_the_client(server, demo, tmp_path):
    frame = np.zeros((48, 48, 3), np.uint8)
    frame[10:22, 8:20] = (220, 30, 30)
    video_io.save_png(str(tmp_path / "frame.png"), frame)
    client = Client(server, verbose=False)
    video, sheet, mp4 = client.predict(
        handle_file(str(tmp_path / "frame.png")), "a red square moving right", 0, 2, 3.0, "ddim",
        api_name="/image_to_video",
    )  # fmt: skip
    frames = video_io.read_video(mp4)[0]
    cfg = demo.i2v.model.config
    assert frames.shape[0] == cfg.num_frames and frames.shape[1:3] == (cfg.resolution, cfg.resolution)


@pytest.mark.parametrize(
    "args,message",
    [
        (("  ", "", 0, 2, 3.0, "ddim"), "enter a prompt"),
        (("a red square moving left", "", -1, 2, 3.0, "ddim"), "seed"),
        (("a red square moving left", "", 0, 2, 3.0, "euler"), "euler"),
    ],
)
def test_bad_input_is_an_error_on_the_page(server, args, message):
    client = Client(server, verbose=False)
    with pytest.raises(Exception, match=message):
        client.predict(*args, api_name="/text_to_video")
    # the server still answers
    assert client.view_api(return_format="dict", print_info=False)["named_endpoints"]


def test_demo_refuses_wrong_models(demo, video_run):
    with pytest.raises(ValueError, match="needs a text-to-video checkpoint, an image-to-video checkpoint, or both"):
        app.Demo(None, None)
    with pytest.raises(ValueError, match="--i2v_checkpoint must hold a conditional \\(masked\\) model"):
        app.Demo(None, demo.t2v)
    with pytest.raises(ValueError, match="upload the first frame"):
        demo.image_to_video(None, "a red square moving left")


def test_command_line_errors_before_loading(tmp_path, capsys):
    with pytest.raises(SystemExit):
        app.main(["--checkpoint", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert "--checkpoint" in err and "does not exist" in err
    with pytest.raises(SystemExit):
        app.main([])
    assert "give --checkpoint" in capsys.readouterr().err
