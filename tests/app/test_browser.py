"""The web demo in a real headless browser (Selenium with Debian's chromium and chromedriver; their
paths from $LUMIERE_CHROMIUM / $LUMIERE_CHROMEDRIVER, default /usr/bin/...): load the page, submit a
prompt, wait for the video, check that it plays a file of the model's frame count, screenshot."""

import os
import shutil
import time
import urllib.request

import pytest

pytest.importorskip("gradio", reason="the web demo's tests need the app extra: make test-app")
pytest.importorskip("selenium", reason="the browser test needs selenium: make test-app")

from lumiere_jax.data import video_io  # noqa: E402

CHROMIUM = os.environ.get("LUMIERE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LUMIERE_CHROMEDRIVER", "/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
    reason=f"chromium ({CHROMIUM}) and chromedriver ({CHROMEDRIVER}) are not installed: make test-app installs them",
)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1600"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_page_generates_a_playable_video(server, demo, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server)
    wait = WebDriverWait(browser, 120)
    prompt = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#t2v_prompt textarea")))
    prompt.clear()
    prompt.send_keys("a blue circle moving up")
    browser.find_element(By.CSS_SELECTOR, "#t2v_generate").click()
    video = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#result_video video")))
    wait.until(lambda d: d.execute_script("return arguments[0].currentSrc", video))
    browser.execute_script("arguments[0].muted = true; arguments[0].play();", video)
    # it plays: data for the current frame and beyond, a duration of frames / fps, time advancing
    wait.until(lambda d: d.execute_script("return arguments[0].readyState >= 3", video))
    duration = browser.execute_script("return arguments[0].duration", video)
    num_frames = demo.t2v.model.config.num_frames
    assert duration == pytest.approx(num_frames / demo.fps, abs=1.5 / demo.fps)
    start = browser.execute_script("return arguments[0].currentTime", video)
    time.sleep(0.3)
    assert browser.execute_script("return arguments[0].currentTime", video) != start
    # the file the page plays holds the model's frame count
    src = browser.execute_script("return arguments[0].currentSrc", video)
    with urllib.request.urlopen(src) as r, open(tmp_path / "played.mp4", "wb") as f:
        f.write(r.read())
    assert video_io.read_video(str(tmp_path / "played.mp4"))[0].shape[0] == num_frames
    browser.save_screenshot(str(tmp_path / "page.png"))
    assert os.path.getsize(tmp_path / "page.png") > 10_000
