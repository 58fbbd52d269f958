"""The control page in a real browser: headless Chromium (Debian's chromium + chromium-driver,
driven by Selenium) opens `petal frame --http`, clicks the buttons and saves a setting, against
the release binary painting with the shipped model.

    python tests/browser/control_page.py --petal target/release/petal [--screenshot PNG]

Checks, each printed as it passes:
  - the page shows the frame's picture (decoded by the browser, not blank) and its seed;
  - "Next" with the newest picture on screen paints a new one: the picture in the page changes;
  - "Previous" puts the older picture back, "Keep" makes it a favourite (listed first);
  - "Pause" pauses (the page says so);
  - a new interval saved from the form lands in the config file, comments kept, and the frame
    reloads with it;
  - the page's requests are the only ones that work: a POST without the token is refused.
Exits non-zero on the first failure, with the frame's log.
"""

import argparse
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# The picture as the browser decoded it: a digest of its pixels (not of the file).
PIXELS_JS = """
const img = document.getElementById('current');
if (!img.complete || img.naturalWidth === 0) return null;
const c = document.createElement('canvas');
c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d');
g.drawImage(img, 0, 0);
const d = g.getImageData(0, 0, c.width, c.height).data;
let lo = 255, hi = 0, sum = 0;
for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); sum = (sum * 31 + d[i] + d[i+1] * 7 + d[i+2] * 13) % 1000000007; }
return [c.width, c.height, lo, hi, sum];
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find(path_options):
    for p in path_options:
        if p and Path(p).exists():
            return p
    return None


class Check:
    def __init__(self, log_path):
        self.log_path = log_path
        self.passed = 0

    def ok(self, what):
        self.passed += 1
        print(f"ok {self.passed}: {what}", flush=True)

    def fail(self, what):
        print(f"FAILED: {what}", file=sys.stderr)
        print("--- petal frame's log ---", file=sys.stderr)
        print(Path(self.log_path).read_text(errors="replace")[-4000:], file=sys.stderr)
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--petal", required=True)
    ap.add_argument("--screenshot", help="write a screenshot of the page here")
    args = ap.parse_args()

    chromium = find([os.environ.get("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"])
    driver_bin = find([os.environ.get("CHROMEDRIVER"), "/usr/bin/chromedriver"])
    if not chromium or not driver_bin:
        print("FAILED: needs chromium and chromedriver (apt install chromium chromium-driver)", file=sys.stderr)
        sys.exit(1)

    work = Path(tempfile.mkdtemp(prefix="petal-browser-"))
    port = free_port()
    config = work / "frame.toml"
    config.write_text(
        "# my frame: the owner's comment stays\n"
        f'display = "png:{work / "shown"}?size=64x64&keep=0"\n'
        'every = "1h"\n'
        "steps = 8\n"
        "emerging = false\n"
        f'gallery = "{work / "gallery"}"\n'
        f'http = "127.0.0.1:{port}"\n'
    )
    log_path = work / "frame.log"
    log = open(log_path, "w")
    frame = subprocess.Popen(
        [args.petal, "--threads", "1", "frame", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    check = Check(log_path)
    base = f"http://127.0.0.1:{port}"
    driver = None
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/api/state", timeout=2).read()
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if frame.poll() is not None or time.time() > deadline:
                    check.fail("the control page did not come up")
                time.sleep(0.2)

        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,760",
                  "--disable-dev-shm-usage", "--force-device-scale-factor=1"]:
            opts.add_argument(a)
        driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
        driver.get(base + "/")
        wait = WebDriverWait(driver, 60, poll_frequency=0.1)

        def pixels():
            return driver.execute_script(PIXELS_JS)

        def on_screen():
            return driver.find_element(By.ID, "current").get_attribute("data-on-screen") or ""

        wait.until(lambda d: "seed" in d.find_element(By.ID, "caption").text and pixels())
        first, first_px = on_screen(), pixels()
        if first_px[3] - first_px[2] < 10:
            check.fail(f"the picture looks blank: {first_px}")
        check.ok(f"the page shows the frame's picture {first} ({first_px[0]}x{first_px[1]}), "
                 f"{driver.find_element(By.ID, 'caption').text}")

        driver.find_element(By.ID, "next").click()
        wait.until(lambda d: on_screen() not in ("", first) and pixels() and pixels() != first_px)
        second, second_px = on_screen(), pixels()
        check.ok(f"Next painted a new picture and the page shows it: {second}")

        driver.find_element(By.ID, "previous").click()
        wait.until(lambda d: on_screen() == first and pixels() == first_px)
        check.ok("Previous put the first picture back")

        driver.find_element(By.ID, "keep").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#gallery img.favourite"))
        fav = driver.find_element(By.CSS_SELECTOR, "#gallery img").get_attribute("alt")
        if fav != f"favourites/{first}":
            check.fail(f"the favourite is not listed first: {fav}")
        if not (work / "gallery" / "favourites" / first).is_file():
            check.fail("Keep made no favourite file")
        check.ok(f"Keep made it a favourite, listed first ({fav})")

        driver.find_element(By.ID, "pause").click()
        wait.until(lambda d: d.find_element(By.ID, "status").text == "paused")
        check.ok("Pause: the page says paused")

        every = driver.find_element(By.NAME, "every")
        every.clear()
        every.send_keys("30m")
        driver.find_element(By.ID, "save").click()
        wait.until(lambda d: "Saved" in d.find_element(By.ID, "settings-note").text
                   or "rror" in d.find_element(By.ID, "settings-note").text)
        note = driver.find_element(By.ID, "settings-note").text
        text = config.read_text()
        if "Saved" not in note or 'every = "30m"' not in text or "owner's comment stays" not in text:
            check.fail(f"saving the interval: note {note!r}, config:\n{text}")
        deadline = time.time() + 60
        while "every 1800s" not in log_path.read_text() and time.time() < deadline:
            time.sleep(0.2)
        if "every 1800s" not in log_path.read_text():
            check.fail("the frame did not reload with the new interval")
        check.ok("the interval saved from the form is in the config (comment kept); the frame reloaded with it")

        # Only the page's own requests (with its token) act.
        req = urllib.request.Request(base + "/api/next", data=b"", method="POST")
        try:
            urllib.request.urlopen(req, timeout=5)
            check.fail("a POST without the token was accepted")
        except urllib.error.HTTPError as e:
            if e.code != 401:
                check.fail(f"a POST without the token got {e.code}, not 401")
        check.ok("a POST without the token is refused (401)")

        if args.screenshot:
            driver.refresh()
            wait.until(lambda d: pixels() and d.find_elements(By.CSS_SELECTOR, "#gallery img"))
            time.sleep(0.5)
            driver.save_screenshot(args.screenshot)
            digest = hashlib.sha256(Path(args.screenshot).read_bytes()).hexdigest()[:12]
            check.ok(f"screenshot {args.screenshot} ({digest})")
    except Exception as e:  # a Selenium timeout or a browser error: show the frame's side too
        check.fail(f"{type(e).__name__}: {e}")
    finally:
        if driver is not None:
            driver.quit()
        frame.send_signal(signal.SIGTERM)
        try:
            frame.wait(timeout=30)
        except subprocess.TimeoutExpired:
            frame.kill()
        log.close()
    print(f"{check.passed} passed, 0 failed")


if __name__ == "__main__":
    main()
