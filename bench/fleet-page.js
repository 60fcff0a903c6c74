// The fleet page (/fleet) in headless Chromium, for fleet-bench: how long until the table
// is drawn with every till listed (navigation start to the page's first "fleet-rendered"
// mark), then the frame times for 10 s while tills change (fleet-bench churns them).
// Usage: node bench/fleet-page.js <bridge url> <support key>. Prints one JSON line.
const path = require('node:path');
const { chromium } = require(path.join(__dirname, '..', 'tests', 'node', 'node_modules', 'playwright-core'));

const [url, key] = process.argv.slice(2);
const WATCH_MS = 10_000;

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.addInitScript((k) => sessionStorage.setItem('stock-fleet-support-key', k), key);
  await page.goto(`${url}/fleet`);
  await page.waitForSelector('body[data-loaded=true]', { timeout: 30_000 });
  const firstRows = await page.evaluate(() => performance.getEntriesByName('fleet-rendered')[0].startTime);
  await page.waitForSelector('body[data-live=true]', { timeout: 30_000 });
  const frames = await page.evaluate((ms) => new Promise((resolve) => {
    const times = [];
    let last = performance.now();
    const end = last + ms;
    function frame(now) {
      times.push(now - last);
      last = now;
      if (now < end) requestAnimationFrame(frame); else resolve(times);
    }
    requestAnimationFrame(frame);
  }), WATCH_MS);
  frames.sort((a, b) => a - b);
  const at = (p) => frames[Math.round((frames.length - 1) * p)];
  console.log(JSON.stringify({ first_rows_ms: firstRows, frames: frames.length, frame_p50_ms: at(0.5), frame_p99_ms: at(0.99), frame_max_ms: frames[frames.length - 1] }));
  await browser.close();
})().catch((e) => { console.error(e.message); process.exit(1); });
