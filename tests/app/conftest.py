"""The web demo served from the tiny runs (tests/conftest.py), 2 sampling steps, on a free local port."""

import socket

import pytest

from lumiere_jax import app, sampling  # app imports gradio only when it builds the page

# (the test modules skip without gradio; a skip here, in a conftest, would be a collection error)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def demo(video_run, conditional_run, tmp_path_factory):
    t2v = sampling.Generator.load(video_run[0], sample={"num_steps": 2})
    i2v = sampling.Generator.load(conditional_run[0], sample={"num_steps": 2})
    return app.Demo(t2v, i2v, out_root=str(tmp_path_factory.mktemp("app_outputs")))


@pytest.fixture(scope="session")
def server(demo):
    """The page served on 127.0.0.1 in this process (returns at once); its URL."""
    port = free_port()
    ui = app.build_ui(demo)
    app.launch(ui, port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    ui.close()
