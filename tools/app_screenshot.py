r"""The README's screenshot of the web demo (docs/figures/app.png): serve the shipped references,
submit a prompt in headless chromium (Selenium, as tests/app/test_browser.py), save the page.

    .venv/bin/python tools/app_screenshot.py [--out=docs/figures/app.png]     # needs `make app-venv` + chromium
"""

import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lumiere_jax import app, runtime, sampling  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="docs/figures/app.png")
    parser.add_argument("--prompt", default="a green circle moving right")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    runtime.setup()
    demo = app.Demo(
        sampling.Generator.load("assets/moving_shapes_base"),
        sampling.Generator.load("assets/moving_shapes_conditional"),
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ui = app.build_ui(demo)
    app.launch(ui, port=port, block=False)
    options = webdriver.ChromeOptions()
    options.binary_location = args.chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1100"):
        options.add_argument(a)
    driver = webdriver.Chrome(service=Service(executable_path=args.chromedriver), options=options)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 600)
        prompt = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#t2v_prompt textarea")))
        prompt.clear()
        prompt.send_keys(args.prompt)
        driver.find_element(By.CSS_SELECTOR, "#t2v_generate").click()
        video = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#result_video video")))
        wait.until(lambda d: d.execute_script("return arguments[0].readyState >= 3", video))
        time.sleep(1.0)
        driver.save_screenshot(args.out)
    finally:
        driver.quit()
        ui.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
